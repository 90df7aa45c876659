"""The batched Levenberg–Marquardt fits (one solver for every per-unit fit) and the experiment registry."""

from __future__ import annotations

import numpy as np
import pytest

from twin_explorer.experiments import REGISTRY, get_experiment
from twin_explorer.experiments.fitting import (best_of_starts, fit_log_gaussian_many, fit_naka_rushton_many,
                                               naka_rushton)
from twin_explorer.experiments.spec import ExperimentSpec, register


def test_log_gaussian_fits_a_population_at_once():
    rng = np.random.default_rng(0)
    v = np.array([0.01, 0.02, 0.04, 0.08, 0.16, 0.32])
    x0 = rng.uniform(np.log2(0.015), np.log2(0.25), 200)
    sigma = rng.uniform(0.6, 2.0, 200)
    curves = 0.3 + 2.0 * np.exp(-(np.log2(v)[None] - x0[:, None]) ** 2 / (2 * sigma[:, None] ** 2))
    curves[3] = 1.0  # a flat curve has no preference
    fit = fit_log_gaussian_many(v, curves)
    ok = np.arange(200) != 3
    np.testing.assert_allclose(np.log2(fit["pref"][ok]), x0[ok], atol=0.02)
    np.testing.assert_allclose(fit["sigma_oct"][ok], sigma[ok], rtol=0.02)
    assert np.all(fit["r2"][ok] > 0.999) and np.isnan(fit["pref"][3])


def test_naka_rushton_fits_a_population_at_once():
    rng = np.random.default_rng(1)
    c = np.array([0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0])
    c50, n = rng.uniform(0.05, 0.5, 100), rng.uniform(1.0, 4.0, 100)
    curves = 0.2 + 1.5 * naka_rushton(c[None], 0.0, 1.0, c50[:, None], n[:, None])
    fit = fit_naka_rushton_many(c, curves)
    np.testing.assert_allclose(fit["c50"], c50, rtol=1e-3)
    np.testing.assert_allclose(fit["n"], n, rtol=1e-3)
    np.testing.assert_allclose(fit["r0"], 0.2, atol=1e-4)
    with pytest.raises(ValueError, match="contrasts must all be > 0"):
        fit_naka_rushton_many(np.r_[0.0, c[1:]], curves)


def test_best_of_starts_keeps_each_units_lowest_cost():
    x = np.linspace(-3, 3, 25)

    def model(p):  # a cosine with unknown frequency: local minima, so the start matters
        f = np.cos(p[:, :1] * x[None])
        return f, (-x[None] * np.sin(p[:, :1] * x[None]))[..., None]

    y = np.cos(np.array([[0.5], [2.0]]) * x[None])
    starts = [np.full((2, 1), 0.4), np.full((2, 1), 2.1)]
    p, cost = best_of_starts(model, y, starts, [0.0], [5.0])
    np.testing.assert_allclose(p[:, 0], [0.5, 2.0], atol=1e-4)
    assert np.all(cost < 1e-8)


def test_registry_holds_every_experiment_and_parses_parameters():
    assert {"direction_tuning", "sf_tuning", "tf_tuning", "sf_tf_tuning", "contrast_response", "size_tuning",
            "receptive_fields", "mei", "surround_suppression"} <= set(REGISTRY)
    spec = get_experiment("direction_tuning")
    assert spec.defaults()["directions"] == 16 and "units" not in spec.defaults()
    assert spec.parse(["directions=8", "sf_cpd=[0.02,0.04]", "aperture=null"]) == {
        "directions": 8, "sf_cpd": [0.02, 0.04], "aperture": None}
    assert get_experiment("mei").defaults()["precondition"] == "blur"  # options documented by mei_steps
    with pytest.raises(ValueError, match="no parameter 'speed'"):
        spec.parse(["speed=3"])
    with pytest.raises(ValueError, match="key=value"):
        spec.parse(["directions"])
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        get_experiment("nope")
    with pytest.raises(ValueError, match="already registered"):
        register(ExperimentSpec("direction_tuning", len, "another", str))
