"""CAVE annotation tables as caveclient returns them (or as CSV/feather/parquet files of such frames).

caveclient gives positions either as one column of [x, y, z] lists (``pt_position``) or, with
``split_positions=True``, as ``pt_position_x/_y/_z``; in voxels of 4 × 4 × 40 nm by default or in nm when queried
with ``desired_resolution=[1, 1, 1]`` (it then records ``dataframe_resolution`` in ``df.attrs``). This module
brings every such frame to one layout: split columns in 4 × 4 × 40 nm voxels, 18-digit ids as int64, and
``attrs`` saying where the positions came from (``position_source_resolution_nm``) and which materialization
version the root ids belong to (``materialization_version``, when known).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from ..coords import VOXEL_RESOLUTION_NM

POSITION_SUFFIXES = ("_x", "_y", "_z")
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_HEX = re.compile(r"^(?:\\x)?[0-9A-Fa-f]+$")
ID_COLUMNS_SUFFIX = ("_root_id", "_supervoxel_id")


def _ewkb_point(text: str) -> list[float] | None:
    """x, y, z of a PostGIS (E)WKB hex POINT Z, as postgres dumps geometry columns; None if it is not one."""
    h = text[2:] if text.startswith("\\x") else text
    if len(h) < 2 * (1 + 4 + 24) or not _HEX.match(h):
        return None
    raw = bytes.fromhex(h)
    order = "<" if raw[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", raw[1:5])
    at = 5 + (4 if kind & 0x20000000 else 0)  # optional SRID
    if (kind & 0xFF) != 1 or len(raw) < at + 24:
        return None
    return list(struct.unpack(order + "3d", raw[at:at + 24]))


def parse_points(values: pd.Series, where: str) -> np.ndarray:
    """[n, 3] floats from a position column: lists/arrays, '[x, y, z]', '(x y z)', 'POINTZ(x y z)' or EWKB hex;
    missing values (NaN, None, '[<NA>, <NA>, <NA>]') become NaN rows."""
    out = np.full((len(values), 3), np.nan)
    for i, v in enumerate(values.to_numpy()):
        if isinstance(v, str):
            if "<NA>" in v or "nan" in v.lower() or not v.strip():
                continue
            nums = re.findall(_NUM, v) if not _HEX.match(v.strip()) else []
            if len(nums) != 3:
                pt = _ewkb_point(v.strip())
                if pt is None:
                    raise ValueError(f"{where}: row {i}: cannot read a 3-D position from {v[:60]!r}; accepted: "
                                     "[x, y, z] lists, 'POINTZ(x y z)' or PostGIS hex points")
                out[i] = pt
                continue
            out[i] = [float(n) for n in nums]
        elif isinstance(v, (list, tuple, np.ndarray)) and len(v) == 3:
            out[i] = np.asarray([np.nan if x is None or x is pd.NA else x for x in v], dtype=float)
        elif not (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))):
            raise ValueError(f"{where}: row {i}: cannot read a 3-D position from {v!r}")
    return out


def position_columns(df: pd.DataFrame) -> list[str]:
    """Names of the position columns a frame holds, combined (``pt_position``) or split (``pt_position_x``...)."""
    names = [c for c in df.columns if str(c).endswith("_position")]
    names += [str(c)[:-2] for c in df.columns if str(c).endswith("_position_x")
              and all(str(c)[:-2] + s in df.columns for s in POSITION_SUFFIXES)]
    return list(dict.fromkeys(names))


def split_positions(df: pd.DataFrame, columns: list[str] | None = None, where: str = "table") -> pd.DataFrame:
    """Replace combined position columns by ``<col>_x/_y/_z`` (columns already split are left alone)."""
    df = df.copy()
    for col in position_columns(df) if columns is None else columns:
        if col in df.columns:
            pts = parse_points(df[col], f"{where}.{col}")
            at = df.columns.get_loc(col)
            df = df.drop(columns=col)
            for k, s in enumerate(POSITION_SUFFIXES):
                df.insert(at + k, col + s, pts[:, k])
    return df


def _resolution(value: object, where: str) -> np.ndarray:
    res = np.asarray(value, dtype=float).ravel()
    if res.shape != (3,) or np.any(res <= 0):
        raise ValueError(f"{where}: resolution must be 3 positive numbers (nm per unit in x, y, z), got {value!r}")
    return res


def guess_position_resolution(xyz: np.ndarray, where: str) -> np.ndarray:
    """(4, 4, 40) for minnie65 voxels or (1, 1, 1) for nm, told from z: the volume spans z ≈ 0.6–1.1 mm, which
    is ~15k–28k voxels of 40 nm but 600k–1.1M nm; x and y must then lie inside the volume in that unit too."""
    ok = np.isfinite(xyz).all(axis=1)
    if not ok.any():
        raise ValueError(f"{where}: no positions to tell voxels from nm; pass resolution=(4, 4, 40) or (1, 1, 1)")
    med = np.median(np.abs(xyz[ok]), axis=0)
    if med[2] < 50_000 and med[0] < 700_000 and med[1] < 500_000:
        return np.asarray(VOXEL_RESOLUTION_NM, dtype=float)
    if med[2] > 200_000 and max(med[0], med[1]) > 20_000:
        return np.ones(3)
    raise ValueError(f"{where}: cannot tell whether positions are 4×4×40 nm voxels or nm (median x, y, z "
                     f"{med[0]:.0f}, {med[1]:.0f}, {med[2]:.0f}); pass resolution=(4, 4, 40) or (1, 1, 1)")


def normalize_cave_frame(df: pd.DataFrame, table: str | None = None, resolution: object = None,
                         version: int | None = None, where: str | None = None,
                         default_resolution: object = None) -> pd.DataFrame:
    """A caveclient-shaped frame in the project's layout: split positions in 4 × 4 × 40 nm voxels, int64 ids.

    ``resolution`` (nm per unit of the positions) wins; else ``df.attrs['dataframe_resolution']`` (caveclient);
    else it is told from the coordinates, falling back to ``default_resolution`` when they do not tell (an
    anatomy folder's convention is voxels). ``version`` (or ``df.attrs['materialization_version']``) is recorded.
    """
    where = where or table or "table"
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{where}: expected a pandas DataFrame as caveclient returns it, got {type(df).__name__}")
    attrs = dict(df.attrs)
    out = df.drop(columns=[c for c in ("df_index", "Unnamed: 0") if c in df.columns])
    out = split_positions(out, where=where)
    cols = position_columns(out)
    given = resolution if resolution is not None else attrs.get("dataframe_resolution")
    stack = (np.concatenate([out[[c + s for s in POSITION_SUFFIXES]].to_numpy(float) for c in cols])
             if cols else np.zeros((0, 3)))
    if np.isfinite(stack).all(axis=1).any() or (cols and given is not None):  # nothing to convert otherwise
        if given is not None:
            res = _resolution(given, where)
        else:
            try:
                res = guess_position_resolution(stack, where)
            except ValueError:
                if default_resolution is None:
                    raise
                res = _resolution(default_resolution, where)
        scale = res / np.asarray(VOXEL_RESOLUTION_NM)
        for c in cols:
            for k, s in enumerate(POSITION_SUFFIXES):
                out[c + s] = out[c + s].to_numpy(float) * scale[k]
        attrs["position_source_resolution_nm"] = tuple(float(r) for r in res)
    for c in out.columns:
        if str(c).endswith(ID_COLUMNS_SUFFIX) or str(c) in ("id", "target_id", "id_ref"):
            col = pd.to_numeric(out[c], errors="coerce")
            out[c] = col.astype("Int64") if col.isna().any() else col.astype("int64")
    attrs["position_resolution_nm"] = VOXEL_RESOLUTION_NM
    if table is not None:
        attrs["table"] = table
    v = version if version is not None else attrs.get("materialization_version")
    if v is not None:
        attrs["materialization_version"] = int(v)
    out.attrs = attrs
    return out


def read_cave_table(source: str | Path | pd.DataFrame, table: str | None = None, resolution: object = None,
                    version: int | None = None, default_resolution: object = None) -> pd.DataFrame:
    """A CAVE table from a caveclient DataFrame or a .csv(.gz)/.feather/.parquet file of one, normalised by
    :func:`normalize_cave_frame`. Pickled formats (.pkl) are refused."""
    if isinstance(source, pd.DataFrame):
        return normalize_cave_frame(source, table, resolution, version, default_resolution=default_resolution)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"CAVE table file not found: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".csv", ".csv.gz")):
            # 18-digit ids with blanks would pass through float64 and lose digits: read them as nullable ints
            head = pd.read_csv(path, nrows=0).columns
            ids = {c: "Int64" for c in head if str(c).endswith(ID_COLUMNS_SUFFIX) or c in ("id", "target_id", "id_ref")}
            df = pd.read_csv(path, dtype=ids)
        elif name.endswith(".feather"):
            df = pd.read_feather(path)
        elif name.endswith(".parquet"):
            df = pd.read_parquet(path)
        else:
            raise ValueError(f"{path.name}: unsupported table file; accepted: .csv, .csv.gz, .feather, .parquet "
                             "(pickles are never read)")
    except ImportError as exc:
        raise ImportError(f"{path.name}: reading it needs pyarrow (pip install 'twin_explorer[microns]'): {exc}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path.name}: cannot be read as a table ({type(exc).__name__}: {exc})") from None
    return normalize_cave_frame(df, table, resolution, version, where=path.name,
                                default_resolution=default_resolution)
