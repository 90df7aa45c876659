"""Tests of the stimulus library: shapes, determinism, geometry in degrees, motion direction, epochs, files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from twin_explorer import stimuli as S
from twin_explorer.monitor import DEFAULT_MONITOR, FRAME_SHAPE, Monitor

MON = DEFAULT_MONITOR


def line_profile(frame: np.ndarray, direction_deg: float, s: np.ndarray) -> np.ndarray:
    """Grey levels along the line (az, el) = s·(cosθ, sinθ) through the screen centre, sampled in degrees."""
    th = np.radians(direction_deg)
    col, row = MON.degrees_to_pixels(s * np.cos(th), s * np.sin(th))
    return map_coordinates(frame.astype(float), [row - 0.5, col - 0.5], order=1)


def best_shift_1d(a: np.ndarray, b: np.ndarray, step: float, max_shift: float) -> float:
    """Displacement d (in units of step) maximising the match b(s) ≈ a(s − d)."""
    n = int(max_shift / step)
    shifts = np.arange(-n, n + 1)
    scores = []
    for k in shifts:
        x, y = (a[: len(a) - k], b[k:]) if k >= 0 else (a[-k:], b[: len(b) + k])
        scores.append(np.corrcoef(x, y)[0, 1])
    return float(shifts[int(np.argmax(scores))] * step)


def best_shift_2d(a: np.ndarray, b: np.ndarray, max_shift: int) -> tuple[int, int]:
    """(dy, dx) in pixels maximising the match b[y + dy, x + dx] ≈ a[y, x], on a central crop."""
    m = max_shift
    a = a.astype(float)[m:-m, m:-m]
    best, arg = -np.inf, (0, 0)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            bb = b.astype(float)[m + dy : b.shape[0] - m + dy, m + dx : b.shape[1] - m + dx]
            c = np.corrcoef(a.ravel(), bb.ravel())[0, 1]
            if c > best:
                best, arg = c, (dy, dx)
    return arg


SMALL = [
    (S.DriftingGrating, dict(duration_s=0.3)),
    (S.DriftingGrating, dict(duration_s=0.3, tf_hz=0, waveform="square", aperture=(10, 5, 30))),
    (S.Plaid, dict(duration_s=0.3)),
    (S.DirectionSeries, dict(directions=4, duration_s=0.2, gap_s=0.1)),
    (S.GaussianDots, dict(az_range=(-20, 20), el_range=(-10, 10), dot_s=0.1, isi_s=0.1)),
    (S.SparseNoise, dict(duration_s=1.0)),
    (S.RandomDotKinematogram, dict(duration_s=0.3, coherence=0.5, dot_polarity="mixed")),
    (S.Monet2, dict(duration_s=2.0, n_dirs=4)),
    (S.Trippy, dict(duration_s=0.5)),
    (S.NaturalClip, dict(duration_s=0.5)),
    (S.Flash, dict(duration_s=0.2)),
    (S.Grey, dict(duration_s=0.2)),
]
RANDOM_FAMILIES = {"GaussianDots", "SparseNoise", "RandomDotKinematogram", "Monet2", "Trippy", "NaturalClip"}


@pytest.mark.parametrize("cls,kw", SMALL, ids=lambda x: x.__name__ if isinstance(x, type) else "")
def test_family_shape_dtype_determinism_epochs(cls, kw):
    stim = cls(seed=3, **kw)
    frames = stim.render()
    assert frames.dtype == np.uint8 and frames.shape == (stim.n_frames, *FRAME_SHAPE)
    assert stim.duration == pytest.approx(stim.n_frames / 30)
    np.testing.assert_array_equal(frames, cls(seed=3, **kw).render())
    if cls.__name__ in RANDOM_FAMILIES:
        assert not np.array_equal(frames, cls(seed=4, **kw).render())
    ep = stim.epochs
    assert list(ep.columns[:4]) == ["onset", "offset", "onset_frame", "offset_frame"]
    assert len(ep) >= 1
    assert (ep.offset_frame > ep.onset_frame).all() and (ep.onset_frame >= 0).all()
    assert (ep.offset_frame <= stim.n_frames).all()
    np.testing.assert_allclose(ep.onset, ep.onset_frame / 30)
    json.dumps(stim.params_dict())  # provenance is plain JSON
    again = S.stimulus_from_params(stim.params_dict())
    np.testing.assert_array_equal(again.render(), frames)


@pytest.mark.parametrize("direction", [0, 45, 90, 135, 180, 270])
def test_grating_moves_toward_direction(direction):
    sf, tf, lag = 0.04, 2.0, 3
    frames = S.DriftingGrating(direction_deg=direction, sf_cpd=sf, tf_hz=tf, duration_s=0.2).render()
    s = np.arange(-35, 35, 0.25)
    a, b = line_profile(frames[0], direction, s), line_profile(frames[lag], direction, s)
    expected = tf * lag / 30 / sf  # degrees along the direction
    assert best_shift_1d(a, b, 0.25, 10) == pytest.approx(expected, abs=0.5)
    # along the orthogonal line the pattern is uniform at every instant
    assert np.ptp(line_profile(frames[0], direction + 90, np.arange(-20, 20, 0.5))) <= 2


@pytest.mark.parametrize("direction,sf", [(0, 0.04), (90, 0.08), (30, 0.05)])
def test_grating_sf_in_cycles_per_degree(direction, sf):
    frame = S.DriftingGrating(direction_deg=direction, sf_cpd=sf, tf_hz=0, duration_s=1 / 30).render()[0]
    s = np.arange(-40, 40, 0.2)
    x = line_profile(frame, direction, s) - 128
    freqs = np.linspace(0.01, 0.2, 381)
    power = np.abs(np.exp(-2j * np.pi * freqs[:, None] * s[None]) @ x)
    assert freqs[np.argmax(power)] == pytest.approx(sf, abs=0.001)


def test_grating_contrast_mean_and_aperture():
    g = S.DriftingGrating(contrast=0.5, duration_s=0.5).render().astype(int)
    assert 190 <= g.max() <= 192 and 64 <= g.min() <= 66  # 128 ± 127·0.5
    assert abs(g.mean() - 128) < 1
    ap = S.DriftingGrating(aperture=(20, 10, 30), aperture_edge_deg=4, duration_s=0.5).render()
    col, row = MON.degrees_to_pixels(20, 10)
    centre = ap[:, int(row), int(col)].astype(int)
    assert centre.max() > 240 and centre.min() < 20
    assert (ap[:, 5, 5] == 128).all() and (ap[:, -5, -5] == 128).all()
    mask = S.aperture_mask(MON, 0, 0, 40, 4)
    az, el = MON.degree_grid
    d = S.angular_distance_deg(az, el, 0, 0)
    assert np.allclose(mask[d < 17.9], 1) and np.allclose(mask[d > 22.1], 0)
    near = np.abs(d - 20) < 0.1
    assert near.sum() > 10 and np.all(np.abs(mask[near] - 0.5) < 0.05)


def test_plaid_is_mean_of_components():
    p = S.Plaid(direction_deg=30, angle_deg=90, contrast=1, duration_s=0.2).render().astype(float)
    a = S.DriftingGrating(direction_deg=-15, duration_s=0.2).render().astype(float)
    b = S.DriftingGrating(direction_deg=75, duration_s=0.2).render().astype(float)
    assert np.abs(p - ((a + b) / 2)).max() <= 1.5
    ep = S.Plaid(direction_deg=30, angle_deg=90).epochs.iloc[0]
    assert (ep.direction, ep.direction_1, ep.direction_2) == (30, 345, 75)


def test_direction_series_epochs_align_with_frames():
    ds = S.DirectionSeries(directions=8, repeats=2, duration_s=0.2, gap_s=0.1, seed=1)
    frames, ep = ds.render(), ds.epochs
    assert len(ep) == 16
    assert sorted(ep.direction.unique()) == [k * 45.0 for k in range(8)]
    assert (ep.groupby("direction").size() == 2).all()
    assert list(ep.repeat.unique()) == [0, 1]
    assert ep.direction.tolist() != sorted(ep.direction.tolist())  # shuffled
    inside = np.zeros(len(frames), bool)
    for row in ep.itertuples():
        inside[row.onset_frame : row.offset_frame] = True
        alone = S.DriftingGrating(direction_deg=row.direction, duration_s=0.2).render()
        np.testing.assert_array_equal(frames[row.onset_frame : row.offset_frame], alone)
    assert (frames[~inside] == 128).all()
    assert ep.onset_frame.iloc[0] == 3  # a 0.1 s grey gap precedes each grating
    fixed = S.DirectionSeries(directions=[90, 0, 180], order="fixed").epochs
    assert fixed.direction.tolist() == [90, 0, 180]


def test_sequence_concatenates_with_gaps():
    a, b = S.Flash(duration_s=0.2), S.DriftingGrating(direction_deg=90, duration_s=0.3)
    seq = S.Sequence([a, b], gap_s=0.5, pre_s=0.1, post_s=0.2)
    frames, ep = seq.render(), seq.epochs
    assert seq.n_frames == 3 + 6 + 15 + 9 + 6
    np.testing.assert_array_equal(frames[3:9], a.render())
    np.testing.assert_array_equal(frames[24:33], b.render())
    assert (frames[9:24] == 128).all() and (frames[33:] == 128).all() and (frames[:3] == 128).all()
    assert ep.onset_frame.tolist() == [3, 24] and ep.offset_frame.tolist() == [9, 33]
    assert ep.stimulus.tolist() == ["Flash", "DriftingGrating"] and ep.item.tolist() == [0, 1]
    assert ep.onset.tolist() == pytest.approx([0.1, 0.8])
    nested = S.Sequence([seq, S.Grey(duration_s=0.1)], gap_s=0)
    assert nested.epochs.onset_frame.tolist() == [3, 24, 39]
    with pytest.raises(ValueError, match="monitor"):
        S.Sequence([a, S.Grey(monitor=Monitor(distance_cm=10))])
    with pytest.raises(ValueError, match="at least one"):
        S.Sequence([])


def test_gaussian_dots_epochs_and_masks():
    dots = S.GaussianDots(az_range=(-20, 20), el_range=(-10, 10), spacing_deg=10, size_deg=6, dot_s=0.1, isi_s=0.1)
    ep, masks, frames = dots.epochs, dots.masks(), dots.render()
    assert len(ep) == 5 * 3 * 2 and set(ep.polarity) == {1, -1}
    assert masks.shape == (len(ep), *FRAME_SHAPE) and masks.dtype == np.float32
    az, el = MON.degree_grid
    for i in (0, 7, 21):
        row = ep.iloc[i]
        peak = np.unravel_index(np.argmax(masks[i]), masks[i].shape)
        assert abs(az[peak] - row.x) < 1.0 and abs(el[peak] - row.y) < 1.0
        shown = frames[row.onset_frame].astype(float) - 128
        np.testing.assert_allclose(shown, row.polarity * 127 * masks[i], atol=0.51)
        assert (frames[row.offset_frame] == 128).all()  # grey inter-stimulus interval
    # FWHM in degrees: the mask is 0.5 at half the size from the centre
    d = S.angular_distance_deg(az, el, ep.iloc[0].x, ep.iloc[0].y)
    assert np.all(np.abs(masks[0][np.abs(d - 3) < 0.2] - 0.5) < 0.05)
    assert dots.masks(downsample=4).shape == (len(ep), 36, 64)


def test_sparse_noise_is_sparse_and_matches_masks():
    sn = S.SparseNoise(duration_s=2.0, per_frame=4, min_distance_deg=30, seed=2)
    ep, masks, frames = sn.epochs, sn.masks(), sn.render()
    for _, grp in ep.groupby("noise_frame"):
        assert 1 <= len(grp) <= 4
        pts = grp[["x", "y"]].to_numpy()
        for i in range(len(pts)):
            for j in range(i + 1, len(pts)):
                assert S.angular_distance_deg(pts[i, 0], pts[i, 1], pts[j, 0], pts[j, 1]) >= 30
        k = grp.index.to_numpy()
        expected = 128 + 127 * np.tensordot(grp.polarity.to_numpy(), masks[k], axes=1)
        np.testing.assert_allclose(frames[grp.onset_frame.iloc[0]], np.clip(expected, 0, 255), atol=0.51)


@pytest.mark.parametrize("direction,sign", [(0, (0, 1)), (90, (-1, 0)), (180, (0, -1))])
def test_rdk_translation_direction(direction, sign):
    rdk = S.RandomDotKinematogram(direction_deg=direction, speed_dps=30, coherence=1, density=0.02, duration_s=0.3)
    frames = rdk.render()
    dy, dx = best_shift_2d(frames[0][40:104, 80:176], frames[4][40:104, 80:176], 8)
    assert np.sign(dy) == sign[0] and np.sign(dx) == sign[1]
    assert 3 <= max(abs(dy), abs(dx)) <= 6  # 30°/s · 4/30 s = 4° ≈ 4.8 px at the centre


def test_rdk_radial_and_rotation_flow():
    for motion, reverse, check in [("radial", False, 1), ("radial", True, -1), ("rotation", False, 0)]:
        rdk = S.RandomDotKinematogram(motion=motion, reverse=reverse, coherence=1, duration_s=0.2)
        traj, _ = rdk.trajectories()
        step = traj[1] - traj[0]
        ok = np.hypot(*step.T) < 1.0  # drop respawned dots
        r0 = np.hypot(*traj[0][ok].T)
        dr = np.hypot(*traj[1][ok].T) - r0
        if check:
            assert np.mean(np.sign(dr) == check) > 0.95
        else:
            cross = traj[0][ok, 0] * step[ok, 1] - traj[0][ok, 1] * step[ok, 0]
            assert np.mean(cross > 0) > 0.95  # counter-clockwise
    noisy = S.RandomDotKinematogram(coherence=0.0, duration_s=0.2).trajectories()[0]
    st = noisy[1] - noisy[0]
    ok = np.hypot(*st.T) < 1.0
    assert abs(np.mean(st[ok, 0])) < 0.15  # no net rightward drift at zero coherence


def test_monet2_epochs_and_motion_direction():
    m = S.Monet2(duration_s=8.0, n_dirs=4, seed=5)
    ep = m.epochs
    assert sorted(ep.direction) == [0, 90, 180, 270]
    slot = 8.0 / 4
    np.testing.assert_allclose(ep.onset, [((i + 0.5) - 0.2) * slot for i in range(4)], atol=1 / 30)
    np.testing.assert_allclose(ep.offset - ep.onset, 0.4 * slot, atol=1 / 30)
    frames = m.render()
    assert abs(frames.mean() - 127.5) < 3 and 40 < frames.std() < 60
    for row in ep.itertuples():
        k = row.onset_frame + 5
        dy, dx = best_shift_2d(frames[k], frames[k + 3], 10)
        angle = np.degrees(np.arctan2(-dy, dx)) % 360
        assert min(abs(angle - row.direction), 360 - abs(angle - row.direction)) < 25
        assert 4 <= np.hypot(dy, dx) <= 9  # 0.25 widths/s ≈ 2.1 px/frame


def test_trippy_and_natural_statistics():
    tr = S.Trippy(duration_s=1.0, sf_cpd=0.1)
    frames = tr.render().astype(float)
    assert abs(frames.mean() - 128) < 15 and frames.min() <= 5 and frames.max() >= 250
    assert np.abs(np.diff(frames, axis=0)).mean() > 5  # it drifts
    video = S.make_natural_video(90, seed=1)
    assert video.shape == (90, *FRAME_SHAPE) and video.dtype == np.uint8
    np.testing.assert_array_equal(video, S.make_natural_video(90, seed=1))
    assert not np.array_equal(video, S.make_natural_video(90, seed=2))
    assert np.abs(np.diff(video.astype(float), axis=0)).mean() > 0.5
    # natural images: amplitude spectrum falls roughly as 1/f
    f = video[0].astype(float) - video[0].mean()
    amp = np.abs(np.fft.fftshift(np.fft.fft2(f * np.outer(np.hanning(144), np.hanning(256)))))
    yy, xx = np.indices(amp.shape)
    r = np.hypot((yy - 72) / 144, (xx - 128) / 256)
    bins = np.geomspace(0.02, 0.4, 12)
    prof = [amp[(r >= lo) & (r < hi)].mean() for lo, hi in zip(bins[:-1], bins[1:])]
    slope = np.polyfit(np.log(np.sqrt(bins[:-1] * bins[1:])), np.log(prof), 1)[0]
    assert -2.2 < slope < -0.6
    with pytest.raises(ValueError, match="n_frames"):
        S.make_natural_video(0, seed=1)


def test_video_round_trips(tmp_path, rng):
    frames = rng.integers(0, 256, (12, *FRAME_SHAPE), dtype=np.uint8)
    frames[:, :72] = np.linspace(0, 255, 256, dtype=np.uint8)  # smooth content for the lossy codec
    npy = S.save_npy(frames, tmp_path / "clip.npy")
    np.testing.assert_array_equal(S.VideoFile(npy).render(), frames)
    slow = S.VideoFile(npy, fps=15).render()  # 15 Hz source shown at 30 Hz: every frame twice
    np.testing.assert_array_equal(slow, np.repeat(frames, 2, axis=0))
    smooth = np.repeat(np.linspace(20, 230, 12, dtype=np.uint8)[:, None, None], 144, 1).repeat(256, 2)
    smooth[:, 40:100, 60:200] = 90
    mp4 = S.save_mp4(smooth, tmp_path / "clip.mp4")
    back = S.VideoFile(mp4).render()
    assert back.shape == smooth.shape
    assert np.abs(back.astype(int) - smooth).mean() < 2
    assert S.VideoFile(mp4).epochs.file.iloc[0] == "clip.mp4"


def test_video_converts_grey_resizes_and_fits(tmp_path):
    rgb = np.zeros((4, 72, 128, 3), np.float32)
    rgb[..., 0] = 0.9  # float in 0..1 is scaled to 0..255; grey = mean over RGB
    np.save(tmp_path / "rgb.npy", rgb)
    out = S.read_video(tmp_path / "rgb.npy")
    assert out.shape == (4, *FRAME_SHAPE) and np.all(np.abs(out.astype(int) - round(0.3 * 255)) <= 1)
    tall = np.full((3, 200, 100), 255, np.uint8)
    np.save(tmp_path / "tall.npy", tall)
    padded = S.read_video(tmp_path / "tall.npy", fit="pad")
    assert (padded[:, :, :20] == 128).all() and (padded[:, :, 128] == 255).all()
    assert (S.read_video(tmp_path / "tall.npy", fit="crop") == 255).all()
    import tifffile

    tifffile.imwrite(tmp_path / "stack.tif", np.stack([np.full((144, 256), v, np.uint16) for v in (0, 65535)]))
    tif = S.read_video(tmp_path / "stack.tif")
    assert tif.shape == (2, *FRAME_SHAPE) and tif[0].max() == 0 and tif[1].min() == 255
    held = S.read_video(tmp_path / "stack.tif", duration_s=0.2)  # shorter file: the last frame is held
    assert len(held) == 6 and (held[2:] == 255).all()


def test_video_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        S.VideoFile(tmp_path / "missing.mp4")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="unsupported extension.*accepted"):
        S.VideoFile(tmp_path / "notes.txt")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(ValueError, match="broken.mp4"):
        S.VideoFile(bad).render()
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 4, 5, 6)))
    with pytest.raises(ValueError, match="wrong.npy"):
        S.read_video(tmp_path / "wrong.npy")
    (tmp_path / "junk.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="junk.npy"):
        S.read_video(tmp_path / "junk.npy")
    with pytest.raises(ValueError, match="even"):
        S.save_mp4(np.zeros((2, 3, 5), np.uint8), tmp_path / "odd.mp4")
    with pytest.raises(ValueError, match="uint8"):
        S.save_npy(np.zeros((2, 3, 4)), tmp_path / "f.npy")


@pytest.mark.parametrize(
    "make",
    [
        lambda: S.DriftingGrating(contrast=1.5),
        lambda: S.DriftingGrating(sf_cpd=0),
        lambda: S.DriftingGrating(tf_hz=20),
        lambda: S.DriftingGrating(duration_s=1000),
        lambda: S.DriftingGrating(duration_s=0),
        lambda: S.DriftingGrating(waveform="triangle"),
        lambda: S.DriftingGrating(aperture=(0, 0, -5)),
        lambda: S.DriftingGrating(spatial_frequency=0.04),
        lambda: S.DirectionSeries(directions=0),
        lambda: S.DirectionSeries(directions="north"),
        lambda: S.RandomDotKinematogram(coherence=-0.1),
        lambda: S.GaussianDots(polarity="up"),
        lambda: S.Grey(level=300),
        lambda: S.Sequence(["not a stimulus"]),
        lambda: S.stimulus_from_params({"family": "Nope"}),
    ],
)
def test_bad_parameters_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


def test_duration_alias_and_repr():
    g = S.DriftingGrating(duration=1.5)
    assert g.duration_s == 1.5 and g.n_frames == 45
    assert "DriftingGrating(" in repr(g)
    with pytest.raises(ValueError, match="no duration"):
        S.GaussianDots(duration=2)


@pytest.mark.parametrize("tf, period", [(2.0, 15), (1.5, 20), (0.0, 1), (4.0, 60), (2.3, 60)])
def test_periodic_grating_renders_one_period_exactly(tf, period):
    """A grating whose period is a whole number of frames is rendered once per period: same frames as in full."""
    from twin_explorer.stimuli.gratings import AMPLITUDE, grating_wave, whole_period

    stim = S.DriftingGrating(direction_deg=30, sf_cpd=0.05, tf_hz=tf, duration_s=2.0, aperture=(5, 0, 40))
    n = stim.n_frames
    assert whole_period(tf, n) == period
    full = stim._frames(grating_wave(stim, 30, 0.05, tf, 0.0, "sine", n), AMPLITUDE)
    np.testing.assert_array_equal(stim.render(), full)
    if period < n:
        np.testing.assert_array_equal(full[period:], full[:-period])  # exactly periodic frames
