"""Tests of the synthetic mouse: twin contract, determinism, truth table, and that its neurons behave as the
truth says (direction selectivity, RF position, eye shift, running gain) on stimuli drawn here with numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from twin_explorer.monitor import DEFAULT_MONITOR
from twin_explorer.synthetic import SyntheticMouse
from twin_explorer.synthetic.behaviour import behaviour_traces

AZ, EL = DEFAULT_MONITOR.degree_grid
N = 40


@pytest.fixture(scope="module")
def mouse() -> SyntheticMouse:
    return SyntheticMouse(seed=3, n_neurons=N)


def grating(direction_deg: float, sf_cpd: float, tf_hz: float, frames: int) -> np.ndarray:
    """Full-screen drifting sine grating, v2 convention (0° = rightward motion, counter-clockwise)."""
    th = np.radians(direction_deg)
    t = np.arange(frames)[:, None, None] / 30.0
    phase = 2 * np.pi * sf_cpd * (AZ * np.cos(th) + EL * np.sin(th))[None] - 2 * np.pi * tf_hz * t
    return np.round(128 + 127 * np.cos(phase)).astype(np.uint8)


def spot(az: float, el: float, radius: float, value: int, frames: int = 20, on: int = 10) -> np.ndarray:
    video = np.full((frames, *AZ.shape), 128, np.uint8)
    video[:on, (AZ - az) ** 2 + (EL - el) ** 2 < radius**2] = value
    return video


def spot_drive(mouse: SyntheticMouse, unit: int, az: float, el: float, radius: float,
               perspectives: np.ndarray | None = None) -> float:
    """Peak rate above baseline to a bright or dark spot, whichever drives more."""
    videos = np.stack([spot(az, el, radius, 255), spot(az, el, radius, 0)])
    p = None if perspectives is None else np.broadcast_to(perspectives, (2, videos.shape[1], 2))
    r = mouse.predict(videos, perspectives=p, units=[unit])[..., 0]
    return float(r.max() - mouse.truth().baseline_rate.iloc[unit])


# ---------------------------------------------------------------- contract
def test_contract_shapes_and_attributes(mouse: SyntheticMouse) -> None:
    video = np.random.default_rng(0).integers(0, 256, (12, 144, 256), dtype=np.uint8)
    out = mouse.predict(video)
    assert out.shape == (12, N) and out.dtype == np.float32 and np.all(out > 0)
    batch = mouse.predict(np.stack([video, video[::-1]]))
    assert batch.shape == (2, 12, N)
    np.testing.assert_allclose(batch[0], out, rtol=1e-5, atol=1e-6)
    sub = mouse.predict(video, units=[5, 1])
    np.testing.assert_allclose(sub, out[:, [5, 1]], rtol=1e-5, atol=1e-6)
    mask = np.zeros(N, bool)
    mask[[2, 7]] = True
    np.testing.assert_allclose(mouse.predict(video, units=mask), out[:, [2, 7]], rtol=1e-5, atol=1e-6)
    assert mouse.id == f"synthetic-seed3-n{N}" and mouse.frame_rate == 30.0 and mouse.frame_shape == (144, 256)
    assert mouse.device == torch.device("cpu") and mouse.n_units == N
    u = mouse.units
    assert u.index.name == "readout_id" and list(u.index) == list(range(N))
    for col in ("session", "scan_idx", "unit_id", "area", "layer", "x_um", "y_um", "depth_um", "neuron_id"):
        assert col in u.columns
    assert u.unit_id.is_unique and u.neuron_id.is_unique


def test_response_is_differentiable_and_matches_predict(mouse: SyntheticMouse) -> None:
    video = np.random.default_rng(1).integers(0, 256, (1, 10, 144, 256), dtype=np.uint8)
    x = torch.tensor(video, dtype=torch.float32, requires_grad=True)
    r = mouse.response(x, units=[0, 3])
    assert r.shape == (1, 10, 2)
    np.testing.assert_allclose(r.detach().numpy(), mouse.predict(video, units=[0, 3]), rtol=1e-4, atol=1e-6)
    r[0, -1].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # Gradients also flow through the eye-shift path.
    x.grad = None
    mouse.response(x, perspectives=np.ones((10, 2), np.float32), units=[0])[0, -1, 0].backward()
    assert x.grad.abs().sum() > 0


def test_chunked_prediction_equals_one_pass(mouse: SyntheticMouse) -> None:
    video = np.random.default_rng(2).integers(0, 256, (40, 144, 256), dtype=np.uint8)
    behaviour = np.random.default_rng(3).normal(size=(40, 2)).astype(np.float32)
    whole = mouse.predict(video, behaviour, behaviour, chunk_frames=40)
    chunked = mouse.predict(video, behaviour, behaviour, chunk_frames=7)
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "stimuli, match",
    [
        (np.zeros((5, 100, 100), np.uint8), "pixels"),
        (np.full((5, 144, 256), 0.5), "fractional"),
        (np.full((5, 144, 256), 300.0), "outside 0–255"),
        (np.zeros((144, 256), np.uint8), "dimensions"),
    ],
)
def test_bad_stimuli_raise(mouse: SyntheticMouse, stimuli: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mouse.predict(stimuli)


def test_bad_arguments_raise(mouse: SyntheticMouse) -> None:
    video = np.zeros((5, 144, 256), np.uint8)
    with pytest.raises(ValueError, match="perspectives"):
        mouse.predict(video, perspectives=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="modulations"):
        mouse.predict(video, modulations=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="readout ids outside"):
        mouse.predict(video, units=[N])
    with pytest.raises(ValueError, match="mask"):
        mouse.predict(video, units=np.ones(N + 1, bool))
    with pytest.raises(ValueError, match="video has shape"):
        mouse.response(torch.zeros(1, 5, 10, 10))
    with pytest.raises(ValueError, match="n_neurons"):
        SyntheticMouse(n_neurons=0)
    with pytest.raises(ValueError, match="seed"):
        SyntheticMouse(seed=-1)
    with pytest.raises(ValueError, match="resolution"):
        SyntheticMouse(resolution=3)


# ---------------------------------------------------------------- determinism
def test_same_seed_same_mouse_other_seed_other_mouse(mouse: SyntheticMouse) -> None:
    again = SyntheticMouse(seed=3, n_neurons=N)
    pd.testing.assert_frame_equal(again.params, mouse.params)
    video = np.random.default_rng(4).integers(0, 256, (8, 144, 256), dtype=np.uint8)
    np.testing.assert_array_equal(again.predict(video), mouse.predict(video))
    other = SyntheticMouse(seed=4, n_neurons=N)
    assert not np.allclose(other.params.rf_az_deg, mouse.params.rf_az_deg)
    assert set(other.units.neuron_id).isdisjoint(mouse.units.neuron_id)


# ---------------------------------------------------------------- truth table
def test_truth_table_ranges(mouse: SyntheticMouse) -> None:
    t = mouse.truth()
    assert t.index.equals(mouse.units.index)
    assert t.pref_dir_deg.between(0, 360, inclusive="left").all()
    np.testing.assert_allclose(t.pref_ori_deg, t.pref_dir_deg % 180)
    for col in ("osi", "dsi", "gosi", "gdsi", "dsi_allen"):
        assert t[col].between(0, 1).all(), col
    assert (t.gdsi >= 0.2).mean() >= 0.2 and (t.gosi >= 0.2).mean() >= 0.5
    assert t.sf_cpd.between(0.02, 0.3).all() and t.tf_hz.between(0.5, 10).all()
    left, right, bottom, top = DEFAULT_MONITOR.extent_deg
    assert t.rf_az_deg.between(left * 0.85, right * 0.85).all() and t.rf_el_deg.between(bottom * 0.85, top * 0.85).all()
    assert t.rf_sigma_deg.between(1, 40).all()
    assert set(t.area) <= {"V1", "LM", "AL", "RL"} and set(t.layer) <= {"L2/3", "L4", "L5"}
    depth = {"L2/3": (100, 350), "L4": (350, 500), "L5": (500, 750)}
    assert all(depth[la][0] <= d <= depth[la][1] for la, d in zip(t.layer, t.depth_um))
    assert (t.pref_rate > t.baseline_rate).all()
    curves = mouse.true_direction_tuning
    assert curves.shape == (N, 16) and float(curves.direction[4]) == 90.0


def test_retinotopy_is_mirrored_at_the_v1_border() -> None:
    big = SyntheticMouse(seed=0, n_neurons=400)
    p = big.params
    v1, hva = p[p.area == "V1"], p[p.area != "V1"]
    assert np.corrcoef(v1.x_um, v1.rf_az_deg)[0, 1] > 0.7
    assert np.corrcoef(hva.x_um, hva.rf_az_deg)[0, 1] < -0.6
    assert np.corrcoef(p.y_um, p.rf_el_deg)[0, 1] < -0.6
    assert set(p.area) == {"V1", "LM", "AL", "RL"}
    # Higher areas have larger RFs and lower preferred SF than V1.
    assert hva.sigma_deg.median() > v1.sigma_deg.median() and hva.sf_cpd.median() < v1.sf_cpd.median()


# ---------------------------------------------------------------- neurons behave as the truth says
def test_direction_selectivity_matches_truth(mouse: SyntheticMouse) -> None:
    t = mouse.truth()
    units = t.sort_values("dsi").index[[0, N // 2, -1]]  # least, middle and most direction selective
    for u in units:
        row = t.loc[u]
        frames = 18 + 90
        pref, null = (mouse.predict(grating(row.pref_dir_deg + d, row.sf_cpd, row.tf_hz, frames), units=[u])[18:, 0].mean()
                      for d in (0.0, 180.0))
        assert pref == pytest.approx(row.pref_rate, rel=0.02)
        assert 1 - null / pref == pytest.approx(row.dsi, abs=0.03)
    assert t.loc[units[-1], "dsi"] > t.loc[units[0], "dsi"] + 0.3


def test_global_indices_match_a_16_direction_experiment(mouse: SyntheticMouse) -> None:
    t = mouse.truth()
    u = int(t.gdsi.idxmax())
    row = t.loc[u]
    dirs = np.arange(16) * 22.5
    videos = np.stack([grating(d, row.sf_cpd, row.tf_hz, 60) for d in dirs])
    r = mouse.predict(videos, units=[u])[:, 18:, 0].mean(1)  # 2 s gratings, onset transient dropped
    th = np.radians(dirs)
    gdsi = abs((r * np.exp(1j * th)).sum()) / r.sum()
    gosi = abs((r * np.exp(2j * th)).sum()) / r.sum()
    assert gdsi == pytest.approx(row.gdsi, abs=0.03) and gosi == pytest.approx(row.gosi, abs=0.03)
    assert abs((np.degrees(np.angle((r * np.exp(1j * th)).sum())) - row.pref_dir_deg + 180) % 360 - 180) < 12


def test_spot_at_rf_centre_drives_more_than_far_away(mouse: SyntheticMouse) -> None:
    t = mouse.truth()
    for u in t.index[:6]:
        row = t.loc[u]
        radius = 0.6 * row.rf_sigma_across_deg
        centre = spot_drive(mouse, u, row.rf_az_deg, row.rf_el_deg, radius)
        far_az = row.rf_az_deg - np.sign(row.rf_az_deg + 1e-9) * 40  # towards the other side of the screen
        far = spot_drive(mouse, u, far_az, row.rf_el_deg, radius)
        assert centre > 0.05 and centre > 3 * max(far, 0.0), (u, centre, far)


def test_eye_position_shifts_the_effective_rf(mouse: SyntheticMouse) -> None:
    t = mouse.truth()
    u = int(t.rf_sigma_across_deg.idxmin())
    row = t.loc[u]
    shift = 4.0  # standardised units -> 12° to the right on the monitor
    d = shift * mouse.eye_shift_deg
    radius = 0.6 * row.rf_sigma_across_deg
    gaze = np.array([shift, 0.0], np.float32)
    moved_spot_moved_eye = spot_drive(mouse, u, row.rf_az_deg + d, row.rf_el_deg, radius, gaze)
    moved_spot_still_eye = spot_drive(mouse, u, row.rf_az_deg + d, row.rf_el_deg, radius)
    centre_spot_moved_eye = spot_drive(mouse, u, row.rf_az_deg, row.rf_el_deg, radius, gaze)
    centre_spot_still_eye = spot_drive(mouse, u, row.rf_az_deg, row.rf_el_deg, radius)
    assert moved_spot_moved_eye == pytest.approx(centre_spot_still_eye, rel=0.15)
    assert moved_spot_moved_eye > 2 * max(moved_spot_still_eye, 0.0)
    assert centre_spot_still_eye > 2 * max(centre_spot_moved_eye, 0.0)


def test_running_and_pupil_raise_gain(mouse: SyntheticMouse) -> None:
    video = np.random.default_rng(5).integers(0, 256, (10, 144, 256), dtype=np.uint8)
    still = mouse.predict(video)
    running = mouse.predict(video, modulations=np.tile([0.0, 1.0], (10, 1)))
    np.testing.assert_allclose(running / still, np.broadcast_to(np.exp(mouse.truth().gain_running), still.shape), rtol=1e-4)
    up = mouse.truth().gain_running > 0
    assert up.mean() > 0.9 and np.all(running[:, up] > still[:, up])
    dilated = mouse.predict(video, modulations=np.tile([1.0, 0.0], (10, 1)))
    assert np.mean(dilated > still) > 0.8


# ---------------------------------------------------------------- recordings
def _placeholder_video(n_frames: int, seed: int, monitor=DEFAULT_MONITOR) -> np.ndarray:
    """Cheap natural-ish video: smooth noise drifting across the screen."""
    rng = np.random.default_rng(seed)
    field = rng.normal(size=(36, 64 + n_frames))
    from scipy.ndimage import gaussian_filter, zoom

    field = gaussian_filter(field, 2)
    field = 128 + 100 * field / field.std()
    frames = np.stack([field[:, t:t + 64] for t in range(n_frames)])
    return np.clip(zoom(frames, (1, 4, 4), order=1), 0, 255).astype(np.uint8)


def test_record_poisson_statistics_and_repeats(mouse: SyntheticMouse) -> None:
    ds = mouse.record(n_clips=2, duration_s=2.0, repeats=20, n_oracle=2, seed=7, noise="poisson",
                      video_fn=_placeholder_video, progress=False)
    assert ds.stimulus.dtype == np.uint8 and ds.stimulus.shape == (4, 60, 144, 256)
    assert ds.response.shape == (2 + 2 * 20, 60, N) and ds.rate.shape == (4, 60, N)
    assert list(ds.clip_tier.values) == ["train", "train", "oracle", "oracle"]
    oracle = ds.trial_tier.values == "oracle"
    assert np.bincount(ds.trial_clip.values[oracle]).tolist() == [0, 0, 20, 20]
    # Repeats share stimulus and behaviour (stored once per clip) but have independent noise.
    r = ds.response.values[oracle].reshape(2, 20, 60, N)
    assert not np.array_equal(r[0, 0], r[0, 1])
    rate = ds.rate.values[2:, None]
    assert np.all(ds.response.values == np.round(ds.response.values))
    resid = r - rate
    assert resid.mean() == pytest.approx(0, abs=0.02 * float(rate.mean()))  # pytest 9 refuses a float32 tolerance
    assert (resid**2).sum() / np.broadcast_to(rate, r.shape).sum() == pytest.approx(1.0, abs=0.05)  # var ≈ mean
    # Same seed: same stimuli and behaviour (and for another mouse, the same stimuli).
    again = SyntheticMouse(seed=4, n_neurons=5).record(n_clips=2, duration_s=2.0, repeats=2, n_oracle=2, seed=7,
                                                       video_fn=_placeholder_video, progress=False)
    np.testing.assert_array_equal(again.stimulus.values, ds.stimulus.values)
    assert ds.attrs["twin_id"] == mouse.id and ds.attrs["noise"] == "poisson"


def test_record_calcium_expectation_and_iterator(mouse: SyntheticMouse) -> None:
    clips = list(mouse.iter_record(n_clips=1, duration_s=2.0, repeats=30, n_oracle=1, seed=1, noise="calcium",
                                   units=[0, 1, 2], video_fn=_placeholder_video, progress=False))
    assert [c.tier for c in clips] == ["train", "oracle"]
    oracle = clips[1]
    assert oracle.responses.shape == (30, 60, 3) and oracle.rate.shape == (60, 3)
    err = oracle.responses.mean(0) - oracle.rate
    assert np.abs(err.mean()) < 0.05 and not np.all(oracle.responses == np.round(oracle.responses))


def test_record_rejects_bad_arguments(mouse: SyntheticMouse) -> None:
    with pytest.raises(ValueError, match="noise"):
        mouse.record(noise="gaussian", video_fn=_placeholder_video)
    with pytest.raises(ValueError, match="repeats"):
        mouse.record(repeats=0, video_fn=_placeholder_video)
    with pytest.raises(ValueError, match="nothing to record"):
        mouse.record(n_clips=0, n_oracle=0, video_fn=_placeholder_video)
    with pytest.raises(ValueError, match="duration_s"):
        mouse.record(duration_s=0, video_fn=_placeholder_video)


def test_behaviour_traces_are_standardised_with_saccades_and_bouts() -> None:
    persp, mods = behaviour_traces(20 * 60 * 30, np.random.default_rng(0))
    assert persp.shape == (36000, 2) and mods.dtype == np.float32
    for trace in (*persp.T, *mods.T):
        assert abs(trace.mean()) < 0.5 and 0.5 < trace.std() < 1.5
    running = mods[:, 1]
    assert 0.2 < np.mean(running > 0) < 0.6  # bouts of running, not constant
    jumps = np.abs(np.diff(persp, axis=0)).max(1)
    assert np.sum(jumps > 0.3) > 100  # saccades
    assert np.corrcoef(mods[:, 0], running)[0, 1] > 0.2  # pupil dilates with running


def test_truth_is_cached_on_disk_for_large_mice(mouse: SyntheticMouse, tmp_path, monkeypatch) -> None:
    from twin_explorer.synthetic import truth as truth_module

    monkeypatch.setenv("TWIN_EXPLORER_CACHE", str(tmp_path))
    monkeypatch.setattr(truth_module, "CACHE_MIN_UNITS", 1)
    fresh = SyntheticMouse(seed=3, n_neurons=N)
    first = fresh.truth()
    assert len(list((tmp_path / "synthetic").glob("truth-*.nc"))) == 1
    reloaded = SyntheticMouse(seed=3, n_neurons=N)
    pd.testing.assert_frame_equal(reloaded.truth(), first, check_dtype=False)
    pd.testing.assert_frame_equal(first, mouse.truth(), check_dtype=False)
    np.testing.assert_allclose(reloaded.true_direction_tuning.values, mouse.true_direction_tuning.values)
