"""Surround suppression, the experiment family added as one spec file: on the synthetic mouse (whose neurons divide
by the contrast energy of a pool wider than their receptive field) a grating annulus around a centre grating
lowers the response of neurons centred in the patch, and an annulus of zero contrast changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

import twin_explorer
from twin_explorer.experiments import get_experiment, surround_suppression
from twin_explorer.experiments.surround import centre_surround_frames
from twin_explorer.monitor import DEFAULT_MONITOR, GREY


@pytest.fixture(scope="module")
def mouse():
    return twin_explorer.load_twin("synthetic", n_neurons=120, seed=0)


@pytest.fixture(scope="module")
def centred(mouse):
    truth = mouse.truth() if callable(mouse.truth) else mouse.truth
    near = (np.hypot(truth.rf_az_deg, truth.rf_el_deg) < 10) & (truth.rf_sigma_deg < 9)
    ids = truth.index[near].to_numpy()
    assert len(ids) >= 8, "the seeded mouse should have several small RFs near the screen centre"
    return ids


def test_annulus_suppresses_centred_neurons(mouse, centred):
    ds = surround_suppression(mouse, center_diameter_deg=25, outer_diameters_deg=(60, 100), units=centred,
                              show_progress=False)
    assert ds["outer_diameter"].values.tolist() == [25, 60, 100]  # the centre alone is always the reference
    si = ds["surround_si"].values
    assert np.all(si > 0), si  # every centred neuron responds less with the surround than without
    assert np.median(si) > 0.15
    assert np.all(ds["tuning"].values[:, -1] < ds["center_response"].values)
    assert ds.attrs["experiment"] == "surround_suppression" and "center_diameter_deg" in ds.attrs["params"]


def test_zero_contrast_surround_changes_nothing(mouse, centred):
    ds = surround_suppression(mouse, center_diameter_deg=25, outer_diameters_deg=(60, 100), surround_contrast=0.0,
                              units=centred, show_progress=False)
    assert abs(float(np.median(ds["surround_si"].values))) < 0.05


def test_stimulus_is_centre_inside_and_annulus_outside():
    kw = dict(center_deg=np.array([0.0, 0.0]), center_diameter_deg=20.0, sf_cpd=0.04, tf_hz=2.0, duration_s=0.2,
              contrast=1.0, surround_contrast=1.0, surround_offset_deg=90.0, frame_rate=30.0, monitor=DEFAULT_MONITOR)
    alone = centre_surround_frames(0.0, 20.0, **kw)
    both = centre_surround_frames(0.0, 80.0, **kw)
    az, el = DEFAULT_MONITOR.degree_grid
    r = np.hypot(az, el)
    inside, ring, far = r < 8, (r > 12) & (r < 38), r > 45
    assert np.array_equal(alone[:, inside], both[:, inside])
    assert np.all(alone[:, ring] == GREY) and both[:, ring].std() > 30
    assert np.all(both[:, far] == GREY)


def test_registered_and_runnable_by_name(mouse, centred):
    spec = get_experiment("surround_suppression")
    params = spec.parse(["center_diameter_deg=25", "outer_diameters_deg=[60]", "directions=4"])
    calls = []
    ds = spec(mouse, units=centred[:3], progress=lambda done, total: calls.append((done, total)), **params)
    assert ds.sizes["unit"] == 3 and calls[-1] == (8, 8)
    assert "surround_si" in spec.summary(ds)


@pytest.mark.parametrize("kwargs, match", [
    (dict(outer_diameters_deg=(10, 60)), "outer_diameters_deg"),
    (dict(surround_contrast=1.5), "surround_contrast"),
    (dict(center_deg=(0.0,)), "center_deg"),
])
def test_rejects_bad_input(mouse, kwargs, match):
    with pytest.raises(ValueError, match=match):
        surround_suppression(mouse, show_progress=False, **kwargs)


def test_cli_runs_it_by_name(tmp_path):
    import xarray as xr
    from typer.testing import CliRunner

    from twin_explorer.cli import typer_app as app

    runner = CliRunner()
    listed = runner.invoke(app, ["run", "--list"])
    assert listed.exit_code == 0 and "surround_suppression" in listed.output and "direction_tuning" in listed.output
    out = tmp_path / "s.nc"
    res = runner.invoke(app, ["run", "surround_suppression", "--n-neurons", "10", "-p", "directions=4",
                              "-p", "outer_diameters_deg=[60]", "--out", str(out)])
    assert res.exit_code == 0, res.output
    ds = xr.load_dataset(out)
    assert ds.sizes["unit"] == 10 and ds.attrs["experiment"] == "surround_suppression"
    bad = runner.invoke(app, ["run", "surround_suppression", "-p", "radius=3"])
    assert bad.exit_code != 0 and "center_diameter_deg" in bad.output  # lists the accepted parameters
