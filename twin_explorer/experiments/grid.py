"""Grating-grid experiments: one spec shape and one code path for every experiment that shows drifting gratings
over a grid of (condition value × direction) and reads each unit's curve at its own preferred direction.

A :class:`GratingGrid` names its value dimension and says how to draw a condition (:func:`grating_frames` or any
frames-making function); :func:`run_grid` renders every condition once (padded with grey by the runner's
:class:`~.runner.Timing`), runs them through the twin in batches, keeps latency-shifted window means and the grey
baseline, and returns the Dataset (``response`` (unit, value, direction), ``tuning`` (unit, value) at the unit's
preferred direction = the direction with the largest mean response over all values, ``best_direction``,
``baseline``) plus the curves [U, V] for the family's analysis.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..engine.contract import TwinLike
from ..monitor import DEFAULT_MONITOR, FRAME_RATE, Monitor
from ..stimuli.gratings import DriftingGrating
from .checks import resolve_units, twin_frame_rate, unit_coords
from .runner import BURN_IN_FRAMES, ProgressCallback, Timing, run_conditions
from .streaming import PartialCallback, label_provisional, spread_order

Frames = Callable[[Any, float], np.ndarray]
"""``frames(value, direction_deg) -> uint8 [T, H, W]`` of one condition (at least the stimulus duration)."""


def grating_frames(direction_deg: float, sf_cpd: float, tf_hz: float, duration_s: float, *,
                   contrast: float = 1.0, phase_deg: float = 0.0,
                   aperture: tuple[float, float, float] | None = None, frame_rate: float = FRAME_RATE,
                   monitor: Monitor = DEFAULT_MONITOR) -> np.ndarray:
    """A drifting sine grating uint8 [T, H, W] from the stimulus library's ``DriftingGrating`` (v2 direction
    convention: 0° = rightward, counter-clockwise), optionally inside a circular aperture (centre az, centre el,
    diameter, degrees). Invalid values raise the library's ValueError."""
    try:
        stim = DriftingGrating(direction_deg=float(direction_deg) % 360, sf_cpd=float(sf_cpd), tf_hz=float(tf_hz),
                               contrast=float(contrast), phase_deg=float(phase_deg) % 360,
                               duration_s=float(duration_s), monitor=monitor,
                               aperture=None if aperture is None else tuple(float(a) for a in aperture))
    except ValueError:
        raise
    except Exception as exc:  # param raises its own errors for out-of-bounds values
        raise ValueError(f"invalid grating parameters: {exc}") from exc
    frames = np.asarray(stim.render())
    return frames[:int(round(duration_s * frame_rate))]


@dataclass(frozen=True)
class GratingGrid:
    """The conditions and stimuli of one grating-grid experiment.

    ``dim``: name of the value dimension; ``values``: its condition values; ``directions``: degrees (v2);
    ``frames(value, direction)``: the stimulus of one condition; ``label``: progress text; ``value_attrs``: attrs
    of the value coordinate (units)."""

    dim: str
    values: np.ndarray
    directions: np.ndarray
    frames: Frames
    label: str
    value_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def conditions(self) -> list[tuple[Any, float]]:
        return [(v, d) for v in self.values for d in self.directions]


Analysis = Callable[[xr.Dataset, np.ndarray], xr.Dataset]
"""``analyse(ds, curves [U, V]) -> ds``: a family's per-unit analysis of a grid result (fits, indices)."""


def run_grid(twin: TwinLike, grid: GratingGrid, *, duration_s: float, latency_s: float, pre_s: float, units: Any,
             batch_size: int | None = None, progress: ProgressCallback | None = None, show_progress: bool = True,
             cancel: threading.Event | None = None, analyse: Analysis | None = None,
             partial: PartialCallback | None = None) -> tuple[xr.Dataset, np.ndarray]:
    """Run a grating grid (see the module docstring); returns (Dataset, curves [U, V] at the preferred direction),
    the Dataset passed through ``analyse`` when given.

    Conditions run direction by direction (in :func:`~.streaming.spread_order`, every value of one direction
    together). With ``partial``, after every batch that completes a direction ``partial`` gets a provisional
    result: the same analysis on the directions done so far (each unit's curve at the best of them), labelled by
    :func:`~.streaming.label_provisional`. The batches are the same streamed or not (a batch's composition can
    change a twin's float rounding), so the final result is too; a batch of at least one direction's values
    (``len(grid.values)`` conditions) gives the first provisional result after the first batch."""
    timing = Timing.make(duration_s, latency_s, twin_frame_rate(twin), pre_s)
    ids = resolve_units(twin, units)
    nv, nd = len(grid.values), len(grid.directions)
    order = spread_order(grid.directions)
    conds = [(vi, di) for di in order for vi in range(nv)]
    start, stop = timing.window(latency_s)
    base_start = min(BURN_IN_FRAMES, timing.pre - 1)
    responses = np.empty((nv, nd, len(ids)), dtype=np.float32)  # window means at their (value, direction) place
    grey = np.empty((nv, nd, len(ids)), dtype=np.float32)
    shown = [0]  # directions in the last provisional result

    def video(i: int) -> np.ndarray:
        vi, di = conds[i]
        return timing.pad(grid.frames(grid.values[vi], grid.directions[di])[:timing.stim])

    def reduce(i: int, r: np.ndarray) -> np.ndarray:
        vi, di = conds[i]
        responses[vi, di], grey[vi, di] = r[start:stop].mean(0), r[base_start:timing.pre].mean(0)
        return np.zeros(0, dtype=np.float32)

    def after_batch(done: int, n: int) -> None:
        if callable(progress):
            progress(done, n)
        k = done // nv
        if partial is not None and shown[0] < k < nd:
            shown[0] = k
            dirs = np.sort(order[:k])
            ds, curves = _grid_dataset(twin, ids, grid, dirs, responses[:, dirs], grey[:, dirs], (start, stop))
            partial(label_provisional(analyse(ds, curves) if analyse is not None else ds, done, n))

    run_conditions(twin, video, len(conds), ids, batch_size=batch_size, progress=after_batch, desc=grid.label,
                   show_progress=show_progress if not isinstance(progress, bool) else progress, reduce=reduce,
                   cancel=cancel)
    ds, curves = _grid_dataset(twin, ids, grid, np.arange(nd), responses, grey, (start, stop))
    return (analyse(ds, curves) if analyse is not None else ds), curves


def _grid_dataset(twin: TwinLike, ids: np.ndarray, grid: GratingGrid, dirs: np.ndarray, responses: np.ndarray,
                  grey: np.ndarray, window: tuple[int, int]) -> tuple[xr.Dataset, np.ndarray]:
    """The grid Dataset of the directions ``dirs`` (indices) from window means [V, D, U] and grey means [V, D, U]."""
    responses = responses.transpose(2, 0, 1)  # [U, V, D]
    baseline = grey.reshape(-1, grey.shape[-1]).mean(0)
    best = np.argmax(responses.mean(axis=1), axis=1)  # preferred direction per unit
    curves = responses[np.arange(len(ids)), :, best]  # [U, V]
    directions = grid.directions[dirs]
    coords = unit_coords(twin, ids)
    coords[grid.dim] = (grid.dim, grid.values, dict(grid.value_attrs))
    coords["direction"] = ("direction", directions, {"units": "deg", "convention": "v2"})
    ds = xr.Dataset({"response": (("unit", grid.dim, "direction"), responses.astype(np.float32)),
                     "tuning": (("unit", grid.dim), curves.astype(np.float32),
                                {"long_name": "response at the unit's preferred direction"}),
                     "best_direction": (("unit",), directions[best], {"units": "deg"}),
                     "baseline": (("unit",), baseline.astype(np.float32), {"long_name": "mean response to grey"})},
                    coords=coords)
    ds.attrs["window_frames"] = list(window)
    return ds, curves
