"""The Meshwork type (mesh, skeleton and annotation tables of one neuron, in nm) and its writer.

Files are MeshParty's meshwork HDF5 layout: file attrs ``seg_id``, ``voxel_resolution``, ``version``;
``mesh/{vertices, faces, node_mask, mesh_mask, link_edges?}``; ``skeleton/{vertices, edges, root,
mesh_to_skel_map, radius?, meta?}``; ``annotations/<name>/data`` with attrs ``anchor_to_mesh, point_column,
max_distance, defined_index, index_column``. :func:`write_meshwork` writes version 2 (annotations as JSON
strings, what MeshParty writes since 2021); ``io.meshwork_io.read_meshwork`` reads versions 1 and 2.
Compartments come from the ``is_axon`` and ``apical_mesh_labels`` annotations (mesh indices).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .coords import VOXEL_RESOLUTION_NM
from .points import guess_position_resolution, parse_points
from .swc import Skeleton, skeleton_from_edges

ANNOTATION_ATTRS = ("anchor_to_mesh", "point_column", "max_distance", "defined_index", "index_column")


@dataclass
class Meshwork:
    """Mesh (nm), skeleton (nm) and annotation tables of one neuron."""

    seg_id: int
    mesh_vertices_nm: np.ndarray
    mesh_faces: np.ndarray
    skeleton_vertices_nm: np.ndarray
    skeleton_edges: np.ndarray
    skeleton_root: int
    mesh_to_skel_map: np.ndarray
    skeleton_radius_nm: np.ndarray | None = None
    annotations: dict[str, pd.DataFrame] = field(default_factory=dict)
    annotation_attrs: dict[str, dict] = field(default_factory=dict)
    voxel_resolution: tuple[float, float, float] = VOXEL_RESOLUTION_NM
    version: int = 2
    skeleton_meta: dict = field(default_factory=dict)
    #: annotation name -> columns a legacy (version 1) file stored as pickles, which were not read
    skipped_columns: dict[str, list[str]] = field(default_factory=dict)
    #: mesh vertices the file's ``mesh_mask`` left out (already removed here)
    n_masked_out: int = 0
    link_edges: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.mesh_vertices_nm = np.asarray(self.mesh_vertices_nm, dtype=float).reshape(-1, 3)
        self.mesh_faces = np.asarray(self.mesh_faces, dtype=np.int64).reshape(-1, 3)
        self.skeleton_vertices_nm = np.asarray(self.skeleton_vertices_nm, dtype=float).reshape(-1, 3)
        self.skeleton_edges = np.asarray(self.skeleton_edges, dtype=np.int64).reshape(-1, 2)
        self.mesh_to_skel_map = np.asarray(self.mesh_to_skel_map, dtype=np.int64)
        nm, ns = len(self.mesh_vertices_nm), len(self.skeleton_vertices_nm)
        if self.mesh_faces.size and (self.mesh_faces.min() < 0 or self.mesh_faces.max() >= nm):
            raise ValueError(f"mesh faces refer to vertices outside 0..{nm - 1}")
        if self.mesh_to_skel_map.shape != (nm,):
            raise ValueError(f"mesh_to_skel_map needs one entry per mesh vertex ({nm}), got {self.mesh_to_skel_map.shape}")
        if nm and (self.mesh_to_skel_map.min() < 0 or self.mesh_to_skel_map.max() >= ns):
            raise ValueError(f"mesh_to_skel_map refers to skeleton vertices outside 0..{ns - 1}")

    def _mesh_index_set(self, name: str) -> np.ndarray:
        df = self.annotations.get(name)
        if df is None or df.empty:
            return np.zeros(0, np.int64)
        return df[self.index_column(name)].to_numpy(dtype=np.int64)

    def index_column(self, name: str) -> str:
        """The column of annotation ``name`` holding mesh vertex indices (the file's ``index_column`` attr,
        else 'mesh_ind' / 'mesh_index')."""
        df = self.annotations[name]
        col = self.annotation_attrs.get(name, {}).get("index_column") or "mesh_ind"
        col = col if col in df.columns else next((c for c in ("mesh_ind", "mesh_index") if c in df.columns), None)
        if col is None:
            raise ValueError(f"annotation {name!r} has no mesh index column (expected 'mesh_ind' or the "
                             f"file's index_column); it has {list(df.columns)}")
        return col

    def annotation_positions_um(self, name: str, column: str | None = None) -> np.ndarray:
        """[n, 3] EM µm of an annotation's point column (the file's ``point_column`` by default). MeshParty keeps
        whatever unit the rows were queried in, so voxels (4 × 4 × 40 nm) and nm are told apart here."""
        df = self.annotations[name]
        column = column or self.annotation_attrs.get(name, {}).get("point_column")
        if not column or column not in df.columns:
            raise ValueError(f"annotation {name!r} has no point column {column!r}; columns: {list(df.columns)}")
        pts = parse_points(df[column], f"{name}.{column}")
        return pts * guess_position_resolution(pts, f"{name}.{column}") / 1000.0

    @property
    def soma_radius_um(self) -> float | None:
        r = self.skeleton_meta.get("soma_radius")
        return None if r is None else float(r) / 1000.0

    def skeleton(self) -> Skeleton:
        """The skeleton as a :class:`Skeleton`, compartments from ``is_axon``/``apical_mesh_labels`` (else 3)."""
        n = len(self.skeleton_vertices_nm)
        comp = np.full(n, 3, dtype=np.int64)
        comp[np.unique(self.mesh_to_skel_map[self._mesh_index_set("apical_mesh_labels")])] = 4
        comp[np.unique(self.mesh_to_skel_map[self._mesh_index_set("is_axon")])] = 2
        comp[self.skeleton_root] = 1
        radius = self.skeleton_radius_nm if self.skeleton_radius_nm is not None else np.full(n, np.nan)
        sk = skeleton_from_edges(self.skeleton_vertices_nm, self.skeleton_edges, self.skeleton_root, comp, radius)
        sk.meta = {"seg_id": self.seg_id, "format": f"meshwork v{self.version}"}
        if self.skeleton_meta.get("soma_radius") is not None:
            sk.soma_radius_nm = float(self.skeleton_meta["soma_radius"])
        return sk


def _annotation_json(df: pd.DataFrame) -> bytes:
    """A frame as MeshParty's version-2 annotation: ``DataFrame.to_dict()`` ({column: {row: value}}) as JSON."""
    out: dict[str, dict[str, object]] = {}
    for col in df.columns:
        values = df[col].to_numpy()
        out[str(col)] = {str(i): (v.tolist() if isinstance(v, np.ndarray) else v.item() if hasattr(v, "item") else v)
                         for i, v in zip(df.index, values)}
    return json.dumps(out).encode()


def write_meshwork(mw: Meshwork, path: str | Path) -> Path:
    """Write a :class:`Meshwork` as a MeshParty version-2 meshwork .h5 (gzip-compressed arrays, JSON annotations)."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        f.attrs["seg_id"] = int(mw.seg_id)
        f.attrs["voxel_resolution"] = np.asarray(mw.voxel_resolution, dtype=float)
        f.attrs["version"] = 2
        mesh = f.create_group("mesh")
        comp = {"compression": "gzip", "shuffle": True}
        mesh.create_dataset("vertices", data=mw.mesh_vertices_nm.astype(np.float32), **comp)
        mesh.create_dataset("faces", data=mw.mesh_faces.astype(np.int32), **comp)
        n = len(mw.mesh_vertices_nm)
        mesh.create_dataset("node_mask", data=np.ones(n, bool), **comp)
        mesh.create_dataset("mesh_mask", data=np.ones(n, bool), **comp)
        sk = f.create_group("skeleton")
        sk.create_dataset("vertices", data=mw.skeleton_vertices_nm.astype(np.float32), **comp)
        sk.create_dataset("edges", data=mw.skeleton_edges.astype(np.int32), **comp)
        sk.create_dataset("root", data=int(mw.skeleton_root))
        sk.create_dataset("mesh_to_skel_map", data=mw.mesh_to_skel_map.astype(np.int32), **comp)
        sk.create_dataset("meta", data=np.bytes_(json.dumps(mw.skeleton_meta).encode()))
        if mw.skeleton_radius_nm is not None:
            sk.create_dataset("radius", data=np.asarray(mw.skeleton_radius_nm, dtype=np.float32), **comp)
        annos = f.create_group("annotations")
        for name, df in mw.annotations.items():
            g = annos.create_group(name)
            g.create_dataset("data", data=np.bytes_(_annotation_json(df)))
            attrs = {"anchor_to_mesh": 1, "max_distance": np.inf, "defined_index": 1, "index_column": "mesh_ind",
                     **mw.annotation_attrs.get(name, {})}
            for k in ANNOTATION_ATTRS:
                if attrs.get(k) not in (None, ""):
                    g.attrs[k] = attrs[k]
    return path
