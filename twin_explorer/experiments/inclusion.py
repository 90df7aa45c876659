"""The paper's inclusion thresholds: which units a MICrONS digital-twin analysis keeps, and why the others are left out.

Ding et al. (functional connectomics analyses of the MICrONS twin) include only units the twin predicts well:
``cc_max > 0.4`` (the neuron responds reliably to repeats) and ``cc_abs > 0.2`` (the twin predicts it);
orientation-based analyses further require ``gOSI > 0.25`` (the twin's measured global orientation selectivity).
``cc_max`` and ``cc_abs`` are the per-unit held-out numbers a twin ships in its units table (see
:mod:`.metrics`); a unit without them cannot be judged and is not included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..engine.contract import TwinLike

__all__ = ["CC_MAX_MIN", "CC_ABS_MIN", "GOSI_MIN", "THRESHOLDS_SENTENCE", "inclusion", "twin_reliability"]

CC_MAX_MIN = 0.4  # reliability ceiling of the recorded neuron (repeat-to-repeat), strictly above
CC_ABS_MIN = 0.2  # the twin's held-out prediction correlation, strictly above
GOSI_MIN = 0.25  # orientation-based analyses only: the twin's gOSI, strictly above

THRESHOLDS_SENTENCE = (f"The paper's analyses include only neurons with cc_max > {CC_MAX_MIN:g} and "
                       f"cc_abs > {CC_ABS_MIN:g}, and orientation-based analyses also require gOSI > {GOSI_MIN:g}; "
                       "neurons below them are marked excluded (greyed).")

RELIABILITY_COLUMNS = ("cc_abs", "cc_max", "cc_norm")


def twin_reliability(twin: TwinLike) -> pd.DataFrame:
    """Per unit (indexed like ``twin.units``): the twin's held-out ``cc_abs``, ``cc_max`` and ``cc_norm`` from its
    units table, NaN where the twin ships none (e.g. the synthetic mouse, which is its own ground truth)."""
    units = twin.units
    out = pd.DataFrame(index=units.index)
    for col in RELIABILITY_COLUMNS:
        out[col] = (pd.to_numeric(units[col], errors="coerce").to_numpy(float) if col in units.columns
                    else np.full(len(units), np.nan))
    return out


def _values(name: str, value: Any, n: int | None) -> np.ndarray:
    arr = np.asarray(value, dtype=float).ravel()
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} values, expected one per neuron ({n})")
    return arr


def inclusion(cc_max: Any, cc_abs: Any, gosi: Any = None, index: Any = None) -> pd.DataFrame:
    """The paper's inclusion per neuron: a table with ``included`` (bool) and ``reason`` ('' when included, else
    every failed threshold, e.g. 'cc_max 0.31 ≤ 0.4; gOSI 0.12 ≤ 0.25'). ``gosi`` is given only for
    orientation-based analyses. Missing (NaN) values fail their threshold ('cc_max unknown')."""
    cm = _values("cc_max", cc_max, None)
    ca = _values("cc_abs", cc_abs, cm.size)
    checks = [("cc_max", cm, CC_MAX_MIN), ("cc_abs", ca, CC_ABS_MIN)]
    if gosi is not None:
        checks.append(("gOSI", _values("gosi", gosi, cm.size), GOSI_MIN))
    reasons: list[list[str]] = [[] for _ in range(cm.size)]
    for name, values, threshold in checks:
        for i in np.flatnonzero(~(values > threshold)):  # NaN fails too
            v = values[i]
            reasons[i].append(f"{name} unknown" if not np.isfinite(v) else f"{name} {v:.2f} ≤ {threshold:g}")
    idx = pd.RangeIndex(cm.size) if index is None else pd.Index(index)
    if len(idx) != cm.size:
        raise ValueError(f"index has {len(idx)} entries, expected one per neuron ({cm.size})")
    return pd.DataFrame({"included": [not r for r in reasons], "reason": ["; ".join(r) for r in reasons]},
                        index=idx)
