"""A twin checked against the published digital-twin properties: the in-silico direction tuning and the readout
positions computed here, unit by unit, next to the published values (:mod:`.published`).

Metrics (one row each in :attr:`PropertyComparison.table`, with the threshold that counts as agreement):

* preferred direction: median circular error |Δ| in degrees (both in the v2 convention, 0° = rightward,
  counter-clockwise), over the units the published table calls orientation-tuned (gOSI ≥ ``tuned_gosi``) and
  over all units; preferred orientation the same, modulo 180°;
* gOSI, gDSI, OSI, DSI: Pearson correlation of published and in-silico values;
* readout positions: correlation of x and of y, and the median distance, in the published readout space (x, y in
  [−1, 1], (−1, −1) top-left), against the twin's P = tanh(μ).

The thresholds are judgement calls for "the same model, run the same way"; the published tuning came from a
variant of the twin fine-tuned on oriented stimuli, so the released bundle is expected to agree only partly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine.contract import TwinLike
from ..store import write_text_atomic
from .compare_plots import plot_comparison_html, plot_comparison_png
from .published import fingerprint
from .readout_rf import readout_rf_from_network
from .tuning import direction_tuning

__all__ = ["PropertyComparison", "circular_error", "compare_properties", "twin_properties", "THRESHOLDS"]

#: metric -> (comparison, threshold): "max" = agreement when value ≤ threshold, "min" = when value ≥ threshold
THRESHOLDS = {"pref_dir_error_tuned": ("max", 20.0), "pref_ori_error_tuned": ("max", 15.0),
              "r_gOSI": ("min", 0.7), "r_gDSI": ("min", 0.5), "r_readout_x": ("min", 0.9),
              "r_readout_y": ("min", 0.9), "readout_distance": ("max", 0.05)}
TUNING_COLUMNS = ["OSI", "DSI", "gOSI", "gDSI", "pref_ori", "pref_dir"]


def circular_error(a_deg: Any, b_deg: Any, period: float = 360.0) -> np.ndarray:
    """Signed smallest difference a − b on a circle of ``period`` degrees, in (−period/2, period/2]."""
    d = np.mod(np.asarray(a_deg, dtype=float) - np.asarray(b_deg, dtype=float), period)
    return np.where(d > period / 2, d - period, d)


def _readout_positions(twin: TwinLike) -> np.ndarray | None:
    net = getattr(twin, "network", None)
    ask = getattr(net, "readout_positions", None)
    if callable(ask):
        return np.asarray(ask(), dtype=float)
    mu = getattr(getattr(getattr(net, "readout", None), "position", None), "mu", None)
    return None if mu is None else np.tanh(mu.detach().cpu().numpy().astype(float))


def twin_properties(twin: TwinLike, units: Any = None, *, tuning: bool = True, **tuning_options: Any) -> pd.DataFrame:
    """The twin's own values in the published columns, one row per readout: session, scan_idx, unit_id,
    readout_x/y (P = tanh μ), RF az/el (deg, from the readout geometry) and, with ``tuning``, the in-silico
    OSI, DSI, gOSI, gDSI, pref_ori, pref_dir (degrees, v2 convention)."""
    missing = [c for c in ("session", "scan_idx", "unit_id") if c not in twin.units.columns]
    if missing:
        raise ValueError(f"twin {twin.id!r} has no {missing} in its units table, so its units cannot be matched "
                         "with the published properties")
    ids = twin.units.index.to_numpy() if units is None else np.asarray(units)
    out = twin.units.loc[ids, ["session", "scan_idx", "unit_id"]].copy()
    positions = _readout_positions(twin)
    if positions is not None:
        out["readout_x"], out["readout_y"] = positions[ids, 0], positions[ids, 1]
        rf = readout_rf_from_network(twin)
        out["rf_az"], out["rf_el"] = rf["az"].to_numpy()[ids], rf["el"].to_numpy()[ids]
    if tuning:
        ds = direction_tuning(twin, units=ids, **tuning_options)
        names = {"osi": "OSI", "dsi": "DSI", "gosi": "gOSI", "gdsi": "gDSI", "pref_ori": "pref_ori",
                 "pref_dir": "pref_dir"}
        for key, name in names.items():
            out[name] = ds[key].sel(unit=ids).values
    return out.reset_index()


@dataclass
class PropertyComparison:
    """Result of :func:`compare_properties`: ``table`` (metric, value, units, threshold, agrees), ``units`` (one
    row per matched unit, published ``*_pub`` next to in-silico ``*_twin`` values) and run details."""

    table: pd.DataFrame
    units: pd.DataFrame
    scan: tuple[int, int]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        judged = self.table.dropna(subset=["agrees"])
        return bool(len(judged)) and bool(judged["agrees"].astype(bool).all())

    def format(self) -> str:
        lines = [f"scan {self.scan[0]}-{self.scan[1]}: {len(self.units)} units matched "
                 f"({self.details.get('unmatched', 0)} of the twin's units are not in the published table)"]
        for r in self.table.itertuples():
            mark = "" if pd.isna(r.agrees) else ("  ok" if r.agrees else "  DISAGREES")
            limit = "" if pd.isna(r.threshold) else f" ({'≤' if r.kind == 'max' else '≥'} {r.threshold:g})"
            lines.append(f"  {r.metric:24s} {r.value:10.4g}  n={r.n_units:<6d}{limit}{mark}")
        lines.append("agreement" if self.agrees else "disagreement")
        return "\n".join(lines)


def _pearson(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan"), int(ok.sum())
    return float(np.corrcoef(a[ok], b[ok])[0, 1]), int(ok.sum())


def _metrics(m: pd.DataFrame, tuned_gosi: float) -> list[tuple[str, float, int]]:
    rows: list[tuple[str, float, int]] = []
    if {"pref_dir_pub", "pref_dir_twin"} <= set(m.columns):
        tuned = m["gOSI_pub"].to_numpy(dtype=float) >= tuned_gosi
        for name, period in (("pref_dir", 360.0), ("pref_ori", 180.0)):
            err = np.abs(circular_error(m[f"{name}_twin"], m[f"{name}_pub"], period))
            m[f"{name}_error"] = err
            rows.append((f"{name}_error_tuned", float(np.nanmedian(err[tuned])) if tuned.any() else np.nan,
                         int(tuned.sum())))
            rows.append((f"{name}_error_all", float(np.nanmedian(err)), len(err)))
        for name in ("gOSI", "gDSI", "OSI", "DSI"):
            r, n = _pearson(m[f"{name}_pub"].to_numpy(float), m[f"{name}_twin"].to_numpy(float))
            rows.append((f"r_{name}", r, n))
    if {"readout_x_pub", "readout_x_twin"} <= set(m.columns):
        for axis in ("x", "y"):
            r, n = _pearson(m[f"readout_{axis}_pub"].to_numpy(float), m[f"readout_{axis}_twin"].to_numpy(float))
            rows.append((f"r_readout_{axis}", r, n))
        dist = np.hypot(m["readout_x_twin"] - m["readout_x_pub"], m["readout_y_twin"] - m["readout_y_pub"])
        m["readout_distance"] = dist
        rows.append(("readout_distance", float(np.nanmedian(dist)), int(np.isfinite(dist).sum())))
    return rows


def compare_properties(twin: TwinLike, published: pd.DataFrame, *, units: Any = None, tuning: bool = True,
                       tuned_gosi: float = 0.1, thresholds: dict[str, tuple[str, float]] | None = None,
                       **tuning_options: Any) -> PropertyComparison:
    """Run the in-silico tuning (``tuning_options`` go to :func:`~.tuning.direction_tuning`, e.g. directions=16,
    duration_s=1.0) and read the readout positions of ``twin``, match its units with ``published`` (from
    :func:`.published.read_properties`) on (session, scan_idx, unit_id) and report agreement."""
    ours = twin_properties(twin, units, tuning=tuning, **tuning_options)
    scans = sorted({(int(a), int(b)) for a, b in zip(ours.session, ours.scan_idx)})
    if len(scans) != 1:
        raise ValueError(f"the twin's units span scans {scans}; compare one scan at a time")
    pub_cols = [c for c in published.columns if c in ("readout_x", "readout_y", "cc_abs", "cc_max", "cc_norm",
                                                      *TUNING_COLUMNS)]
    if not pub_cols:
        raise ValueError("the published table has none of the compared columns (readout_x/y, OSI, DSI, gOSI, gDSI, "
                         "pref_ori, pref_dir); read it with read_properties")
    pub = published[["session", "scan_idx", "unit_id", *pub_cols]].rename(columns={c: f"{c}_pub" for c in pub_cols})
    mine = ours.rename(columns={c: f"{c}_twin" for c in ours.columns if c in pub_cols})
    matched = mine.merge(pub, on=["session", "scan_idx", "unit_id"], how="inner")
    if matched.empty:
        raise ValueError(f"none of the twin's units (scan {scans[0][0]}-{scans[0][1]}, unit_id "
                         f"{ours.unit_id.iloc[:3].tolist()}…) are in the published table; wrong scan or folder?")
    rows = []
    limits = {**THRESHOLDS, **(thresholds or {})}
    for metric, value, n in _metrics(matched, tuned_gosi):
        kind, limit = limits.get(metric, (None, np.nan))
        ok = np.nan if kind is None or not np.isfinite(value) else (value <= limit if kind == "max" else value >= limit)
        rows.append({"metric": metric, "value": value, "n_units": n, "kind": kind, "threshold": limit, "agrees": ok})
    details = {"twin_id": twin.id, "model_id": getattr(getattr(twin, "metadata", None), "model_id", None),
               "precision": getattr(twin, "precision", None), "published": fingerprint(published),
               "unmatched": int(len(ours) - len(matched)), "tuned_gosi": tuned_gosi,
               "tuning": dict(tuning_options) if tuning else None}
    return PropertyComparison(pd.DataFrame(rows), matched, scans[0], details)


def save_comparison(result: PropertyComparison, out_dir: str | Path, png: bool = True) -> list[Path]:
    """Write ``comparison.csv`` (metrics), ``units.csv`` (per unit), ``comparison.json`` (provenance: twin, model,
    precision, published-table hash, tuning options), ``comparison.html`` (interactive plots) and, with ``png``,
    ``comparison.png`` (matplotlib, no browser needed). Returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "comparison.csv", out / "units.csv", out / "comparison.html"]
    result.table.to_csv(paths[0], index=False)
    result.units.to_csv(paths[1], index=False)
    provenance = {"scan": list(result.scan), "agrees": result.agrees, **result.details}
    paths.append(out / "comparison.json")
    write_text_atomic(paths[-1], json.dumps(provenance, indent=1, default=str))
    plot_comparison_html(result, paths[2])
    if png:
        paths.append(plot_comparison_png(result, out / "comparison.png"))
    return paths
