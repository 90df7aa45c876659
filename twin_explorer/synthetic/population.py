"""Draws the generative parameters of a synthetic mouse: areas, layers, cortical positions, retinotopy and tuning.

Everything here is plain numpy and depends only on ``seed``; :mod:`twin_explorer.synthetic.mouse` turns the
table into filters. Cortical frame (MICrONS-like µm): ``x_um`` posterior→anterior 0–1200, ``y_um``
lateral→medial 0–1100, ``depth_um`` from the pia. V1 fills x < 600 µm; the higher areas LM, AL and RL sit side
by side along y in x ≥ 600 µm with a retinotopic map mirrored at the V1 border (azimuth turns back), as in mouse
visual cortex. Elevation varies smoothly along y in every area.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..monitor import Monitor

AREAS: tuple[str, ...] = ("V1", "LM", "AL", "RL")
LAYERS: dict[str, tuple[float, float]] = {"L2/3": (100.0, 350.0), "L4": (350.0, 500.0), "L5": (500.0, 750.0)}
SHEET_UM = (1200.0, 1100.0)
V1_BORDER_UM = 600.0
HVA_Y_EDGES_UM = (0.0, 370.0, 730.0, 1100.0)  # LM (lateral), AL, RL (medial)

# Per-area typical tuning (medians): RF envelope σ across the bars (deg), preferred SF (cpd), TF (Hz).
# Higher areas: larger RFs; AL and RL prefer lower SF and higher TF (Marshel et al. 2011; Andermann et al. 2011).
AREA_TUNING: dict[str, dict[str, float]] = {
    "V1": {"sigma_deg": 5.0, "sf_cpd": 0.07, "tf_hz": 2.0, "scatter_deg": 2.5},
    "LM": {"sigma_deg": 7.0, "sf_cpd": 0.06, "tf_hz": 2.0, "scatter_deg": 4.0},
    "AL": {"sigma_deg": 9.0, "sf_cpd": 0.035, "tf_hz": 4.0, "scatter_deg": 5.0},
    "RL": {"sigma_deg": 10.0, "sf_cpd": 0.03, "tf_hz": 4.0, "scatter_deg": 5.0},
}
SF_RANGE = (0.02, 0.3)
TF_RANGE = (0.75, 8.0)


def retinotopy(x_um: np.ndarray, y_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map cortical position to the RF centre (azimuth, elevation) in degrees; continuous across area borders."""
    x = np.asarray(x_um, float)
    y = np.asarray(y_um, float)
    # V1: azimuth −20…+20° over 600 µm; higher areas mirror it and run back to −25° at lower magnification.
    az = np.where(x < V1_BORDER_UM, -20.0 + 40.0 * x / V1_BORDER_UM,
                  20.0 - 45.0 * (x - V1_BORDER_UM) / (SHEET_UM[0] - V1_BORDER_UM))
    el = 15.0 - 30.0 * y / SHEET_UM[1]
    return az, el


def area_of(x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
    """Name of the visual area at each cortical position."""
    x = np.asarray(x_um, float)
    y = np.asarray(y_um, float)
    hva = np.digitize(y, HVA_Y_EDGES_UM[1:-1])  # 0 LM, 1 AL, 2 RL
    names = np.array(AREAS[1:])[hva]
    return np.where(x < V1_BORDER_UM, "V1", names).astype(object)


def _lognormal(rng: np.random.Generator, median: np.ndarray, sd_log: float, lo: float, hi: float) -> np.ndarray:
    return np.clip(median * np.exp(sd_log * rng.standard_normal(np.shape(median))), lo, hi)


def sample_population(seed: int, n_neurons: int, monitor: Monitor, max_sf_cpd: float) -> pd.DataFrame:
    """Draw ``n_neurons`` neurons; returns one row per neuron with every generative parameter.

    ``max_sf_cpd`` caps the preferred SF at what the model's sampling grid resolves.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    n = int(n_neurons)
    x = rng.uniform(0, SHEET_UM[0], n)
    y = rng.uniform(0, SHEET_UM[1], n)
    area = area_of(x, y)
    layer_names = np.array(list(LAYERS))
    layer = layer_names[rng.choice(3, size=n, p=[0.5, 0.25, 0.25])]
    depth = np.array([rng.uniform(*LAYERS[name]) for name in layer])

    tuning = pd.DataFrame([AREA_TUNING[a] for a in area])
    az0, el0 = retinotopy(x, y)
    scatter = tuning["scatter_deg"].to_numpy()
    left, right, bottom, top = monitor.extent_deg
    # Keep RF centres well inside the screen (its corners are curved in degrees, so leave a margin).
    rf_az = np.clip(az0 + scatter * rng.standard_normal(n), 0.8 * left, 0.8 * right)
    rf_el = np.clip(el0 + scatter * rng.standard_normal(n), 0.7 * bottom, 0.7 * top)

    l5 = layer == "L5"
    l4 = layer == "L4"
    sigma = _lognormal(rng, tuning["sigma_deg"].to_numpy() * np.where(l5, 1.3, 1.0), 0.3, 2.5, 25.0)
    sf_hi = min(SF_RANGE[1], max_sf_cpd)
    sf = _lognormal(rng, tuning["sf_cpd"].to_numpy(), 0.45, SF_RANGE[0], sf_hi)
    # At least ~0.3 cycles under one envelope σ, otherwise the "Gabor" is a blob without orientation.
    sf = np.clip(np.maximum(sf, 0.3 / sigma), SF_RANGE[0], sf_hi)
    tf = _lognormal(rng, tuning["tf_hz"].to_numpy(), 0.45, *TF_RANGE)
    aspect = rng.uniform(1.0, 2.0, n)  # envelope σ along the bars / across the bars

    pref_dir = rng.uniform(0.0, 360.0, n)
    phase = rng.uniform(0.0, 360.0, n)
    # Direction selectivity knob: weight of null-direction energy (0 = fully direction selective).
    strongly_ds = rng.random(n) < np.where(layer == "L2/3", 0.45, 0.3)
    null_mix = np.where(strongly_ds, rng.uniform(0.0, 0.35, n), rng.uniform(0.45, 1.0, n))
    # Simple/complex mix: L4 is mostly simple, the rest mostly complex.
    simple_frac = np.where(l4, rng.beta(4, 2, n), rng.beta(1.2, 3.5, n))

    return pd.DataFrame(
        {
            "area": area,
            "layer": layer,
            "x_um": x,
            "y_um": y,
            "depth_um": depth,
            "rf_az_deg": rf_az,
            "rf_el_deg": rf_el,
            "sigma_deg": sigma,
            "aspect": aspect,
            "sf_cpd": sf,
            "tf_hz": tf,
            "pref_dir_deg": pref_dir,
            "phase_deg": phase,
            "null_mix": null_mix,
            "simple_frac": simple_frac,
            # Contrast normalisation: pool σ relative to the RF, semi-saturation constant.
            "pool_scale": rng.uniform(1.5, 3.0, n),
            "sigma_norm": rng.uniform(0.1, 0.3, n),
            # Output nonlinearity: rate = baseline + amplitude·(softplus(k(n−θ)) − softplus(−kθ))/k.
            "threshold": rng.uniform(0.0, 0.15, n),
            "slope": rng.uniform(3.0, 6.0, n),
            "amplitude": _lognormal(rng, np.full(n, 8.0), 0.6, 1.0, 40.0),
            "baseline": _lognormal(rng, np.where(l5, 0.3, 0.16), 0.8, 0.02, 2.0),
            # Gain modulation per standardised unit of running / pupil (log-gain).
            "gain_running": rng.normal(0.25, 0.1, n),
            "gain_pupil": rng.normal(0.1, 0.08, n),
        }
    )
