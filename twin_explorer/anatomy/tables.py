"""MICrONS CAVE annotation tables as static CSV(.gz) dumps: their public column names, reading and writing.

Positions (``pt_position``, ``ctr_pt_position``, ...) are voxel coordinates (4 × 4 × 40 nm). In memory and in the
files this package writes they are split into ``<column>_x/_y/_z`` (caveclient's ``split_positions`` layout);
the reader also accepts one combined column written as ``[x y z]``, ``(x, y, z)`` or ``POINTZ(x y z)``, and
headerless ``<table>_merged.csv.gz`` dumps with their ``<table>_merged_header.csv``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

_REF = ["id", "created", "valid", "target_id"]
_PT = ["pt_supervoxel_id", "pt_root_id", "pt_position"]
_COREG = _REF + ["session", "scan_idx", "unit_id", "field", "residual", "score"] + _PT

#: table name -> column names (public CAVE names; position columns unsplit)
TABLE_COLUMNS: dict[str, list[str]] = {
    "nucleus_detection_v0": ["id", "created", "superceded_id", "valid", "volume", *_PT,
                             "bb_start_position", "bb_end_position"],
    "coregistration_manual_v4": _COREG,
    "coregistration_auto_phase3_fwd_apl_vess_combined_v2": _COREG,
    "synapses_pni_2": ["id", "created", "superceded_id", "valid", "size", "pre_pt_supervoxel_id", "pre_pt_root_id",
                       "post_pt_supervoxel_id", "post_pt_root_id", "pre_pt_position", "post_pt_position",
                       "ctr_pt_position"],
    "aibs_metamodel_celltypes_v661": _REF + ["classification_system", "cell_type"] + _PT,
    "nucleus_functional_area_assignment": _REF + ["tag", "value"] + _PT,
    "digital_twin_properties_bcm_coreg_v4": _REF + ["session", "scan_idx", "unit_id", "cc_abs", "cc_max", "cc_norm",
                                                    "OSI", "DSI", "gOSI", "gDSI", "pref_ori", "pref_dir",
                                                    "readout_loc_x", "readout_loc_y"] + _PT,
}

#: columns a reader needs (others are optional)
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "nucleus_detection_v0": ["id", "pt_root_id", "pt_position"],
    "coregistration_manual_v4": ["target_id", "session", "scan_idx", "unit_id", "residual", "score"],
    "coregistration_auto_phase3_fwd_apl_vess_combined_v2": ["target_id", "session", "scan_idx", "unit_id",
                                                            "residual", "score"],
    "synapses_pni_2": ["id", "size", "pre_pt_root_id", "post_pt_root_id", "ctr_pt_position"],
    "aibs_metamodel_celltypes_v661": ["target_id", "classification_system", "cell_type"],
    "nucleus_functional_area_assignment": ["target_id", "tag", "value"],
    "digital_twin_properties_bcm_coreg_v4": ["target_id", "session", "scan_idx", "unit_id"],
}

COREGISTRATION_TABLES = ("coregistration_manual_v4", "coregistration_auto_phase3_fwd_apl_vess_combined_v2")
POSITION_SUFFIXES = ("_x", "_y", "_z")
_NUM = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"


def position_columns(table: str) -> list[str]:
    return [c for c in TABLE_COLUMNS[table] if c.endswith("_position")]


def _check_table(table: str) -> None:
    if table not in TABLE_COLUMNS:
        raise ValueError(f"unknown table {table!r}; known tables: {', '.join(TABLE_COLUMNS)}")


def table_path(folder: str | Path, table: str) -> Path:
    """The file holding ``table`` in ``folder``: ``<table>.csv.gz``, ``<table>.csv`` or ``<table>_merged.csv.gz``."""
    _check_table(table)
    folder = Path(folder)
    candidates = [folder / f"{table}.csv.gz", folder / f"{table}.csv", folder / f"{table}_merged.csv.gz"]
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"table {table!r} not found in {folder}; looked for "
                            + ", ".join(c.name for c in candidates))


def _parse_points(values: pd.Series, where: str) -> np.ndarray:
    out = np.full((len(values), 3), np.nan)
    for i, v in enumerate(values.to_numpy()):
        if isinstance(v, str):
            nums = re.findall(_NUM, v)
            if len(nums) != 3:
                raise ValueError(f"{where}: row {i}: cannot read a 3-D position from {v!r}")
            out[i] = [float(n) for n in nums]
        elif isinstance(v, (list, tuple, np.ndarray)) and len(v) == 3:
            out[i] = np.asarray(v, dtype=float)
        elif not pd.isna(v):
            raise ValueError(f"{where}: row {i}: cannot read a 3-D position from {v!r}")
    return out


def split_positions(df: pd.DataFrame, columns: list[str], where: str = "table") -> pd.DataFrame:
    """Replace combined position columns by ``<col>_x/_y/_z`` (no-op for columns already split)."""
    df = df.copy()
    for col in columns:
        if col in df.columns:
            pts = _parse_points(df[col], f"{where}.{col}")
            at = df.columns.get_loc(col)
            df = df.drop(columns=col)
            for k, s in enumerate(POSITION_SUFFIXES):
                df.insert(at + k, col + s, pts[:, k])
    return df


def positions(df: pd.DataFrame, column: str = "pt_position") -> np.ndarray:
    """[n, 3] voxel positions from split ``<column>_x/_y/_z`` columns."""
    cols = [column + s for s in POSITION_SUFFIXES]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"no position columns {missing}; available: {list(df.columns)}")
    return df[cols].to_numpy(dtype=float)


def read_table(folder: str | Path, table: str) -> pd.DataFrame:
    """Read a CAVE table dump, check its required columns and split its position columns."""
    path = table_path(folder, table)
    header_file = path.with_name(f"{table}_merged_header.csv")
    try:
        if path.name.endswith("_merged.csv.gz"):
            if not header_file.exists():
                raise FileNotFoundError(f"{path.name} is a headerless dump; its header {header_file.name} is missing")
            names = [c.strip() for c in header_file.read_text().strip().split(",")]
            df = pd.read_csv(path, header=None, names=names)
        else:
            df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path.name}: cannot be read as a CSV table ({type(exc).__name__}: {exc})") from None
    have = set(df.columns) | {c[:-2] for c in df.columns if c.endswith(POSITION_SUFFIXES)}
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in have]
    if missing:
        raise ValueError(f"{path.name}: missing columns {missing} of table {table!r}; it has {list(df.columns)}")
    return split_positions(df, position_columns(table), where=path.name)


def write_table(df: pd.DataFrame, folder: str | Path, table: str) -> Path:
    """Write ``df`` as ``<folder>/<table>.csv.gz`` with the table's public columns in their order."""
    _check_table(table)
    have = set(df.columns) | {c[:-2] for c in df.columns if c.endswith(POSITION_SUFFIXES)}
    missing = [c for c in TABLE_COLUMNS[table] if c not in have]
    if missing:
        raise ValueError(f"cannot write {table!r}: missing columns {missing}")
    cols: list[str] = []
    for c in TABLE_COLUMNS[table]:
        cols += [c + s for s in POSITION_SUFFIXES] if c.endswith("_position") and c not in df.columns else [c]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.csv.gz"
    # mtime=0 keeps the gzip bytes reproducible
    df[cols].to_csv(path, index=False, compression={"method": "gzip", "mtime": 0}, float_format="%.6g")
    return path
