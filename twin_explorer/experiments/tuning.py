"""Direction and orientation tuning: the in-silico drifting-grating experiment, its indices, fits and plots.

Conventions
-----------
* Directions follow the published v2 convention: 0° = a vertical bar moving right, counter-clockwise
  (90° = upward motion); orientation = direction mod 180 (0° = vertical bars). :func:`to_v3` / :func:`from_v3`
  convert to/from the older CAVE v1/v3 convention (radians, 0 = horizontal bar moving upward, clockwise):
  ``dir_v2 = (90° − dir_v3) mod 360`` (the same map the pipeline applies to Monet2 directions).
* Each direction's response is the mean over ``[onset + latency, offset + latency)`` (see
  :mod:`twin_explorer.experiments.runner`).
* OSI and DSI follow the AllenSDK (``osi_dg``, ``dsi_dg``): the preferred direction is the argmax of the
  curve, OSI = (R_pref − R_orth)/(R_pref + R_orth) with R_orth the mean of the responses at ±90°,
  DSI = (R_pref − R_null)/(R_pref + R_null) with R_null at +180°. gOSI = |Σ r e^{2iθ}|/Σ r and
  gDSI = |Σ r e^{iθ}|/Σ r on the curve rectified at 0.
* The bi-von-Mises fit is the foundation pipeline's: f(θ) = φ·A·e^{κ(cos(θ−μ)−1)} +
  (1−φ)·A·e^{κ(cos(θ+π−μ)−1)} + b with φ ∈ [0, 1] and κ, A, b ≥ 0. The pipeline starts from μ at the argmax,
  κ = 1, φ = 0.5; here every unit starts from the best point of a grid (μ every 5°, 8 values of κ, φ ∈ {0.5,
  0.75, 1}, A and b solved linearly), which does not get stuck on two-peaked curves. Afterwards μ is moved to
  the peak carrying weight > 0.5. ``pref_dir`` = μ, ``pref_ori`` = μ mod 180.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ..engine.contract import TwinLike
from ..monitor import Monitor
from .checks import check_positive, check_values, resolve_units, twin_frame_rate, twin_monitor, unit_coords
from .fitting import batched_lm
from .grid import grating_frames
from .provenance import provenance
from .runner import BURN_IN_FRAMES, DEFAULT_LATENCY_S, ProgressCallback, Timing, run_conditions, window_mean

__all__ = ["direction_tuning", "directions_from", "spread_order", "partial_indices", "global_osi", "global_dsi", "allen_osi_dsi", "bivonmises",
           "fit_bivonmises", "fit_bivonmises_many", "tuning_indices", "to_v3", "from_v3"]


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


def spread_order(directions_deg: Any) -> np.ndarray:
    """Indices of ``directions_deg`` in an order that covers the circle early: each next direction is the one
    farthest from all before it (ties: the first), e.g. 0°, 180°, 90°, 270°, 45°, 135°, … for 16 directions."""
    d = np.mod(np.asarray(directions_deg, dtype=float).ravel(), 360.0)
    if not d.size:
        return np.zeros(0, dtype=int)
    order = [0]
    gap = np.full(d.size, np.inf)
    for _ in range(d.size - 1):
        diff = np.abs(d - d[order[-1]])
        gap = np.minimum(gap, np.minimum(diff, 360.0 - diff))
        gap[order[-1]] = -1.0
        order.append(int(np.argmax(gap)))
    return np.asarray(order, dtype=int)


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


def _bvm_model(th: np.ndarray):
    def model(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, kappa, phi, amp, base = (p[:, i:i + 1] for i in range(5))
        c = np.cos(th[None] - mu)
        s = np.sin(th[None] - mu)
        e1 = np.exp(kappa * (c - 1))
        e2 = np.exp(kappa * (-c - 1))
        mix = phi * e1 + (1 - phi) * e2
        f = amp * mix + base
        J = np.stack([amp * kappa * s * (phi * e1 - (1 - phi) * e2),
                      amp * (phi * e1 * (c - 1) + (1 - phi) * e2 * (-c - 1)),
                      amp * (e1 - e2), mix, np.ones_like(f)], -1)
        return f, J
    return model


def fit_bivonmises_many(curves: np.ndarray, directions_deg: np.ndarray) -> dict[str, np.ndarray]:
    """Bi-von-Mises fits of every row of curves [U, D] at once. Each unit starts from the best point of a grid
    over (μ every 5°, κ, φ ∈ {0.5, 0.75, 1}) with amplitude and baseline solved linearly, then Levenberg–Marquardt with
    the bounds κ ∈ [0, 60], φ ∈ [0, 1], A, b ≥ 0. Returns arrays mu (deg, peak with weight ≥ 0.5), kappa, phi,
    amplitude, baseline, r2."""
    y = np.atleast_2d(np.asarray(curves, dtype=float))
    th = np.radians(np.asarray(directions_deg, dtype=float))
    if y.shape[1] != th.size or th.size < 5:
        raise ValueError(f"need one value per direction (≥ 5 directions), got curves {y.shape} for {th.size} directions")
    U = len(y)
    out = {k: np.full(U, np.nan) for k in _FIT_KEYS}
    ok = np.all(np.isfinite(y), axis=1) & (np.ptp(y, axis=1) > 0)
    if not ok.any():
        return out
    yy = y[ok]
    # grid start: basis curves E [C, D]; A, b by least squares per (unit, candidate)
    mus = np.radians(np.arange(0, 360, 5.0))
    kappas = np.array([0.3, 0.7, 1.5, 3, 6, 12, 25, 50])
    phis = np.linspace(0.5, 1, 3)
    M, K, P = np.meshgrid(mus, kappas, phis, indexing="ij")
    M, K, P = M.ravel(), K.ravel(), P.ravel()
    E = (P[:, None] * np.exp(K[:, None] * (np.cos(th[None] - M[:, None]) - 1))
         + (1 - P[:, None]) * np.exp(K[:, None] * (np.cos(th[None] + np.pi - M[:, None]) - 1)))
    Ec = E - E.mean(1, keepdims=True)
    yc = yy - yy.mean(1, keepdims=True)
    # the grid only picks a starting point, so float32 [U, C] arrays serve (half the memory traffic)
    f32 = np.float32
    A = np.clip((yc.astype(f32) @ Ec.T.astype(f32)) / (Ec**2).sum(1).astype(f32)[None], 0, None)  # [U, C]
    b = np.clip(yy.mean(1, keepdims=True).astype(f32) - A * E.mean(1).astype(f32)[None], 0, None)
    sse = ((yy**2).sum(1).astype(f32)[:, None] + A * (A * (E**2).sum(1).astype(f32)[None]
                                                        - 2 * (yy.astype(f32) @ E.T.astype(f32)))
           + b * (b * th.size - 2 * yy.sum(1, keepdims=True).astype(f32) + 2 * A * E.sum(1).astype(f32)[None]))
    best = np.argmin(sse, axis=1)
    p0 = np.c_[M[best], K[best], P[best], A[np.arange(len(yy)), best], b[np.arange(len(yy)), best]]
    p, cost = batched_lm(_bvm_model(th), yy, p0, [-np.inf, 0, 0, 0, 0], [np.inf, KAPPA_MAX, 1, np.inf, np.inf])
    mu, kappa, phi, amp, base = p.T
    swap = phi < 0.5  # report the peak that carries the larger weight
    mu = np.where(swap, mu + np.pi, mu)
    phi = np.where(swap, 1 - phi, phi)
    ss_tot = (yc**2).sum(1)
    vals = {"mu": np.mod(np.degrees(mu), 360), "kappa": kappa, "phi": phi, "amplitude": amp, "baseline": base,
            "r2": 1 - cost / np.where(ss_tot > 0, ss_tot, np.nan)}
    for k, v in vals.items():
        out[k][ok] = v
    return out


def fit_bivonmises(curve: np.ndarray, directions_deg: np.ndarray) -> dict[str, float]:
    """Bi-von-Mises fit of one tuning curve (see :func:`fit_bivonmises_many`): mu (deg), kappa, phi ≥ 0.5,
    amplitude, baseline, r2."""
    y = np.asarray(curve, dtype=float)
    if y.ndim != 1 or y.shape != np.shape(directions_deg) or y.size < 5:
        raise ValueError(f"need a 1-D curve with one value per direction (≥ 5), got {y.shape} vs "
                         f"{np.shape(directions_deg)}")
    return {k: float(v[0]) for k, v in fit_bivonmises_many(y[None], directions_deg).items()}


def with_tuning_indices(data: dict[str, Any], coords: dict[str, Any], indices: dict[str, Any], zero_direction: str,
                        zero_orientation: str) -> xr.Dataset:
    """The tuning Dataset: ``data`` plus one per-unit variable per index of :func:`tuning_indices`, the angles
    labelled with their convention (v2, counter-clockwise; ``zero_direction``/``zero_orientation`` say what 0° is
    for the stimulus used)."""
    data = dict(data)
    for k, v in indices.items():
        data[k] = (("unit",), np.asarray(v, dtype=np.float64))
    ds = xr.Dataset(data, coords=coords)
    for k in ("pref_dir", "argmax_dir", "vector_dir"):
        ds[k].attrs.update(units="deg", convention=f"v2: 0 = {zero_direction}, counter-clockwise")
    for k in ("pref_ori", "vector_ori"):
        ds[k].attrs.update(units="deg", convention=f"v2: 0 = {zero_orientation}, counter-clockwise, mod 180")
    return ds


def tuning_indices(curves: np.ndarray, directions_deg: np.ndarray) -> dict[str, np.ndarray]:
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
    fit = fit_bivonmises_many(curves, d)
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


_NO_FIT = ("mu", "kappa", "phi", "amplitude", "baseline", "r2")


def partial_indices(curves: np.ndarray, directions_deg: np.ndarray) -> dict[str, np.ndarray]:
    """The cheap indices of :func:`tuning_indices` for curves measured at only some directions so far: osi, dsi,
    gosi, gdsi, vector_dir/ori; ``pref_dir``/``pref_ori`` are the vector-sum angles (no fit: it needs ≥ 5
    directions and costs seconds at 10,000 units), ``fit_*`` NaN."""
    curves = np.asarray(curves, dtype=float)
    d = np.asarray(directions_deg, dtype=float)
    osi, dsi, argmax_dir = allen_osi_dsi(curves, d)
    r = np.clip(curves, 0, None)
    th = np.radians(d)
    vector_dir = np.mod(np.degrees(np.angle((r * np.exp(1j * th)).sum(-1))), 360.0)
    vector_ori = np.mod(np.degrees(np.angle((r * np.exp(2j * th)).sum(-1))) / 2, 180.0)
    nan = np.full(len(curves), np.nan)
    return {"osi": osi, "dsi": dsi, "gosi": global_osi(curves, d), "gdsi": global_dsi(curves, d),
            "pref_dir": vector_dir, "pref_ori": vector_ori, "argmax_dir": argmax_dir, "vector_dir": vector_dir,
            "vector_ori": vector_ori, "fit_osi": nan, "fit_dsi": nan, **{f"fit_{k}": nan for k in _NO_FIT}}


def _partial_dataset(twin: TwinLike, ids: np.ndarray, dirs: np.ndarray, curves: np.ndarray, total: int
                     ) -> xr.Dataset:
    """A provisional direction-tuning Dataset of the directions done so far (sorted), for streaming displays."""
    order = np.argsort(dirs)
    dirs, curves = dirs[order], curves[:, order]
    coords = unit_coords(twin, ids)
    coords["direction"] = ("direction", dirs, {"units": "deg"})
    data = {"tuning": (("unit", "direction"), curves.astype(np.float32))}
    data.update({k: (("unit",), np.asarray(v, dtype=np.float64)) for k, v in partial_indices(curves, dirs).items()})
    return xr.Dataset(data, coords=coords, attrs={"partial": 1, "directions_done": len(dirs),
                                                  "directions_total": int(total)})


# --- the experiment ------------------------------------------------------------------------------------------

def _per_unit(name: str, value: Any, n: int, allow_zero: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full(n, check_positive(name, float(arr), allow_zero=allow_zero))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a number or one value per selected unit ({n}), got shape {arr.shape}")
    for v in arr:
        check_positive(name, v, allow_zero=allow_zero)
    return arr


def direction_tuning(twin: TwinLike, directions: int | Any = 16, sf_cpd: float | Any = 0.04, tf_hz: float | Any = 2.0,
                     duration_s: float = 2.0, contrast: float = 1.0, units: Any = None, *,
                     latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5,
                     aperture: tuple[float, float, float] | None = None, repeats_phase: int = 1,
                     monitor: Monitor | None = None, keep_traces: bool = True, batch_size: int | None = None,
                     progress: ProgressCallback | None = None, show_progress: bool = True,
                     seed: int = 0, cancel: threading.Event | None = None,
                     partial: Callable[[xr.Dataset], None] | None = None) -> xr.Dataset:
    """Drifting-grating direction tuning of every selected unit.

    One condition video per direction (grey pre-blank ≥ burn-in, ``duration_s`` of grating, grey tail ≥ latency),
    stacked into batched ``twin.predict`` calls. ``sf_cpd`` / ``tf_hz`` are one value for all units or one value
    per selected unit (e.g. each unit's preferred SF/TF from :func:`sf_tuning`); units sharing a value pair share
    videos. ``repeats_phase`` > 1 repeats every direction at evenly spaced starting phases and averages. Returns a
    Dataset with ``tuning`` (unit, direction) window means, ``response`` (unit, direction, time) traces when
    ``keep_traces``, ``baseline`` (grey response), per-unit ``sf_cpd``/``tf_hz`` used, and osi, dsi, gosi, gdsi,
    pref_dir, pref_ori, fit_* (see :func:`tuning_indices`). Provenance in ``.attrs``.
    """
    dirs = directions_from(directions)
    contrast = check_positive("contrast", contrast)
    if contrast > 1:
        raise ValueError(f"contrast must be in (0, 1], got {contrast}")
    if int(repeats_phase) < 1:
        raise ValueError(f"repeats_phase must be ≥ 1, got {repeats_phase}")
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    timing = Timing.make(duration_s, latency_s, fr, pre_s)
    ids = resolve_units(twin, units)
    sfs = _per_unit("sf_cpd", sf_cpd, len(ids))
    tfs = _per_unit("tf_hz", tf_hz, len(ids), allow_zero=True)
    phases = np.arange(int(repeats_phase)) * 360.0 / int(repeats_phase)
    pairs, group = np.unique(np.c_[sfs, tfs], axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    n_cond = len(dirs) * len(phases)
    total = n_cond * len(pairs)
    resp = np.empty((len(dirs), timing.total, len(ids)), dtype=np.float32)
    order = spread_order(dirs)
    n_phase = len(phases)
    start, stop = timing.window(latency_s)
    for gi, (sf, tf) in enumerate(pairs):
        members = np.flatnonzero(group == gi)
        conds = [(dirs[k], p) for k in order for p in phases]
        raw = np.empty((len(dirs), n_phase, timing.total, len(members)), dtype=np.float32)

        def video(i: int, sf: float = sf, tf: float = tf, conds: list = conds) -> np.ndarray:
            d, p = conds[i]
            return timing.pad(grating_frames(d, sf, tf, duration_s, contrast=contrast, phase_deg=p,
                                             aperture=aperture, frame_rate=fr, monitor=mon)[:timing.stim])

        def keep(i: int, r: np.ndarray, raw: np.ndarray = raw) -> np.ndarray:
            raw[order[i // n_phase], i % n_phase] = r  # stored at its direction's place, whatever the run order
            return np.zeros(0, dtype=np.float32)

        def after_batch(done: int, _n: int, g0: int = gi * n_cond, raw: np.ndarray = raw) -> None:
            if progress is not None:
                progress(g0 + done, total)
            k = done // n_phase
            if partial is not None and len(pairs) == 1 and 0 < k < len(dirs):
                idx = order[:k]
                curves = window_mean(raw[idx].mean(axis=1), start, stop).T
                partial(_partial_dataset(twin, ids, dirs[idx], curves, len(dirs)))

        run_conditions(twin, video, n_cond, ids[members], batch_size=batch_size, progress=after_batch, reduce=keep,
                       desc="direction tuning" + (f" ({gi + 1}/{len(pairs)})" if len(pairs) > 1 else ""),
                       show_progress=show_progress, cancel=cancel,
                       # streaming: two opposite directions first, so the first provisional result comes sooner
                       first_batch=2 * n_phase if partial is not None and len(pairs) == 1 else None)
        resp[:, :, members] = raw.mean(axis=1)
    curves = window_mean(resp, start, stop).T  # [U, D]
    baseline = window_mean(resp, BURN_IN_FRAMES, timing.pre).mean(0) if timing.pre > BURN_IN_FRAMES else np.full(len(ids), np.nan)
    idx = tuning_indices(curves, dirs)

    coords = unit_coords(twin, ids)
    coords["direction"] = ("direction", dirs, {"units": "deg", "convention": "v2: 0 = rightward, counter-clockwise"})
    data = {"tuning": (("unit", "direction"), curves.astype(np.float32),
                       {"long_name": "mean response in the latency-shifted window"}),
            "baseline": (("unit",), baseline.astype(np.float32), {"long_name": "mean response to grey"}),
            "sf_cpd": (("unit",), sfs, {"units": "cycles/deg"}), "tf_hz": (("unit",), tfs, {"units": "Hz"})}
    if keep_traces:
        coords["time"] = ("time", (np.arange(timing.total) - timing.pre) / fr, {"units": "s",
                                                                               "long_name": "time from stimulus onset"})
        data["response"] = (("unit", "direction", "time"), np.ascontiguousarray(resp.transpose(2, 0, 1)))
    ds = with_tuning_indices(data, coords, idx, "vertical bar moving right", "vertical bars")
    ds.attrs.update(provenance(twin, "direction_tuning", dict(
        directions=dirs, sf_cpd=pairs[:, 0] if len(pairs) > 1 else float(pairs[0, 0]),
        tf_hz=pairs[:, 1] if len(pairs) > 1 else float(pairs[0, 1]), duration_s=duration_s, contrast=contrast,
        latency_s=latency_s, pre_s=pre_s, aperture=aperture, repeats_phase=int(repeats_phase),
        window_frames=[start, stop], stimulus="DriftingGrating (sine)"), seed=seed, monitor=mon))
    return ds


