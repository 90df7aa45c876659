"""SWC skeletons in either unit in circulation: the skeleton service's SWC is in µm, the v661 BossDB SWC files
and the ones this package writes are in nm.

The unit is, in order: the ``unit`` argument, a ``# unit: nm|um`` header line, or detected from the coordinates
(:func:`~twin_explorer.anatomy.coords.detect_length_unit`); it is recorded on the skeleton (``source_unit``).
Accepts a path or the DataFrame ``client.skeleton.get_skeleton(output_format='swc')`` returns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..coords import LENGTH_UNITS, check_length_unit, detect_length_unit
from ..swc import SWC_COLUMNS, Skeleton


def _parse_lines(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    meta: dict[str, str] = {}
    rows: list[list[float]] = []
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip() and " " not in key.strip():
                meta[key.strip()] = value.strip()
            continue
        parts = line.split()
        if len(parts) < 7:
            raise ValueError(f"{path.name} line {lineno}: expected 7 columns (id type x y z radius parent), "
                             f"got {len(parts)}: {line[:80]!r}")
        try:
            rows.append([float(p) for p in parts[:7]])
        except ValueError:
            raise ValueError(f"{path.name} line {lineno}: non-numeric value in {line[:80]!r}") from None
    if not rows:
        raise ValueError(f"{path.name}: no nodes found; an SWC file has rows 'id type x y z radius parent'")
    return np.asarray(rows), meta


def skeleton_from_swc_rows(arr: np.ndarray, where: str, unit: str | None = None, meta: dict | None = None) -> Skeleton:
    """A :class:`Skeleton` from [n, 7] SWC rows (id type x y z radius parent) in ``unit`` (None: detected)."""
    meta = dict(meta or {})
    ids = arr[:, 0].astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{where}: duplicate node ids")
    index = pd.Series(np.arange(len(ids)), index=ids)
    parent_ids = arr[:, 6].astype(np.int64)
    is_root = parent_ids < 0
    missing = ~is_root & ~np.isin(parent_ids, ids)
    if missing.any():
        raise ValueError(f"{where}: parent ids not present as nodes: {parent_ids[missing][:5].tolist()}")
    parent = np.full(len(ids), -1, dtype=np.int64)
    parent[~is_root] = index.loc[parent_ids[~is_root]].to_numpy()
    if unit is None and "unit" in meta:
        unit = meta["unit"]
    unit = check_length_unit(unit) if unit is not None else detect_length_unit(arr[:, 2:5], where)
    scale = LENGTH_UNITS[unit]
    meta.pop("unit", None)
    return Skeleton(xyz_nm=arr[:, 2:5] * scale, parent=parent, compartment=arr[:, 1].astype(np.int64),
                    radius_nm=arr[:, 5] * scale, node_id=ids, meta=meta, source_unit=unit)


def read_swc(source: str | Path | pd.DataFrame, unit: str | None = None) -> Skeleton:
    """Read an SWC file (or the skeleton service's SWC DataFrame) into a :class:`Skeleton` held in nm.

    ``unit``: 'nm' or 'um' to override the header/detection. '# key: value' header lines become ``meta``."""
    if isinstance(source, pd.DataFrame):
        missing = [c for c in SWC_COLUMNS if c not in source.columns]
        if missing:
            raise ValueError(f"SWC table lacks columns {missing}; it needs {list(SWC_COLUMNS)}")
        return skeleton_from_swc_rows(source[list(SWC_COLUMNS)].to_numpy(float), "SWC table", unit)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"SWC file not found: {path}")
    if path.suffix.lower() != ".swc":
        raise ValueError(f"{path.name}: not an SWC file (expected the .swc suffix)")
    arr, meta = _parse_lines(path)
    return skeleton_from_swc_rows(arr, path.name, unit, meta)
