"""Streaming partial results: the contract between an experiment that can deliver provisional results while it runs
and whoever shows them (the explorer's views).

An experiment that streams takes ``partial: PartialCallback | None``; after each batch of conditions that completes
something worth showing it calls ``partial(ds)`` with a provisional Dataset of the same shape as its final result
(the conditions measured so far), labelled by :func:`label_provisional`: ``attrs['partial'] = 1`` and
``attrs['conditions_done']`` / ``attrs['conditions_total']``. The final result it returns is the one a run without
``partial`` returns, array by array: streaming changes when results are seen, never what they are.

Condition sweeps over directions run their directions in :func:`spread_order` (the circle covered early), so the
first provisional result already spans opposite directions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["PartialCallback", "spread_order", "label_provisional", "is_provisional", "provisional_note"]

PartialCallback = Callable[[xr.Dataset], None]
"""Called as ``partial(ds)`` with a provisional result (see the module docstring); raising stops the run."""


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


def label_provisional(ds: xr.Dataset, done: int, total: int, **extra: Any) -> xr.Dataset:
    """Mark ``ds`` as a provisional result of ``done`` of ``total`` conditions (plus ``extra`` attrs); returns it."""
    if not 0 < int(done) <= int(total):
        raise ValueError(f"a provisional result needs 0 < done ≤ total, got {done} of {total}")
    ds.attrs.update(partial=1, conditions_done=int(done), conditions_total=int(total), **extra)
    return ds


def is_provisional(ds: Any) -> bool:
    """True for a provisional (partial) result, False for a final one or None."""
    return bool(getattr(ds, "attrs", {}).get("partial"))


def provisional_note(ds: Any) -> str:
    """"provisional: 12 of 48 conditions" for a provisional result, "" for a final one."""
    if not is_provisional(ds):
        return ""
    return f"provisional: {ds.attrs['conditions_done']} of {ds.attrs['conditions_total']} conditions"
