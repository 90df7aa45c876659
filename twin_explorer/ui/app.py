"""The whole explorer: one shared state, one tab per view, served by ``panel serve`` or ``twin-explorer serve``.

``Explorer(twin)`` is the notebook-friendly layout; :func:`create_app` wraps it in a page template for
the server, syncs the focused neuron with the URL (``?unit=<readout_id>``), opens the neuron's
page when the URL names one, and releases the session's work and memory when its page closes.
:data:`SERVE_OPTIONS` are the server settings ``twin-explorer serve`` and the browser harness share: every
script and stylesheet comes from the app's own server (no CDN: a classroom network may have no internet).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Callable

import panel as pn
from panel.io.resources import LOCAL_DIST, use_cdn

from .anatomy import AnatomyView
from .browser import NeuronBrowser
from .designer import StimulusDesigner
from .mei import MEIView
from .receptive_fields import ReceptiveFieldView
from .state import ExplorerState, available_twins
from .tasks import release_session, session_key
from .tuning import TuningView

EXTENSIONS = ("tabulator", "plotly")

#: ``pn.serve`` settings of the explorer: a closed page's session (and its memory) is dropped within seconds
#: instead of Bokeh's default 15-17 s, so a class opening and closing tabs does not pile sessions up.
SERVE_OPTIONS: dict[str, Any] = {"check_unused_sessions_milliseconds": 2000,
                                 "unused_session_lifetime_milliseconds": 3000}


def serve_offline() -> None:
    """Make Bokeh and Panel load every script and stylesheet from this server, never from a CDN (also when the
    environment says otherwise: a classroom network may have no internet)."""
    os.environ["BOKEH_RESOURCES"] = "server"

#: (tab title, view class) in tab order; every view is imported above, so a broken one fails the app at start
VIEWS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("Stimulus designer", StimulusDesigner), ("Tuning", TuningView), ("Receptive fields", ReceptiveFieldView),
    ("MEI", MEIView), ("Neurons", NeuronBrowser), ("Anatomy", AnatomyView))


class LazyViews(Mapping):
    """The explorer's views by tab title, each built the first time it is asked for (e.g. its tab opened)."""

    def __init__(self, build: Callable[[str], Any], titles: list[str]) -> None:
        self._build, self._titles, self._built = build, list(titles), {}

    def __getitem__(self, title: str) -> Any:
        if title not in self._titles:
            raise KeyError(title)
        if title not in self._built:
            self._built[title] = self._build(title)
        return self._built[title]

    def __iter__(self) -> Iterator[str]:
        return iter(self._titles)

    def __len__(self) -> int:
        return len(self._titles)

    def built(self) -> dict[str, Any]:
        """The views built so far."""
        return dict(self._built)


class Explorer(pn.viewable.Viewer):
    """All views over one shared :class:`ExplorerState`; works in a notebook: ``Explorer(twin)``.

    With ``lazy=True`` (the served app) a view is built when its tab is first opened: a new session then costs
    the server only the sidebar and the designer, which keeps a class opening the page at once fast."""

    def __init__(self, twin: Any = None, state: ExplorerState | None = None, lazy: bool = False,
                 **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
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
        self.closed = False
        self._slots = {title: pn.Column(sizing_mode="stretch_width") for title, _view in VIEWS}
        self.views = LazyViews(self._build_view, list(self._slots))
        # Not dynamic: a dynamic tab detaches its hidden views' models, and Panel then sends their updates
        # with CDN stylesheet URLs (console errors offline); lazy views fill their tab's slot instead.
        self.tabs = pn.Tabs(*self._slots.items(), dynamic=False, sizing_mode="stretch_width")
        self.tabs.param.watch(lambda e: self.views[list(self._slots)[e.new]], "active")
        for title in list(self._slots)[:1] if lazy else self._slots:
            self.views[title]

    def _build_view(self, title: str) -> Any:
        view = dict(VIEWS)[title](state=self.state)
        self._slots[title][:] = [view]
        return view

    def close(self) -> None:
        """Release the session: cancel its running and queued computations (the shared results stay cached)."""
        self.closed = True
        for view in self.views.built().values():
            runner = getattr(view, "runner", None)
            if runner is not None:
                runner.cancel()
        self.state.close()

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


def create_app(twin: Any = None) -> pn.template.BootstrapTemplate:
    """Build one session's explorer page (a new state per call, so each browser session is independent)."""
    pn.extension(*EXTENSIONS, notifications=True)
    doc = pn.state.curdoc
    if doc is not None and getattr(doc, "session_context", None) is not None and use_cdn() is False:
        # Panel gives a session's document its local stylesheet URL only when it renders the page; a model made
        # or updated before that (a designer redraw finishing in the worker pool) would point at the CDN instead
        doc._template_variables.setdefault("dist_url", f"{pn.state.rel_path}/{LOCAL_DIST}" if pn.state.rel_path
                                           else LOCAL_DIST)
    # lazy=True (views built when their tab opens) did not build the views on tab clicks in the browser test; eager
    # until that is fixed
    explorer = Explorer(twin, lazy=False)
    # Bootstrap: the one built-in template that fetches nothing from the internet (offline labs, CI).
    template = pn.template.BootstrapTemplate(
        title="twin_explorer", sidebar=explorer.sidebar(), main=[explorer.tabs], sidebar_width=300,
        header_background="#3b6ea5")
    if pn.state.location is not None:
        linked = "unit" in (pn.state.session_args or {})  # read before sync() writes ?unit= itself
        pn.state.location.sync(explorer.state, {"unit": "unit"})
        if linked:
            explorer.open_view("Neurons")
    if pn.state.curdoc is not None and getattr(pn.state.curdoc, "session_context", None) is not None:
        key = session_key()

        def release(_context: Any) -> None:
            release_session(key)
            explorer.close()

        pn.state.on_session_destroyed(release)
    template.explorer = explorer  # for tests and benchmarks
    return template
