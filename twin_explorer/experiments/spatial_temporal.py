"""Spatial-frequency, temporal-frequency, contrast-response and size (surround suppression) tuning.

Each experiment shows drifting gratings over a grid (value × direction). A unit's curve is read at its own
preferred direction (the direction with the largest mean response over all values), so one batch serves a
population with mixed preferences. Windows follow :mod:`twin_explorer.experiments.common`.

Fits: SF and TF preferences come from a Gaussian on log2(value) (peak constrained to the tested range);
contrast responses from the Naka–Rushton function R(c) = R0 + Rmax·cⁿ/(cⁿ + c50ⁿ); size tuning gives the
preferred diameter and the suppression index SI = (R_peak − R_largest)/(R_peak − R_grey), clipped to [0, 1].
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import xarray as xr
from scipy.optimize import least_squares

from .common import (hv_bokeh, DEFAULT_LATENCY_S, ProgressCallback, Timing, check_positive, check_values, grating_frames,
                     provenance, resolve_units, run_conditions, twin_frame_rate, twin_monitor, unit_coords)
from .tuning import directions_from
from ..monitor import Monitor

__all__ = ["sf_tuning", "tf_tuning", "sf_tf_tuning", "contrast_response", "size_tuning", "fit_log_gaussian", "naka_rushton",
           "fit_naka_rushton", "plot_value_tuning", "plot_value_population"]


def _grid_experiment(twin: Any, name: str, dim: str, values: np.ndarray, make: Callable[[float, float], np.ndarray],
                     dirs: np.ndarray, duration_s: float, latency_s: float, pre_s: float, units: Any,
                     batch_size: int | None, progress: ProgressCallback | None, show_progress: bool,
                     ) -> tuple[xr.Dataset, np.ndarray]:
    fr = twin_frame_rate(twin)
    timing = Timing.make(duration_s, latency_s, fr, pre_s)
    ids = resolve_units(twin, units)
    conds = [(v, d) for v in values for d in dirs]
    start, stop = timing.window(latency_s)
    base_stop = timing.pre

    def video(i: int) -> np.ndarray:
        v, d = conds[i]
        return timing.pad(make(v, d)[:timing.stim])

    def reduce(i: int, r: np.ndarray) -> np.ndarray:
        return np.stack([r[start:stop].mean(0), r[min(10, base_stop - 1):base_stop].mean(0)])

    out = run_conditions(twin, video, len(conds), ids, batch_size=batch_size, progress=progress, desc=name,
                         show_progress=show_progress, reduce=reduce)  # [C, 2, U]
    grid = out[:, 0].reshape(len(values), len(dirs), -1).transpose(2, 0, 1)  # [U, V, D]
    baseline = out[:, 1].mean(0)
    best = np.argmax(grid.mean(axis=1), axis=1)  # preferred direction per unit
    curve = grid[np.arange(len(ids)), :, best]  # [U, V]
    coords = unit_coords(twin, ids)
    coords[dim] = (dim, values)
    coords["direction"] = ("direction", dirs, {"units": "deg", "convention": "v2"})
    ds = xr.Dataset({"response": (("unit", dim, "direction"), grid.astype(np.float32)),
                     "tuning": (("unit", dim), curve.astype(np.float32),
                                {"long_name": "response at the unit's preferred direction"}),
                     "best_direction": (("unit",), dirs[best], {"units": "deg"}),
                     "baseline": (("unit",), baseline.astype(np.float32), {"long_name": "mean response to grey"})},
                    coords=coords)
    ds.attrs["window_frames"] = [start, stop]
    return ds, curve


def fit_log_gaussian(values: np.ndarray, curve: np.ndarray) -> dict[str, float]:
    """Fit b + A·exp(−(log2 v − log2 v0)²/(2σ²)) with v0 inside the tested range. Returns pref (v0), sigma_oct,
    amplitude, baseline, r2."""
    x = np.log2(np.asarray(values, dtype=float))
    y = np.asarray(curve, dtype=float)
    keys = ("pref", "sigma_oct", "amplitude", "baseline", "r2")
    if not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        return {k: np.nan for k in keys}
    span = float(np.ptp(y))
    k = int(np.argmax(y))

    def f(p: np.ndarray) -> np.ndarray:
        return p[3] + p[2] * np.exp(-((x - p[0]) ** 2) / (2 * p[1] ** 2))

    lo = [x.min(), 0.2, 0, -np.inf]
    hi = [x.max(), 10, np.inf, np.inf]
    best = None
    for s0 in (0.7, 1.5, 3.0):
        p0 = np.clip([x[k], s0, span, y.min()], lo, hi)
        res = least_squares(lambda p: (f(p) - y) / span, p0, bounds=(lo, hi))
        if best is None or res.cost < best.cost:
            best = res
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - 2 * best.cost * span**2 / ss_tot if ss_tot > 0 else np.nan
    return {"pref": float(2 ** best.x[0]), "sigma_oct": float(best.x[1]), "amplitude": float(best.x[2]),
            "baseline": float(best.x[3]), "r2": float(r2)}


def _add_log_fits(ds: xr.Dataset, dim: str, values: np.ndarray, curve: np.ndarray, prefix: str) -> None:
    fits = [fit_log_gaussian(values, c) for c in curve]
    for k in ("pref", "sigma_oct", "amplitude", "baseline", "r2"):
        ds[f"{prefix}_{k}" if k != "pref" else f"pref_{prefix}"] = (("unit",), np.array([f[k] for f in fits]))
    ds[f"argmax_{prefix}"] = (("unit",), values[np.argmax(curve, axis=1)])


def sf_tuning(twin: Any, sf_cpd: Any = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32), directions: int | Any = 8,
              tf_hz: float = 2.0, duration_s: float = 1.0, contrast: float = 1.0, units: Any = None, *,
              latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
              batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
              seed: int = 0) -> xr.Dataset:
    """Spatial-frequency tuning (cycles/degree) at each unit's preferred direction; ``pref_sf`` from a log-Gaussian
    fit, ``argmax_sf`` the best tested value."""
    sfs = np.sort(check_values("sf_cpd", sf_cpd, positive=True, min_len=3))
    dirs = directions_from(directions)
    tf_hz = check_positive("tf_hz", tf_hz, allow_zero=True)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    ds, curve = _grid_experiment(
        twin, "SF tuning", "sf", sfs,
        lambda v, d: grating_frames(d, v, tf_hz, duration_s, contrast=contrast, frame_rate=fr, monitor=mon),
        dirs, duration_s, latency_s, pre_s, units, batch_size, progress, show_progress)
    ds["sf"].attrs["units"] = "cycles/deg"
    _add_log_fits(ds, "sf", sfs, curve, "sf")
    ds.attrs.update(provenance(twin, "sf_tuning", dict(sf_cpd=sfs, directions=dirs, tf_hz=tf_hz, duration_s=duration_s,
                                                       contrast=contrast, latency_s=latency_s, pre_s=pre_s),
                               seed=seed, monitor=mon))
    return ds


def tf_tuning(twin: Any, tf_hz: Any = (0.5, 1, 2, 4, 8, 14), directions: int | Any = 8, sf_cpd: float = 0.04,
              duration_s: float = 2.0, contrast: float = 1.0, units: Any = None, *,
              latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
              batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
              seed: int = 0) -> xr.Dataset:
    """Temporal-frequency tuning (Hz) at each unit's preferred direction; ``pref_tf`` from a log-Gaussian fit."""
    tfs = np.sort(check_values("tf_hz", tf_hz, positive=True, min_len=3))
    if tfs.max() > twin_frame_rate(twin) / 2:
        raise ValueError(f"tf_hz up to {tfs.max()} exceeds the Nyquist limit {twin_frame_rate(twin) / 2} Hz")
    dirs = directions_from(directions)
    sf_cpd = check_positive("sf_cpd", sf_cpd)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    ds, curve = _grid_experiment(
        twin, "TF tuning", "tf", tfs,
        lambda v, d: grating_frames(d, sf_cpd, v, duration_s, contrast=contrast, frame_rate=fr, monitor=mon),
        dirs, duration_s, latency_s, pre_s, units, batch_size, progress, show_progress)
    ds["tf"].attrs["units"] = "Hz"
    _add_log_fits(ds, "tf", tfs, curve, "tf")
    ds.attrs.update(provenance(twin, "tf_tuning", dict(tf_hz=tfs, directions=dirs, sf_cpd=sf_cpd, duration_s=duration_s,
                                                       contrast=contrast, latency_s=latency_s, pre_s=pre_s),
                               seed=seed, monitor=mon))
    return ds


def sf_tf_tuning(twin: Any, sf_cpd: Any = (0.02, 0.04, 0.08, 0.16, 0.3), tf_hz: Any = (1, 2, 4, 8),
                 directions: int | Any = 8, duration_s: float = 1.0, contrast: float = 1.0, units: Any = None, *,
                 latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
                 batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
                 seed: int = 0) -> xr.Dataset:
    """Joint SF × TF tuning (every pair × direction). ``response`` (unit, sf, tf, direction); ``tuning`` (unit, sf,
    tf) at the unit's preferred direction; ``pref_sf`` from a log-Gaussian fit along SF at the best TF and
    ``pref_tf`` along TF at the best SF (plus ``argmax_sf``/``argmax_tf``)."""
    sfs = np.sort(check_values("sf_cpd", sf_cpd, positive=True, min_len=3))
    tfs = np.sort(check_values("tf_hz", tf_hz, positive=True, min_len=3))
    if tfs.max() > twin_frame_rate(twin) / 2:
        raise ValueError(f"tf_hz up to {tfs.max()} exceeds the Nyquist limit {twin_frame_rate(twin) / 2} Hz")
    dirs = directions_from(directions)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    pairs = [(a, b) for a in sfs for b in tfs]
    ds, curve = _grid_experiment(
        twin, "SF × TF tuning", "pair", np.arange(len(pairs)),
        lambda v, d: grating_frames(d, pairs[int(v)][0], pairs[int(v)][1], duration_s, contrast=contrast,
                                    frame_rate=fr, monitor=mon),
        dirs, duration_s, latency_s, pre_s, units, batch_size, progress, show_progress)
    U = curve.shape[0]
    grid = ds["response"].values.reshape(U, len(sfs), len(tfs), len(dirs))
    tuning = curve.reshape(U, len(sfs), len(tfs))
    out = ds.drop_vars(["response", "tuning"]).drop_dims("pair")
    out = out.assign_coords(sf=("sf", sfs, {"units": "cycles/deg"}), tf=("tf", tfs, {"units": "Hz"}))
    out["response"] = (("unit", "sf", "tf", "direction"), grid)
    out["tuning"] = (("unit", "sf", "tf"), tuning, {"long_name": "response at the unit's preferred direction"})
    bi, bj = np.unravel_index(np.argmax(tuning.reshape(U, -1), axis=1), tuning.shape[1:])
    along_sf = tuning[np.arange(U), :, bj]
    along_tf = tuning[np.arange(U), bi, :]
    _add_log_fits(out, "sf", sfs, along_sf, "sf")
    _add_log_fits(out, "tf", tfs, along_tf, "tf")
    out.attrs.update(provenance(twin, "sf_tf_tuning", dict(sf_cpd=sfs, tf_hz=tfs, directions=dirs,
                                                           duration_s=duration_s, contrast=contrast,
                                                           latency_s=latency_s, pre_s=pre_s), seed=seed, monitor=mon))
    return out


def naka_rushton(c: np.ndarray, r0: float, rmax: float, c50: float, n: float) -> np.ndarray:
    """R(c) = R0 + Rmax·cⁿ/(cⁿ + c50ⁿ)."""
    c = np.asarray(c, dtype=float)
    return r0 + rmax * c**n / (c**n + c50**n)


def fit_naka_rushton(contrasts: np.ndarray, curve: np.ndarray) -> dict[str, float]:
    """Least-squares Naka–Rushton fit (c50 in [0.005, 2], n in [0.3, 8]). Returns r0, rmax, c50, n, r2."""
    c = np.asarray(contrasts, dtype=float)
    y = np.asarray(curve, dtype=float)
    keys = ("r0", "rmax", "c50", "n", "r2")
    if not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        return {k: np.nan for k in keys}
    span = float(np.ptp(y))
    lo, hi = [-np.inf, -np.inf, 0.005, 0.3], [np.inf, np.inf, 2.0, 8.0]
    best = None
    for c50 in (0.1, 0.3, 0.6):
        for n in (1.5, 3.0):
            p0 = [y[0], y[-1] - y[0], c50, n]
            res = least_squares(lambda p: (naka_rushton(c, *p) - y) / span, p0, bounds=(lo, hi))
            if best is None or res.cost < best.cost:
                best = res
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - 2 * best.cost * span**2 / ss_tot if ss_tot > 0 else np.nan
    return dict(zip(keys, [*map(float, best.x), float(r2)]))


def contrast_response(twin: Any, contrasts: Any = (0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0), directions: int | Any = 8,
                      sf_cpd: float = 0.04, tf_hz: float = 2.0, duration_s: float = 1.0, units: Any = None, *,
                      latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
                      batch_size: int | None = None, progress: ProgressCallback | None = None,
                      show_progress: bool = True, seed: int = 0) -> xr.Dataset:
    """Contrast-response function at each unit's preferred direction with a Naka–Rushton fit (``c50``, ``n``,
    ``rmax``, ``r0``, ``nr_r2``)."""
    cs = np.sort(check_values("contrasts", contrasts, positive=True, hi=1.0, min_len=4))
    dirs = directions_from(directions)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    ds, curve = _grid_experiment(
        twin, "contrast response", "contrast", cs,
        lambda v, d: grating_frames(d, sf_cpd, tf_hz, duration_s, contrast=v, frame_rate=fr, monitor=mon),
        dirs, duration_s, latency_s, pre_s, units, batch_size, progress, show_progress)
    fits = [fit_naka_rushton(cs, c) for c in curve]
    for k in ("r0", "rmax", "c50", "n"):
        ds[k] = (("unit",), np.array([f[k] for f in fits]))
    ds["nr_r2"] = (("unit",), np.array([f["r2"] for f in fits]))
    ds.attrs.update(provenance(twin, "contrast_response", dict(contrasts=cs, directions=dirs, sf_cpd=sf_cpd, tf_hz=tf_hz,
                                                               duration_s=duration_s, latency_s=latency_s, pre_s=pre_s),
                               seed=seed, monitor=mon))
    return ds


def size_tuning(twin: Any, center_deg: tuple[float, float] = (0.0, 0.0),
                diameters_deg: Any = (5, 10, 20, 30, 45, 60, 90), directions: int | Any = 8, sf_cpd: float = 0.04,
                tf_hz: float = 2.0, duration_s: float = 1.0, contrast: float = 1.0, units: Any = None, *,
                latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
                batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
                seed: int = 0) -> xr.Dataset:
    """Size tuning with circular grating apertures of growing diameter centred at ``center_deg`` (az, el; e.g. a
    unit's RF centre from :func:`receptive_fields`). Gives ``pref_size`` (argmax diameter) and the suppression index
    ``si`` = (R_peak − R_largest)/(R_peak − R_grey), clipped to [0, 1]."""
    ds_ = np.sort(check_values("diameters_deg", diameters_deg, positive=True, min_len=3))
    cen = np.asarray(center_deg, dtype=float)
    if cen.shape != (2,) or not np.all(np.isfinite(cen)):
        raise ValueError(f"center_deg must be (azimuth, elevation) in degrees, got {center_deg!r}")
    dirs = directions_from(directions)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    ds, curve = _grid_experiment(
        twin, "size tuning", "diameter", ds_,
        lambda v, d: grating_frames(d, sf_cpd, tf_hz, duration_s, contrast=contrast, frame_rate=fr, monitor=mon,
                                    aperture=(cen[0], cen[1], v)),
        dirs, duration_s, latency_s, pre_s, units, batch_size, progress, show_progress)
    ds["diameter"].attrs["units"] = "deg"
    peak = curve.max(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        si = np.clip((peak - curve[:, -1]) / (peak - ds["baseline"].values), 0, 1)
    ds["pref_size"] = (("unit",), ds_[np.argmax(curve, axis=1)], {"units": "deg"})
    ds["si"] = (("unit",), si, {"long_name": "surround suppression index"})
    ds.attrs.update(provenance(twin, "size_tuning", dict(center_deg=cen, diameters_deg=ds_, directions=dirs,
                                                         sf_cpd=sf_cpd, tf_hz=tf_hz, duration_s=duration_s,
                                                         contrast=contrast, latency_s=latency_s, pre_s=pre_s),
                               seed=seed, monitor=mon))
    return ds


# --- plots ---------------------------------------------------------------------------------------------------

_DIMS = ("sf", "tf", "contrast", "diameter")


def _value_dim(ds: xr.Dataset) -> str:
    for d in _DIMS:
        if d in ds.dims:
            return d
    raise ValueError(f"not an SF/TF/contrast/size tuning Dataset (dims {list(ds.dims)})")


def plot_value_tuning(ds: xr.Dataset, unit: int) -> Any:
    """One unit's SF / TF / contrast / size tuning curve (log x axis except size) with its fit and grey level."""
    hv = hv_bokeh()

    dim = _value_dim(ds)
    if int(unit) not in set(ds["unit"].values.tolist()):
        raise ValueError(f"unit {unit} is not in this Dataset")
    u = ds.sel(unit=int(unit))
    x = ds[dim].values
    y = u["tuning"].values
    label = {"sf": "spatial frequency (cpd)", "tf": "temporal frequency (Hz)", "contrast": "contrast",
             "diameter": "aperture diameter (deg)"}[dim]
    layers = [hv.Curve((x, y), label, "response", label="measured").opts(color="black"),
              hv.Scatter((x, y), label, "response").opts(color="black", size=6),
              hv.HLine(float(u["baseline"])).opts(color="grey", line_dash="dotted")]
    fine = np.geomspace(x.min(), x.max(), 200)
    title = f"unit {unit}"
    if dim in ("sf", "tf") and np.isfinite(float(u[f"pref_{dim}"])):
        p = float(u[f"pref_{dim}"])
        fit = float(u[f"{dim}_baseline"]) + float(u[f"{dim}_amplitude"]) * np.exp(
            -((np.log2(fine) - np.log2(p)) ** 2) / (2 * float(u[f"{dim}_sigma_oct"]) ** 2))
        layers.append(hv.Curve((fine, fit), label, "response", label="log-Gaussian").opts(color="crimson"))
        title += f": preferred {p:.3g}"
    elif dim == "contrast" and np.isfinite(float(u["c50"])):
        fit = naka_rushton(fine, float(u["r0"]), float(u["rmax"]), float(u["c50"]), float(u["n"]))
        layers.append(hv.Curve((fine, fit), label, "response", label="Naka–Rushton").opts(color="crimson"))
        title += f": c50 {float(u['c50']):.2f}, n {float(u['n']):.1f}"
    elif dim == "diameter":
        title += f": preferred {float(u['pref_size']):.0f}°, SI {float(u['si']):.2f}"
    return hv.Overlay(layers).opts(title=title, width=460, height=300, logx=dim != "diameter")


def plot_value_population(ds: xr.Dataset) -> Any:
    """Population histogram of the experiment's main per-unit number (pref SF/TF, c50 or SI)."""
    hv = hv_bokeh()

    dim = _value_dim(ds)
    key = {"sf": "pref_sf", "tf": "pref_tf", "contrast": "c50", "diameter": "si"}[dim]
    v = ds[key].values
    v = v[np.isfinite(v)]
    if dim in ("sf", "tf"):
        v = np.log2(v)
        key = f"log2 {key}"
    freq, edges = np.histogram(v, bins=20)
    return hv.Histogram((edges, freq), kdims=[key], vdims=["units"]).opts(width=360, height=240, title=key)
