"""The like-to-like paper's skeleton files (``skeleton_<axon|dend>_<nucleus_id>.npz``): ``vertices`` (N, 3) in nm
and ``edges``, with a ``skeleton_lookup.csv`` beside them naming each file's root id (``segment_id``), nucleus id
and compartment. Read with ``allow_pickle=False``: an npz holding objects is refused, never unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..coords import LENGTH_UNITS, check_length_unit
from ..swc import Skeleton, skeleton_from_edges

COMPARTMENT_CODES = {"axon": 2, "dend": 3, "dendrite": 3}


def _lookup_row(path: Path, lookup: str | Path | pd.DataFrame | None) -> dict:
    if lookup is None:
        lookup = path.with_name("skeleton_lookup.csv")
        if not lookup.exists():
            return {}
    df = lookup if isinstance(lookup, pd.DataFrame) else pd.read_csv(lookup)
    if "filename" not in df.columns:
        raise ValueError("skeleton lookup needs a 'filename' column (and segment_id, nucleus_id, compartment)")
    rows = df[df["filename"] == path.name]
    return rows.iloc[0].to_dict() if len(rows) else {}


def read_npz_skeleton(path: str | Path, lookup: str | Path | pd.DataFrame | None = None, unit: str = "nm") -> Skeleton:
    """A :class:`Skeleton` from an npz with ``vertices`` and ``edges``; compartment, root id and nucleus id come from
    the lookup table (default: ``skeleton_lookup.csv`` in the same folder) or the file name. These are axon or
    dendrite pieces without a soma, dendrites often in several pieces: each piece is rooted at its first end
    point (``meta['n_pieces']`` says how many)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"npz skeleton not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("vertices", "edges") if k not in z.files]
            if missing:
                raise ValueError(f"{path.name}: missing arrays {missing}; it has {z.files}")
            vertices, edges = z["vertices"].astype(float), z["edges"].astype(np.int64)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ValueError(f"{path.name}: holds pickled objects; refused (only numeric arrays are read)") from None
        raise
    scale = LENGTH_UNITS[check_length_unit(unit)]
    row = _lookup_row(path, lookup)
    parts = path.stem.split("_")
    kind = str(row.get("compartment", parts[1] if len(parts) >= 3 else "")).lower()
    n = len(vertices)
    degree = np.bincount(edges.ravel(), minlength=n)
    ends = np.flatnonzero(degree == 1)
    root = int(ends[0]) if len(ends) else 0
    comp = np.full(n, COMPARTMENT_CODES.get(kind, 0), dtype=np.int64)
    sk = skeleton_from_edges(vertices * scale, edges, root, comp, np.full(n, np.nan), allow_forest=True)
    sk.source_unit = check_length_unit(unit)
    sk.meta = {"format": "like-to-like npz", "compartment": kind, "n_pieces": int((sk.parent == -1).sum())}
    if row.get("segment_id") is not None and not pd.isna(row.get("segment_id")):
        sk.meta["root_id"] = int(row["segment_id"])
    nucleus = row.get("nucleus_id", parts[-1] if parts[-1].isdigit() else None)
    if nucleus is not None and not pd.isna(nucleus):
        sk.meta["nucleus_id"] = int(nucleus)
    return sk
