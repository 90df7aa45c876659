"""Tuning / RF experiments against a tiny analytic twin whose preferences are known by construction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from twin_explorer.experiments import (allen_osi_dsi, bivonmises, contrast_response, direction_tuning,
                                       fit_bivonmises, fit_gaussian_2d, fit_naka_rushton, from_v3, gaussian2d,
                                       global_dsi, global_osi, naka_rushton, plot_direction_tuning,
                                       plot_receptive_field, plot_tuning_population, plot_value_tuning,
                                       readout_rf, receptive_fields, sf_tuning, size_tuning,
                                       spatial_selectivity_index, tf_tuning, to_v3)
from twin_explorer.monitor import DEFAULT_MONITOR


class GaborTwin:
    """Motion-energy neurons: complex Gabor filters in degrees. Response per frame =
    b + a·|z_t|² + g·max(0, −Im(conj(z_{t−1})·z_t)), with z_t the projection of the frame contrast on the
    filter. The last term makes a unit prefer gratings drifting toward ``pref_dir`` (v2 convention)."""

    def __init__(self, pref_dir, sf, az, el, sigma, ds_gain=1.0, energy_gain=0.3):
        self.pref_dir = np.asarray(pref_dir, float)
        self.sf = np.asarray(sf, float)
        self.az0, self.el0, self.sigma = (np.asarray(v, float) for v in (az, el, sigma))
        n = len(self.pref_dir)
        self.id = "gabor-test-twin"
        self.frame_rate = 30.0
        self.frame_shape = (144, 256)
        self.units = pd.DataFrame({"session": 1, "scan_idx": 1, "unit_id": np.arange(n) + 100},
                                  index=pd.Index(np.arange(n), name="readout_id"))
        az, el = DEFAULT_MONITOR.degree_grid
        th = np.radians(self.pref_dir)[:, None, None]
        env = np.exp(-0.5 * ((az - self.az0[:, None, None]) ** 2 + (el - self.el0[:, None, None]) ** 2)
                     / self.sigma[:, None, None] ** 2)
        carrier = np.exp(-2j * np.pi * self.sf[:, None, None] * (az * np.cos(th) + el * np.sin(th)))
        # integrate over visual angle, not pixels: weight each pixel by its solid angle (deg²)
        daz_c, daz_r = np.gradient(az, axis=1), np.gradient(az, axis=0)
        del_c, del_r = np.gradient(el, axis=1), np.gradient(el, axis=0)
        area = np.abs(daz_c * del_r - daz_r * del_c) * np.cos(np.radians(el))
        env = env * area
        filt = env * carrier
        # normalise so a full-contrast grating gives |z| ≈ 1
        self.filters = (filt / (0.5 * env.sum(axis=(1, 2)))[:, None, None]).reshape(n, -1).T
        self.ds_gain, self.energy_gain = ds_gain, energy_gain
        self.device = "cpu"

    @property
    def n_units(self):
        return len(self.pref_dir)

    def predict(self, stimuli, perspectives=None, modulations=None, units=None):
        x = np.asarray(stimuli)
        batched = x.ndim == 4
        x = x if batched else x[None]
        N, T = x.shape[:2]
        c = (x.reshape(N, T, -1).astype(np.float64) - 128.0) / 127.0
        z = c @ self.filters  # [N, T, U]
        prev = np.concatenate([z[:, :1], z[:, :-1]], axis=1)
        motion = np.clip(-np.imag(np.conj(prev) * z), 0, None)
        r = 0.2 + self.energy_gain * np.abs(z) ** 2 + self.ds_gain * motion * 3
        if units is not None:
            r = r[..., np.asarray(units)]
        r = r.astype(np.float32)
        return r if batched else r[0]


@pytest.fixture(scope="module")
def twin():
    return GaborTwin(pref_dir=[0, 45, 100, 200, 290], sf=[0.04, 0.04, 0.08, 0.04, 0.02],
                     az=[0, -20, 25, 10, -35], el=[0, 10, -12, 20, -5], sigma=[8, 8, 6, 8, 10])


def _angdiff(a, b, period=360.0):
    return np.abs((np.asarray(a) - np.asarray(b) + period / 2) % period - period / 2)


# --- pure functions ------------------------------------------------------------------------------------------

def test_indices_on_known_curves():
    d = np.arange(8) * 45.0
    flat = np.ones((1, 8))
    assert global_osi(flat, d)[0] == pytest.approx(0, abs=1e-12)
    assert global_dsi(flat, d)[0] == pytest.approx(0, abs=1e-12)
    one = np.zeros((1, 8)); one[0, 2] = 1  # responds only to 90°
    assert global_osi(one, d)[0] == pytest.approx(1)
    assert global_dsi(one, d)[0] == pytest.approx(1)
    curve = np.array([[4, 2, 1, 2, 2, 2, 1, 2]], float)  # pref 0, orth (90, 270) = 1, null 180 = 2
    osi, dsi, pref = allen_osi_dsi(curve, d)
    assert pref[0] == 0 and osi[0] == pytest.approx(3 / 5) and dsi[0] == pytest.approx(2 / 6)


def test_bivonmises_fit_recovers_parameters():
    d = np.arange(16) * 22.5
    y = bivonmises(np.radians(d), np.radians(250.0), 3.0, 0.8, 2.0, 0.5)
    f = fit_bivonmises(y, d)
    assert _angdiff(f["mu"], 250) < 1
    assert f["kappa"] == pytest.approx(3, rel=0.02) and f["phi"] == pytest.approx(0.8, abs=0.01)
    assert f["r2"] > 0.999
    # the weaker peak given as the start must be swapped to the stronger one
    y2 = bivonmises(np.radians(d), np.radians(70.0), 2.0, 0.3, 1.0, 0.1)
    assert _angdiff(fit_bivonmises(y2, d)["mu"], 250) < 1


def test_v3_conversion_round_trip_and_anchors():
    assert to_v3(90.0) == pytest.approx(0.0)  # upward motion is v3 zero
    assert to_v3(0.0) == pytest.approx(np.pi / 2)  # rightward motion is a quarter turn clockwise from up
    assert from_v3(np.pi) == pytest.approx(270.0)  # v3 downward = v2 270
    a = np.array([0, 10, 95, 180, 359.5])
    np.testing.assert_allclose(from_v3(to_v3(a)), a)
    assert to_v3(170.0, kind="orientation") == pytest.approx(np.radians(100.0))
    with pytest.raises(ValueError, match="direction"):
        to_v3(1.0, kind="spin")


def test_gaussian2d_fit_and_ssi():
    az, el = np.meshgrid(np.linspace(-60, 60, 49), np.linspace(-40, 40, 33))
    rf = gaussian2d(az, el, 12.3, -7.1, 9.0, 4.0, 30.0, 2.0, 0.5)
    g = fit_gaussian_2d(rf, az, el)
    assert g["az"] == pytest.approx(12.3, abs=0.05) and g["el"] == pytest.approx(-7.1, abs=0.05)
    assert g["sigma_major"] == pytest.approx(9, rel=0.01) and g["sigma_minor"] == pytest.approx(4, rel=0.01)
    assert _angdiff(g["angle"], 30, 180) < 0.5
    small = gaussian2d(az, el, 0, 0, 3, 3, 0, 1, 0)
    big = gaussian2d(az, el, 0, 0, 12, 12, 0, 1, 0)
    assert spatial_selectivity_index(small) > spatial_selectivity_index(big) + 2


def test_naka_rushton_fit():
    c = np.array([0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0])
    f = fit_naka_rushton(c, naka_rushton(c, 0.3, 2.0, 0.15, 2.5))
    assert f["c50"] == pytest.approx(0.15, rel=0.02) and f["n"] == pytest.approx(2.5, rel=0.05)


# --- experiments on the analytic twin ---------------------------------------------------------------------

def test_direction_tuning_recovers_preferences(twin):
    calls = []
    ds = direction_tuning(twin, directions=16, sf_cpd=0.04, tf_hz=2, duration_s=1.0, show_progress=False,
                          progress=lambda done, total: calls.append((done, total)), batch_size=5)
    assert isinstance(ds, xr.Dataset)
    assert ds["tuning"].dims == ("unit", "direction") and ds["response"].dims == ("unit", "direction", "time")
    assert calls[-1] == (16, 16) and len(calls) == 4
    err = _angdiff(ds["pref_dir"].values, twin.pref_dir)
    assert np.all(err < 8), err
    matched = twin.sf == 0.04  # units tested at their own SF are strongly direction selective
    assert np.all(ds["gdsi"].values[matched] > 0.3) and np.all(ds["dsi"].values[matched] > 0.5)
    np.testing.assert_allclose(ds["pref_ori"], ds["pref_dir"] % 180)
    # provenance
    assert ds.attrs["twin_id"] == "gabor-test-twin" and ds.attrs["experiment"] == "direction_tuning"
    assert json.loads(ds.attrs["params"])["sf_cpd"] == 0.04 and "twin_explorer_version" in ds.attrs
    assert list(ds["unit_id"].values) == [100, 101, 102, 103, 104]


def test_direction_tuning_at_per_unit_sf(twin):
    calls = []
    ds = direction_tuning(twin, directions=8, sf_cpd=twin.sf, tf_hz=2.0, duration_s=0.5, show_progress=False,
                          progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_allclose(ds["sf_cpd"], twin.sf)
    assert calls[-1] == (24, 24)  # 3 distinct SFs × 8 directions
    # at its own SF every unit is direction selective and its preference is recovered
    assert np.all(ds["gdsi"].values > 0.25) and np.all(_angdiff(ds["pref_dir"].values, twin.pref_dir) < 10)
    with pytest.raises(ValueError, match="one value per selected unit"):
        direction_tuning(twin, sf_cpd=[0.04, 0.08], show_progress=False)


def test_direction_tuning_unit_subset_and_netcdf_roundtrip(twin, tmp_path):
    ds = direction_tuning(twin, directions=8, duration_s=0.5, units=[3, 1], show_progress=False, keep_traces=False)
    assert list(ds["unit"].values) == [3, 1] and "response" not in ds
    assert _angdiff(float(ds["pref_dir"].sel(unit=3)), 200) < 12
    path = tmp_path / "t.nc"
    ds.to_netcdf(path)
    back = xr.load_dataset(path)
    np.testing.assert_allclose(back["tuning"], ds["tuning"])
    assert back.attrs["params"] == ds.attrs["params"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(directions=3), "directions"), (dict(sf_cpd=-1), "sf_cpd"), (dict(contrast=2), "contrast"),
    (dict(units=[99]), "unknown readout"), (dict(duration_s=0), "duration_s"), (dict(units=[True]), "mask"),
])
def test_direction_tuning_rejects_bad_input(twin, kwargs, match):
    with pytest.raises(ValueError, match=match):
        direction_tuning(twin, show_progress=False, **kwargs)


def test_receptive_fields_recover_centres(twin):
    ds = receptive_fields(twin, spacing_deg=6, dot_s=0.1, gap_s=0.0, latency_s=0.0, show_progress=False,
                          chunk_s=5, bin_px=8)
    assert ds["sta"].dims == ("unit", "polarity", "y", "x") and ds["az"].dims == ("y", "x")
    p = ds.sel(polarity="on_off")
    err = np.hypot(p["rf_az"].values - twin.az0, p["rf_el"].values - twin.el0)
    assert np.all(err < 1.5), err
    assert np.all(np.isnan(ds["rf_az"].sel(polarity="on").values))  # only on_off fitted by default
    assert np.isfinite(p["ssi"].values).all()
    import holoviews as hv

    assert isinstance(plot_receptive_field(ds, 2), hv.Layout)


def test_sf_tf_contrast_size(twin):
    sf = sf_tuning(twin, sf_cpd=[0.01, 0.02, 0.04, 0.08, 0.16], directions=8, duration_s=0.3, show_progress=False)
    ratio = sf["pref_sf"].values / twin.sf
    assert np.all((ratio > 1 / 1.5) & (ratio < 1.5)), ratio
    assert sf["tuning"].dims == ("unit", "sf")
    tf = tf_tuning(twin, tf_hz=[1, 2, 4, 8], directions=4, duration_s=0.3, units=[0], show_progress=False)
    # the motion term grows with phase step per frame: faster drift -> larger response in this twin
    assert tf["tuning"].values[0, -1] > tf["tuning"].values[0, 0]
    cr = contrast_response(twin, contrasts=[0.05, 0.1, 0.2, 0.5, 1.0], directions=4, duration_s=0.3, units=[0],
                           show_progress=False)
    assert np.all(np.diff(cr["tuning"].values[0]) > 0) and np.isfinite(cr["c50"].values).all()
    st = size_tuning(twin, center_deg=(0, 0), diameters_deg=[4, 10, 20, 40, 80], directions=[0, 90, 180, 270],
                     duration_s=0.3, units=[0], show_progress=False)
    # no surround in this twin: response saturates with size, so little suppression
    assert st["tuning"].values[0, 0] < st["tuning"].values[0, -1] and float(st["si"][0]) < 0.1
    with pytest.raises(ValueError, match="center_deg"):
        size_tuning(twin, center_deg=(1, 2, 3), show_progress=False)


def test_plots_build(twin):
    import holoviews as hv

    ds = direction_tuning(twin, directions=8, duration_s=0.5, show_progress=False)
    for obj in (plot_direction_tuning(ds, 0), plot_direction_tuning(ds, 1, polar=False), plot_tuning_population(ds)):
        assert isinstance(obj, (hv.core.Dimensioned,))
    with pytest.raises(ValueError, match="unit"):
        plot_direction_tuning(ds, 42)
    sf = sf_tuning(twin, sf_cpd=[0.02, 0.04, 0.08], directions=4, duration_s=0.5, units=[0], show_progress=False)
    assert isinstance(plot_value_tuning(sf, 0), hv.Overlay)


def test_readout_rf_geometry():
    # default pose, no eye rotation: the readout centre looks at the screen centre
    r = readout_rf(np.array([[0.0, 0.0]]))
    assert r["az"][0] == pytest.approx(0, abs=1e-9) and r["el"][0] == pytest.approx(0, abs=1e-9)
    assert r["col"][0] == pytest.approx(128) and r["row"][0] == pytest.approx(72)
    # px = 0.5: eccentricity 37.5° to the right -> monitor x = 0.5·tan(37.5°) (plane at distance 0.5)
    r = readout_rf(np.array([[0.5, 0.0], [0.0, -0.5]]))
    gx = 0.5 * np.tan(np.radians(37.5))
    col = (gx * 256 / 255 * 191 / 192 + 1) / 2 * 256
    az_expected = np.degrees(np.arctan((col / 256 - 0.5) * 56.5 / 15))
    assert r["col"][0] == pytest.approx(col) and r["az"][0] == pytest.approx(az_expected)
    assert r["el"][0] == pytest.approx(0, abs=1e-9)
    # negative readout y is the top of the retina image -> positive elevation
    assert r["el"][1] > 10 and abs(r["az"][1]) < 1e-9
    # rotating the eye about the vertical axis moves the centre horizontally: Ry(θ) sends (0,0,1) to (sinθ,0,cosθ)
    r = readout_rf(np.zeros((1, 2)), eye_angles=(0, np.radians(20), 0))
    assert r["col"][0] == pytest.approx((0.5 * np.tan(np.radians(20)) * 256 / 255 * 191 / 192 + 1) / 2 * 256)
    assert bool(r["on_monitor"][0])
    with pytest.raises(ValueError, match="positions"):
        readout_rf(np.zeros((3, 3)))


@pytest.mark.parametrize("degrees", [75.0, 50.0])
def test_readout_rf_matches_the_network_perspective_module(degrees):
    """Cross-check against the model's own Perspective: a readout at a retina pixel centre maps to where that
    pixel's ray hits the (rotated, shifted) monitor, for a non-trivial eye rotation and monitor pose, for the
    published retina (±75°) and a narrower one (the demo twin's ±50°)."""
    import torch

    from twin_explorer.experiments import readout_rf_from_network
    from twin_explorer.model.network import Network, NetworkConfig

    torch.manual_seed(0)
    net = Network(NetworkConfig(units=3, retina_degrees=degrees))
    with torch.no_grad():
        for p in net.perspective.mlp.parameters():
            p.copy_(0.3 * torch.randn_like(p))
        net.perspective.monitor.center.copy_(torch.tensor([0.05, -0.03, 0.55]))
        net.perspective.monitor.angle.copy_(torch.tensor([0.05, -0.1, 0.02]))
        Ho, Wo = 128, 192
        pix = [(64, 96), (20, 150), (100, 30)]
        P = torch.tensor([[(2 * j + 1) / Wo - 1, (2 * i + 1) / Ho - 1] for i, j in pix])
        net.readout.position.mu.copy_(torch.atanh(P))
        persp = torch.tensor([[0.4, -0.2]])
        g = net.perspective.monitor_grid(persp)[0]
    got = readout_rf_from_network(net, perspective=(0.4, -0.2))
    for k, (i, j) in enumerate(pix):
        gx, gy = g[i, j].tolist()
        col = (gx * 256 / 255 * (Wo - 1) / Wo + 1) / 2 * 256
        row = (gy * 256 / 144 * 256 / 255 * (Ho - 1) / Ho + 1) / 2 * 144
        assert got["col"][k] == pytest.approx(col, abs=1e-3) and got["row"][k] == pytest.approx(row, abs=1e-3)


def test_progress_flag_is_accepted():
    """progress=True asks for a bar (not a callback), progress=callable receives (done, total)."""
    from twin_explorer.experiments.runner import run_conditions

    class Flat:
        id, frame_rate, frame_shape, n_units = "flat", 30.0, (144, 256), 2

        def predict(self, stimuli, perspectives=None, modulations=None, units=None):
            return np.ones(stimuli.shape[:-2] + (2,), np.float32) * stimuli.mean(axis=(-1, -2))[..., None]

    videos = [np.full((4, 144, 256), v, np.uint8) for v in (10, 20, 30)]
    calls = []
    out = run_conditions(Flat(), videos, progress=True)
    assert out.shape == (3, 4, 2) and np.allclose(out[:, 0, 0], [10, 20, 30])
    run_conditions(Flat(), videos, progress=lambda done, total: calls.append((done, total)), batch_size=1)
    assert calls[-1] == (3, 3) and len(calls) == 3
    calls.clear()  # a smaller first batch, then full ones; the same responses
    again = run_conditions(Flat(), videos, progress=lambda done, total: calls.append((done, total)), batch_size=2,
                           first_batch=1)
    assert calls == [(1, 3), (3, 3)] and np.array_equal(again, out)
