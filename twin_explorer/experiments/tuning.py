"""Direction and orientation tuning: the in-silico drifting-grating experiment, its indices, fits and plots.

Conventions
-----------
* Directions follow the published v2 convention: 0° = a vertical bar moving right, counter-clockwise
  (90° = upward motion); orientation = direction mod 180 (0° = vertical bars). :func:`to_v3` / :func:`from_v3`
  convert to/from the older CAVE v1/v3 convention (radians, 0 = horizontal bar moving upward, clockwise):
  ``dir_v2 = (90° − dir_v3) mod 360`` (the same map the pipeline applies to Monet2 directions).
* Each direction's response is the mean over ``[onset + latency, offset + latency)`` (see
  :mod:`twin_explorer.experiments.common`).
* OSI and DSI follow the AllenSDK (``osi_dg``, ``dsi_dg``): the preferred direction is the argmax of the
  curve, OSI = (R_pref − R_orth)/(R_pref + R_orth) with R_orth the mean of the responses at ±90°,
  DSI = (R_pref − R_null)/(R_pref + R_null) with R_null at +180°. gOSI = |Σ r e^{2iθ}|/Σ r and
  gDSI = |Σ r e^{iθ}|/Σ r on the curve rectified at 0.
* The bi-von-Mises fit is the foundation pipeline's: f(θ) = φ·A·e^{κ(cos(θ−μ)−1)} +
  (1−φ)·A·e^{κ(cos(θ+π−μ)−1)} + b with φ ∈ [0, 1] and κ, A, b ≥ 0, started from μ at the argmax, κ = 1,
  φ = 0.5; afterwards μ is moved to the peak carrying weight > 0.5. ``pref_dir`` = μ, ``pref_ori`` = μ mod 180.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import least_squares

from .common import (hv_bokeh, DEFAULT_LATENCY_S, ProgressCallback, Timing, check_positive, check_values, grating_frames,
                     provenance, resolve_units, run_conditions, twin_frame_rate, twin_monitor, unit_coords,
                     window_mean)
from ..monitor import Monitor

__all__ = ["direction_tuning", "directions_from", "global_osi", "global_dsi", "allen_osi_dsi", "bivonmises",
           "fit_bivonmises", "fit_bivonmises_many", "tuning_indices", "to_v3", "from_v3",
           "plot_direction_tuning", "plot_tuning_population"]


# --- conventions -----------------------------------------------------------------------------------------------

def to_v3(angle_v2_deg: Any, kind: str = "direction") -> np.ndarray:
    """v2 degrees (0 = rightward motion / vertical bars, counter-clockwise) -> v3 radians (0 = horizontal bar
    moving upward, clockwise). ``kind`` 'direction' wraps at 2π, 'orientation' at π."""
    period = _period(kind)
    return np.radians(np.mod(90.0 - np.asarray(angle_v2_deg, dtype=float), period))


def from_v3(angle_v3_rad: Any, kind: str = "direction") -> np.ndarray:
    """v3 radians (0 = horizontal bar moving upward, clockwise) -> v2 degrees (0 = rightward, counter-clockwise)."""
    period = _period(kind)
    return np.mod(90.0 - np.degrees(np.asarray(angle_v3_rad, dtype=float)), period)


def _period(kind: str) -> float:
    if kind not in ("direction", "orientation"):
        raise ValueError(f"kind must be 'direction' or 'orientation', got {kind!r}")
    return 360.0 if kind == "direction" else 180.0


def directions_from(directions: int | Any) -> np.ndarray:
    """An int n gives n evenly spaced directions from 0°; a sequence is taken as degrees (wrapped to 0–360)."""
    if isinstance(directions, (int, np.integer)):
        if directions < 4:
            raise ValueError(f"directions must be ≥ 4 evenly spaced directions (got {directions}); OSI needs ±90°")
        return np.arange(int(directions)) * 360.0 / int(directions)
    arr = np.mod(check_values("directions", directions, min_len=4), 360.0)
    if len(np.unique(np.round(arr, 6))) != arr.size:
        raise ValueError(f"directions contain duplicates (mod 360): {arr.tolist()}")
    return arr


# --- indices -------------------------------------------------------------------------------------------------

def global_osi(curves: np.ndarray, directions_deg: np.ndarray) -> np.ndarray:
    """gOSI = |Σ r e^{2iθ}| / Σ r over the last axis (curve rectified at 0). NaN for an all-zero curve."""
    r = np.clip(np.asarray(curves, dtype=float), 0, None)
    th = np.radians(directions_deg)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs((r * np.exp(2j * th)).sum(-1)) / r.sum(-1)


def global_dsi(curves: np.ndarray, directions_deg: np.ndarray) -> np.ndarray:
    """gDSI = |Σ r e^{iθ}| / Σ r over the last axis (curve rectified at 0)."""
    r = np.clip(np.asarray(curves, dtype=float), 0, None)
    th = np.radians(directions_deg)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs((r * np.exp(1j * th)).sum(-1)) / r.sum(-1)


def _circular_interp(curves: np.ndarray, directions_deg: np.ndarray, query_deg: np.ndarray) -> np.ndarray:
    """Linear interpolation of curves [..., D] on the circle at per-curve query angles [...]."""
    order = np.argsort(directions_deg)
    d = np.asarray(directions_deg, dtype=float)[order]
    c = np.asarray(curves, dtype=float)[..., order]
    d_ext = np.concatenate([d - 360, d, d + 360])
    c_ext = np.concatenate([c, c, c], axis=-1)
    q = np.mod(np.asarray(query_deg, dtype=float), 360)
    flat_c = c_ext.reshape(-1, c_ext.shape[-1])
    return np.array([np.interp(qq, d_ext, cc) for qq, cc in zip(np.broadcast_to(q, c.shape[:-1]).ravel(), flat_c)]
                    ).reshape(c.shape[:-1])


def allen_osi_dsi(curves: np.ndarray, directions_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AllenSDK OSI and DSI from the argmax direction. Returns (osi, dsi, argmax direction in degrees).

    Responses at pref ± 90° and pref + 180° are read off the sampled curve (interpolated on the circle when the
    sampling lacks those exact angles)."""
    curves = np.asarray(curves, dtype=float)
    d = np.asarray(directions_deg, dtype=float)
    pref = d[np.argmax(curves, axis=-1)]
    r_pref = curves.max(-1)
    r_orth = 0.5 * (_circular_interp(curves, d, pref + 90) + _circular_interp(curves, d, pref - 90))
    r_null = _circular_interp(curves, d, pref + 180)
    with np.errstate(invalid="ignore", divide="ignore"):
        osi = (r_pref - r_orth) / (r_pref + r_orth)
        dsi = (r_pref - r_null) / (r_pref + r_null)
    return osi, dsi, pref


# --- bi-von-Mises --------------------------------------------------------------------------------------------

def bivonmises(theta_rad: np.ndarray, mu: float, kappa: float, phi: float, amplitude: float,
               baseline: float) -> np.ndarray:
    """The pipeline's bi-von-Mises: φ·A·e^{κ(cos(θ−μ)−1)} + (1−φ)·A·e^{κ(cos(θ+π−μ)−1)} + baseline."""
    th = np.asarray(theta_rad, dtype=float)
    return (phi * amplitude * np.exp(kappa * (np.cos(th - mu) - 1))
            + (1 - phi) * amplitude * np.exp(kappa * (np.cos(th + np.pi - mu) - 1)) + baseline)


_FIT_KEYS = ("mu", "kappa", "phi", "amplitude", "baseline", "r2")
KAPPA_MAX = 60.0


def fit_bivonmises(curve: np.ndarray, directions_deg: np.ndarray) -> dict[str, float]:
    """Least-squares bi-von-Mises fit of one tuning curve. Returns mu (deg, the peak with weight ≥ 0.5), kappa,
    phi (≥ 0.5 after the swap), amplitude, baseline and r2. Several κ starts guard against local minima."""
    y = np.asarray(curve, dtype=float)
    th = np.radians(np.asarray(directions_deg, dtype=float))
    if y.shape != th.shape or y.size < 5:
        raise ValueError(f"need a curve with one value per direction (≥ 5), got {y.shape} vs {th.shape}")
    if not np.all(np.isfinite(y)):
        return {k: np.nan for k in _FIT_KEYS}
    lo, hi = float(y.min()), float(y.max())
    span = max(hi - lo, 1e-12)
    mu0 = th[np.argmax(y)]

    def resid(p: np.ndarray) -> np.ndarray:
        return (bivonmises(th, *p) - y) / span

    best = None
    for kappa0 in (1.0, 3.0, 8.0):
        for phi0 in (0.5, 0.8):
            p0 = np.array([mu0, kappa0, phi0, span, max(lo, 0.0)])
            try:
                res = least_squares(resid, p0, bounds=([-np.inf, 0, 0, 0, 0], [np.inf, KAPPA_MAX, 1, np.inf, np.inf]),
                                    method="trf", x_scale=[1, 1, 0.5, span, span + 1e-12])
            except ValueError:
                continue
            if best is None or res.cost < best.cost:
                best = res
    if best is None:
        return {k: np.nan for k in _FIT_KEYS}
    mu, kappa, phi, amp, base = best.x
    if phi < 0.5:  # report the peak that carries the larger weight
        mu, phi = mu + np.pi, 1 - phi
    ss_res = float(np.sum((bivonmises(th, mu, kappa, phi, amp, base) - y) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else np.nan
    return {"mu": float(np.degrees(mu) % 360), "kappa": float(kappa), "phi": float(phi), "amplitude": float(amp),
            "baseline": float(base), "r2": float(r2)}


def fit_bivonmises_many(curves: np.ndarray, directions_deg: np.ndarray, show_progress: bool = False
                        ) -> dict[str, np.ndarray]:
    """:func:`fit_bivonmises` for every row of curves [U, D]; returns arrays keyed like the single fit."""
    from tqdm.auto import tqdm

    fits = [fit_bivonmises(c, directions_deg) for c in tqdm(np.asarray(curves), desc="bi-von-Mises fits",
                                                            disable=not show_progress, leave=False)]
    return {k: np.array([f[k] for f in fits]) for k in _FIT_KEYS}


def tuning_indices(curves: np.ndarray, directions_deg: np.ndarray, show_progress: bool = False
                   ) -> dict[str, np.ndarray]:
    """All per-unit direction-tuning numbers for curves [U, D]: osi, dsi (AllenSDK), gosi, gdsi, pref_dir,
    pref_ori (v2, from the fit), argmax_dir, vector_dir (angle of Σ r e^{iθ}), vector_ori, fit_* and the fit-based
    fit_osi / fit_dsi (Ding et al. draft definitions)."""
    curves = np.asarray(curves, dtype=float)
    d = np.asarray(directions_deg, dtype=float)
    osi, dsi, argmax_dir = allen_osi_dsi(curves, d)
    r = np.clip(curves, 0, None)
    th = np.radians(d)
    vec1 = (r * np.exp(1j * th)).sum(-1)
    vec2 = (r * np.exp(2j * th)).sum(-1)
    fit = fit_bivonmises_many(curves, d, show_progress=show_progress)
    mu = np.radians(fit["mu"])
    f = lambda a: bivonmises(a, mu, fit["kappa"], fit["phi"], fit["amplitude"], fit["baseline"])  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        r_pref = 0.5 * (f(mu) + f(mu + np.pi))
        r_orth = 0.5 * (f(mu + np.pi / 2) + f(mu + 3 * np.pi / 2))
        fit_osi = (r_pref - r_orth) / (r_pref + r_orth)
        fit_dsi = 1 - f(mu + np.pi) / f(mu)
    pref_dir = fit["mu"]
    return {
        "osi": osi, "dsi": dsi, "gosi": global_osi(curves, d), "gdsi": global_dsi(curves, d),
        "pref_dir": pref_dir, "pref_ori": np.mod(pref_dir, 180.0),
        "argmax_dir": argmax_dir,
        "vector_dir": np.mod(np.degrees(np.angle(vec1)), 360.0),
        "vector_ori": np.mod(np.degrees(np.angle(vec2)) / 2, 180.0),
        "fit_osi": fit_osi, "fit_dsi": fit_dsi,
        **{f"fit_{k}": v for k, v in fit.items()},
    }


# --- the experiment ------------------------------------------------------------------------------------------

def direction_tuning(twin: Any, directions: int | Any = 16, sf_cpd: float = 0.04, tf_hz: float = 2.0,
                     duration_s: float = 2.0, contrast: float = 1.0, units: Any = None, *,
                     latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5,
                     aperture: tuple[float, float, float] | None = None, repeats_phase: int = 1,
                     monitor: Monitor | None = None, keep_traces: bool = True, batch_size: int | None = None,
                     progress: ProgressCallback | None = None, show_progress: bool = True,
                     seed: int = 0) -> xr.Dataset:
    """Drifting-grating direction tuning of every selected unit.

    One condition video per direction (grey pre-blank ≥ burn-in, ``duration_s`` of grating, grey tail ≥ latency),
    stacked into batched ``twin.predict`` calls. ``repeats_phase`` > 1 repeats every direction at evenly spaced
    starting phases and averages (useful for slow TFs on spatially local neurons). Returns a Dataset with
    ``tuning`` (unit, direction) window means, ``response`` (unit, direction, time) traces when ``keep_traces``,
    ``baseline`` (grey response), and per-unit osi, dsi, gosi, gdsi, pref_dir, pref_ori, fit_* (see
    :func:`tuning_indices`). Provenance in ``.attrs``.
    """
    dirs = directions_from(directions)
    sf_cpd = check_positive("sf_cpd", sf_cpd)
    tf_hz = check_positive("tf_hz", tf_hz, allow_zero=True)
    contrast = check_positive("contrast", contrast)
    if contrast > 1:
        raise ValueError(f"contrast must be in (0, 1], got {contrast}")
    if int(repeats_phase) < 1:
        raise ValueError(f"repeats_phase must be ≥ 1, got {repeats_phase}")
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    timing = Timing.make(duration_s, latency_s, fr, pre_s)
    ids = resolve_units(twin, units)
    phases = np.arange(int(repeats_phase)) * 360.0 / int(repeats_phase)
    conds = [(d, p) for d in dirs for p in phases]

    def video(i: int) -> np.ndarray:
        d, p = conds[i]
        return timing.pad(grating_frames(d, sf_cpd, tf_hz, duration_s, contrast=contrast, phase_deg=p,
                                         aperture=aperture, frame_rate=fr, monitor=mon)[:timing.stim])

    resp = run_conditions(twin, video, len(conds), ids, batch_size=batch_size, progress=progress,
                          desc="direction tuning", show_progress=show_progress)
    resp = resp.reshape(len(dirs), len(phases), timing.total, -1).mean(axis=1)  # [D, T, U]
    start, stop = timing.window(latency_s)
    curves = window_mean(resp, start, stop).T  # [U, D]
    baseline = window_mean(resp, 10, timing.pre).mean(0) if timing.pre > 10 else np.full(len(ids), np.nan)
    idx = tuning_indices(curves, dirs, show_progress=show_progress and len(ids) > 200)

    coords = unit_coords(twin, ids)
    coords["direction"] = ("direction", dirs, {"units": "deg", "convention": "v2: 0 = rightward, counter-clockwise"})
    data = {"tuning": (("unit", "direction"), curves.astype(np.float32),
                       {"long_name": "mean response in the latency-shifted window"}),
            "baseline": (("unit",), baseline.astype(np.float32), {"long_name": "mean response to grey"})}
    if keep_traces:
        coords["time"] = ("time", (np.arange(timing.total) - timing.pre) / fr, {"units": "s",
                                                                               "long_name": "time from stimulus onset"})
        data["response"] = (("unit", "direction", "time"), np.ascontiguousarray(resp.transpose(2, 0, 1)))
    for k, v in idx.items():
        data[k] = (("unit",), np.asarray(v, dtype=np.float64))
    ds = xr.Dataset(data, coords=coords)
    for k in ("pref_dir", "argmax_dir", "vector_dir"):
        ds[k].attrs.update(units="deg", convention="v2: 0 = vertical bar moving right, counter-clockwise")
    for k in ("pref_ori", "vector_ori"):
        ds[k].attrs.update(units="deg", convention="v2: 0 = vertical bars, counter-clockwise, mod 180")
    ds.attrs.update(provenance(twin, "direction_tuning", dict(
        directions=dirs, sf_cpd=sf_cpd, tf_hz=tf_hz, duration_s=duration_s, contrast=contrast, latency_s=latency_s,
        pre_s=pre_s, aperture=aperture, repeats_phase=int(repeats_phase), window_frames=[start, stop],
        stimulus="DriftingGrating (sine)"), seed=seed, monitor=mon))
    return ds


# --- plots ---------------------------------------------------------------------------------------------------

def _unit_sel(ds: xr.Dataset, unit: int) -> xr.Dataset:
    if int(unit) not in set(ds["unit"].values.tolist()):
        raise ValueError(f"unit {unit} is not in this Dataset (readout ids {ds['unit'].values[:10].tolist()}…)")
    return ds.sel(unit=int(unit))


def plot_direction_tuning(ds: xr.Dataset, unit: int, polar: bool = True) -> Any:
    """Tuning curve of one unit with its bi-von-Mises fit: polar (default) or linear, plus response traces."""
    hv = hv_bokeh()

    u = _unit_sel(ds, unit)
    d = ds["direction"].values
    y = u["tuning"].values
    fine = np.linspace(0, 360, 361)
    fit = bivonmises(np.radians(fine), np.radians(float(u["fit_mu"])), float(u["fit_kappa"]), float(u["fit_phi"]),
                     float(u["fit_amplitude"]), float(u["fit_baseline"]))
    title = (f"unit {unit}: pref {float(u['pref_dir']):.0f}°, OSI {float(u['osi']):.2f}, DSI {float(u['dsi']):.2f}, "
             f"gOSI {float(u['gosi']):.2f}, gDSI {float(u['gdsi']):.2f}")
    if polar:
        def xy(a, r):
            return np.c_[r * np.cos(np.radians(a)), r * np.sin(np.radians(a))]
        dd = np.r_[d, d[:1]]
        yy = np.r_[y, y[:1]]
        rmax = float(max(np.nanmax(yy), np.nanmax(fit))) * 1.1
        ring = hv.Curve(xy(fine, np.full_like(fine, rmax / 2)), "x", "y").opts(color="lightgrey", line_dash="dotted")
        pts = hv.Scatter(xy(dd, yy), "x", "y").opts(size=6, color="black")
        curve = hv.Curve(xy(dd, yy), "x", "y", label="measured").opts(color="black")
        fitc = hv.Curve(xy(fine, fit), "x", "y", label="bi-von-Mises").opts(color="crimson")
        pref = hv.Curve(xy([float(u["pref_dir"])] * 2, np.array([0, rmax])), "x", "y").opts(color="crimson",
                                                                                          line_dash="dashed")
        main = (ring * curve * pts * fitc * pref).opts(
            title=title, width=420, height=420, xlim=(-rmax, rmax), ylim=(-rmax, rmax), xlabel="rightward",
            ylabel="upward", data_aspect=1, fontsize={"title": 9})
    else:
        main = (hv.Curve((d, y), "direction (deg)", "response", label="measured").opts(color="black")
                * hv.Scatter((d, y), "direction (deg)", "response").opts(size=6, color="black")
                * hv.Curve((fine, fit), "direction (deg)", "response", label="bi-von-Mises").opts(color="crimson")
                ).opts(title=title, width=520, height=320, fontsize={"title": 9})
    if "response" not in ds:
        return main
    traces = hv.NdOverlay({float(a): hv.Curve((ds["time"].values, u["response"].sel(direction=a).values),
                                              "time (s)", "response").opts(line_width=1) for a in d},
                          kdims="direction").opts(width=420, height=260, show_legend=False,
                                                  title="responses by direction")
    return (main + traces).cols(2)


def plot_tuning_population(ds: xr.Dataset) -> Any:
    """Population histograms of gOSI, gDSI, OSI, DSI and the preferred direction."""
    hv = hv_bokeh()

    panels = []
    for k, rng, n in (("gosi", (0, 1), 20), ("gdsi", (0, 1), 20), ("osi", (-0.2, 1), 24), ("dsi", (-0.2, 1), 24),
                      ("pref_dir", (0, 360), 24)):
        v = ds[k].values
        v = v[np.isfinite(v)]
        freq, edges = np.histogram(v, bins=n, range=rng)
        panels.append(hv.Histogram((edges, freq), kdims=[k], vdims=["units"]).opts(width=260, height=200, title=k))
    return hv.Layout(panels).cols(3)
