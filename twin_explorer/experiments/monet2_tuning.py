"""Direction tuning with directional pink noise (Monet2), the paper's second tuning protocol next to gratings.

Each trial is one Monet2 movie (:class:`~twin_explorer.stimuli.noise.Monet2`): pink noise with one epoch of
coherent, oriented motion per direction, the directions in a random order that changes with the trial's seed.
A direction's response in a trial is the mean over its motion epoch ``[onset, offset)`` shifted by the latency
(the runner's window convention); epochs of the same direction are averaged over trials, as the published
pipeline averages epochs of equal (rounded) direction. The curves then go through the same indices and
bi-von-Mises fit as the gratings (:func:`.tuning.tuning_indices`): gOSI, gDSI, OSI, DSI, pref_dir, pref_ori.

Monet2 directions are the motion direction in the v2 convention (0° = rightward, counter-clockwise), the same
as a drifting grating's, so the two protocols' preferred directions compare directly.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import xarray as xr

from ..engine.contract import TwinLike
from ..monitor import Monitor
from ..stimuli.noise import Monet2
from .checks import check_count, check_positive, resolve_units, twin_frame_rate, twin_monitor, unit_coords
from .plotting import plot_direction_tuning, plot_tuning_population
from .provenance import provenance
from .runner import BURN_IN_FRAMES, DEFAULT_LATENCY_S, ProgressCallback, Timing, run_conditions, window_mean
from .spec import ExperimentSpec, median_summary, register
from .tuning import tuning_indices, with_tuning_indices

__all__ = ["monet2_direction_tuning", "monet2_trials"]


def monet2_trials(directions: int, trials: int, slot_s: float, seed: int, monitor: Monitor,
                  **look: Any) -> list[Monet2]:
    """The trial movies: one Monet2 per trial (seed ``seed + trial``), ``directions`` epochs of ``slot_s`` each."""
    return [Monet2(seed=int(seed) + k, monitor=monitor, n_dirs=int(directions),
                   duration_s=float(directions) * float(slot_s), **look) for k in range(int(trials))]


def monet2_direction_tuning(twin: TwinLike, directions: int = 16, trials: int = 4, slot_s: float = 2.0,
                            ori_fraction: float = 0.5, ori_coherence: float = 1.5, speed: float = 0.25,
                            temp_bandwidth_hz: float = 4.0, units: Any = None, *,
                            latency_s: float = DEFAULT_LATENCY_S, pre_s: float = 0.5, monitor: Monitor | None = None,
                            batch_size: int | None = None, progress: ProgressCallback | None = None,
                            show_progress: bool = True, seed: int = 0,
                            cancel: threading.Event | None = None) -> xr.Dataset:
    """Monet2 direction tuning of every selected unit (see the module docstring).

    ``directions`` motion directions (evenly spaced from 0°), ``trials`` movies with different noise and direction
    order, ``slot_s`` seconds per direction of which ``ori_fraction`` is coherent motion (the response window);
    ``ori_coherence``, ``speed`` (display widths/s) and ``temp_bandwidth_hz`` are Monet2's. Returns ``tuning``
    (unit, direction) trial means, ``trial_tuning`` (unit, trial, direction), ``baseline`` (grey) and the
    per-unit indices of :func:`.tuning.tuning_indices`. Provenance in ``.attrs``."""
    n_dirs = check_count("directions", directions)
    if n_dirs < 5:  # the bi-von-Mises fit needs ≥ 5 directions; OSI needs ±90°
        raise ValueError(f"directions must be ≥ 5 evenly spaced motion directions, got {directions}")
    n_trials = check_count("trials", trials)
    slot = check_positive("slot_s", slot_s)
    if not 0 < float(ori_fraction) <= 1:
        raise ValueError(f"ori_fraction must be in (0, 1], got {ori_fraction}")
    mon = twin_monitor(twin, monitor)
    fr = twin_frame_rate(twin)
    look = dict(ori_fraction=float(ori_fraction), ori_coherence=float(ori_coherence), speed=float(speed),
                temp_bandwidth_hz=float(temp_bandwidth_hz))
    try:
        movies = monet2_trials(n_dirs, n_trials, slot, seed, mon, **look)
    except ValueError as exc:  # param's bounds message names the parameter and its accepted range
        raise ValueError(f"invalid Monet2 parameter: {exc}") from None
    timing = Timing.make(movies[0].duration, latency_s, fr, pre_s)
    ids = resolve_units(twin, units)
    windows = [movie.epochs for movie in movies]
    dirs = np.arange(n_dirs) * 360.0 / n_dirs

    def reduce(i: int, response: np.ndarray) -> np.ndarray:
        """Window means of trial i's epochs ordered by direction, then its grey pre-blank: [D + 1, U]."""
        ep = windows[i].sort_values("direction")
        rows = [window_mean(response, *timing.window(latency_s, int(a), int(b)))
                for a, b in zip(ep["onset_frame"], ep["offset_frame"])]
        grey = (window_mean(response, BURN_IN_FRAMES, timing.pre) if timing.pre > BURN_IN_FRAMES
                else np.full(response.shape[-1], np.nan, np.float32))
        return np.stack(rows + [grey])

    reduced = run_conditions(twin, lambda i: timing.pad(movies[i].render()), n_trials, ids, batch_size=batch_size,
                             progress=progress, desc="Monet2 direction tuning", show_progress=show_progress,
                             reduce=reduce, cancel=cancel)  # [trial, D + 1, U]
    per_trial, baseline = reduced[:, :-1], reduced[:, -1].mean(0)
    curves = per_trial.mean(0).T  # [U, D]
    coords = unit_coords(twin, ids)
    coords["direction"] = ("direction", dirs, {"units": "deg", "convention": "v2: 0 = rightward motion, CCW"})
    coords["trial"] = ("trial", np.arange(n_trials))
    data = {"tuning": (("unit", "direction"), curves.astype(np.float32),
                       {"long_name": "mean response over the motion epochs (latency-shifted), averaged over trials"}),
            "trial_tuning": (("unit", "trial", "direction"), per_trial.transpose(2, 0, 1).astype(np.float32)),
            "baseline": (("unit",), np.asarray(baseline, np.float32), {"long_name": "mean response to grey"})}
    ds = with_tuning_indices(data, coords, tuning_indices(curves, dirs), "rightward motion", "vertical stripes")
    ds.attrs.update(provenance(twin, "monet2_direction_tuning", dict(
        look, directions=dirs, trials=n_trials, slot_s=slot, latency_s=latency_s, pre_s=pre_s,
        trial_seeds=[m.seed for m in movies], stimulus="Monet2 (directional pink noise)"),
        seed=seed, monitor=mon, stimulus=movies[0]))
    return ds


SPEC = register(ExperimentSpec(
    "monet2_direction_tuning", monet2_direction_tuning,
    "Directional pink noise (Monet2): direction tuning, gOSI, gDSI, preferred direction, as the paper also measured.",
    median_summary("gosi", "gdsi"), plot_direction_tuning, plot_tuning_population))
