"""MICrONS CAVE annotation tables in an anatomy folder: their public column names, reading and writing.

Positions (``pt_position``, ``ctr_pt_position``, ...) are kept as split ``<column>_x/_y/_z`` voxel coordinates
(4 × 4 × 40 nm). A table is read from ``<table>.csv.gz``, ``<table>.csv``, ``<table>.feather``,
``<table>.parquet`` (caveclient frames saved as they came: list or split positions, voxels or nm) or the public
static dump ``<table>_merged.csv.gz`` with its ``<table>_merged_header.csv``; see ``io.cave_table_io`` and
``io.static_dump_io``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .coords import VOXEL_RESOLUTION_NM
from .io.cave_table_io import POSITION_SUFFIXES, read_cave_table, split_positions  # noqa: F401  (re-exported)
from .io.static_dump_io import read_static_dump

_REF = ["id", "created", "valid", "target_id"]
_PT = ["pt_supervoxel_id", "pt_root_id", "pt_position"]
_COREG = _REF + ["session", "scan_idx", "unit_id", "field", "residual", "score"] + _PT
_TUNING = ["OSI", "DSI", "gOSI", "gDSI", "pref_ori", "pref_dir"]

#: table name -> column names (public CAVE names; position columns unsplit)
TABLE_COLUMNS: dict[str, list[str]] = {
    "nucleus_detection_v0": ["id", "created", "superceded_id", "valid", "volume", *_PT,
                             "bb_start_position", "bb_end_position"],
    "coregistration_manual_v4": _COREG,
    "coregistration_manual_v3": _COREG,
    "coregistration_auto_phase3_fwd_apl_vess_combined_v2": _COREG,
    "synapses_pni_2": ["id", "created", "superceded_id", "valid", "size", "pre_pt_supervoxel_id", "pre_pt_root_id",
                       "post_pt_supervoxel_id", "post_pt_root_id", "pre_pt_position", "post_pt_position",
                       "ctr_pt_position"],
    "aibs_metamodel_celltypes_v661": _REF + ["classification_system", "cell_type"] + _PT,
    "nucleus_functional_area_assignment": _REF + ["tag", "value"] + _PT,
    "digital_twin_properties_bcm_coreg_v4": _REF + ["session", "scan_idx", "unit_id", "cc_abs", "cc_max", "cc_norm",
                                                    *_TUNING, "readout_loc_x", "readout_loc_y"] + _PT,
    "functional_properties_v3_bcm": _REF + ["session", "scan_idx", "unit_id", *_TUNING, "cc_abs"] + _PT,
}

_COREG_REQ = ["target_id", "session", "scan_idx", "unit_id", "residual", "score"]
#: columns a reader needs (others are optional)
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "nucleus_detection_v0": ["id", "pt_root_id", "pt_position"],
    "coregistration_manual_v4": _COREG_REQ,
    "coregistration_manual_v3": _COREG_REQ,
    "coregistration_auto_phase3_fwd_apl_vess_combined_v2": _COREG_REQ,
    "synapses_pni_2": ["pre_pt_root_id", "post_pt_root_id", "ctr_pt_position"],
    "aibs_metamodel_celltypes_v661": ["target_id", "classification_system", "cell_type"],
    "nucleus_functional_area_assignment": ["target_id", "tag", "value"],
    "digital_twin_properties_bcm_coreg_v4": ["target_id", "session", "scan_idx", "unit_id"],
    "functional_properties_v3_bcm": ["target_id", "session", "scan_idx", "unit_id", "pref_ori"],
}

#: the current manual and automatic coregistration tables (what the offline sample writes)
COREGISTRATION_TABLES = ("coregistration_manual_v4", "coregistration_auto_phase3_fwd_apl_vess_combined_v2")
#: every coregistration table understood, in order of trust: manual before automatic, newer manual first
#: (v661-era folders have coregistration_manual_v3, recent ones v4)
COREGISTRATION_PRIORITY = ("coregistration_manual_v4", "coregistration_manual_v3",
                           "coregistration_auto_phase3_fwd_apl_vess_combined_v2")
_SUFFIXES = (".csv.gz", ".csv", ".feather", ".parquet", "_merged.csv.gz", "_merged.csv")


def position_columns(table: str) -> list[str]:
    return [c for c in TABLE_COLUMNS[table] if c.endswith("_position")]


def _check_table(table: str) -> None:
    if table not in TABLE_COLUMNS:
        raise ValueError(f"unknown table {table!r}; known tables: {', '.join(TABLE_COLUMNS)}")


def table_path(folder: str | Path, table: str) -> Path:
    """The file holding ``table`` in ``folder`` (see the module docstring for the names looked for)."""
    _check_table(table)
    folder = Path(folder)
    candidates = [folder / f"{table}{s}" for s in _SUFFIXES]
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"table {table!r} not found in {folder}; looked for "
                            + ", ".join(c.name for c in candidates))


def positions(df: pd.DataFrame, column: str = "pt_position") -> np.ndarray:
    """[n, 3] voxel positions from split ``<column>_x/_y/_z`` columns."""
    cols = [column + s for s in POSITION_SUFFIXES]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"no position columns {missing}; available: {list(df.columns)}")
    return df[cols].to_numpy(dtype=float)


def check_columns(df: pd.DataFrame, table: str, where: str) -> pd.DataFrame:
    """Raise a ValueError naming the missing required columns of ``table`` (position columns may be split)."""
    have = set(df.columns) | {str(c)[:-2] for c in df.columns if str(c).endswith(POSITION_SUFFIXES)}
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in have]
    if missing:
        raise ValueError(f"{where}: missing columns {missing} of table {table!r}; it has {list(df.columns)}")
    return df


def read_table(folder: str | Path, table: str, version: int | None = None, resolution: object = None) -> pd.DataFrame:
    """Read a CAVE table from an anatomy folder, check its required columns and split its positions (voxels).

    ``version`` is the materialization version the folder's root ids belong to (recorded in ``attrs``);
    ``resolution`` the nm per unit of the file's positions when it is not a static dump (default: detected)."""
    path = table_path(folder, table)
    if path.name.endswith(("_merged.csv.gz", "_merged.csv")):
        df = read_static_dump(path, table=table, version=version)
    else:
        # files this package writes hold voxels; a caveclient frame saved in nm is recognised by its coordinates
        df = read_cave_table(path, table=table, resolution=resolution, version=version,
                             default_resolution=VOXEL_RESOLUTION_NM)
    return check_columns(df, table, path.name)


#: the project's angle convention (twin_explorer.monitor): the published v2 / digital-twin one
ANGLE_CONVENTION = "degrees; 0° = rightward motion (vertical bar moving right), counter-clockwise"
#: functional_properties_v3_bcm's (and the v1 units_visual_properties'): radians from upward motion, clockwise
V3_ANGLE_CONVENTION = "radians; 0 = upward motion (horizontal bar moving up), clockwise"


def functional_properties_to_degrees(df: pd.DataFrame, columns: tuple[str, ...] = ("pref_ori", "pref_dir")) -> pd.DataFrame:
    """``functional_properties_v3_bcm`` angles (radians, 0 = upward motion, clockwise) in the project's convention
    (degrees, 0° = rightward, counter-clockwise): θ' = 90° − θ, wrapped to [0, 180) for orientations and
    [0, 360) for directions. ``attrs['angle_convention']`` and ``attrs['converted_columns']`` say so.
    Raises a ValueError when the values are not radians (any beyond 2π)."""
    out = df.copy()
    done = []
    for col in [c for c in df.columns if any(str(c) == k or str(c).startswith(k + "_") for k in columns)]:
        rad = pd.to_numeric(out[col], errors="coerce").to_numpy(float)
        if np.nanmax(np.abs(rad), initial=0.0) > 2 * np.pi + 1e-6:
            raise ValueError(f"{col}: values up to {np.nanmax(np.abs(rad)):.1f} are not radians; "
                             "functional_properties_v3_bcm stores pref_ori/pref_dir in radians")
        period = 180.0 if "ori" in str(col) else 360.0
        out[col] = np.mod(90.0 - np.degrees(rad), period)
        done.append(str(col))
    out.attrs = {**df.attrs, "angle_convention": ANGLE_CONVENTION, "converted_columns": done,
                 "source_angle_convention": V3_ANGLE_CONVENTION}
    return out


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
