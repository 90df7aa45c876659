"""The whole explorer: one shared state, one tab per view, served by ``panel serve`` or ``twin-explorer serve``.

``Explorer(twin, anatomy=DIR)`` is the notebook-friendly layout; :func:`create_app` wraps it in a page template for
the server, syncs the focused neuron with the URL (``?unit=<readout_id>``) and opens the neuron's
page when the URL names one, and releases the session's work and memory when its page closes. ``anatomy`` (a folder
or an ``Anatomy``; default $TWIN_EXPLORER_ANATOMY, else the bundled synthetic sample) is the volume the neuron table
and the anatomy view link the twin's units to. :data:`SERVE_OPTIONS` are the server settings ``twin-explorer serve``
and the browser harness share, with :func:`prepare_server`'s process settings: every script and stylesheet comes from
the app's own server (no CDN: a classroom network may have no internet).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import panel as pn
import torch
from panel.io.resources import LOCAL_DIST, use_cdn

from . import preview
from .anatomy import SYNTHETIC_LABEL, AnatomyView
from .browser import NeuronBrowser
from .controls import parse_unit
from .designer import StimulusDesigner
from .experiment import SpecView
from .mei import MEIView
from .preview import PREVIEW_ROUTE
from .receptive_fields import ReceptiveFieldView
from .state import (ExplorerState, anatomy_is_synthetic, anatomy_source, get_anatomy, get_twin, twin_options,
                    twin_synthetic_label)
from .tasks import release_session, session_key
from .tuning import TuningView

#: the extension scripts every page loads: none. The video upload's picker (FilePond: its animation loop would run on
#: every idle page), the anatomy view's 3-D plot (Plotly: 4.8 MB to compile on every page load) and the tables of
#: the neuron browser and the anatomy view (Tabulator) load theirs when shown (ui/scripts.py)
EXTENSIONS: tuple[str, ...] = ()

#: ``pn.serve`` settings of the explorer: a closed page's session (and its memory) is dropped within seconds
#: instead of Bokeh's default 15-17 s, so a class opening and closing tabs does not pile sessions up.
#: The designer's preview animations are fetched from the server's own route when played (ui/preview.py).
SERVE_OPTIONS: dict[str, Any] = {"check_unused_sessions_milliseconds": 2000,
                                 "unused_session_lifetime_milliseconds": 3000,
                                 "extra_patterns": [PREVIEW_ROUTE]}
#: How long a new session waits for its page to connect before that sweep may drop it. Bokeh counts an unused
#: session's lifetime from its creation, so without this a page whose scripts took over 3 s to load (a class
#: opening the app at once) found its session gone and the server built it a second one: twice the CPU per page,
#: and the first session's objects served nobody.
CONNECT_GRACE_S = 120.0
#: The BokehJS bundles a served page loads. Bokeh's server puts all five in every page, since it cannot know ahead
#: what a session will show; the explorer draws no WebGL plot (``bokeh-gl``) and writes no TeX (``bokeh-mathjax``,
#: 1.8 MB: Panel asks for it whenever a page has any Markdown or HTML pane). Their parse and run cost every page load
#: ~0.3 s of browser CPU (2 cores, one page at a time: 3.39 vs 2.85 s, medians of 10 interleaved pairs).
PAGE_BOKEH_BUNDLES = ("bokeh", "bokeh-widgets", "bokeh-tables")
#: the cyclic garbage collector's youngest-generation threshold while serving (see :func:`settle_startup_objects`)
GC_YOUNG_THRESHOLD = 20_000


def serve_offline() -> None:
    """Make Bokeh and Panel load every script and stylesheet from this server, never from a CDN (also when the
    environment says otherwise: a classroom network may have no internet)."""
    os.environ["BOKEH_RESOURCES"] = "server"


def serve_used_bokeh_bundles() -> None:
    """Make served pages load only the :data:`PAGE_BOKEH_BUNDLES` (Bokeh's server resources take their bundles from
    ``Resources``' class default, which has no public setting). Without that default (another Bokeh) pages load
    every bundle, as before, and a warning says so."""
    import bokeh.resources

    if not isinstance(getattr(bokeh.resources.Resources, "_default_components", None), list):
        logging.getLogger(__name__).warning("this Bokeh has no Resources._default_components: served pages load every "
                                            "BokehJS bundle, WebGL and MathJax included")
        return
    bokeh.resources.Resources._default_components = list(PAGE_BOKEH_BUNDLES)


def keep_pane_stylesheets() -> None:
    """Content updates of Panel's text panes (HTML, Markdown, Alert, Str) send their new content, not their
    stylesheets again. Panel recomputes a pane's stylesheets on each update as if the pane stood alone (the design's
    whole Bootstrap set, at URLs relative to the page instead of the websocket the session was built at), so inside
    the page template each pane's first update in a session replaced its stylesheets: the browser restyled it and laid
    the page out again, and a page's first designer redraw cost about twice the next ones (2 cores). Streaming panes
    keep Panel's own update."""
    from panel.pane.markup import HTMLBasePane

    panel_update = HTMLBasePane._update
    if getattr(panel_update, "keeps_stylesheets", False):
        return

    def update_content(self: Any, ref: str, model: Any) -> None:
        if self.enable_streaming:
            panel_update(self, ref, model)
            return
        props = self._get_properties(model.document)
        props.pop("stylesheets", None)
        model.update(**props)

    update_content.keeps_stylesheets = True  # type: ignore[attr-defined]
    HTMLBasePane._update = update_content


def serving_torch_threads(cores: int | None = None) -> int:
    """Torch's intra-op threads for a served explorer on a machine of ``cores`` cores (default: this one's): half of
    them, at least one. The server runs several predictions at once (the designer's pool and the experiments' pool,
    every session's), each with its own team of intra-op threads; with all cores each, 2 workers asked for 4 threads
    on 2 cores. Measured on the 2-core build machine (demo twin, one process, alternated): a designer prediction
    5.95-8.70 per s on 1 thread against 4.29-4.96 on 2 alone, 11.9-13.3 against 8.0-12.8 two at a time; an
    all-neuron tuning in the same wall time (0.88-0.96 s against 0.76-0.89 s) for half the CPU (0.93-1.09 against
    1.48-1.73 s), leaving the other core to the other sessions and the event loop."""
    cores = cores if cores is not None else (os.cpu_count() or 2)
    return max(1, int(cores) // 2)


def page_key(request: Any) -> tuple[str, str]:
    """Which served page's HTML a request may be answered with: one per server port and app path. The page's HTML
    names no host and is the same for every visitor (its content, ``?unit=`` included, comes with the visitor's own
    session), so visitors who call the server by other names (localhost, its address on the network) share it;
    the port keeps apart servers in one process (Panel keeps the pages in one table)."""
    host = str(request.host)
    return host.rpartition(":")[2] if ":" in host else "", request.path


async def warm_page(url: str) -> None:
    """Ask the server for its page once before any visitor does (``url``: the page on this server). The page's HTML is
    reused from the session the first request makes (:func:`prepare_server`), and that session must be one no visitor
    works in: Panel renders the HTML from the session's document as it is at each request, and a visitor's changes
    to it (a sidebar pane redrawn for a new focused neuron resets its model's template tags) left the next pages
    without the elements their roots go into (a blank page for everyone after the first visitor clicked a neuron).
    A failure is logged as a warning (the first visitor's session is then the kept one), never raised."""
    from tornado.httpclient import AsyncHTTPClient

    try:
        await AsyncHTTPClient().fetch(url, request_timeout=600)
    except Exception as exc:  # refused, timed out, an error page: the server serves on regardless
        logging.getLogger(__name__).warning("could not ask for the page %s before the first visitor (%s); the first "
                                            "visitor's session will be the one whose page is reused", url, exc)


def prepare_server() -> None:
    """The process settings of a served explorer:

    - :func:`serve_offline`;
    - the page's HTML is made once and reused (Panel's ``reuse_sessions``, keyed by :func:`page_key`): each visitor's
      own session is then built when the page connects, not before its HTML is sent. With the HTML waiting for its
      session, a class opening the app at once queued every page's HTML behind every other page's session on the
      server's one event loop (20 pages: the last HTML after ~9 s, 2 cores), and no browser could start loading
      the scripts meanwhile. One session (the page's template) stays alive for the reuse: the server makes it
      itself before serving anyone (:func:`warm_page`);
    - none of Bokeh's error diagnostics (they check each callback's signature with ``inspect`` as it is
      registered, some 350 per page: making the designer's models took 137 instead of 152 ms, best of 8, to help
      whoever writes the callbacks, not a class using the app);
    - pages load only the BokehJS bundles the explorer uses (:func:`serve_used_bokeh_bundles`);
    - predictions use :func:`serving_torch_threads` intra-op threads (several run at once);
    - the designer's preview animations are fetched from this server when played, not sent in the page
      (``ui.preview``; :data:`SERVE_OPTIONS` routes them);
    - text panes' updates send their content only (:func:`keep_pane_stylesheets`);
    - no validation of each new session's document (Bokeh's checks for developer mistakes, such as a plot
      without renderers, over every model of the page: 28-55 ms of a new session's 0.5 s of server CPU; the
      tests run them over every view's models instead, ``tests/test_ui.py``)."""
    serve_offline()
    serve_used_bokeh_bundles()
    torch.set_num_threads(serving_torch_threads())
    preview.ANIMATIONS_SERVED = True
    keep_pane_stylesheets()
    pn.config.reuse_sessions = True
    pn.config.session_key_func = page_key
    os.environ["BOKEH_PERFORM_ERROR_DIAGNOSTICS"] = "false"
    os.environ["BOKEH_VALIDATE_DOC"] = "false"


def settle_startup_objects(young_threshold: int = GC_YOUNG_THRESHOLD) -> None:
    """Call once the server has loaded what it keeps for its life (the twin, its unit table, the libraries),
    before the first page: those objects leave the cyclic garbage collector's generations (``gc.freeze``), and
    the youngest generation is collected after ``young_threshold`` new objects instead of Python's 700.
    Building a page makes some 100,000 objects that live as long as its session; with the defaults each new
    session triggered ~40 collections, some of which walked every object of the twin and of the other open
    sessions (35-50 ms of a new session's server CPU, more with a class connected; 6-8 ms after this)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


#: (tab title, view class) in tab order; every view is imported above, so a broken one fails the app at start
VIEWS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("Stimulus designer", StimulusDesigner), ("Tuning", TuningView), ("Receptive fields", ReceptiveFieldView),
    ("MEI", MEIView), ("Experiments", SpecView), ("Neurons", NeuronBrowser), ("Anatomy", AnatomyView))


class LazyViews(Mapping):
    """The explorer's views by title, each made on first access (``built`` holds those made so far)."""

    def __init__(self, state: ExplorerState, views: Sequence[tuple[str, type]], shown: Callable[[str], bool]
                 ) -> None:
        self._state, self._classes, self._shown = state, dict(views), shown
        self.built: dict[str, Any] = {}

    def __getitem__(self, title: str) -> Any:
        if title not in self.built:
            cls = self._classes[title]  # KeyError for an unknown title, as a dict
            extra = {"shown": self._shown(title)} if "shown" in cls.param else {}
            self.built[title] = cls(state=self._state, **extra)
        return self.built[title]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


class LazyView(pn.Column):
    """A column that makes its content (``make()``) when it is first rendered: in dynamic tabs, when its tab first
    opens. (A hidden tab of dynamic tabs is a placeholder model on the page; this column is only rendered when its
    tab is shown.) Cheaper to make than a lazy ``ParamFunction`` (0.5 instead of 3.9 ms a tab), and never on the page
    empty: the content is in place before the column's model is made."""

    def __init__(self, make: Callable[[], Any], **params: Any) -> None:
        super().__init__(**params)
        self._make = make

    def _get_model(self, doc: Any, root: Any = None, parent: Any = None, comm: Any = None) -> Any:
        if not self.objects:
            self.objects = [self._make()]
        return super()._get_model(doc, root, parent, comm)


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
        # every twin and every scan of the MICrONS bundle, scans labelled with their unit counts
        self.twin_select = pn.widgets.Select(label="Twin (MICrONS: session-scan)",
                                             options=twin_options(self.state.twin_name), value=self.state.twin_name,
                                             sizing_mode="stretch_width")
        self.twin_message = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["te-twin-message"],
                                          sizing_mode="stretch_width")
        self.twin_select.param.watch(lambda e: self.switch_twin(e.new), "value")
        self.state.param.watch(lambda e: self._show_twin_name(e.new), "twin_name")
        # Typed as text and parsed here, so every malformed id gets a visible message and the focus stays put
        self.unit_input = pn.widgets.TextInput(label="Focused neuron (readout_id)", value=str(self.state.unit),
                                               sizing_mode="stretch_width")
        self.unit_message = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["te-unit-message"],
                                          sizing_mode="stretch_width")
        self.unit_input.param.watch(lambda e: self.focus_text(e.new), "value")
        self.state.param.watch(lambda e: setattr(self.unit_input, "value", "" if e.new is None else str(e.new)),
                               "unit")
        self.summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.state.param.watch(self._update_summary, ["unit", "selection", "twin"])
        self._update_summary()
        self.closed = False
        # Views are made when first asked for: the first tab's now, the others when their tab first opens (a
        # LazyView in dynamic tabs). Making every view and its Bokeh models at page load was most of a new
        # session's server CPU (1.0 s of 1.1 s, quiet machine); a hidden tab's models also leave the page.
        # (An empty column per tab, filled by a watcher of the active tab after the tabs had rendered it empty,
        # sometimes left a result drawn later into that tab off the page: 2 of 3 classroom load runs, 10 pages.
        # A LazyView is filled before its model is made.)
        self.views = LazyViews(self.state, VIEWS, shown=lambda title: self.active_title == title)
        self.views[VIEWS[0][0]]
        self.tabs = pn.Tabs(*[(self._tab_title(title, cls), self._tab_content(title)) for title, cls in VIEWS],
                            dynamic=True, sizing_mode="stretch_width")
        self.tabs.param.watch(self._sync_shown, "active")

    @property
    def active_title(self) -> str:
        return VIEWS[self.tabs.active][0] if hasattr(self, "tabs") else VIEWS[0][0]

    def _tab_content(self, title: str) -> Any:
        if title in self.views.built:
            return self.views[title]
        return LazyView(lambda: self.views[title], sizing_mode="stretch_width")

    def _sync_shown(self, *_events: Any) -> None:
        """A tab opened: each view knows whether it is the one shown."""
        for title, view in self.views.built.items():
            if "shown" in view.param:
                view.shown = title == self.active_title

    def _tab_title(self, title: str, cls: type) -> str:
        """The tab's title; the anatomy tab says when its volume is the synthetic sample (known before the view
        is made: the volume is loaded once per process)."""
        if not issubclass(cls, AnatomyView):
            return title
        try:
            synthetic = anatomy_is_synthetic(get_anatomy(self.state.anatomy))
        except (OSError, ValueError):  # a volume that can't be opened: the view says why when it opens
            synthetic = False
        return f"{title} ({SYNTHETIC_LABEL})" if synthetic else title

    def _show_twin_name(self, name: str) -> None:
        """The state changed twin (e.g. from code): the picker follows, offering that twin if it was not listed."""
        if name not in self.twin_select.values:
            self.twin_select.options = twin_options(name)
        self.twin_select.value = name

    def switch_twin(self, name: str) -> bool:
        """Open the twin (or MICrONS scan) called ``name``; if it cannot be loaded, say why next to the picker and
        keep the current twin and everything shown for it. True if switched."""
        if name == self.state.twin_name:
            return True
        try:
            get_twin(name)  # loaded (or refused) before the state changes, so a failure leaves the page as it was
        except Exception as exc:  # a damaged or missing bundle file: any error is shown, the session lives on
            self.twin_message.object = (f"Could not open {name!r}: {exc}. Still showing "
                                        f"{self.state.twin_name!r}.")
            self.twin_message.visible = True
            self.twin_select.value = self.state.twin_name
            return False
        self.twin_message.visible = False
        self.state.twin_name = name
        return True

    def focus_text(self, text: str, source: str = "") -> bool:
        """Focus the neuron whose readout_id is typed as ``text``; a bad id is reported next to the input and the
        focus (and the input) stay on the current neuron. True if accepted."""
        if str(text).strip() == str(self.state.unit):
            return True
        try:
            unit = parse_unit(text, self.state.twin.units.index)
        except ValueError as exc:
            self.unit_message.object, self.unit_message.visible = f"{source}{exc}. Still showing neuron " \
                                                                  f"{self.state.unit}.", True
            self.unit_input.value = str(self.state.unit)
            return False
        self.unit_message.visible = False
        self.state.unit = unit
        return True

    def close(self) -> None:
        """Release the session: cancel its running and queued computations (the shared results stay cached)."""
        self.closed = True
        for view in self.views.built.values():
            runner = getattr(view, "runner", None)
            if runner is not None:
                runner.cancel()
        self.state.close()

    def _update_summary(self, *_events: Any) -> None:
        twin = self.state.twin
        synthetic = twin_synthetic_label(twin)  # synthetic data is labelled wherever it is shown: every tab
        self.summary.object = (f"**{getattr(twin, 'id', self.state.twin_name)}** · {twin.n_units} neurons  \n"
                               + (f"*{synthetic}*  \n" if synthetic else "")
                               + f"focused: **{self.state.unit}** · selected: {len(self.state.selection)}")

    def open_view(self, title: str) -> None:
        """Switch to the tab called ``title``."""
        titles = list(self.views)
        if title not in titles:
            raise ValueError(f"no view {title!r}; views are {titles}")
        self.tabs.active = titles.index(title)

    def sidebar(self) -> list[Any]:
        return [self.twin_select, self.twin_message, self.unit_input, self.unit_message, self.summary]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(*self.sidebar()), self.tabs, sizing_mode="stretch_width")


def hold_until_connected(doc: Any, grace_s: float | None = None) -> None:
    """Exempt the new server session of ``doc`` from the unused-session sweep until its page has loaded (Panel's
    onload), at most ``grace_s`` (default :data:`CONNECT_GRACE_S`); after that a closed page's session goes within
    :data:`SERVE_OPTIONS`' seconds."""
    grace_s = CONNECT_GRACE_S if grace_s is None else grace_s
    context, held, loaded = doc.session_context, [], []

    def block() -> None:  # next tick: the ServerSession exists once the document is initialised
        session = context.session
        if session is not None and not held and not loaded:
            session.block_expiration()
            held.append(session)

    def unblock() -> None:
        loaded.append(True)
        if held:
            held.pop().unblock_expiration()

    doc.add_next_tick_callback(block)
    doc.add_timeout_callback(unblock, int(grace_s * 1000))
    pn.state.onload(unblock)


class ExplorerPage(pn.template.BootstrapTemplate):
    """The explorer's page template: Bootstrap (the one built-in template that fetches nothing from the internet:
    offline labs, CI), whose models join a session's document in one step."""

    def server_doc(self, doc: Any = None, title: str | None = None, location: Any = True) -> Any:
        """As the template's, with the document's model graph walked once at the end instead of after each of the
        page's dozen roots (each walk visits every model added so far: a quarter of a new session's CPU)."""
        doc = doc if doc is not None else pn.state.curdoc
        if doc is None:
            return super().server_doc(doc, title, location)
        with doc.models.freeze():
            return super().server_doc(doc, title, location)


def _same_number(text: str, value: Any) -> bool:
    """Whether the link's text is the value the URL sync parsed from it (then the message quotes the text as typed)."""
    try:
        return str(text) == str(value) or float(text) == float(value)
    except (TypeError, ValueError):
        return False


def create_app(twin: Any = None, anatomy: Any = None) -> ExplorerPage:
    """Build one session's explorer page (a new state per call, so each browser session is independent) on ``twin``
    and the anatomy folder ``anatomy`` (see :class:`Explorer`)."""
    pn.extension(*EXTENSIONS)
    doc = pn.state.curdoc
    if doc is not None and getattr(doc, "session_context", None) is not None and use_cdn() is False:
        # Panel gives a session's document its local stylesheet URL only when it renders the page; a model made
        # or updated before that (a designer redraw finishing in the worker pool) would point at the CDN instead
        doc._template_variables.setdefault("dist_url", f"{pn.state.rel_path}/{LOCAL_DIST}" if pn.state.rel_path
                                           else LOCAL_DIST)
    explorer = Explorer(twin, anatomy=anatomy)
    # No page-wide busy indicator: Panel's is one spinner for all sessions, set whenever *any* session handles an
    # event, so in a class every page got two messages and a spinning animation (~0.1 s of browser CPU on 2 cores)
    # for each other page's slider move. Each view says itself what it is doing ("updating…", progress bars).
    template = ExplorerPage(
        # the sidebar as one root: the template places each root by tags on its model, which a pane redrawn at
        # the top level resets (see warm_page); a column's own model is never redrawn
        title="twin_explorer", sidebar=[pn.Column(*explorer.sidebar(), sizing_mode="stretch_width")],
        main=[explorer.tabs], sidebar_width=300,
        header_background="#3b6ea5", busy_indicator=None)
    if pn.state.location is not None:
        asked = (pn.state.session_args or {}).get("unit")  # read before sync() writes ?unit= itself
        link_text = None
        if asked is not None:
            link_text = asked[-1].decode(errors="replace") if isinstance(asked[-1], bytes) else str(asked[-1])
            if not explorer.focus_text(link_text, source=f"The link's ?unit={link_text}: "):
                # replace the bad value in the address, so sync() below does not apply it
                pn.state.location.update_query(unit=str(explorer.state.unit))

        def refused(values: dict[str, Any]) -> None:
            """The browser sent a bad ?unit= (it reports its address after loading): say so, show the neuron shown."""
            value = values.get("unit")
            text = link_text if link_text is not None and _same_number(link_text, value) else str(value)
            explorer.focus_text(text, source=f"The link's ?unit={text}: ")
            pn.state.location.update_query(unit=str(explorer.state.unit))

        pn.state.location.sync(explorer.state, {"unit": "unit"}, on_error=refused)
        if asked is not None:
            explorer.open_view("Neurons")
    if pn.state.curdoc is not None and getattr(pn.state.curdoc, "session_context", None) is not None:
        key = session_key()
        hold_until_connected(pn.state.curdoc)

        def release(_context: Any) -> None:
            release_session(key)
            explorer.close()

        pn.state.on_session_destroyed(release)
    template.explorer = explorer  # for tests and benchmarks
    return template
