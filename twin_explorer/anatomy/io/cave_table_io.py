"""CAVE annotation tables as caveclient returns them (or as CSV/feather/parquet files of such frames).

caveclient gives positions either as one column of [x, y, z] lists (``pt_position``) or, with
``split_positions=True``, as ``pt_position_x/_y/_z``; in voxels of 4 × 4 × 40 nm by default or in nm when queried
with ``desired_resolution=[1, 1, 1]`` (it then records ``dataframe_resolution`` in ``df.attrs``). This module
brings every such frame to one layout: split columns in 4 × 4 × 40 nm voxels, 18-digit ids as int64, and
``attrs`` saying where the positions came from (``position_source_resolution_nm``) and which materialization
version the root ids belong to (``materialization_version``, when known).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..coords import VOXEL_RESOLUTION_NM
from ..points import guess_position_resolution, parse_points

POSITION_SUFFIXES = ("_x", "_y", "_z")
ID_COLUMNS_SUFFIX = ("_root_id", "_supervoxel_id")


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
