"""Prediction-performance metrics of a twin against repeated recordings: CC_abs, CC_max, CC_norm, oracle.

Definitions follow the fnn evaluation code (paper-facts §2). Input responses are [repeats, time, units]
(a 2-D [repeats, time] array is one unit); missing repeats are NaN-padded. Predictions are [time, units]
or [repeats, time, units] (then averaged over repeats first).

* CC_abs  = Pearson r over time between the trial-averaged prediction and the trial-averaged response.
* CC_max  = sqrt(SP / Var_t(ȳ)) with ȳ the trial average, Var ddof = 0, and the Sahani–Linden signal power
  SP = (n·P − TP)/(n − 1), P = Var_t(ȳ) (ddof 1), TP = mean over repeats of Var_t(y_r) (ddof 1).
  n is the number of repeats; with NaN-padded (incomplete) repeats it is the effective number
  n = 1 / mean_t(1 / n_t), the harmonic mean of the per-time-point repeat counts, which keeps
  SP unbiased because E[Var_t(ȳ)] = SP + NP · mean_t(1/n_t). NaN where SP < 0.
* CC_norm = CC_abs / CC_max (can exceed 1 through estimation noise).
* oracle  = leave-one-out correlation: each trial against the mean of the other trials, pooled over
  all (repeat, time) samples of a unit.

:func:`twin_performance` applies them to a twin and a recording with repeated "oracle" clips (the layout of
``SyntheticMouse.record``) the fnn way: drop ``burn_in`` frames of every clip, concatenate the clips in time
(NaN-padding clips with fewer repeats), predict each clip once with its recorded behaviour.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np
import xarray as xr

import twin_explorer

from ..engine.contract import TwinLike
from .plotting import plot_performance  # noqa: F401  (its former home: training.report imports it from here)

__all__ = ["cc_abs", "cc_max", "cc_norm", "oracle_correlation", "performance", "twin_performance", "plot_performance"]

_RESP_ACCEPTED = ("accepted: responses as [repeats, time, units] or [repeats, time] (one unit), real numbers, "
                  "NaN for missing repeats")


def _responses(responses: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return responses as float64 [R, T, U] and whether the input was a single unit ([R, T])."""
    arr = np.asarray(responses)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"responses have dtype {arr.dtype}; {_RESP_ACCEPTED}")
    single = arr.ndim == 2
    if single:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"responses have {arr.ndim} dimensions (shape {arr.shape}); {_RESP_ACCEPTED}")
    if arr.shape[0] < 2:
        raise ValueError(f"responses have {arr.shape[0]} repeat(s) (shape {arr.shape}); at least 2 are needed; "
                         f"{_RESP_ACCEPTED}")
    if arr.shape[1] < 3:
        raise ValueError(f"responses cover {arr.shape[1]} time points (shape {arr.shape}); at least 3 are needed")
    if np.isinf(arr).any():
        raise ValueError(f"responses contain infinite values; {_RESP_ACCEPTED}")
    return arr.astype(np.float64), single


def _predictions(predictions: np.ndarray, shape: tuple[int, int, int], single: bool) -> np.ndarray:
    """Return predictions as float64 [T, U] (averaged over repeats when given per repeat)."""
    R, T, U = shape
    arr = np.asarray(predictions)
    accepted = (f"accepted: predictions [time, units] = [{T}, {U}] or [repeats, time, units] = [{R}, {T}, {U}]"
                + (f", or [{T}] / [{R}, {T}] for a single unit" if single else ""))
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"predictions have dtype {arr.dtype}; {accepted}")
    arr = arr.astype(np.float64)
    if single and arr.ndim in (1, 2) and arr.shape[-1] == T and (arr.ndim == 1 or arr.shape[0] == R):
        arr = arr[..., None]
    if arr.ndim == 3:
        if arr.shape != (R, T, U):
            raise ValueError(f"predictions have shape {arr.shape}; {accepted}")
        with np.errstate(invalid="ignore"), _quiet():
            arr = np.nanmean(arr, axis=0)
    elif arr.ndim != 2 or arr.shape != (T, U):
        raise ValueError(f"predictions have shape {arr.shape}; {accepted}")
    if np.isinf(arr).any():
        raise ValueError(f"predictions contain infinite values; {accepted}")
    return arr


@contextmanager
def _quiet():
    """Silence numpy's 'mean of empty slice' warnings: all-NaN slices legitimately give NaN here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r per column over rows where both are finite; NaN when a side has no variance."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(0)
    a0 = np.where(ok, a, 0.0)
    b0 = np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a0.sum(0) / n
        mb = b0.sum(0) / n
        da = np.where(ok, a - ma, 0.0)
        db = np.where(ok, b - mb, 0.0)
        r = (da * db).sum(0) / np.sqrt((da**2).sum(0) * (db**2).sum(0))
    return np.where(n >= 2, r, np.nan)


def _out(values: np.ndarray, single: bool):
    return float(values[0]) if single else values


def _trial_mean(y: np.ndarray) -> np.ndarray:
    with _quiet():
        return np.nanmean(y, axis=0)  # [T, U]; NaN at time points without any repeat


def cc_abs(responses: np.ndarray, predictions: np.ndarray) -> np.ndarray | float:
    """Pearson correlation over time of trial-averaged prediction and trial-averaged response, per unit."""
    y, single = _responses(responses)
    p = _predictions(predictions, y.shape, single)
    return _out(_pearson(p, _trial_mean(y)), single)


def _signal_power(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(SP, Var_t(ȳ) with ddof 0) per unit for NaN-padded responses [R, T, U]."""
    ybar = _trial_mean(y)
    counts = np.isfinite(y).sum(0).astype(float)  # [T, U] repeats present per time point
    with _quiet(), np.errstate(divide="ignore", invalid="ignore"):
        P = np.nanvar(ybar, axis=0, ddof=1)
        per_repeat = np.nanvar(y, axis=1, ddof=1)  # [R, U]; NaN for repeats with < 2 samples
        per_repeat[np.isfinite(y).sum(1) < 2] = np.nan
        TP = np.nanmean(per_repeat, axis=0)
        # effective repeat count: harmonic mean of n_t over the time points that have data
        n = 1.0 / np.nanmean(np.where(counts > 0, 1.0 / counts, np.nan), axis=0)
        SP = (n * P - TP) / (n - 1)
        var0 = np.nanvar(ybar, axis=0, ddof=0)
    return SP, var0


def cc_max(responses: np.ndarray) -> np.ndarray | float:
    """Upper bound of the correlation any model can reach given the trial-to-trial noise; NaN if SP < 0."""
    y, single = _responses(responses)
    SP, var0 = _signal_power(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((SP >= 0) & (var0 > 0), np.sqrt(np.clip(SP, 0, None) / var0), np.nan)
    return _out(out, single)


def cc_norm(responses: np.ndarray, predictions: np.ndarray) -> np.ndarray | float:
    """CC_abs / CC_max per unit (NaN where CC_max is NaN or zero)."""
    a = np.atleast_1d(cc_abs(responses, predictions))
    m = np.atleast_1d(cc_max(responses))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(m > 0, a / m, np.nan)
    return _out(out, np.ndim(responses) == 2)


def oracle_correlation(responses: np.ndarray) -> np.ndarray | float:
    """Leave-one-out oracle: correlation of every trial with the mean of the other trials, pooled per unit."""
    y, single = _responses(responses)
    present = np.isfinite(y)
    total = np.where(present, y, 0.0).sum(0)  # [T, U]
    count = present.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = (total[None] - np.where(present, y, 0.0)) / (count[None] - 1)  # mean of the others
    loo = np.where(present & (count[None] > 1), loo, np.nan)
    R, T, U = y.shape
    return _out(_pearson(y.reshape(R * T, U), loo.reshape(R * T, U)), single)


def performance(responses: np.ndarray, predictions: np.ndarray, units: np.ndarray | None = None,
                twin_id: str | None = None) -> xr.Dataset:
    """All metrics per unit as a Dataset (dim ``unit``) with provenance attributes."""
    y, single = _responses(responses)
    p = np.asarray(predictions)
    if single:
        y = y[:, :, 0]
    U = 1 if single else y.shape[2]
    if units is None:
        units = np.arange(U)
    units = np.asarray(units)
    if units.shape != (U,):
        raise ValueError(f"units has shape {units.shape}; expected one label per unit, i.e. shape ({U},)")
    vals = {name: np.atleast_1d(fn) for name, fn in (
        ("cc_abs", cc_abs(y, p)), ("cc_max", cc_max(y)), ("cc_norm", cc_norm(y, p)),
        ("oracle", oracle_correlation(y)))}
    ds = xr.Dataset({k: ("unit", v.astype(np.float64)) for k, v in vals.items()}, coords={"unit": units})
    ds["cc_abs"].attrs["long_name"] = "CC_abs: r(trial-mean prediction, trial-mean response)"
    ds["cc_max"].attrs["long_name"] = "CC_max: sqrt(signal power / Var(trial mean))"
    ds["cc_norm"].attrs["long_name"] = "CC_norm = CC_abs / CC_max"
    ds["oracle"].attrs["long_name"] = "leave-one-out oracle correlation"
    ds.attrs.update(experiment="performance", twin_id=twin_id or "", n_repeats=int(np.asarray(responses).shape[0]),
                    twin_explorer_version=twin_explorer.__version__)
    return ds


def twin_performance(twin: TwinLike, recording: xr.Dataset, burn_in: int = 10, units: Any = None) -> xr.Dataset:
    """CC_abs / CC_max / CC_norm / oracle of ``twin`` on the oracle clips of ``recording`` (variables
    ``stimulus`` (clip, frame, height, width), ``perspectives``, ``modulations``, ``response`` (trial, frame, unit);
    coords ``clip_tier``, ``trial_clip``, ``unit`` = readout ids), as :func:`performance` returns."""
    needed = {"stimulus", "response", "trial_clip", "clip_tier"}
    missing = needed - set(recording.variables)
    if missing:
        raise ValueError(f"recording lacks {sorted(missing)}; pass a recording such as SyntheticMouse.record(...) "
                         "returns (stimulus per clip, response per trial, trial_clip, clip_tier)")
    oracle = np.flatnonzero(recording["clip_tier"].values == "oracle")
    if oracle.size == 0:
        raise ValueError("recording has no oracle clips (clip_tier == 'oracle'); repeated clips are needed")
    burn_in = int(burn_in)
    T = recording.sizes["frame"]
    if not 0 <= burn_in < T - 2:
        raise ValueError(f"burn_in={burn_in} must be ≥ 0 and leave at least 3 of the clips' {T} frames")
    rec_units = np.asarray(recording["unit"].values)
    if units is not None:
        wanted = np.atleast_1d(np.asarray(units))
        absent = np.setdiff1d(wanted, rec_units)
        if absent.size:
            raise ValueError(f"units {absent[:10].tolist()} were not recorded; recorded units are "
                             f"{rec_units[:10].tolist()}…")
        cols = np.searchsorted(rec_units, wanted) if np.all(np.diff(rec_units) > 0) else np.array(
            [int(np.flatnonzero(rec_units == u)[0]) for u in wanted])
    else:
        wanted, cols = rec_units, np.arange(rec_units.size)
    trial_clip = recording["trial_clip"].values
    n_rep = max(int((trial_clip == c).sum()) for c in oracle)
    ys, ps = [], []
    for c in oracle:
        trials = np.flatnonzero(trial_clip == c)
        y = np.full((n_rep, T - burn_in, cols.size), np.nan)
        y[:trials.size] = recording["response"].values[trials][:, burn_in:][:, :, cols]
        kw = {k: recording[k].values[c] for k in ("perspectives", "modulations") if k in recording}
        pred = np.asarray(twin.predict(recording["stimulus"].values[c], units=wanted, **kw), dtype=np.float64)
        ys.append(y)
        ps.append(pred[burn_in:])
    ds = performance(np.concatenate(ys, axis=1), np.concatenate(ps, axis=0), units=wanted,
                     twin_id=str(getattr(twin, "id", "")))
    ds.attrs.update(recording_id=str(recording.attrs.get("twin_id", "")), burn_in=burn_in,
                    n_oracle_clips=int(oracle.size), n_repeats=n_rep)
    return ds
