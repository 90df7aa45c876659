"""Joining model units to EM nuclei through the coregistration tables, keyed per scan.

Readout ids restart in every scan and unit ids are unique only within a scan, so units are keyed by
(session, scan_idx, unit_id) and readouts by (session, scan_idx, readout_id). A unit with several candidate
nuclei or none is kept and flagged, never dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UNIT_KEYS = ["session", "scan_idx", "unit_id"]
SCAN_KEYS = ["session", "scan_idx"]


def units_frame(units: pd.DataFrame) -> pd.DataFrame:
    """(readout_id, session, scan_idx, unit_id) rows; readout ids restart per scan, so both key sets are checked."""
    if not isinstance(units, pd.DataFrame):
        raise ValueError(f"units must be a DataFrame indexed by readout_id with {UNIT_KEYS}, got {type(units).__name__}")
    missing = [c for c in UNIT_KEYS if c not in units.columns]
    if missing:
        raise ValueError(f"units table lacks columns {missing}; it needs {UNIT_KEYS} (index: readout_id)")
    df = units[UNIT_KEYS].copy()
    if "readout_id" in units.columns:
        df["readout_id"] = units["readout_id"].to_numpy()
    else:
        df["readout_id"] = units.index.get_level_values(-1)
    df = df.astype("int64").reset_index(drop=True)[["readout_id", *UNIT_KEYS]]
    for keys in (UNIT_KEYS, [*SCAN_KEYS, "readout_id"]):
        dup = df.duplicated(keys)
        if dup.any():
            raise ValueError(f"units table repeats {keys} (e.g. {df.loc[dup, keys].iloc[0].tolist()}); each unit of "
                             "each scan must appear once")
    return df


def unit_index(df: pd.DataFrame) -> list[str]:
    """Index columns for per-unit results: readout_id for one scan, (session, scan_idx, readout_id) for several."""
    return ["readout_id"] if len(df.drop_duplicates(SCAN_KEYS)) <= 1 else [*SCAN_KEYS, "readout_id"]


def link_units(units: pd.DataFrame, coregistration: pd.DataFrame, nuclei: pd.DataFrame,
               tables: tuple[str, ...]) -> pd.DataFrame:
    """Every (unit, candidate nucleus) pair: one row per distinct match, one row with <NA> for units with none.

    ``units``: one row per unit with session, scan_idx, unit_id and the readout id (index or column; it restarts
    in every scan). Columns: readout_id, session, scan_idx, unit_id, nucleus_id, pt_root_id (current, from the
    nucleus table; <NA> for root 0), residual, score, field, coreg_source, n_matches, match
    ('unique'|'multiple'|'none'), best (the match a single-neuron view uses: manual table first, then lowest
    residual, then highest score), in_volume, root_shared (the root holds several nuclei).
    """
    u = units_frame(units)
    co = coregistration.rename(columns={"target_id": "nucleus_id", "pt_root_id": "coreg_pt_root_id"})
    co = co[["nucleus_id", *UNIT_KEYS, "residual", "score", "coreg_source"]
            + [c for c in ("coreg_pt_root_id", "field") if c in co.columns]].astype({k: "int64" for k in UNIT_KEYS})
    # the same nucleus may appear in several tables: keep its best row (manual first)
    co["_rank"] = co["coreg_source"].map({t: i for i, t in enumerate(tables)})
    co = co.sort_values(["_rank", "residual", "score"], ascending=[True, True, False])
    co = co.drop_duplicates([*UNIT_KEYS, "nucleus_id"])
    # nullable ints before the left join, so 18-digit root ids never pass through float
    co = co.astype({c: "Int64" for c in ("nucleus_id", "coreg_pt_root_id", "field") if c in co.columns})
    df = u.merge(co, on=UNIT_KEYS, how="left")
    df["n_matches"] = df.groupby(UNIT_KEYS)["nucleus_id"].transform("count").astype("int64")
    df["match"] = np.select([df["n_matches"] == 0, df["n_matches"] == 1], ["none", "unique"], "multiple")
    df = df.sort_values([*SCAN_KEYS, "readout_id", "_rank", "residual", "score"],
                        ascending=[True, True, True, True, True, False])
    df["best"] = ~df.duplicated(UNIT_KEYS) & df["nucleus_id"].notna()
    df = df.drop(columns="_rank")
    df["in_volume"] = df["nucleus_id"].isin(nuclei.index).fillna(False).astype(bool)
    df["pt_root_id"] = df["nucleus_id"].map(nuclei["pt_root_id"].astype("Int64"))
    shared = nuclei.index[nuclei["root_nuclei"] > 1]
    df["root_shared"] = df["nucleus_id"].isin(shared).fillna(False).astype(bool)
    return df.reset_index(drop=True)

