"""The whole explorer: one shared state, one tab per view, served by ``panel serve`` or ``twin-explorer serve``.

``Explorer(twin, anatomy=DIR)`` is the notebook-friendly layout; :func:`create_app` wraps it in a page template for
the server, syncs the focused neuron with the URL (``?unit=<readout_id>``) and opens the neuron's
page when the URL names one. ``anatomy`` (a folder or an ``Anatomy``; default $TWIN_EXPLORER_ANATOMY, else the
bundled synthetic sample) is the volume the neuron table and the anatomy view link the twin's units to.
"""

from __future__ import annotations

from typing import Any, Callable

import panel as pn

from .anatomy import SYNTHETIC_LABEL, AnatomyView
from .browser import NeuronBrowser
from .designer import StimulusDesigner
from .mei import MEIView
from .receptive_fields import ReceptiveFieldView
from .state import ExplorerState, anatomy_source, available_twins
from .tuning import TuningView

EXTENSIONS = ("tabulator", "plotly")

#: (tab title, view class) in tab order; every view is imported above, so a broken one fails the app at start
VIEWS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("Stimulus designer", StimulusDesigner), ("Tuning", TuningView), ("Receptive fields", ReceptiveFieldView),
    ("MEI", MEIView), ("Neurons", NeuronBrowser), ("Anatomy", AnatomyView))


class Explorer(pn.viewable.Viewer):
    """All views over one shared :class:`ExplorerState`; works in a notebook: ``Explorer(twin)``."""

    def __init__(self, twin: Any = None, state: ExplorerState | None = None, anatomy: Any = None,
                 **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
        if anatomy is not None:
            self.state.anatomy = anatomy_source(anatomy)  # a wrong type is refused here
        super().__init__(**params)
        # The sidebar is built (and its watchers registered) before the views, so a new focus reaches the
        # sidebar first; the views redraw on the next tick (see state.deferred).
        self.twin_select = pn.widgets.Select(label="Twin", options=list(dict.fromkeys([self.state.twin_name,
                                             *available_twins()])), value=self.state.twin_name,
                                             sizing_mode="stretch_width")
        self.twin_select.link(self.state, value="twin_name")
        self.unit_input = pn.widgets.IntInput(label="Focused neuron (readout_id)", value=self.state.unit,
                                              sizing_mode="stretch_width")
        self.unit_input.link(self.state, value="unit")
        self.state.param.watch(lambda e: setattr(self.unit_input, "value", e.new), "unit")
        self.summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.state.param.watch(self._update_summary, ["unit", "selection", "twin"])
        self._update_summary()
        self.views = {title: view(state=self.state) for title, view in VIEWS}
        # Not dynamic: a dynamic tab detaches its hidden views' models, and Panel then sends their updates
        # with CDN stylesheet URLs (console errors offline); all views are built anyway.
        self.tabs = pn.Tabs(*[(self._tab_title(title, view), view) for title, view in self.views.items()],
                            dynamic=False, sizing_mode="stretch_width")

    @staticmethod
    def _tab_title(title: str, view: Any) -> str:
        """The tab's title; the anatomy tab says when its volume is the synthetic sample."""
        return f"{title} ({SYNTHETIC_LABEL})" if getattr(view, "synthetic", False) else title

    def _update_summary(self, *_events: Any) -> None:
        twin = self.state.twin
        self.summary.object = (f"**{getattr(twin, 'id', self.state.twin_name)}** · {twin.n_units} neurons  \n"
                               f"focused: **{self.state.unit}** · selected: {len(self.state.selection)}")

    def open_view(self, title: str) -> None:
        """Switch to the tab called ``title``."""
        titles = list(self.views)
        if title not in titles:
            raise ValueError(f"no view {title!r}; views are {titles}")
        self.tabs.active = titles.index(title)

    def sidebar(self) -> list[Any]:
        return [self.twin_select, self.unit_input, self.summary]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(*self.sidebar()), self.tabs, sizing_mode="stretch_width")


def create_app(twin: Any = None, anatomy: Any = None) -> pn.template.BootstrapTemplate:
    """Build one session's explorer page (a new state per call, so each browser session is independent) on ``twin``
    and the anatomy folder ``anatomy`` (see :class:`Explorer`)."""
    pn.extension(*EXTENSIONS, notifications=True)
    explorer = Explorer(twin, anatomy=anatomy)
    # Bootstrap: the one built-in template that fetches nothing from the internet (offline labs, CI).
    template = pn.template.BootstrapTemplate(
        title="twin_explorer", sidebar=explorer.sidebar(), main=[explorer.tabs], sidebar_width=300,
        header_background="#3b6ea5")
    if pn.state.location is not None:
        linked = "unit" in (pn.state.session_args or {})  # read before sync() writes ?unit= itself
        pn.state.location.sync(explorer.state, {"unit": "unit"})
        if linked:
            explorer.open_view("Neurons")
    template.explorer = explorer  # for tests and benchmarks
    return template
