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
from tqdm.auto import tqdm

from ..engine.contract import TwinLike
from ..monitor import Monitor
from .checks import check_positive, check_values, resolve_units, twin_frame_rate, twin_monitor, unit_coords
from .fitting import bivonmises, fit_bivonmises, fit_bivonmises_many
from .grid import grating_frames
from .provenance import provenance
from .runner import (BURN_IN_FRAMES, DEFAULT_LATENCY_S, MAX_FRAMES_PER_CALL, ProgressCallback, Timing, run_conditions,
                     window_mean)
from .streaming import PartialCallback, label_provisional, spread_order

__all__ = ["direction_tuning", "directions_from", "spread_order", "partial_indices", "tuning_from_sf_tf", "global_osi",
           "global_dsi", "allen_osi_dsi", "bivonmises", "fit_bivonmises", "fit_bivonmises_many", "tuning_indices",
           "to_v3", "from_v3"]


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


def _partial_dataset(twin: TwinLike, ids: np.ndarray, dirs: np.ndarray, curves: np.ndarray, per_unit: dict[str, Any],
                     **counts: int) -> xr.Dataset:
    """A provisional direction-tuning Dataset of the directions done so far (sorted) for the units measured so far,
    for streaming displays; ``counts``: conditions_done/_total (videos), directions_total, units_total."""
    order = np.argsort(dirs)
    dirs, curves = dirs[order], curves[:, order]
    coords = unit_coords(twin, ids)
    coords["direction"] = ("direction", dirs, {"units": "deg"})
    data = {"tuning": (("unit", "direction"), curves.astype(np.float32))}
    data.update({k: (("unit",), np.asarray(v, dtype=np.float64)) for k, v in per_unit.items()})
    data.update({k: (("unit",), np.asarray(v, dtype=np.float64)) for k, v in partial_indices(curves, dirs).items()})
    return label_provisional(xr.Dataset(data, coords=coords), counts.pop("conditions_done"),
                             counts.pop("conditions_total"), directions_done=len(dirs), units_done=len(ids), **counts)


def tuning_from_sf_tf(twin: TwinLike, grid: xr.Dataset) -> xr.Dataset:
    """A provisional direction-tuning result read off an SF × TF result (:func:`~.spatial_temporal.sf_tf_tuning`,
    final or provisional): each unit's curve over the grid's directions at its best (SF, TF) pair (``sf_cpd``,
    ``tf_hz``: that pair), with the indices of :func:`partial_indices`. Always labelled provisional: the grid is
    coarse and was measured to find each unit's preferred pair, before its direction tuning there. Attrs as a
    streamed direction-tuning result's (directions and units done and in all) plus ``sf_tf_pairs``."""
    response = grid["response"].values  # [U, SF, TF, D]
    n_units, n_sf, n_tf, n_dirs = response.shape
    best = np.argmax(grid["tuning"].values.reshape(n_units, -1), axis=1)
    bi, bj = np.unravel_index(best, (n_sf, n_tf))
    curves = response[np.arange(n_units), bi, bj, :]
    per_unit = {"sf_cpd": grid["sf"].values[bi], "tf_hz": grid["tf"].values[bj]}
    done = int(grid.attrs.get("conditions_done", n_sf * n_tf * n_dirs))
    total = int(grid.attrs.get("conditions_total", done))
    ds = _partial_dataset(twin, grid["unit"].values, grid["direction"].values, curves, per_unit,
                          conditions_done=done, conditions_total=total,
                          directions_total=total // (n_sf * n_tf), units_total=n_units)
    ds.attrs["sf_tf_pairs"] = n_sf * n_tf
    return ds


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


def _run_directions(twin: TwinLike, ids: np.ndarray, dirs: np.ndarray, phases: np.ndarray, pairs: np.ndarray,
                    group: np.ndarray, video: Callable[[float, float, float, float], np.ndarray], frames: int,
                    window: tuple[int, int], *, batch_size: int | None, progress: ProgressCallback | None,
                    show_progress: bool, cancel: threading.Event | None, partial: PartialCallback | None) -> np.ndarray:
    """Run every (direction, phase) condition for each SF/TF pair's units; returns responses [D, T, U] (mean over
    phases). Directions run in :func:`spread_order`, in rounds of ``batch_size`` conditions (one ``predict`` call per
    pair and round; the pairs with the most units first), the first round two opposite directions only (a first
    provisional result sooner). ``partial`` gets a provisional result after each round (and, in the first, after
    each pair: its units appear). The calls are the same whether streamed or not (a batch's composition can change
    a twin's float rounding), so the result is too."""
    if isinstance(progress, bool):  # progress=True/False means "show a bar or not", as in run_conditions
        show_progress, progress = progress, None
    n_phase = len(phases)
    n_cond = len(dirs) * n_phase
    total = n_cond * len(pairs)
    order = spread_order(dirs)
    conds = [(dirs[k], p) for k in order for p in phases]
    size = int(batch_size) if batch_size is not None else max(1, MAX_FRAMES_PER_CALL // frames)
    if size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    first = 2 * n_phase if 2 * n_phase < min(size, n_cond) else size
    bounds = [0] + list(range(first, n_cond, size)) + [n_cond]
    members = [np.flatnonzero(group == g) for g in range(len(pairs))]
    pair_order = sorted(range(len(pairs)), key=lambda g: -len(members[g]))
    raw = np.empty((len(dirs), n_phase, frames, len(ids)), dtype=np.float32)
    done = 0
    with tqdm(total=total, desc="direction tuning", disable=not show_progress, leave=False) as bar:
        for a, b in zip(bounds, bounds[1:]):
            for j, g in enumerate(pair_order):
                def keep(i: int, r: np.ndarray, a: int = a, cols: np.ndarray = members[g]) -> np.ndarray:
                    raw[order[(a + i) // n_phase], (a + i) % n_phase][:, cols] = r  # at its direction's place
                    return np.zeros(0, dtype=np.float32)

                sf, tf = pairs[g]
                run_conditions(twin, lambda i, a=a, sf=sf, tf=tf: video(*conds[a + i], sf, tf), b - a, ids[members[g]],
                               batch_size=b - a, reduce=keep, show_progress=False, cancel=cancel)
                done += b - a
                bar.update(b - a)
                if progress is not None:
                    progress(done, total)
                k = b // n_phase
                if partial is not None and 0 < k < len(dirs) and (a == 0 or j == len(pair_order) - 1):
                    cols = np.sort(np.concatenate([members[h] for h in pair_order[:j + 1]])) if a == 0 else \
                        np.arange(len(ids))
                    curves = window_mean(raw[order[:k]].mean(axis=1), *window).T[cols]
                    per_unit = {"sf_cpd": pairs[group[cols], 0], "tf_hz": pairs[group[cols], 1]}
                    partial(_partial_dataset(twin, ids[cols], dirs[order[:k]], curves, per_unit,
                                             conditions_done=done, conditions_total=total,
                                             directions_total=len(dirs), units_total=len(ids)))
    return raw.mean(axis=1) if n_phase > 1 else raw[:, 0]


def direction_tuning(twin: TwinLike, directions: int | Any = 16, sf_cpd: float | Any = 0.04, tf_hz: float | Any = 2.0,
                     duration_s: float = 2.0, contrast: float = 1.0, units: Any = None, *,
                     latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5,
                     aperture: tuple[float, float, float] | None = None, repeats_phase: int = 1,
                     monitor: Monitor | None = None, keep_traces: bool = True, batch_size: int | None = None,
                     progress: ProgressCallback | None = None, show_progress: bool = True,
                     seed: int = 0, cancel: threading.Event | None = None,
                     partial: PartialCallback | None = None) -> xr.Dataset:
    """Drifting-grating direction tuning of every selected unit.

    One condition video per direction (grey pre-blank ≥ burn-in, ``duration_s`` of grating, grey tail ≥ latency),
    stacked into batched ``twin.predict`` calls. ``sf_cpd`` / ``tf_hz`` are one value for all units or one value
    per selected unit (e.g. each unit's preferred SF/TF from :func:`sf_tuning`); units sharing a value pair share
    videos. ``repeats_phase`` > 1 repeats every direction at evenly spaced starting phases and averages. Returns a
    Dataset with ``tuning`` (unit, direction) window means, ``response`` (unit, direction, time) traces when
    ``keep_traces``, ``baseline`` (grey response), per-unit ``sf_cpd``/``tf_hz`` used, and osi, dsi, gosi, gdsi,
    pref_dir, pref_ori, fit_* (see :func:`tuning_indices`). Provenance in ``.attrs``. ``partial`` streams
    provisional results (:mod:`.streaming`; the indices of :func:`partial_indices`, no fit) while it runs.
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
    start, stop = timing.window(latency_s)

    def video(d: float, phase: float, sf: float, tf: float) -> np.ndarray:
        return timing.pad(grating_frames(d, sf, tf, duration_s, contrast=contrast, phase_deg=phase, aperture=aperture,
                                         frame_rate=fr, monitor=mon)[:timing.stim])

    resp = _run_directions(twin, ids, dirs, phases, pairs, group, video, timing.total, (start, stop),
                           batch_size=batch_size, progress=progress, show_progress=show_progress, cancel=cancel,
                           partial=partial)
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


