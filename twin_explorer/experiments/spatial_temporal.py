"""Spatial-frequency, temporal-frequency, SF × TF, contrast-response and size tuning: grating grids
(:mod:`.grid`) that differ only in the condition value and the analysis.

Each experiment shows drifting gratings over a grid (value × direction). A unit's curve is read at its own
preferred direction (the direction with the largest mean response over all values), so one batch serves a
population with mixed preferences. Windows follow :mod:`twin_explorer.experiments.runner`.

Fits (:mod:`.fitting`): SF and TF preferences come from a Gaussian on log2(value) (peak constrained to the tested
range); contrast responses from the Naka–Rushton function R(c) = R0 + Rmax·cⁿ/(cⁿ + c50ⁿ); size tuning gives the
preferred diameter and the suppression index SI = (R_peak − R_largest)/(R_peak − R_grey), clipped to [0, 1].
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import xarray as xr

from ..engine.contract import TwinLike
from ..monitor import Monitor
from .checks import check_point, check_positive, check_values, resolve_units, twin_frame_rate, twin_monitor
from .fitting import (LOG_GAUSSIAN_KEYS, fit_log_gaussian, fit_log_gaussian_many, fit_naka_rushton,
                      fit_naka_rushton_many, naka_rushton)
from .grid import GratingGrid, grating_frames, run_grid
from .provenance import provenance
from .runner import DEFAULT_LATENCY_S, ProgressCallback
from .streaming import PartialCallback, label_provisional
from .tuning import directions_from

__all__ = ["sf_tuning", "tf_tuning", "sf_tf_tuning", "contrast_response", "size_tuning", "fit_log_gaussian",
           "naka_rushton", "fit_naka_rushton", "preferred_sf_tf", "check_tf"]

_FREQ = {"sf": ("sf_cpd", "SF tuning", "cycles/deg"), "tf": ("tf_hz", "TF tuning", "Hz")}


def check_tf(twin: TwinLike, tf_hz: Any) -> np.ndarray:
    """Sorted temporal frequencies (≥ 3, positive, below the twin's Nyquist limit)."""
    tfs = np.sort(check_values("tf_hz", tf_hz, positive=True, min_len=3))
    if tfs.max() > twin_frame_rate(twin) / 2:
        raise ValueError(f"tf_hz up to {tfs.max()} exceeds the Nyquist limit {twin_frame_rate(twin) / 2} Hz")
    return tfs


def add_log_fits(ds: xr.Dataset, values: np.ndarray, curves: np.ndarray, prefix: str) -> None:
    """Per-unit log-Gaussian fit of curves [U, V]: ``pref_<prefix>``, ``<prefix>_sigma_oct`` … and ``argmax_<prefix>``."""
    fits = fit_log_gaussian_many(values, curves)
    for k in LOG_GAUSSIAN_KEYS:
        ds[f"{prefix}_{k}" if k != "pref" else f"pref_{prefix}"] = (("unit",), fits[k])
    ds[f"argmax_{prefix}"] = (("unit",), values[np.argmax(curves, axis=1)])


def _frequency_tuning(twin: TwinLike, axis: str, values: Any, directions: Any, other: float, duration_s: float,
                      contrast: float, units: Any, latency_s: float, pre_s: float, monitor: Monitor | None,
                      batch_size: int | None, progress: ProgressCallback | None, show_progress: bool, seed: int,
                      cancel: threading.Event | None, partial: PartialCallback | None) -> xr.Dataset:
    """SF or TF tuning (``axis`` 'sf' or 'tf'): the one code path behind :func:`sf_tuning` and :func:`tf_tuning`."""
    name, label, unit = _FREQ[axis]
    if axis == "sf":
        vals = np.sort(check_values("sf_cpd", values, positive=True, min_len=3))
        other = check_positive("tf_hz", other, allow_zero=True)
    else:
        vals = check_tf(twin, values)
        other = check_positive("sf_cpd", other)
    dirs = directions_from(directions)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)

    def frames(v: float, d: float) -> np.ndarray:
        sf, tf = (v, other) if axis == "sf" else (other, v)
        return grating_frames(d, sf, tf, duration_s, contrast=contrast, frame_rate=fr, monitor=mon)

    def analyse(ds: xr.Dataset, curves: np.ndarray) -> xr.Dataset:
        add_log_fits(ds, vals, curves, axis)
        return ds

    grid = GratingGrid(axis, vals, dirs, frames, label, {"units": unit})
    ds, _ = run_grid(twin, grid, duration_s=duration_s, latency_s=latency_s, pre_s=pre_s, units=units,
                     batch_size=batch_size, progress=progress, show_progress=show_progress, cancel=cancel,
                     analyse=analyse, partial=partial)
    other_name = "tf_hz" if axis == "sf" else "sf_cpd"
    params = {name: vals, "directions": dirs, other_name: other, "duration_s": duration_s, "contrast": contrast,
              "latency_s": latency_s, "pre_s": pre_s}
    ds.attrs.update(provenance(twin, f"{axis}_tuning", params, seed=seed, monitor=mon))
    return ds


def sf_tuning(twin: TwinLike, sf_cpd: Any = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32), directions: int | Any = 8,
              tf_hz: float = 2.0, duration_s: float = 1.0, contrast: float = 1.0, units: Any = None, *,
              latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
              batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
              seed: int = 0, cancel: threading.Event | None = None,
              partial: PartialCallback | None = None) -> xr.Dataset:
    """Spatial-frequency tuning (cycles/degree) at each unit's preferred direction; ``pref_sf`` from a log-Gaussian
    fit, ``argmax_sf`` the best tested value."""
    return _frequency_tuning(twin, "sf", sf_cpd, directions, tf_hz, duration_s, contrast, units, latency_s, pre_s,
                             monitor, batch_size, progress, show_progress, seed, cancel, partial)


def tf_tuning(twin: TwinLike, tf_hz: Any = (0.5, 1, 2, 4, 8, 14), directions: int | Any = 8, sf_cpd: float = 0.04,
              duration_s: float = 2.0, contrast: float = 1.0, units: Any = None, *,
              latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
              batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
              seed: int = 0, cancel: threading.Event | None = None,
              partial: PartialCallback | None = None) -> xr.Dataset:
    """Temporal-frequency tuning (Hz) at each unit's preferred direction; ``pref_tf`` from a log-Gaussian fit."""
    return _frequency_tuning(twin, "tf", tf_hz, directions, sf_cpd, duration_s, contrast, units, latency_s, pre_s,
                             monitor, batch_size, progress, show_progress, seed, cancel, partial)


def _sf_tf_analysis(ds: xr.Dataset, curve: np.ndarray, sfs: np.ndarray, tfs: np.ndarray) -> xr.Dataset:
    """The pair grid as (sf, tf) axes, with log-Gaussian fits along SF at the best TF and along TF at the best SF."""
    U = curve.shape[0]
    responses = ds["response"].values.reshape(U, len(sfs), len(tfs), ds.sizes["direction"])
    tuning = curve.reshape(U, len(sfs), len(tfs))
    out = ds.drop_vars(["response", "tuning"]).drop_dims("pair")
    out = out.assign_coords(sf=("sf", sfs, {"units": "cycles/deg"}), tf=("tf", tfs, {"units": "Hz"}))
    out["response"] = (("unit", "sf", "tf", "direction"), responses)
    out["tuning"] = (("unit", "sf", "tf"), tuning, {"long_name": "response at the unit's preferred direction"})
    bi, bj = np.unravel_index(np.argmax(tuning.reshape(U, -1), axis=1), tuning.shape[1:])
    add_log_fits(out, sfs, tuning[np.arange(U), :, bj], "sf")
    add_log_fits(out, tfs, tuning[np.arange(U), bi, :], "tf")
    return out


def sf_tf_tuning(twin: TwinLike, sf_cpd: Any = (0.02, 0.04, 0.08, 0.16, 0.3), tf_hz: Any = (1, 2, 4, 8),
                 directions: int | Any = 8, duration_s: float = 1.0, contrast: float = 1.0, units: Any = None, *,
                 latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
                 batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
                 seed: int = 0, cancel: threading.Event | None = None,
                 partial: PartialCallback | None = None) -> xr.Dataset:
    """Joint SF × TF tuning (every pair × direction). ``response`` (unit, sf, tf, direction); ``tuning`` (unit, sf,
    tf) at the unit's preferred direction; ``pref_sf`` from a log-Gaussian fit along SF at the best TF and
    ``pref_tf`` along TF at the best SF (plus ``argmax_sf``/``argmax_tf``)."""
    sfs = np.sort(check_values("sf_cpd", sf_cpd, positive=True, min_len=3))
    tfs = check_tf(twin, tf_hz)
    dirs = directions_from(directions)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    pairs = [(a, b) for a in sfs for b in tfs]
    grid = GratingGrid("pair", np.arange(len(pairs)), dirs, lambda v, d: grating_frames(
        d, pairs[int(v)][0], pairs[int(v)][1], duration_s, contrast=contrast, frame_rate=fr, monitor=mon),
        "SF × TF tuning")
    out, _ = run_grid(twin, grid, duration_s=duration_s, latency_s=latency_s, pre_s=pre_s, units=units,
                      batch_size=batch_size, progress=progress, show_progress=show_progress, cancel=cancel,
                      analyse=lambda ds, curve: _sf_tf_analysis(ds, curve, sfs, tfs), partial=partial)
    out.attrs.update(provenance(twin, "sf_tf_tuning", dict(sf_cpd=sfs, tf_hz=tfs, directions=dirs,
                                                           duration_s=duration_s, contrast=contrast,
                                                           latency_s=latency_s, pre_s=pre_s), seed=seed, monitor=mon))
    return out


def contrast_response(twin: TwinLike, contrasts: Any = (0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0),
                      directions: int | Any = 8, sf_cpd: float = 0.04, tf_hz: float = 2.0, duration_s: float = 1.0,
                      units: Any = None, *, latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5,
                      monitor: Monitor | None = None, batch_size: int | None = None,
                      progress: ProgressCallback | None = None, show_progress: bool = True, seed: int = 0,
                      cancel: threading.Event | None = None,
                      partial: PartialCallback | None = None) -> xr.Dataset:
    """Contrast-response function at each unit's preferred direction with a Naka–Rushton fit (``c50``, ``n``,
    ``rmax``, ``r0``, ``nr_r2``)."""
    cs = np.sort(check_values("contrasts", contrasts, positive=True, hi=1.0, min_len=4))
    dirs = directions_from(directions)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    grid = GratingGrid("contrast", cs, dirs, lambda v, d: grating_frames(
        d, sf_cpd, tf_hz, duration_s, contrast=v, frame_rate=fr, monitor=mon), "contrast response")

    def analyse(ds: xr.Dataset, curve: np.ndarray) -> xr.Dataset:
        fits = fit_naka_rushton_many(cs, curve)
        for k in ("r0", "rmax", "c50", "n"):
            ds[k] = (("unit",), fits[k])
        ds["nr_r2"] = (("unit",), fits["r2"])
        return ds

    ds, _ = run_grid(twin, grid, duration_s=duration_s, latency_s=latency_s, pre_s=pre_s, units=units,
                     batch_size=batch_size, progress=progress, show_progress=show_progress, cancel=cancel,
                     analyse=analyse, partial=partial)
    ds.attrs.update(provenance(twin, "contrast_response", dict(contrasts=cs, directions=dirs, sf_cpd=sf_cpd, tf_hz=tf_hz,
                                                               duration_s=duration_s, latency_s=latency_s, pre_s=pre_s),
                               seed=seed, monitor=mon))
    return ds


def size_tuning(twin: TwinLike, center_deg: tuple[float, float] = (0.0, 0.0),
                diameters_deg: Any = (5, 10, 20, 30, 45, 60, 90), directions: int | Any = 8, sf_cpd: float = 0.04,
                tf_hz: float = 2.0, duration_s: float = 1.0, contrast: float = 1.0, units: Any = None, *,
                latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
                batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
                seed: int = 0, cancel: threading.Event | None = None,
                partial: PartialCallback | None = None) -> xr.Dataset:
    """Size tuning with circular grating apertures of growing diameter centred at ``center_deg`` (az, el; e.g. a
    unit's RF centre from :func:`receptive_fields`). Gives ``pref_size`` (argmax diameter) and the suppression index
    ``si`` = (R_peak − R_largest)/(R_peak − R_grey), clipped to [0, 1]."""
    sizes = np.sort(check_values("diameters_deg", diameters_deg, positive=True, min_len=3))
    cen = check_point("center_deg", center_deg)
    dirs = directions_from(directions)
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    grid = GratingGrid("diameter", sizes, dirs, lambda v, d: grating_frames(
        d, sf_cpd, tf_hz, duration_s, contrast=contrast, frame_rate=fr, monitor=mon, aperture=(cen[0], cen[1], v)),
        "size tuning", {"units": "deg"})

    def analyse(ds: xr.Dataset, curve: np.ndarray) -> xr.Dataset:
        peak = curve.max(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            si = np.clip((peak - curve[:, -1]) / (peak - ds["baseline"].values), 0, 1)
        ds["pref_size"] = (("unit",), sizes[np.argmax(curve, axis=1)], {"units": "deg"})
        ds["si"] = (("unit",), si, {"long_name": "surround suppression index"})
        return ds

    ds, _ = run_grid(twin, grid, duration_s=duration_s, latency_s=latency_s, pre_s=pre_s, units=units,
                     batch_size=batch_size, progress=progress, show_progress=show_progress, cancel=cancel,
                     analyse=analyse, partial=partial)
    ds.attrs.update(provenance(twin, "size_tuning", dict(center_deg=cen, diameters_deg=sizes, directions=dirs,
                                                         sf_cpd=sf_cpd, tf_hz=tf_hz, duration_s=duration_s,
                                                         contrast=contrast, latency_s=latency_s, pre_s=pre_s),
                               seed=seed, monitor=mon))
    return ds


# --- each unit's preferred SF/TF ------------------------------------------------------------------------------

PROBE_SF, PROBE_TF = (0.02, 0.04, 0.08, 0.16, 0.3), (1.0, 2.0, 4.0, 8.0)  # coarse grid to find a preference


def _round_log2(values: np.ndarray, step: float) -> np.ndarray:
    return 2.0 ** (np.round(np.log2(values) / step) * step)


def preferred_sf_tf(twin: TwinLike, units: Any = None, *, truth: Any = None, step_oct: float = 1.0,
                    batch_size: int | None = None, progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None,
                    partial: PartialCallback | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Each unit's preferred (SF, TF), rounded to a ``step_oct`` log2 grid (so units share grating videos), and
    where they came from: ``truth`` (a DataFrame with sf_cpd/tf_hz indexed by readout id, e.g. the synthetic
    mouse's) when it covers the units, else a coarse SF × TF measurement (:func:`sf_tf_tuning`, 8 directions).
    ``partial`` gets that measurement's provisional results while it runs and then the whole measurement, labelled
    provisional as well (it comes before the preferences it is measured for); nothing when the truth is used."""
    ids = resolve_units(twin, units)
    if truth is not None and {"sf_cpd", "tf_hz"} <= set(truth.columns) and set(ids) <= set(truth.index):
        sf, tf, source = truth.loc[ids, "sf_cpd"].to_numpy(float), truth.loc[ids, "tf_hz"].to_numpy(float), "truth"
    else:
        probe = sf_tf_tuning(twin, sf_cpd=PROBE_SF, tf_hz=PROBE_TF, directions=8, duration_s=1.0, units=ids,
                             batch_size=batch_size, show_progress=False, progress=progress, cancel=cancel,
                             partial=partial)
        if partial is not None:
            n = len(PROBE_SF) * len(PROBE_TF) * 8
            partial(label_provisional(probe.copy(), n, n))
        sf = np.where(np.isfinite(probe["pref_sf"].values), probe["pref_sf"].values, probe["argmax_sf"].values)
        tf = np.where(np.isfinite(probe["pref_tf"].values), probe["pref_tf"].values, probe["argmax_tf"].values)
        source = "measured"
    sf = np.clip(_round_log2(sf, step_oct), 0.005, 0.5)
    tf = np.clip(_round_log2(tf, step_oct), 0.25, 12.0)
    return sf, tf, source
