"""Component tests for the explorer views: parameter changes reach the Bokeh models; shared selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bokeh import events
from bokeh.document import Document
from bokeh.models import ColumnDataSource

pn = pytest.importorskip("panel")

from twin_explorer.ui.state import ExplorerState  # noqa: E402
from twin_explorer.ui.tasks import Cancelled, ResultCache, TaskRunner  # noqa: E402


def _sources(root) -> list[ColumnDataSource]:
    return list(root.select({"type": ColumnDataSource}))


def test_state_rejects_non_twins_and_unknown_units(state):
    with pytest.raises(ValueError, match="twin contract"):
        ExplorerState(object())
    with pytest.raises(ValueError, match="not a readout_id"):
        state.unit = 10**9
    assert state.unit in state.twin.units.index
    persp, mod = state.behaviour(5)
    assert persp.shape == mod.shape == (5, 2)
    with pytest.raises(ValueError, match="n_frames"):
        state.behaviour(0)


def test_result_cache_is_keyed_by_twin_and_params(twin):
    cache = ResultCache(max_bytes=60)  # room for two small ints (28 bytes each), not three
    calls = []
    f = lambda: calls.append(1) or len(calls)  # noqa: E731
    assert cache.get_or_compute(twin, "k", {"a": 1}, f) == 1
    assert cache.get_or_compute(twin, "k", {"a": 1}, f) == 1
    assert cache.get_or_compute(twin, "k", {"a": 2}, f) == 2
    cache.put(twin, "k", {"a": 3}, 3)
    assert cache.get(twin, "k", {"a": 1}) is None  # evicted (LRU, bounded in bytes)
    with pytest.raises(ValueError):
        ResultCache(0)


def test_task_runner_reports_progress_and_cancels():
    runner = TaskRunner()
    seen = []

    def work(job):
        for i in range(1000):
            job.update(i / 1000, f"{i}")
            if i == 3:
                runner.cancel()
        return "finished"

    assert runner.run(work, on_done=seen.append, label="t")
    assert runner.wait(10)
    assert seen == [] and "cancelled" in runner.message
    assert runner.run(lambda job: 41 + 1, on_done=seen.append, label="u")
    runner.wait(10)
    assert seen == [42] and not runner.running

    def boom(job):
        raise ValueError("bad input")

    runner.run(boom, label="b")
    runner.wait(10)
    assert "bad input" in runner.message and "ValueError" in runner.error
    assert issubclass(Cancelled, Exception)


def test_designer_parameter_change_reaches_bokeh(state):
    from twin_explorer.ui.designer import StimulusDesigner

    d = StimulusDesigner(state=state)
    root = d.__panel__().get_root(Document())
    assert d.n_updates == 1 and not d.error.visible
    images = [m for m in root.select({"type": ColumnDataSource}) if "image" in m.data]
    assert len(images) == 1 and images[0] is d.plots.heat_source  # the Bokeh model the browser draws
    before = np.array(images[0].data["image"][0])
    assert before.shape == (state.twin.n_units, d._result["responses"].shape[0])
    gif_before = d.preview.object
    d.stimulus.direction_deg = 90.0
    assert d.n_updates == 2
    after = np.asarray(images[0].data["image"][0])
    assert not np.allclose(before, after), "heatmap data did not change"
    # a click on a heatmap row focuses the neuron drawn there
    d.plots.on_tap(events.Tap(d.plots.heat_fig, x=0.5, y=3.5))
    assert state.unit == int(state.twin.units.index[d._order[3]])
    assert d.preview.object != gif_before
    # the Bokeh model of the status marker carries the new count
    htmls = [m for m in root.select({"type": pn.models.markup.HTML}) if "te-designer-status" in str(m.text)]
    import html

    assert htmls and 'data-updates="2"' in html.unescape(htmls[0].text)
    # changing the focused neuron updates the traces' data source
    state.unit = int(state.twin.units.index[5])
    labels = {str(c.data.get("unit", [""])[0]) for c in _sources(root) if "unit" in c.data and len(c.data["unit"])}
    assert str(state.unit) in labels
    # the exports carry the current stimulus and responses
    frames = np.load(d._export_npy())
    assert frames.dtype == np.uint8 and frames.shape[1:] == (144, 256)
    ds = d.responses_dataset()
    assert ds["response"].shape == (frames.shape[0], state.twin.n_units)
    assert ds.attrs["stimulus_family"] == "DriftingGrating"


def test_designer_says_updating_while_a_served_redraw_is_computed(state, monkeypatch):
    """Served, a redraw is computed in the worker pool: meanwhile the status line says "updating…" (keeping the count
    of redraws shown), and the result or an error replaces it."""
    import html
    from concurrent.futures import Future
    from types import SimpleNamespace

    from panel.io.state import set_curdoc

    import twin_explorer.ui.designer as designer_module

    d = designer_module.StimulusDesigner(state=state)
    n = d.n_updates
    futures: list[Future] = []

    def submit(_key, fn, coalesce=None):
        future = Future()
        futures.append((future, fn))
        return future

    monkeypatch.setattr(designer_module.INTERACTIVE, "submit", submit)
    monkeypatch.setattr(designer_module, "in_session", lambda doc, fn, freeze=False: fn())  # no server: at once
    class ServedDoc(Document):  # a document that says it belongs to a server session
        session_context = SimpleNamespace(id="a session")

    with set_curdoc(ServedDoc()):
        d.stimulus.direction_deg = 133.0  # a stimulus no other test computed (a cached one is shown at once)
        status = html.unescape(d.info.object)
        assert "updating…" in status and f'data-updates="{n}"' in status and d.n_updates == n
        future, fn = futures[-1]
        future.set_result(fn())
        status = html.unescape(d.info.object)
        assert "updating…" not in status and f'data-updates="{n + 1}"' in status
        d.stimulus.direction_deg = 187.0
        futures[-1][0].set_exception(RuntimeError("the pool failed"))
        assert d.error.visible and "updating…" not in d.info.object and d.n_updates == n + 1


def test_designer_shows_a_cached_result_at_once_when_served(state, monkeypatch):
    """A cached stimulus is drawn without a trip through the worker pool, and a new served designer whose first
    stimulus is cached is made with its preview and plots drawn (they go out in the page's document)."""
    from types import SimpleNamespace

    from panel.io.state import set_curdoc

    import twin_explorer.ui.designer as designer_module
    from twin_explorer.ui import preview as preview_module

    # Both previews carry their animation in the page, as outside a prepared server (a served one links to it).
    monkeypatch.setattr(preview_module, "ANIMATIONS_SERVED", False)
    first = designer_module.StimulusDesigner(state=state)  # not served: computes (and caches) its first stimulus
    assert first.n_updates == 1 and first.preview.object
    submitted: list = []
    from concurrent.futures import Future

    def submit(*args, **kwargs):
        submitted.append(args)
        return Future()  # never finishes: the pool is not asked in this test

    monkeypatch.setattr(designer_module.INTERACTIVE, "submit", submit)

    class ServedDoc(Document):  # what Panel reads of a served session while widgets are made
        session_context = SimpleNamespace(id="a session", request=SimpleNamespace(arguments={}))

    with set_curdoc(ServedDoc()):
        d = designer_module.StimulusDesigner(state=state)
        assert submitted == [] and d.n_updates == 1
        assert d.preview.object == first.preview.object  # set now, not on a later tick
        assert len(d.plots.heat_source.data["image"][0]) == state.twin.n_units
        d.stimulus.direction_deg = 211.0  # not cached: to the pool
        assert len(submitted) == 1 and d.n_updates == 1
    first.stimulus.direction_deg = 211.0  # computed and cached (outside the served document)
    with set_curdoc(ServedDoc()):
        d.stimulus.direction_deg = 97.0  # not cached: to the pool
        d.stimulus.direction_deg = 211.0  # now cached: drawn at once
        assert len(submitted) == 2 and d.n_updates == 2
        assert d._result["params"] == first._result["params"]  # the cached result of 211°, not the pending 97°


@pytest.fixture(scope="module")
def every_view_models(twin) -> set:
    """The Bokeh models of the explorer's page with every view made and every lazily loaded script reported ready
    (the tables and the 3-D plot then stand in their slots): each tab's models while it is open."""
    from panel.io.state import set_curdoc

    from twin_explorer.ui.app import VIEWS, create_app
    from twin_explorer.ui.scripts import ScriptLoader

    doc = Document()
    with set_curdoc(doc):
        page = create_app(twin)
        page.server_doc(doc)
        models = set(doc.models)
        for title, _cls in VIEWS:
            page.explorer.open_view(title)
            for loader in page.explorer.views[title].__panel__().select(ScriptLoader):
                loader.ready = True  # what the browser says once the scripts ran
            models |= set(doc.models)  # a tab that closes leaves the page: every tab's models while open
    return models


def test_every_view_passes_bokehs_document_checks(every_view_models):
    """The served app skips Bokeh's per-session document validation (``prepare_server``: CPU per new session), so
    the checks run here, over the page with every view made: no errors, and no warnings but empty columns (the
    places results go into before the first one)."""
    from bokeh.core.validation.check import check_integrity
    from panel.models.tabulator import DataTabulator

    models = every_view_models
    assert len(models) > 300 and any(isinstance(m, DataTabulator) for m in models)  # the tables are in
    issues = check_integrity(models)
    warnings = [issue for issue in issues.warning if issue.name != "EMPTY_LAYOUT"]
    assert issues.error == [] and warnings == [], (issues.error, warnings)


def test_every_view_needs_neither_webgl_nor_mathjax(every_view_models):
    """Served pages leave out BokehJS's WebGL and MathJax bundles (``PAGE_BOKEH_BUNDLES``): no model of any view
    may need them (a WebGL plot would fall back to canvas, TeX would show as typed)."""
    from bokeh.embed.util import contains_tex_string
    from bokeh.models import Plot
    from bokeh.models.text import MathText

    from twin_explorer.ui.app import PAGE_BOKEH_BUNDLES

    assert "bokeh-gl" not in PAGE_BOKEH_BUNDLES and "bokeh-mathjax" not in PAGE_BOKEH_BUNDLES
    webgl = [m for m in every_view_models if isinstance(m, Plot) and m.output_backend == "webgl"]
    texts = [(type(m).__name__, getattr(m, name)) for m in every_view_models
             for name in ("text", "title", "axis_label") if isinstance(getattr(m, name, None), str)]
    assert len(texts) > 100
    tex = [t for t in texts if contains_tex_string(t[1])] + [m for m in every_view_models if isinstance(m, MathText)]
    assert webgl == [] and tex == [], (webgl, tex[:3])


def test_designer_shows_bad_parameters_instead_of_raising(state):
    from twin_explorer.ui.designer import MAX_PREVIEW_DURATION_S, StimulusDesigner

    d = StimulusDesigner(state=state)
    n = d.n_updates
    d.stimulus.duration_s = MAX_PREVIEW_DURATION_S + 5
    assert d.error.visible and "at most" in d.error.object and d.n_updates == n


def test_browser_selection_is_shared(state):
    from twin_explorer.ui.browser import NeuronBrowser

    b = NeuronBrowser(state=state)
    b.__panel__().get_root(Document())
    assert len(b.table.value) == state.twin.n_units
    assert "CC" in b.table.header_tooltips  # says which CC the column holds (and why CC_norm can exceed 1)
    assert {"area", "true_pref_dir_deg"} <= set(b.table.value.columns)
    b.table.selection = [3, 7]
    ids = b.table.value["readout_id"]
    assert state.selection == [int(ids.iloc[3]), int(ids.iloc[7])]
    assert state.unit == int(ids.iloc[7])
    assert f"Neuron {state.unit}" in b.page.object
    state.unit = int(ids.iloc[11])
    assert 11 in b.table.selection
    csv = pd.read_csv(b._csv())
    assert len(csv) == state.twin.n_units and "readout_id" in csv.columns


def test_tuning_and_rf_views_on_selected_neurons(state):
    from twin_explorer.ui.receptive_fields import ReceptiveFieldView
    from twin_explorer.ui.tuning import TuningView

    state.selection = [int(u) for u in state.twin.units.index[:3]]
    tv = TuningView(state=state, scope="selected neurons", directions=8, duration_s=0.5)
    tv.__panel__().get_root(Document())
    assert tv.run(wait=True)
    assert tv.result is not None and tv.result.sizes["unit"] == 3
    assert "preferred direction" in tv.indices.object and tv.results.visible and tv.unit_pane.visible
    rv = ReceptiveFieldView(state=state, scope="selected neurons", spacing_deg=20, dot_s=0.1)
    rv.__panel__().get_root(Document())
    assert rv.run(wait=True)
    assert rv.result is not None and "centre azimuth" in rv.summary.object
    # a second view with the same parameters is served from the cache at construction
    assert TuningView(state=state, scope="selected neurons", directions=8, duration_s=0.5).result is not None


def test_explorer_builds_every_view(twin):
    from twin_explorer.ui.app import Explorer

    ex = Explorer(twin)
    ex.__panel__().get_root(Document())
    assert list(ex.views)[0] == "Stimulus designer" and "Neurons" in ex.views
    ex.open_view("Neurons")
    assert ex.tabs.active == list(ex.views).index("Neurons")
    with pytest.raises(ValueError, match="no view"):
        ex.open_view("Nope")
    ex.unit_input.value = str(int(twin.units.index[2]))
    assert ex.state.unit == int(twin.units.index[2])


def test_the_page_carries_no_plotly_and_no_page_wide_busy_indicator(twin):
    """What every page of a class costs its browser: Plotly loads with the anatomy view only (ui/scripts.py), and
    no busy indicator (Panel's is set by any session's events: every page spun for every other page's work)."""
    from twin_explorer.ui import app as app_module

    assert "plotly" not in app_module.EXTENSIONS
    page = app_module.create_app(twin)
    assert page.busy_indicator is None


def test_unit_table_has_area_layer_cc_tuning_and_coregistration(twin):
    from twin_explorer.engine.contract import TwinMetadata
    from twin_explorer.ui.state import CC_COLUMNS, twin_cc, unit_table

    table = unit_table(twin)
    assert {"area", "layer", "CC", "coregistered", "nucleus_id", "true_gosi"} <= set(table.columns)
    assert set(table["coregistered"]) <= {"unique", "multiple", "none"} and (table["coregistered"] == "unique").any()
    # a coregistered unit carries its nucleus id; an unmatched one none
    assert table.loc[table["coregistered"] == "unique", "nucleus_id"].notna().all()
    assert table.loc[table["coregistered"] == "none", "nucleus_id"].isna().all()
    assert table["CC"].isna().all()  # the synthetic mouse is the truth itself: no accuracy to report

    class WithCC:  # a twin whose units table ships per-unit accuracy
        units = twin.units.assign(cc_norm=np.linspace(0.1, 0.9, twin.n_units))
        n_units = twin.n_units
        metadata = TwinMetadata()

        def truth(self):  # the twin contract: no ground truth behind it
            return None

    cc = twin_cc(WithCC())
    assert cc.name == CC_COLUMNS[0] and np.isclose(cc.iloc[-1], 0.9)
    assert np.isclose(unit_table(WithCC())["CC"].iloc[0], 0.1)


def test_microns_scans_are_offered_when_the_bundle_is_present(monkeypatch):
    import twin_explorer.ui.state as st

    bundle = Path("/work/shared/fixtures/fnn/bundle")
    if not (bundle / "scans.csv").exists():
        pytest.skip("the fixture bundle is not on this machine")
    monkeypatch.setattr(st, "_TWINS", {})  # twins other tests loaded (a browser test opens "microns 0-0") don't count
    monkeypatch.setattr(st, "BUNDLE_DIR", None)
    monkeypatch.setenv("TWIN_EXPLORER_CACHE", "/nonexistent-twin-explorer-cache")
    assert not any(n.startswith("microns") for n in st.available_twins())
    monkeypatch.setattr(st, "BUNDLE_DIR", str(bundle))
    assert "microns 0-0" in st.available_twins()
    scan = st.get_twin("microns 0-0")
    assert scan.n_units == 8 and st.get_twin("microns 0-0") is scan  # loaded once
    table = st.unit_table(scan)
    assert len(table) == 8 and set(table["coregistered"]) == {"none"}
    with pytest.raises(ValueError, match="microns <session>-<scan_idx>"):
        st.get_twin("microns eight")


def test_tuning_at_each_neurons_preferred_sf_tf(state):
    from twin_explorer.ui.tuning import PREFERRED, TuningView

    truth = state.twin.truth()
    # a neuron whose preferred SF is far from the default 0.04 cpd
    unit = int((np.log2(truth["sf_cpd"] / 0.04)).abs().idxmax())
    state.unit, state.selection = unit, [unit]
    tv = TuningView(state=state, scope="selected neurons", directions=8, duration_s=0.5)
    assert tv.run(wait=True)
    assert "ground truth is defined at the neuron's own preferred SF/TF" in tv.indices.object
    assert "⚠" in tv.indices.object  # the fixed gratings are far from its preference
    assert "1 of 1000 neurons measured so far" in tv.map_note.object
    tv.sf_tf = PREFERRED
    assert tv.run(wait=True)
    used = float(tv.result["sf_cpd"].sel(unit=unit))
    assert abs(np.log2(used / truth.loc[unit, "sf_cpd"])) <= 0.5  # the truth's SF, rounded to an octave
    assert "⚠" not in tv.indices.object and "true preference" in tv.indices.object
    assert tv.result.attrs["sf_tf_source"] == "truth"


def test_experiment_views_forget_results_of_another_twin(state):
    from twin_explorer.synthetic import SyntheticMouse
    from twin_explorer.ui.receptive_fields import ReceptiveFieldView

    state.selection = [int(state.twin.units.index[0])]
    rv = ReceptiveFieldView(state=state, scope="selected neurons", spacing_deg=25, dot_s=0.1)
    assert rv.run(wait=True) and rv.result is not None
    state.twin = SyntheticMouse(seed=1, n_neurons=20)
    assert rv.result is None and rv.hint.visible


def test_browser_turns_to_the_focused_neurons_page(state):
    from twin_explorer.ui.browser import NeuronBrowser

    b = NeuronBrowser(state=state)
    b.__panel__().get_root(Document())
    state.unit = int(state.twin.units.index[40])
    assert b.table.page == 40 // b.table.page_size + 1


def test_focus_nearest_picks_the_closest_point_and_ignores_empty_clicks():
    from twin_explorer.ui.state import ExplorerState

    state = ExplorerState("synthetic")
    xy = np.array([[0.0, 0.0], [10.0, 5.0], [3.0, 3.0]])
    state.focus_nearest(xy, [7, 11, 13], 9.0, 4.0)
    assert state.unit == 11
    state.focus_nearest(xy, [7, 11, 13], None, 4.0)
    assert state.unit == 11
    state.focus_nearest(xy[:0], [], 1.0, 1.0)
    assert state.unit == 11


# ---- anatomy: any folder, matched to the loaded twin; the synthetic sample labelled as such ----------------------
def _require_real_anatomy_pieces() -> None:
    from anatomy_folders import REAL

    if not (REAL / "README.md").exists():
        pytest.fail(f"real MICrONS samples missing at {REAL}")


@pytest.fixture
def microns_twin(monkeypatch, fnn_fixtures):
    """The MICrONS-layout fixture twin (8 units of session 0, scan 0, from the fnn bundle)."""
    import twin_explorer.ui.state as st

    monkeypatch.setattr(st, "BUNDLE_DIR", str(fnn_fixtures / "bundle"))
    return st.get_twin("microns 0-0")


def test_anatomy_view_on_a_real_folder_links_a_microns_twin(tmp_path, microns_twin):
    from anatomy_folders import MP_NUCLEUS, MP_ROOT, MP_UNIT, PCG_NUCLEUS, build_real_folder

    from twin_explorer.ui.anatomy import AnatomyView
    from twin_explorer.ui.state import SYNTHETIC_LABEL, unit_table

    _require_real_anatomy_pieces()
    folder = build_real_folder(tmp_path / "real")
    table = unit_table(microns_twin, str(folder))
    units = microns_twin.units
    unit = int(units.index[(units["unit_id"] == MP_UNIT[2]).to_numpy()][0])
    assert table.loc[unit, "coregistered"] == "unique" and table.loc[unit, "nucleus_id"] == MP_NUCLEUS
    assert set(table.loc[table["skeleton"], "nucleus_id"]) == {MP_NUCLEUS, PCG_NUCLEUS}  # skeleton and meshwork
    assert (table["coregistered"] == "none").sum() == 6
    view = AnatomyView(microns_twin, anatomy=str(folder))
    view.__panel__().get_root(Document())
    assert view.state.anatomy == str(folder) and not view.synthetic and SYNTHETIC_LABEL not in view.header.object
    assert "v1300" in view.header.object and not view.error.visible and not view.notice.visible
    assert len(view._pop) == 2 and "v1300" in view.top_pane.object.opts.get().kwargs["title"]
    view.state.unit = unit
    assert f"nucleus {MP_NUCLEUS}" in view.info.object and str(MP_ROOT) in view.info.object
    assert "12424 in, 6514 out" in view.info.object  # the real neuron's synapses
    partners = view.partners.value
    assert partners["n_synapses"].sum() == 18938 and (partners["partner_root_id"] == str(MP_ROOT)).any()
    assert view.morph_pane.visible and view.plot3d.object is not None
    assert view.neuroglancer_url is not None and "seg_m1300" in view.neuroglancer_url
    assert 'href="' in view.neuroglancer.object and "disabled" not in view.neuroglancer.object
    # the meshwork-only neuron shows its meshwork's skeleton
    view.state.unit = int(units.index[(units["unit_id"] == 34).to_numpy()][0])
    assert f"nucleus {PCG_NUCLEUS}" in view.info.object and view.morph_pane.visible


def test_sample_is_labelled_synthetic_everywhere(state):
    from twin_explorer.ui.anatomy import AnatomyView
    from twin_explorer.ui.browser import NeuronBrowser
    from twin_explorer.ui.state import SYNTHETIC_LABEL

    view = AnatomyView(state=state)
    view.__panel__().get_root(Document())
    assert view.synthetic and SYNTHETIC_LABEL in view.header.object and view.header.alert_type == "warning"
    for pane in (view.top_pane, view.side_pane):
        assert SYNTHETIC_LABEL in pane.object.opts.get().kwargs["title"]
    pop = view._pop
    state.unit = int(pop.index[(pop["match"] == "unique") & pop["nucleus_id"].isin(view.anatomy.skeleton_ids)][0])
    assert SYNTHETIC_LABEL in view.info.object and "synthetic stand-in for coregistration_" in view.info.object
    assert "match unique (coregistration_" not in view.info.object  # never posing as a real MICrONS table
    assert view.neuroglancer_url is None and "materialization_version" in view.neuroglancer_reason
    assert "disabled" in view.neuroglancer.object and "Open in Neuroglancer" in view.neuroglancer.object
    browser = NeuronBrowser(state=state)
    assert SYNTHETIC_LABEL in browser.page.object
    # the sample's ids lie outside the real MICrONS ranges
    nuclei = view.anatomy.nuclei
    assert nuclei.index.min() >= 10_000_000 and str(nuclei["pt_root_id"].min()).startswith("9")


def test_explorer_tab_says_the_anatomy_is_synthetic(twin, tmp_path, microns_twin):
    from anatomy_folders import build_real_folder

    from twin_explorer.ui.app import Explorer
    from twin_explorer.ui.state import SYNTHETIC_LABEL, get_twin

    ex = Explorer(twin)
    assert ex.tabs._names[-1] == f"Anatomy ({SYNTHETIC_LABEL})"
    # the twin too: the sidebar, on every tab, says a synthetic twin is one (the demo twin: the mouse it was fitted to)
    assert "*the synthetic mouse itself — not MICrONS data*" in ex.summary.object
    demo = Explorer(get_twin("demo"))
    assert "*fitted to synthetic mouse 0 — not MICrONS data*" in demo.summary.object
    _require_real_anatomy_pieces()
    real = Explorer(microns_twin, anatomy=str(build_real_folder(tmp_path / "real")))
    assert real.tabs._names[-1] == "Anatomy" and real.state.table["coregistered"].eq("unique").sum() == 2
    assert "synthetic" not in real.summary.object


def test_anatomy_loader_errors_are_shown_in_the_view(twin, tmp_path):
    from anatomy_folders import build_real_folder

    from twin_explorer.ui.anatomy import AnatomyView
    from twin_explorer.ui.state import unit_table

    view = AnatomyView(twin, anatomy=str(tmp_path / "missing"))
    assert view.anatomy is None and view.error.visible and "anatomy folder not found" in view.error.object
    assert view.header.alert_type == "danger" and view.top_pane.object is None
    assert set(unit_table(twin, str(tmp_path / "missing"))["coregistered"]) == {"none"}  # the table still opens
    _require_real_anatomy_pieces()
    bad = build_real_folder(tmp_path / "bad")
    (bad / "tables" / "nucleus_detection_v0.parquet").write_bytes(b"not parquet")
    view = AnatomyView(twin, anatomy=str(bad))
    assert view.error.visible and "Could not link" in view.error.object and view.top_pane.object is None
    # a readable folder none of whose coregistrations name this twin's scan: said, not an empty map
    other = build_real_folder(tmp_path / "other")
    view = AnatomyView(twin, anatomy=str(other))
    assert not view.error.visible and view.notice.visible and "scans 0-0" in view.notice.object
    with pytest.raises(ValueError, match="folder path or"):
        AnatomyView(twin, anatomy=3)


def test_neuron_table_says_which_neurons_have_a_skeleton(state):
    from twin_explorer.ui.browser import NeuronBrowser

    b = NeuronBrowser(state=state)
    b.__panel__().get_root(Document())
    df = b.table.value
    assert df["skeleton"].dtype == bool and 25 <= df["skeleton"].sum() < len(df)
    assert b.table.header_filters["skeleton"]["type"] == "tickCross" and "skeleton" in b.table.header_tooltips
    b.skeleton_only.value = True
    view = b.table.current_view
    assert len(view) == df["skeleton"].sum() and view["skeleton"].all()
    b.skeleton_only.value = False
    assert len(b.table.current_view) == len(df)


def test_exported_folder_opens_in_the_anatomy_view(tmp_path):
    from fake_caveclient import REAL_ROOT, FakeCAVEclient

    from twin_explorer.anatomy.export import export_anatomy
    from twin_explorer.synthetic import SyntheticMouse
    from twin_explorer.ui.anatomy import AnatomyView

    _require_real_anatomy_pieces()
    folder = tmp_path / "v1300"
    export_anatomy(FakeCAVEclient(), folder, 1300, "8-5", progress=False)
    mouse = SyntheticMouse(seed=0, n_neurons=3)

    class ScanTwin:  # a MICrONS-layout twin of scan 8-5 (the mouse answers its predictions)
        id, n_units, predict = "scan-8-5", 3, mouse.predict
        units = pd.DataFrame({"session": 8, "scan_idx": 5, "unit_id": [4909, 812, 3051]},
                             index=pd.Index([0, 1, 2], name="readout_id"))

    view = AnatomyView(ScanTwin(), anatomy=folder)
    assert not view.error.visible and not view.synthetic and len(view._pop) >= 1
    view.state.unit = 0
    assert str(REAL_ROOT) in view.info.object and view.morph_pane.visible
    assert view.partners.value["n_synapses"].sum() > 1000 and view.neuroglancer_url is not None


def test_serve_opens_the_anatomy_folder(monkeypatch, tmp_path):
    import panel as pn_mod
    from anatomy_folders import build_real_folder
    from typer.testing import CliRunner

    from twin_explorer.cli import typer_app

    from types import SimpleNamespace

    served = {}

    def serve(apps, **kw):  # what the command asks of the server it starts, without serving
        served.update(apps)
        return SimpleNamespace(port=5006, start=lambda: None,
                               io_loop=SimpleNamespace(add_callback=lambda *a: None, start=lambda: None))

    monkeypatch.setattr(pn_mod, "serve", serve)
    res = CliRunner().invoke(typer_app, ["serve", "--no-show", "--twin", "synthetic", "--anatomy",
                                         str(tmp_path / "nope")])
    assert res.exit_code != 0 and "anatomy" in res.output and not served
    _require_real_anatomy_pieces()
    folder = build_real_folder(tmp_path / "real")
    monkeypatch.setenv("TWIN_EXPLORER_ANATOMY", str(folder))  # the environment variable names it too
    res = CliRunner().invoke(typer_app, ["serve", "--no-show", "--twin", "synthetic"])
    assert res.exit_code == 0, res.output
    assert "v1300" in res.output and "synthetic sample" not in res.output
    app = served["explorer"]()
    assert app.explorer.state.anatomy == str(folder.resolve())
    assert app.explorer.views["Anatomy"].anatomy.materialization_version == 1300
