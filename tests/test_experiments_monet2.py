"""Monet2 (directional pink noise) direction tuning on the synthetic mouse: the preferred directions of strongly
direction-selective neurons come out at their true values, the indices track the truth, and the experiment runs by
name (Python API, CLI, batch) with bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

import twin_explorer
from twin_explorer.experiments import get_experiment, monet2_direction_tuning, run_batch
from twin_explorer.experiments.monet2_tuning import monet2_trials
from twin_explorer.experiments.tuning import global_osi
from twin_explorer.experiments.validate import angular_error
from twin_explorer.monitor import DEFAULT_MONITOR


@pytest.fixture(scope="module")
def mouse():
    return twin_explorer.load_twin("synthetic", n_neurons=60, seed=0)


@pytest.fixture(scope="module")
def result(mouse):
    return monet2_direction_tuning(mouse, directions=16, trials=2, slot_s=1.5, show_progress=False)


def test_preferred_direction_of_direction_selective_neurons_matches_truth(mouse, result):
    truth = mouse.truth().loc[result["unit"].values]
    strong = truth["gdsi"].to_numpy() >= 0.3
    assert strong.sum() >= 10, "the seeded mouse has many strongly direction-selective neurons"
    err = angular_error(result["pref_dir"].values[strong], truth["pref_dir_deg"].to_numpy()[strong])
    assert np.median(err) < 8.0, np.sort(err)
    assert np.mean(err < 30) >= 0.9  # no neuron family flipped by 180°
    # the indices follow the truth across the population (same gOSI/gDSI definitions as the gratings)
    assert np.corrcoef(result["gdsi"].values, truth["gdsi"])[0, 1] > 0.7
    assert np.allclose(result["gosi"].values, global_osi(result["tuning"].values, result["direction"].values))


def test_trials_differ_in_order_and_agree_in_tuning(result):
    movies = monet2_trials(16, 2, 1.5, 0, DEFAULT_MONITOR)
    assert not np.array_equal(movies[0].directions(), movies[1].directions())  # another noise, another order
    a, b = result["trial_tuning"].values[:, 0], result["trial_tuning"].values[:, 1]
    agree = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b) if np.ptp(x) > 0 and np.ptp(y) > 0]
    assert np.median(agree) > 0.8
    assert result["tuning"].dims == ("unit", "direction") and result.sizes["direction"] == 16
    assert np.all(result["tuning"].max("direction") > result["baseline"])  # motion drives every neuron above grey
    assert result.attrs["experiment"] == "monet2_direction_tuning" and '"family": "Monet2"' in result.attrs["stimulus"]


def test_monet2_and_gratings_agree_on_preferred_direction(mouse, result):
    from twin_explorer.experiments import direction_tuning

    truth = mouse.truth().loc[result["unit"].values]
    strong = truth["gdsi"].to_numpy() >= 0.3
    ids = result["unit"].values[strong]
    gr = direction_tuning(mouse, directions=16, sf_cpd=truth.loc[ids, "sf_cpd"].to_numpy(),
                          tf_hz=truth.loc[ids, "tf_hz"].to_numpy(), duration_s=1.0, units=ids, keep_traces=False,
                          show_progress=False)
    err = angular_error(gr["pref_dir"].values, result["pref_dir"].values[strong])
    assert np.median(err) < 10.0


def test_runs_by_name_and_in_batches(mouse, tmp_path):
    spec = get_experiment("monet2_direction_tuning")
    assert spec.defaults()["directions"] == 16 and "trials" in spec.defaults()
    params = spec.parse(["directions=8", "trials=1", "slot_s=1"])
    calls = []
    ds = spec(mouse, units=[0, 1, 2], progress=lambda done, total: calls.append((done, total)), **params)
    assert ds.sizes["unit"] == 3 and ds.sizes["direction"] == 8 and calls[-1] == (1, 1)
    assert "gosi" in spec.summary(ds)
    batched = run_batch("monet2_direction_tuning", mouse, units=[0, 1, 2, 3], chunk_size=2, cache_dir=tmp_path,
                        progress=False, **params)
    assert batched.sizes["unit"] == 4
    np.testing.assert_allclose(batched["tuning"].sel(unit=[0, 1, 2]).values, ds["tuning"].values, rtol=1e-5)


def test_cli_runs_it(tmp_path):
    import xarray as xr
    from typer.testing import CliRunner

    from twin_explorer.cli import typer_app as app

    out = tmp_path / "m.nc"
    res = CliRunner().invoke(app, ["run", "monet2_direction_tuning", "--n-neurons", "6", "-p", "directions=8",
                                   "-p", "trials=1", "-p", "slot_s=1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert xr.load_dataset(out).sizes["unit"] == 6


@pytest.mark.parametrize("kwargs, match", [
    (dict(directions=4), "directions"), (dict(trials=0), "trials"), (dict(ori_fraction=0.0), "ori_fraction"),
    (dict(slot_s=-1), "slot_s"), (dict(speed=50.0), "speed"),
])
def test_rejects_bad_input(mouse, kwargs, match):
    with pytest.raises(ValueError, match=match):
        monet2_direction_tuning(mouse, show_progress=False, **kwargs)


def test_tuning_view_offers_monet2_next_to_gratings():
    from bokeh.document import Document

    from twin_explorer.ui.state import ExplorerState, get_twin
    from twin_explorer.ui.tuning import GRATINGS, MONET2, TuningView

    state = ExplorerState(get_twin("synthetic"))
    state.selection = [int(u) for u in state.twin.units.index[:2]]
    state.unit = state.selection[0]
    tv = TuningView(state=state, scope="selected neurons", directions=8, duration_s=1.0, stimulus=MONET2)
    tv.__panel__().get_root(Document())
    assert tv.controls._widgets["sf_cpd"].disabled and tv.controls._widgets["contrast"].disabled
    assert tv.run(wait=True)
    assert tv.result.attrs["experiment"] == "monet2_direction_tuning" and tv.result.sizes["unit"] == 2
    assert "directional pink noise (Monet2)" in tv.indices.object and tv.unit_pane.visible
    tv.stimulus = GRATINGS
    assert not tv.controls._widgets["sf_cpd"].disabled
