"""The Skeleton type (nodes in nm, MICrONS compartment labels) and the SWC writer; readers live in ``io``.

One SWC node per row: ``id type x y z radius parent`` (parent -1 for the root). MICrONS skeletons use the type
column for compartments: 1 soma, 2 axon, 3 basal dendrite, 4 apical dendrite (0 = undefined). Whatever unit a
file was in, a :class:`Skeleton` holds nm and says what the source unit was (``source_unit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

COMPARTMENTS: dict[int, str] = {0: "undefined", 1: "soma", 2: "axon", 3: "basal dendrite", 4: "apical dendrite"}
SWC_COLUMNS = ("id", "type", "x", "y", "z", "radius", "parent")


@dataclass
class Skeleton:
    """A tree of nodes in nm. ``parent`` holds row indices (-1 for the root), not SWC ids. ``source_unit`` is the
    length unit of the file it was read from ('nm' or 'um'); ``soma_radius_nm`` the soma radius when the source
    gives one (else the root node's radius is used)."""

    xyz_nm: np.ndarray
    parent: np.ndarray
    compartment: np.ndarray
    radius_nm: np.ndarray
    node_id: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    source_unit: str = "nm"
    soma_radius_nm: float | None = None

    def __post_init__(self) -> None:
        self.xyz_nm = np.asarray(self.xyz_nm, dtype=float)
        n = len(self.xyz_nm)
        if self.xyz_nm.ndim != 2 or self.xyz_nm.shape[1] != 3:
            raise ValueError(f"xyz_nm must be [n, 3], got {self.xyz_nm.shape}")
        self.parent = np.asarray(self.parent, dtype=np.int64)
        self.compartment = np.asarray(self.compartment, dtype=np.int64)
        self.radius_nm = np.asarray(self.radius_nm, dtype=float)
        self.node_id = np.arange(1, n + 1) if self.node_id is None else np.asarray(self.node_id, dtype=np.int64)
        for name in ("parent", "compartment", "radius_nm", "node_id"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have one value per node ({n}), got shape {getattr(self, name).shape}")
        if n == 0:
            raise ValueError("a skeleton needs at least one node")
        bad = (self.parent < -1) | (self.parent >= n) | (self.parent == np.arange(n))
        if bad.any():
            raise ValueError(f"parent indices must be -1 (root) or another node's row; bad rows {np.flatnonzero(bad)[:5]}")
        if (self.parent == -1).sum() < 1:
            raise ValueError("the skeleton has no root (no node with parent -1): it contains a cycle")

    @property
    def n_nodes(self) -> int:
        return len(self.xyz_nm)

    @property
    def xyz_um(self) -> np.ndarray:
        return self.xyz_nm / 1000.0

    @property
    def radius_um(self) -> np.ndarray:
        return self.radius_nm / 1000.0

    @property
    def soma_radius_um(self) -> float:
        """Soma radius in µm: the source's value when it has one, else the root node's radius."""
        r = self.soma_radius_nm if self.soma_radius_nm is not None else self.radius_nm[self.root]
        return float(r) / 1000.0

    @property
    def soma_um(self) -> np.ndarray:
        """Soma (root node) position in EM µm."""
        return self.xyz_um[self.root]

    @property
    def root(self) -> int:
        return int(np.flatnonzero(self.parent == -1)[0])

    @property
    def edges(self) -> np.ndarray:
        """[n_edges, 2] (child, parent) row indices."""
        child = np.flatnonzero(self.parent >= 0)
        return np.stack([child, self.parent[child]], axis=1)

    def cable_length_um(self, compartment: int | None = None) -> float:
        e = self.edges
        if compartment is not None:
            e = e[self.compartment[e[:, 0]] == compartment]
        return float(np.linalg.norm(self.xyz_nm[e[:, 0]] - self.xyz_nm[e[:, 1]], axis=1).sum() / 1000.0)

    def compartment_names(self) -> np.ndarray:
        return np.array([COMPARTMENTS.get(int(c), f"type {c}") for c in self.compartment], dtype=object)

    def segments(self, compartment: int | None = None) -> np.ndarray:
        """Edge endpoints as one polyline array [3 * n_edges, 3] in nm with NaN rows between edges (for plotting)."""
        e = self.edges
        if compartment is not None:
            e = e[self.compartment[e[:, 0]] == compartment]
        out = np.full((len(e) * 3, 3), np.nan)
        out[0::3] = self.xyz_nm[e[:, 1]]
        out[1::3] = self.xyz_nm[e[:, 0]]
        return out

    def nearest_node(self, xyz_nm: object) -> np.ndarray:
        """Row index of the node closest to each point [..., 3] (nm)."""
        from scipy.spatial import cKDTree

        pts = np.asarray(xyz_nm, dtype=float)
        return cKDTree(self.xyz_nm).query(pts)[1]

    def to_frame(self) -> pd.DataFrame:
        parent_id = np.where(self.parent >= 0, self.node_id[np.maximum(self.parent, 0)], -1)
        return pd.DataFrame({"id": self.node_id, "type": self.compartment, "x": self.xyz_nm[:, 0],
                             "y": self.xyz_nm[:, 1], "z": self.xyz_nm[:, 2], "radius": self.radius_nm,
                             "parent": parent_id})


def write_swc(skeleton: Skeleton, path: str | Path, header: str | None = None, precision: int = 0) -> Path:
    """Write a skeleton as SWC (nm). ``header`` lines are written as ``#`` comments."""
    path = Path(path)
    lines = ["# SWC skeleton, coordinates and radii in nm", "# unit: nm",
             "# type: 0 undefined, 1 soma, 2 axon, 3 basal dendrite, 4 apical dendrite"]
    lines += [f"# {h}" for h in (header or "").splitlines() if h]
    lines += [f"# {k}: {v}" for k, v in skeleton.meta.items() if k != "unit"]
    lines.append("# " + " ".join(SWC_COLUMNS))
    df = skeleton.to_frame()
    fmt = f"%d %d %.{precision}f %.{precision}f %.{precision}f %.{max(precision, 1)}f %d"
    body = "\n".join(fmt % tuple(r) for r in df.itertuples(index=False, name=None))
    path.write_text("\n".join(lines) + "\n" + body + "\n")
    return path


def skeleton_from_edges(vertices_nm: np.ndarray, edges: np.ndarray, root: int, compartment: np.ndarray | None = None,
                        radius_nm: np.ndarray | None = None, allow_forest: bool = False) -> Skeleton:
    """Orient an undirected edge list [m, 2] into a parent array by breadth-first search from ``root``.

    With ``allow_forest`` a graph of several pieces (e.g. dendrites cut from their soma) gets one root per piece:
    ``root`` in its own piece, the first end point (else the first vertex) in each other piece."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    v = np.asarray(vertices_nm, dtype=float)
    n = len(v)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if e.size and (e.min() < 0 or e.max() >= n):
        raise ValueError(f"edges refer to vertices outside 0..{n - 1}")
    if not 0 <= int(root) < n:
        raise ValueError(f"root {root} is not a vertex index (0..{n - 1})")
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    n_parts, label = connected_components(graph, directed=False)
    if n_parts > 1 and not allow_forest:
        order = breadth_first_order(graph, int(root), directed=False)[0]
        raise ValueError(f"the skeleton graph is not connected: {n - len(order)} vertices unreachable from the root "
                         f"({n_parts} pieces)")
    degree = np.bincount(e.ravel(), minlength=n)
    parent = np.full(n, -1, dtype=np.int64)
    for part in range(n_parts):
        members = np.flatnonzero(label == part)
        if label[int(root)] == part:
            start = int(root)
        else:
            ends = members[degree[members] == 1]
            start = int(ends[0]) if len(ends) else int(members[0])
        _, pred = breadth_first_order(graph, start, directed=False, return_predecessors=True)
        parent[members] = np.where(pred[members] < 0, -1, pred[members])
        parent[start] = -1
    return Skeleton(xyz_nm=v, parent=parent,
                    compartment=np.zeros(n, np.int64) if compartment is None else compartment,
                    radius_nm=np.full(n, 100.0) if radius_nm is None else radius_nm)
