"""Input checks shared by every experiment: unit selection, numbers and choices, the twin's frame rate and monitor,
and the ``unit`` coordinates of a result. Each bad input raises ValueError saying what is accepted."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine.contract import TwinLike
from ..monitor import DEFAULT_MONITOR, FRAME_RATE, Monitor


def twin_frame_rate(twin: TwinLike) -> float:
    return float(getattr(twin, "frame_rate", FRAME_RATE))


def twin_monitor(twin: TwinLike, monitor: Monitor | None = None) -> Monitor:
    """The monitor an experiment should draw on: explicit argument, else the twin's own, else the default."""
    if monitor is not None:
        if not isinstance(monitor, Monitor):
            raise ValueError(f"monitor must be a twin_explorer.monitor.Monitor, got {type(monitor).__name__}")
        return monitor
    own = getattr(twin, "monitor", None)
    return own if isinstance(own, Monitor) else DEFAULT_MONITOR


def resolve_units(twin: TwinLike, units: Any = None) -> np.ndarray:
    """Readout ids selected by ``units`` (None = all; a sequence of readout ids; or a boolean mask).

    Returns the readout ids as an int64 array, in the order the twin will return them.
    """
    index = np.asarray(twin.units.index)
    n = int(getattr(twin, "n_units", len(index)))
    if units is None:
        return index.astype(np.int64)
    arr = np.asarray(units)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"a boolean units mask must have length n_units={n}, got shape {arr.shape}")
        return index[arr].astype(np.int64)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"units must be None, a 1-D sequence of integer readout ids or a boolean mask; got {units!r}")
    if arr.size == 0:
        raise ValueError("units is empty; pass None for all units or at least one readout id")
    missing = np.setdiff1d(arr, index)
    if missing.size:
        raise ValueError(f"unknown readout ids {missing[:10].tolist()}; valid ids are the twin's units.index "
                         f"(0…{n - 1} for a contiguous twin)")
    return arr.astype(np.int64)


def check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite number, got {value!r}")
    return v


def check_count(name: str, value: Any, allow_zero: bool = False) -> int:
    """A whole number ≥ 1 (≥ 0 with ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero) or v != int(v):
        sign = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {sign} finite integer, got {value!r}")
    return int(v)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not accepted; choose one of {list(choices)!r}")
    return value


def check_values(name: str, values: Any, *, positive: bool = False, lo: float | None = None,
                 hi: float | None = None, min_len: int = 1) -> np.ndarray:
    """A 1-D float array of condition values, validated (finite, in range, long enough)."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1 or arr.size < min_len:
        raise ValueError(f"{name} must be a 1-D list of at least {min_len} numbers, got {values!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers, got {values!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must all be > 0, got {values!r}")
    if lo is not None and np.any(arr < lo):
        raise ValueError(f"{name} must all be ≥ {lo}, got {values!r}")
    if hi is not None and np.any(arr > hi):
        raise ValueError(f"{name} must all be ≤ {hi}, got {values!r}")
    return arr


def check_point(name: str, value: Any) -> np.ndarray:
    """(azimuth, elevation) in degrees."""
    arr = np.asarray(value, dtype=float)
    if arr.shape != (2,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be (azimuth, elevation) in degrees, got {value!r}")
    return arr


def unit_coords(twin: TwinLike, readout_ids: np.ndarray) -> dict[str, Any]:
    """Coordinates for the ``unit`` dimension: readout id plus session/scan_idx/unit_id when the twin has them."""
    coords: dict[str, Any] = {"unit": ("unit", np.asarray(readout_ids, dtype=np.int64))}
    table = getattr(twin, "units", None)
    if table is not None:
        for col in ("session", "scan_idx", "unit_id"):
            if col in getattr(table, "columns", ()):
                coords[col] = ("unit", np.asarray(table.loc[readout_ids, col]))
    return coords
