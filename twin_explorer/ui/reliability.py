"""The twin's own reliability beside a measurement: a focused neuron's cc_max / CC_norm / cc_abs with its inclusion
under the paper's thresholds, and per-neuron opacities that grey out excluded neurons on maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from twin_explorer.engine.contract import TwinLike
from twin_explorer.experiments.inclusion import GOSI_MIN, THRESHOLDS_SENTENCE, inclusion, twin_reliability

EXCLUDED_ALPHA = 0.2  # opacity of neurons below the thresholds on maps (included ones are drawn at 1)


def unit_inclusion(twin: TwinLike, ids: Any, gosi: Any = None) -> pd.DataFrame | None:
    """Inclusion table (included, reason) of readout ids ``ids``; None when the twin ships no reliability."""
    rel = twin_reliability(twin)
    if not np.isfinite(rel["cc_max"].to_numpy()).any():
        return None
    sub = rel.reindex(np.asarray(ids))
    return inclusion(sub["cc_max"], sub["cc_abs"], gosi, index=sub.index)


def opacity(twin: TwinLike, ids: Any, gosi: Any = None) -> np.ndarray:
    """Per-neuron opacity for a map: 1 for included neurons (or when the twin cannot be judged), else faint."""
    table = unit_inclusion(twin, ids, gosi)
    if table is None:
        return np.ones(len(np.asarray(ids)))
    return np.where(table["included"].to_numpy(bool), 1.0, EXCLUDED_ALPHA)


def reliability_lines(twin: TwinLike, unit: int, gosi: float | None = None) -> list[str]:
    """Markdown lines: the twin's held-out reliability of ``unit`` and whether the paper would include it
    (``gosi``: the measured gOSI, for orientation-based analyses)."""
    rel = twin_reliability(twin)
    if unit not in rel.index or not np.isfinite(rel.loc[unit, "cc_max"]):
        return ["", "*Twin reliability:* this twin ships no held-out cc_max / CC_norm for its neurons (the synthetic "
                "mouse is its own ground truth), so the paper's inclusion thresholds cannot be applied."]
    r = rel.loc[unit]
    base = inclusion([r["cc_max"]], [r["cc_abs"]]).iloc[0]
    lines = ["", f"*Twin reliability (held-out natural clips):* **cc_max {r['cc_max']:.2f}**, "
                 f"**CC_norm {r['cc_norm']:.2f}**, cc_abs {r['cc_abs']:.2f}."]
    if not base["included"]:
        lines.append(f"⚠ **Excluded** by the paper's thresholds ({base['reason']}): read this measurement with care.")
    elif gosi is not None and not inclusion([r["cc_max"]], [r["cc_abs"]], [gosi]).iloc[0]["included"]:
        lines.append(f"Included, but not in orientation-based analyses (gOSI {gosi:.2f} ≤ {GOSI_MIN:g}).")
    else:
        lines.append("**Included** by the paper's thresholds.")
    lines.append(THRESHOLDS_SENTENCE)
    return lines
