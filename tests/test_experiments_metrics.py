"""Tests of CC_abs / CC_max / CC_norm / oracle against hand-computed values and simulated ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from twin_explorer.experiments.metrics import (cc_abs, cc_max, cc_norm, oracle_correlation, performance,
                                               plot_performance)

# Three repeats of three time points, one unit.
# ȳ = [1, 3, 4];  P = Var(ȳ, ddof 1) = 7/3;  Var(y_r, ddof 1) = 7/3, 1/3, 7/3 -> TP = 29/9
# SP = (3·7/3 − 29/9) / 2 = 17/9;  Var(ȳ, ddof 0) = 14/9  ->  CC_max = sqrt(17/14)
HAND = np.array([[1.0, 2, 4], [2, 3, 3], [0, 4, 5]])
HAND_PRED = np.array([1.0, 2, 4])  # deviations (−4/3, −1/3, 5/3) vs ȳ's (−5/3, 1/3, 4/3): r = 39/42 = 13/14


def test_hand_computed_values():
    assert cc_max(HAND) == pytest.approx(np.sqrt(17 / 14))
    assert cc_abs(HAND, HAND_PRED) == pytest.approx(13 / 14)
    assert cc_norm(HAND, HAND_PRED) == pytest.approx((13 / 14) / np.sqrt(17 / 14))
    # per-repeat predictions are averaged first: these average to HAND_PRED
    per_repeat = np.stack([HAND_PRED - 1, HAND_PRED + 1, HAND_PRED])
    assert cc_abs(HAND, per_repeat) == pytest.approx(13 / 14)


def test_hand_computed_oracle():
    # leave-one-out means: repeat 0 vs mean(rows 1, 2) = [1, 3.5, 4], etc.; pooled Pearson over 9 samples
    loo = np.array([[(HAND[1, t] + HAND[2, t]) / 2 for t in range(3)],
                    [(HAND[0, t] + HAND[2, t]) / 2 for t in range(3)],
                    [(HAND[0, t] + HAND[1, t]) / 2 for t in range(3)]])
    expected = np.corrcoef(HAND.ravel(), loo.ravel())[0, 1]
    assert oracle_correlation(HAND) == pytest.approx(expected)


def test_negative_signal_power_gives_nan():
    # ȳ = [.5, 1, .5]: P = 1/12, TP = (4/3 + 1/3)/2 = 5/6, SP = 2/12 − 5/6 < 0
    y = np.array([[0.0, 2, 0], [1, 0, 1]])
    assert np.isnan(cc_max(y))
    assert np.isnan(cc_norm(y, np.array([0.0, 1, 0])))


def test_multi_unit_shapes_and_independence():
    y = np.stack([HAND, HAND * 2 + 1], axis=-1)  # [R, T, 2]; an affine copy has identical metrics
    p = np.stack([HAND_PRED, HAND_PRED], axis=-1)
    np.testing.assert_allclose(cc_max(y), [np.sqrt(17 / 14)] * 2)
    np.testing.assert_allclose(cc_abs(y, p), [13 / 14] * 2)


def test_simulated_gaussian_noise_matches_analytic_values():
    rng = np.random.default_rng(0)
    R, T = 10, 20000
    noise_sd = np.array([0.5, 1.0, 2.0])
    signal = rng.normal(size=(T, 3))
    y = signal[None] + rng.normal(size=(R, T, 3)) * noise_sd
    # Var(ȳ) = 1 + σ²/R, so CC_max = sqrt(1 / (1 + σ²/R)); the true signal is a perfect model: CC_norm ≈ 1
    np.testing.assert_allclose(cc_max(y), np.sqrt(1 / (1 + noise_sd**2 / R)), atol=0.01)
    np.testing.assert_allclose(cc_norm(y, signal), 1.0, atol=0.02)
    # a model that captures only half the signal variance: CC_norm ≈ sqrt(1/2)
    half = signal + rng.normal(size=(T, 3))
    np.testing.assert_allclose(cc_norm(y, half), np.sqrt(0.5), atol=0.02)
    # oracle: r(y_r, mean of the R−1 others) = 1 / sqrt((1 + σ²)(1 + σ²/(R−1)))
    np.testing.assert_allclose(oracle_correlation(y), 1 / np.sqrt((1 + noise_sd**2) * (1 + noise_sd**2 / (R - 1))),
                               atol=0.01)


def test_incomplete_repeats_use_effective_repeat_count():
    rng = np.random.default_rng(1)
    R, T, sd = 10, 20000, 2.0
    signal = rng.normal(size=(T, 1))
    y = signal[None] + rng.normal(size=(R, T, 1)) * sd
    y[7:, : T // 2] = np.nan  # the first half was only shown 7 times
    inv_n = (1 / 7 + 1 / 10) / 2
    expected = np.sqrt(1 / (1 + sd**2 * inv_n))
    assert cc_max(y)[0] == pytest.approx(expected, abs=0.01)
    assert np.isfinite(cc_abs(y, signal)[0])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="at least 2"):
        cc_max(np.ones((1, 5, 2)))
    with pytest.raises(ValueError, match="dimensions"):
        cc_max(np.ones(5))
    with pytest.raises(ValueError, match="predictions have shape"):
        cc_abs(np.ones((3, 5, 2)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="dtype"):
        cc_max(np.array([["a", "b", "c"], ["d", "e", "f"]]))


def test_performance_dataset_and_plot():
    rng = np.random.default_rng(2)
    signal = rng.normal(size=(200, 4))
    y = signal[None] + rng.normal(size=(5, 200, 4))
    ds = performance(y, signal, units=np.array([10, 11, 12, 13]), twin_id="sim")
    assert ds.sizes["unit"] == 4 and list(ds.unit.values) == [10, 11, 12, 13]
    np.testing.assert_allclose(ds.cc_norm.values, ds.cc_abs.values / ds.cc_max.values)
    assert ds.attrs["twin_id"] == "sim" and ds.attrs["n_repeats"] == 5
    import holoviews as hv

    layout = plot_performance(ds)
    assert isinstance(layout, hv.Layout) and len(layout) == 2


def blocky_video(n_frames: int, seed: int, monitor=None) -> np.ndarray:
    """Cheap stimulus for recordings: 16-pixel blocks of slowly varying random grey levels."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(n_frames + 4, 9, 16))
    coarse = (coarse[:-4] + coarse[1:-3] + coarse[2:-2] + coarse[3:-1] + coarse[4:]) / np.sqrt(5)
    return np.clip(128 + 60 * np.kron(coarse, np.ones((1, 16, 16))), 0, 255).astype(np.uint8)


def test_twin_performance_on_a_synthetic_recording():
    import twin_explorer.synthetic as synthetic
    import torch

    from twin_explorer.experiments.metrics import twin_performance

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mouse = synthetic.SyntheticMouse(seed=0, n_neurons=8)
        rec = mouse.record(n_clips=1, duration_s=2.0, repeats=5, n_oracle=2, progress=False, video_fn=blocky_video)
        # replace Poisson counts (too sparse for a tiny test) by the expected rate plus Gaussian noise of known size
        rng = np.random.default_rng(0)
        rate = rec["rate"].values[rec["trial_clip"].values]
        sd = rate.std(axis=(0, 1), keepdims=True)
        rec["response"] = (("trial", "frame", "unit"), rate + 0.3 * sd * rng.normal(size=rate.shape))
        # the mouse predicts its own expected rates: only the noise separates prediction and data, so CC_norm ≈ 1
        ds = twin_performance(mouse, rec, units=[1, 4, 6])
        assert ds.unit.values.tolist() == [1, 4, 6] and ds.attrs["n_oracle_clips"] == 2
        assert np.all(ds.cc_max.values > 0.8)
        np.testing.assert_allclose(ds.cc_norm.values, 1.0, atol=0.05)

        class Reversed:  # the right responses at the wrong times
            id = "reversed"

            def predict(self, stimuli, units=None, **kw):
                return mouse.predict(stimuli, units=units, **kw)[::-1]

        bad = twin_performance(Reversed(), rec, units=[1, 4, 6])
        assert np.all(bad.cc_norm.values < 0.7)
        with pytest.raises(ValueError, match="not recorded"):
            twin_performance(mouse, rec, units=[99])
        with pytest.raises(ValueError, match="no oracle clips"):
            twin_performance(mouse, rec.assign_coords(clip_tier=("clip", ["train"] * rec.sizes["clip"])))
    finally:
        torch.set_num_threads(n)
