"""The explorer on a full scan (issue 15 item 5): the scan picker, streamed tuning results, binned maps and the
server-paged neuron table, on small stand-ins (speed is measured by ``twin-explorer bench explorer``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bokeh.document import Document

pn = pytest.importorskip("panel")
hv = pytest.importorskip("holoviews")

from twin_explorer.experiments.tuning import direction_tuning, spread_order  # noqa: E402
from twin_explorer.synthetic.mouse import SyntheticMouse  # noqa: E402
from twin_explorer.twins.fullsize import make_bundle  # noqa: E402
from twin_explorer.ui import raster, tuning as tuning_ui  # noqa: E402
from twin_explorer.ui import state as st  # noqa: E402
from twin_explorer.ui import streaming as streaming_ui  # noqa: E402
from twin_explorer.ui.browser import NeuronBrowser  # noqa: E402
from twin_explorer.ui.state import ExplorerState  # noqa: E402

SMALL = {"n_neurons": 120, "seed": 3}


def _identical(a, b) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for k in a.data_vars:
        np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)


def test_spread_order_covers_the_circle_early():
    order = spread_order(np.arange(16) * 22.5) * 22.5
    assert order[:4].tolist() == [0, 180, 90, 270] and order[4:8].tolist() == [45, 135, 225, 315]
    assert sorted(order.tolist()) == (np.arange(16) * 22.5).tolist()
    assert sorted(spread_order([10, 20, 200, 300, 90]).tolist()) == [0, 1, 2, 3, 4]


def test_streamed_tuning_delivers_partials_and_the_same_final_result():
    parts = []
    kw = dict(directions=8, duration_s=0.5, batch_size=2, show_progress=False)
    streamed = direction_tuning(SyntheticMouse(**SMALL), partial=parts.append, **kw)
    plain = direction_tuning(SyntheticMouse(**SMALL), **kw)
    assert [p.attrs["directions_done"] for p in parts] == [2, 4, 6]
    assert all(p.attrs["directions_total"] == 8 for p in parts)
    assert parts[0]["direction"].values.tolist() == [0.0, 180.0]
    assert parts[1]["direction"].values.tolist() == [0.0, 90.0, 180.0, 270.0]
    np.testing.assert_array_equal(parts[-1]["tuning"].sel(direction=[0.0, 45.0]).values,
                                  streamed["tuning"].sel(direction=[0.0, 45.0]).values)  # done directions are final
    assert np.isfinite(parts[-1]["pref_dir"].values).any() and np.isnan(parts[-1]["fit_kappa"].values).all()
    _identical(streamed, plain)


def test_streaming_runs_two_opposite_directions_first_then_full_batches():
    parts = []
    kw = dict(directions=8, duration_s=0.5, batch_size=4, show_progress=False)
    streamed = direction_tuning(SyntheticMouse(**SMALL), partial=parts.append, **kw)
    # the first batch holds 2 directions (a first result sooner), the rest 4 at a time
    assert [p.attrs["directions_done"] for p in parts] == [2, 6]
    assert parts[0]["direction"].values.tolist() == [0.0, 180.0]
    _identical(streamed, direction_tuning(SyntheticMouse(**SMALL), **kw))


def test_tuning_view_draws_partial_results_while_measuring(monkeypatch):
    monkeypatch.setattr(tuning_ui, "TUNING_BATCH", 2)
    monkeypatch.setattr(streaming_ui, "MIN_GAP_S", 0.0)  # every batch's result drawn (pacing: test_ui_streaming)
    monkeypatch.setattr(streaming_ui, "FIRST_AFTER_S", 0.0)
    view = tuning_ui.TuningView(SyntheticMouse(**SMALL), directions=8, duration_s=0.5)
    drawn, messages = [], []
    draw = view._draw
    monkeypatch.setattr(view, "_draw", lambda ds: (drawn.append(ds.attrs.get("directions_done")), draw(ds)))
    view.runner.param.watch(lambda e: messages.append(e.new), "message")
    assert view.run(wait=True)
    assert drawn == [2, 4, 6, None]  # three provisional results, then the final one
    assert any("2 of 8 directions" in m and "left" in m for m in messages)
    assert view.shown is view.result and not view.result.attrs.get("partial")
    _identical(view.result, direction_tuning(SyntheticMouse(**SMALL), directions=8, duration_s=0.5, contrast=1.0,
                                             sf_cpd=0.04, tf_hz=2.0, batch_size=2, show_progress=False))
    assert view.map_note.object == ""  # the provisional note is gone with the final result


def _layers(plot) -> list:
    return list(plot) if isinstance(plot, hv.Overlay) else [plot]


def test_binned_map_counts_means_and_circular_means():
    x = np.array([0.0, 0.1, 9.9, 10.0])
    y = np.array([0.0, 0.1, 9.9, 10.0])
    counts, ex, ey = raster.binned_map(x, y, bins=2)
    assert np.nansum(counts) == 4 and counts[0, 0] == 2 and counts[1, 1] == 2 and np.isnan(counts[0, 1])
    angles, *_ = raster.binned_map(x, y, np.array([350.0, 30.0, 90.0, 90.0]), period=360.0, bins=2)
    assert angles[0, 0] == pytest.approx(10.0) and angles[1, 1] == pytest.approx(90.0)
    means, *_ = raster.binned_map(x, y, np.array([1.0, 3.0, 5.0, 7.0]), bins=2)
    assert means[0, 0] == 2.0 and means[1, 1] == 6.0
    with pytest.raises(ValueError, match="one entry per point"):
        raster.binned_map(x, y, np.zeros(3))
    assert isinstance(raster.neuron_map(x, y, "x", "y", max_points=10), hv.Points)
    assert isinstance(raster.neuron_map(x, y, "x", "y", max_points=2), hv.Image)


def test_direction_map_is_binned_for_many_neurons_and_a_click_still_picks_one(monkeypatch):
    view = tuning_ui.TuningView(SyntheticMouse(n_neurons=400, seed=1))
    table = view.state.table
    measured = pd.DataFrame({"pref_dir": np.linspace(0, 359, len(table)), "gdsi": 0.5}, index=table.index)
    dmap = view.direction_map
    assert view._direction_map(measured)  # 400 ≤ MAX_POINTS: points
    assert len(dmap.points.data["unit"]) == 400 and not dmap.binned.visible and dmap.pane.visible
    assert dmap.points.data["pref_dir"][-1] == 359.0 and "binned" not in dmap.plot.title.text
    monkeypatch.setattr(raster, "MAX_POINTS", 100)
    assert view._direction_map(measured)
    assert dmap.binned.visible and len(dmap.points.data["unit"]) == 0
    image = dmap.image.data["image"][0]
    assert image.ndim == 2 and np.nanmax(image) <= 360 and "binned" in dmap.plot.title.text
    assert "400 neurons binned" in view.map_note.object
    unit = int(table.index[17])
    view._on_map_tap(float(table.loc[unit, "x_um"]), float(table.loc[unit, "y_um"]))
    assert view.state.unit == unit


def test_a_tuning_run_changes_visibility_once_per_step():
    """Each ``visible`` change makes the browser lay the page out again (0.3-0.5 s on 2 cores): a run shows the bar
    once, its first result's plots once and hides the bar once; a second run shows no plot again."""
    twin = SyntheticMouse(**SMALL)
    view = tuning_ui.TuningView(twin, directions=8, duration_s=0.5, contrast=0.65)  # parameters no other test caches
    layout = view.__panel__()
    layout.get_root(Document())
    changed: list[str] = []
    for obj in {id(o): o for o in [*layout.select(pn.viewable.Viewable), view.runner.busy]}.values():
        obj.param.watch(lambda event: changed.append(event.obj.name), "visible")
    assert view.run(wait=True)
    assert changed == [view.runner.busy.name, view.results.name, view.runner.busy.name]
    changed.clear()
    view.contrast = 0.6
    assert view.run(wait=True)
    assert changed == [view.runner.busy.name, view.runner.busy.name]


def test_tuning_view_redraws_its_plots_in_place():
    """A new result changes the plots' data, never their models: no model is made, Bokeh re-walks nothing."""
    twin = SyntheticMouse(**SMALL)
    view = tuning_ui.TuningView(twin, directions=8, duration_s=0.5, contrast=0.7)  # parameters no other test caches
    view.__panel__().get_root(Document())
    assert not view.results.visible  # nothing measured yet: plots hidden
    assert view.run(wait=True)
    assert view.results.visible and view.unit_pane.visible and view.linear_pane.visible and view.population.visible
    panes = [view.unit_plots.polar, view.unit_plots.traces, view.unit_plots.linear, *view.histograms.plots.values(),
             view.direction_map.plot]
    models = {id(m) for plot in panes for m in plot.references()}
    polar_x = np.array(view.unit_plots.polar_data.data["x"])
    gosi_counts = np.array(view.histograms.sources["gosi"].data["top"])
    assert gosi_counts.sum() == twin.n_units and view.map_pane.visible
    other = int(view.result["unit"].values[5])
    view.state.unit = other
    view._show_unit()
    assert f"unit {other}:" in view.unit_plots.polar.title.text
    assert not np.allclose(polar_x, view.unit_plots.polar_data.data["x"])
    view.contrast = 0.5
    assert view.run(wait=True)
    again = {id(m) for plot in panes for m in plot.references()}
    assert again == models
    assert not np.array_equal(gosi_counts, view.histograms.sources["gosi"].data["top"])
    view.clear_result()
    assert not view.results.visible and not view.map_pane.visible and "Measure tuning" in view.hint.object


def test_neuron_table_pages_on_the_server():
    browser = NeuronBrowser(SyntheticMouse(n_neurons=300, seed=2))
    table = browser.table
    assert table.pagination == "remote"
    model = table.get_root(Document())
    assert len(model.source.data["readout_id"]) == 15  # one page sent, not 300 rows
    table.page = 3
    assert model.source.data["readout_id"].tolist() == list(range(30, 45))
    table.sorters = [{"field": "readout_id", "dir": "desc"}]
    table.page = 1
    assert model.source.data["readout_id"][:2].tolist() == [299, 298]
    area = str(table.value["area"].iloc[0])
    table.filters = [{"field": "area", "type": "like", "value": area}]
    assert set(model.source.data["area"]) == {area} and len(table.current_view) == (table.value["area"] == area).sum()
    browser.state.unit = int(table.current_view["readout_id"].iloc[20])  # on page 2 of the filtered, sorted view
    assert table.page == 2


@pytest.fixture(scope="module")
def multi_scan_bundle(tmp_path_factory):
    """Three scans with a few units each (the core at its published size, the readouts small)."""
    return make_bundle(tmp_path_factory.mktemp("bundle"), scans="4-7,8-5,9-6",
                       units={(4, 7): 5, (8, 5): 6, (9, 6): 7})


def test_scan_picker_offers_every_scan_and_survives_a_broken_one(monkeypatch, multi_scan_bundle):
    from twin_explorer.ui.app import Explorer

    monkeypatch.setattr(st, "_TWINS", {})
    monkeypatch.setattr(st, "BUNDLE_DIR", str(multi_scan_bundle))
    explorer = Explorer(SyntheticMouse(**SMALL))
    assert "synthetic mouse itself — not MICrONS data" in explorer.summary.object  # labelled on every tab
    options = explorer.twin_select.options
    for label, n in (("microns 4-7 · 5 units", 5), ("microns 8-5 · 6 units", 6), ("microns 9-6 · 7 units", 7)):
        assert options[label] == label.split(" · ")[0]
    explorer.twin_select.value = "microns 8-5"
    assert explorer.state.twin.n_units == 6 and explorer.state.twin_name == "microns 8-5"
    assert not explorer.twin_message.visible and "6 neurons" in explorer.summary.object
    assert "synthetic" not in explorer.summary.object  # a MICrONS scan is not labelled synthetic
    (multi_scan_bundle / "params_9_6.pt").write_bytes(b"not a weight file")
    explorer.twin_select.value = "microns 9-6"
    assert explorer.twin_message.visible and "microns 9-6" in explorer.twin_message.object
    assert explorer.state.twin_name == "microns 8-5" and explorer.state.twin.n_units == 6
    assert explorer.twin_select.value == "microns 8-5"


def test_soma_maps_are_binned_above_max_points(monkeypatch):
    from twin_explorer.ui.anatomy import responsive_soma_map

    rng = np.random.default_rng(0)
    n = 300
    pop = pd.DataFrame({"x_um": rng.uniform(0, 500, n), "z_um": rng.uniform(0, 500, n),
                        "depth_um": rng.uniform(0, 800, n), "pref_dir": rng.uniform(0, 360, n),
                        "area": rng.choice(["V1", "LM"], n)}, index=pd.Index(np.arange(n), name="readout_id"))
    assert isinstance(responsive_soma_map(pop, "area", "top", "Somata"), hv.Points)
    monkeypatch.setattr(raster, "MAX_POINTS", 100)
    by_dir = responsive_soma_map(pop, "pref_dir", "side", "Somata")
    counts = responsive_soma_map(pop, "area", "top", "Somata")
    assert isinstance(by_dir, hv.Image) and isinstance(counts, hv.Image)
    assert np.nansum(counts.dimension_values(2)) == n  # every soma counted once
    values = by_dir.dimension_values(2)
    assert np.nanmin(values) >= 0 and np.nanmax(values) < 360 and "300 somata" in by_dir.opts.get().kwargs["title"]
