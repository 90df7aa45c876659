"""Views draw provisional results while an experiment runs (ui/streaming.py): the Tuning view at each neuron's
preferred SF/TF and the generic experiment view; the newest provisional result only, none from a superseded run,
the last result back after a cancel, and a final result equal to a run without streaming."""

from __future__ import annotations

import time

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from twin_explorer.experiments import get_experiment, preferred_sf_tf  # noqa: E402
from twin_explorer.experiments.tuning import direction_tuning  # noqa: E402
from twin_explorer.synthetic.mouse import SyntheticMouse  # noqa: E402
from twin_explorer.ui import experiment as experiment_ui  # noqa: E402
from twin_explorer.ui import tuning as tuning_ui  # noqa: E402
from twin_explorer.ui.experiment import SELECTED, SpecView  # noqa: E402
from twin_explorer.ui.state import ExplorerState, twin_truth  # noqa: E402
from twin_explorer.ui import streaming as streaming_ui  # noqa: E402
from twin_explorer.ui.streaming import ProvisionalStream  # noqa: E402

SMALL = {"n_neurons": 120, "seed": 3}
SF = {"directions": 4, "sf_cpd": [0.02, 0.04, 0.08], "duration_s": 0.5}  # 12 conditions, 3 per direction


def _identical(a, b) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for k in a.data_vars:
        np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)


class _Job:
    """Collects the session callbacks a worker hands over, to run them when the test says (a session's next tick)."""

    def __init__(self) -> None:
        self.queued = []

    def ui(self, fn, *args, freeze=False) -> None:
        self.queued.append(lambda: fn(*args))

    def tick(self) -> None:
        queued, self.queued = self.queued, []
        for fn in queued:
            fn()


@pytest.fixture(autouse=True)
def every_batch_drawn(monkeypatch):
    """These tests check what each batch draws: no pacing of provisional draws (tested on its own below)."""
    monkeypatch.setattr(streaming_ui, "MIN_GAP_S", 0.0)
    monkeypatch.setattr(streaming_ui, "FIRST_AFTER_S", 0.0)


def test_stream_paces_provisional_draws_but_draws_the_first_at_once():
    drawn, job = [], _Job()
    stream = ProvisionalStream(drawn.append, min_gap_s=0.3, first_after_s=0.0)
    stream.start()
    sink = stream.sink(job)
    sink("a")
    job.tick()
    assert drawn == ["a"]  # the run's first provisional result: at once
    sink("b")
    sink("c")
    assert job.queued == []  # within the gap: nothing scheduled, "c" waits as the newest
    time.sleep(0.35)
    sink("d")  # the gap is over: the newest is drawn
    job.tick()
    assert drawn == ["a", "d"]
    stream.start()  # a new run draws its first result at once again
    stream.sink(job)("e")
    job.tick()
    assert drawn == ["a", "d", "e"]


def test_a_quick_run_shows_no_provisional_result():
    """Before ``first_after_s`` from the run's start nothing provisional is drawn (a quick run: its final result
    alone); after it, the newest result is, at the next batch."""
    drawn, job = [], _Job()
    stream = ProvisionalStream(drawn.append, min_gap_s=0.0, first_after_s=0.3)
    stream.start()
    sink = stream.sink(job)
    sink("a")
    sink("b")
    assert job.queued == []  # too early in the run
    time.sleep(0.35)
    sink("c")
    job.tick()
    assert drawn == ["c"]
    stream.start()  # a new run waits again
    stream.sink(job)("d")
    stream.stop()  # its final result came first
    job.tick()
    assert drawn == ["c"] and job.queued == []


def test_stream_draws_only_the_newest_result_of_the_current_run():
    drawn, job = [], _Job()
    stream = ProvisionalStream(drawn.append)
    stream.start()
    sink = stream.sink(job)
    sink("a")
    sink("b")  # before the session's tick: replaces "a"
    assert len(job.queued) == 1
    job.tick()
    assert drawn == ["b"]
    sink("c")
    stream.start()  # a new run: the old run's result is dropped
    job.tick()
    assert drawn == ["b"] and stream.active
    stream.sink(job)("d")
    stream.stop()  # the final result came first
    job.tick()
    assert drawn == ["b"] and not stream.active


def test_tuning_view_streams_at_each_neurons_preferred_sf_tf(monkeypatch):
    monkeypatch.setattr(tuning_ui, "TUNING_BATCH", 2)
    twin = SyntheticMouse(**SMALL)
    view = tuning_ui.TuningView(twin, directions=8, duration_s=0.5, sf_tf=tuning_ui.PREFERRED)
    drawn, notes, messages = [], [], []
    draw = view._draw

    def record(ds):
        drawn.append((ds.attrs.get("units_done"), ds.attrs.get("directions_done")))
        draw(ds)
        notes.append(view.map_note.object)
        if len(drawn) == 1:  # a neuron of a later SF/TF pair is focused: it is on its way
            view.state.unit = int(np.setdiff1d(twin.units.index, ds["unit"].values)[0])
            view._show_unit()
            notes.append(view.indices.object)

    monkeypatch.setattr(view, "_draw", record)
    view.runner.param.watch(lambda e: messages.append(e.new), "message")
    assert view.run(wait=True)
    sf, tf, source = preferred_sf_tf(twin, None, truth=twin_truth(twin))
    n_pairs = len(np.unique(np.c_[sf, tf], axis=0))
    assert source == "truth" and n_pairs > 2
    # the first SF/TF pair's neurons with two directions after one predict call, then the other pairs' neurons,
    # then the remaining directions for everyone, then the final result
    assert drawn[0][1] == 2 and 0 < drawn[0][0] < twin.n_units
    assert [d for _, d in drawn[:n_pairs]] == [2] * n_pairs
    assert [u for u, _ in drawn[:n_pairs]] == sorted(u for u, _ in drawn[:n_pairs])
    assert drawn[n_pairs - 1:] == [(120, 2), (120, 4), (120, 6), (None, None)]
    assert f"2 of 8 directions measured for {drawn[0][0]} of 120 neurons" in notes[0] and "Provisional" in notes[0]
    assert "is not measured yet" in notes[1]
    assert notes[-1] == "" and not view.result.attrs.get("partial") and view.shown is view.result
    assert any(f"of {8 * n_pairs} grating videos" in m and "left" in m for m in messages)
    plain = direction_tuning(SyntheticMouse(**SMALL), directions=8, sf_cpd=sf, tf_hz=tf, duration_s=0.5,
                             contrast=1.0, batch_size=2, show_progress=False)
    _identical(view.result, plain)


def test_tuning_view_streams_the_sf_tf_probe_of_a_twin_without_truth(monkeypatch):
    """A twin without ground-truth SF/TF (every real one) measures each neuron's preferred SF/TF first: that probe's
    directions are drawn as they come (each neuron at its best pair so far), then only direction-tuning results with
    at least as many directions for every neuron, then the final result, equal to a run without streaming."""
    monkeypatch.setattr(tuning_ui, "TUNING_BATCH", 4)
    monkeypatch.setattr(tuning_ui, "twin_truth", lambda twin: None)
    twin = SyntheticMouse(**SMALL)
    view = tuning_ui.TuningView(twin, directions=16, duration_s=0.5, sf_tf=tuning_ui.PREFERRED)
    drawn, notes = [], []
    draw = view._draw

    def record(ds):
        drawn.append((ds.attrs.get("sf_tf_pairs"), ds.attrs.get("units_done"), ds.attrs.get("directions_done")))
        draw(ds)
        notes.append(view.map_note.object)

    monkeypatch.setattr(view, "_draw", record)
    assert view.run(wait=True)
    probe = [d for d in drawn if d[0]]
    assert [d for _, _, d in probe] == [2, 3, 4, 5, 6, 7, 8]  # from the second direction, then the whole probe
    assert all(pairs == 20 and units == 120 for pairs, units, _ in probe)
    assert "from the SF × TF probe: 2 of 8 directions at each neuron's best of 20 SF/TF pairs" in notes[0]
    rest = drawn[len(probe):]
    assert drawn[:len(probe)] == probe and rest[-1] == (None, None, None)
    assert rest[:-1] and all(units == 120 and dirs >= 8 for _, units, dirs in rest[:-1])
    assert view.result.attrs["sf_tf_source"] == "measured" and not view.result.attrs.get("partial")
    sf, tf, source = preferred_sf_tf(twin, None)
    assert source == "measured"
    plain = direction_tuning(SyntheticMouse(**SMALL), directions=16, sf_cpd=sf, tf_hz=tf, duration_s=0.5,
                             contrast=1.0, batch_size=4, show_progress=False)
    _identical(view.result, plain)


def test_tuning_from_sf_tf_reads_each_units_best_pair():
    from twin_explorer.experiments import sf_tf_tuning, tuning_from_sf_tf

    twin = SyntheticMouse(**SMALL)
    grid = sf_tf_tuning(twin, sf_cpd=[0.02, 0.08, 0.3], tf_hz=[1, 2, 4], directions=4, duration_s=0.5, units=[0, 5, 9],
                        show_progress=False)
    ds = tuning_from_sf_tf(twin, grid)
    best = grid["tuning"].stack(pair=("sf", "tf")).argmax("pair").values
    for i, unit in enumerate([0, 5, 9]):
        pair = grid["tuning"].stack(pair=("sf", "tf"))["pair"].values[best[i]]
        assert (ds["sf_cpd"].values[i], ds["tf_hz"].values[i]) == pair
        np.testing.assert_array_equal(ds["tuning"].values[i], grid["response"].sel(unit=unit, sf=pair[0], tf=pair[1]))
    assert ds.attrs["partial"] and ds.attrs["sf_tf_pairs"] == 9 and ds.attrs["directions_done"] == 4
    assert ds.attrs["directions_total"] == 4 and ds.attrs["units_done"] == ds.attrs["units_total"] == 3
    assert np.all((ds["pref_dir"].values >= 0) & (ds["pref_dir"].values < 360))


@pytest.fixture
def selected(twin):
    st = ExplorerState(twin)
    st.selection = [int(u) for u in twin.units.index[:3]]
    st.unit = int(twin.units.index[0])
    return st


def _spec_view(state, **params) -> SpecView:
    view = SpecView(state=state, experiment="sf_tuning", scope=SELECTED)
    for k, v in {**SF, **params}.items():
        view.param_widgets[k].value = v
    return view


def test_spec_view_draws_labelled_provisional_results_then_the_plain_runs_result(monkeypatch, selected):
    monkeypatch.setattr(experiment_ui, "SPEC_BATCH", 4)
    view = _spec_view(selected, duration_s=0.6)  # parameters no other test caches
    seen = []

    def record(ds):
        SpecView.show_provisional(view, ds)
        seen.append((ds.attrs["conditions_done"], view.summary.object, len(view.unit_pane)))

    monkeypatch.setattr(view, "show_provisional", record)
    assert view.run(wait=True)
    assert [(done, n) for done, _, n in seen] == [(4, 1), (8, 1)]  # the focused neuron's plot drawn each time
    assert "Provisional: 4 of 12 conditions" in seen[0][1] and "sf_tuning" in seen[0][1]
    assert "Provisional" not in view.summary.object and view.shown is view.result
    plain = get_experiment("sf_tuning")(selected.twin, units=view.scoped_units(), batch_size=4, **SF | {"duration_s": 0.6})
    _identical(view.result, plain)


def test_spec_view_cancel_puts_the_last_result_back(monkeypatch, selected):
    monkeypatch.setattr(experiment_ui, "SPEC_BATCH", 4)
    view = _spec_view(selected, duration_s=0.7)
    assert view.run(wait=True)
    last, summary = view.result, view.summary.object
    view.param_widgets["directions"].value = 8
    seen = []

    def cancel_at_first(ds):
        SpecView.show_provisional(view, ds)
        seen.append(view.summary.object)
        view.runner.cancel()

    monkeypatch.setattr(view, "show_provisional", cancel_at_first)
    assert view.run(wait=True)
    assert len(seen) == 1 and "Provisional" in seen[0]
    assert "cancelled" in view.runner.message
    assert view.result is last and view.shown is last and view.summary.object == summary
    fresh = _spec_view(selected, duration_s=0.8)  # nothing measured before: the provisional plots go
    monkeypatch.setattr(fresh, "show_provisional", lambda ds: (SpecView.show_provisional(fresh, ds),
                                                               fresh.runner.cancel()))
    assert fresh.run(wait=True)
    assert fresh.result is None and fresh.shown is None and fresh.summary.object == "" and not len(fresh.unit_pane)
