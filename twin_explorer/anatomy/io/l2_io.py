"""Level-2 graphs of a root (the chunked graph's coarse nodes, what pcg_skel skeletonises): an edge list of
level-2 ids (``.npy`` int64 pairs or a JSON list of pairs, as ``client.chunkedgraph.level2_chunk_graph``
returns) and their L2-cache properties (a JSON dict ``{l2_id: {"rep_coord_nm": [x, y, z], ...}}`` or the
feather/parquet frame with ``l2_id`` and ``rep_coord_nm_x/_y/_z``). Coordinates are nm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Level2Graph:
    """Level-2 ids, their representative points (nm) and the edges between them (row indices)."""

    l2_ids: np.ndarray
    vertices_nm: np.ndarray
    edges: np.ndarray

    @property
    def vertices_um(self) -> np.ndarray:
        return self.vertices_nm / 1000.0

    @property
    def n_components(self) -> int:
        from scipy.sparse import coo_matrix  # scipy only when asked
        from scipy.sparse.csgraph import connected_components

        n = len(self.l2_ids)
        g = coo_matrix((np.ones(len(self.edges)), (self.edges[:, 0], self.edges[:, 1])), shape=(n, n))
        return int(connected_components(g, directed=False)[0])


def _read_edges(source: str | Path) -> np.ndarray:
    path = Path(source)
    if path.suffix == ".npy":
        edges = np.load(path, allow_pickle=False)
    elif path.suffix == ".json":
        edges = np.asarray(json.loads(path.read_text()), dtype=np.int64)
    else:
        raise ValueError(f"{path.name}: level-2 edges must be .npy or .json (pairs of level-2 ids)")
    edges = np.asarray(edges, dtype=np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"{path.name}: expected [n, 2] pairs of level-2 ids, got shape {edges.shape}")
    return edges


def _read_coords(source: str | Path) -> pd.DataFrame:
    path = Path(source)
    if path.suffix == ".json":
        d = json.loads(path.read_text())
        ids = np.array([int(k) for k in d], dtype=np.int64)
        xyz = np.array([v["rep_coord_nm"] for v in d.values()], dtype=float)
    elif path.suffix in (".feather", ".parquet"):
        df = pd.read_feather(path) if path.suffix == ".feather" else pd.read_parquet(path)
        cols = ["rep_coord_nm_x", "rep_coord_nm_y", "rep_coord_nm_z"]
        if "l2_id" not in df.columns and df.index.name == "l2_id":
            df = df.reset_index()
        if "l2_id" not in df.columns or any(c not in df.columns for c in cols):
            raise ValueError(f"{path.name}: L2 properties need l2_id and {cols}; it has {list(df.columns)[:10]}...")
        ids, xyz = df["l2_id"].to_numpy(np.int64), df[cols].to_numpy(float)
    else:
        raise ValueError(f"{path.name}: L2 properties must be .json, .feather or .parquet")
    return pd.DataFrame(xyz, index=pd.Index(ids, name="l2_id"), columns=["x_nm", "y_nm", "z_nm"])


def read_l2_graph(edges: str | Path, properties: str | Path) -> Level2Graph:
    """A :class:`Level2Graph` from an edge list file and an L2-cache properties file (see the module docstring)."""
    pairs = _read_edges(edges)
    coords = _read_coords(properties)
    missing = np.setdiff1d(np.unique(pairs), coords.index.to_numpy())
    if len(missing):
        raise ValueError(f"{len(missing)} level-2 ids of the edges have no coordinates (e.g. {missing[:3].tolist()})")
    index = pd.Series(np.arange(len(coords)), index=coords.index)
    return Level2Graph(l2_ids=coords.index.to_numpy(), vertices_nm=coords.to_numpy(),
                       edges=index.loc[pairs.ravel()].to_numpy().reshape(-1, 2))
