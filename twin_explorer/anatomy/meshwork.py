"""MeshParty meshwork .h5 files read and written with h5py alone (no MeshParty, no PyTables).

Layout (meshparty ``meshwork_io``): file attrs ``seg_id``, ``voxel_resolution``; ``mesh/{vertices, faces,
node_mask, mesh_mask, link_edges?}``; ``skeleton/{vertices, edges, root, mesh_to_skel_map, radius?}``;
``annotations/<name>/data`` holding a pandas ``to_hdf`` table in the "fixed" layout (``axis0`` column names,
``axis1`` index, ``block<i>_values``/``block<i>_items``) with attrs ``anchor_to_mesh, point_column,
max_distance, defined_index, index_column``. Numeric and boolean columns are read directly; columns pandas
stored as pickled Python objects cannot be read without PyTables and are skipped with a warning naming them.
Compartments come from the ``is_axon`` and ``apical_mesh_labels`` annotations (mesh indices).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .coords import VOXEL_RESOLUTION_NM
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
        col = self.annotation_attrs.get(name, {}).get("index_column") or "mesh_ind"
        col = col if col in df.columns else next((c for c in ("mesh_ind", "mesh_index") if c in df.columns), None)
        if col is None:
            raise ValueError(f"annotation {name!r} has no mesh index column (expected 'mesh_ind')")
        return df[col].to_numpy(dtype=np.int64)

    def skeleton(self) -> Skeleton:
        """The skeleton as a :class:`Skeleton`, compartments from ``is_axon``/``apical_mesh_labels`` (else 3)."""
        n = len(self.skeleton_vertices_nm)
        comp = np.full(n, 3, dtype=np.int64)
        comp[np.unique(self.mesh_to_skel_map[self._mesh_index_set("apical_mesh_labels")])] = 4
        comp[np.unique(self.mesh_to_skel_map[self._mesh_index_set("is_axon")])] = 2
        comp[self.skeleton_root] = 1
        radius = self.skeleton_radius_nm if self.skeleton_radius_nm is not None else np.full(n, 100.0)
        sk = skeleton_from_edges(self.skeleton_vertices_nm, self.skeleton_edges, self.skeleton_root, comp, radius)
        sk.meta = {"seg_id": self.seg_id}
        return sk


# ---- pandas "fixed" frame layout, with h5py ------------------------------------------------------------------

def _write_frame(group: h5py.Group, df: pd.DataFrame) -> None:
    group.attrs.update({"CLASS": b"GROUP", "VERSION": b"1.0", "TITLE": b"", "pandas_type": b"frame",
                        "pandas_version": b"0.15.2", "encoding": b"UTF-8", "errors": b"strict", "ndim": 2,
                        "axis0_variety": b"regular", "axis1_variety": b"regular"})
    kinds: dict[str, list[str]] = {}
    for col in df.columns:
        dt = df[col].dtype
        if not (np.issubdtype(dt, np.number) or dt == bool):
            raise ValueError(f"annotation column {col!r} has dtype {dt}; only numeric/bool columns can be written "
                             "without PyTables (split positions into _x/_y/_z columns)")
        kinds.setdefault(np.dtype(dt).str, []).append(str(col))
    group.attrs["nblocks"] = len(kinds)

    def arr(key: str, data: np.ndarray, **attrs: object) -> None:
        ds = group.create_dataset(key, data=data)
        ds.attrs.update({"CLASS": b"ARRAY", "VERSION": b"2.4", "TITLE": b"", "FLAVOR": b"numpy", **attrs})

    arr("axis0", np.array([str(c).encode() for c in df.columns], dtype="S"), kind=b"string", name=b"N.")
    arr("axis1", np.asarray(df.index, dtype=np.int64), kind=b"integer", name=b"N.")
    for i, cols in enumerate(kinds.values()):
        group.attrs[f"block{i}_items_variety"] = b"regular"
        arr(f"block{i}_items", np.array([c.encode() for c in cols], dtype="S"), kind=b"string", name=b"N.")
        # pandas stores block values transposed: [rows, columns of the block]
        arr(f"block{i}_values", df[cols].to_numpy(), transposed=True)


def _read_frame(group: h5py.Group, where: str) -> pd.DataFrame:
    if group.attrs.get("pandas_type", b"") not in (b"frame", "frame"):
        raise ValueError(f"{where}: not a pandas fixed-format frame (pandas_type={group.attrs.get('pandas_type')!r}); "
                         "table-format (PyTables) annotations need `pandas.read_hdf` with PyTables installed")
    columns = [c.decode() if isinstance(c, bytes) else str(c) for c in group["axis0"][()]]
    index = group["axis1"][()]
    data: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    for i in range(int(group.attrs["nblocks"])):
        items = [c.decode() if isinstance(c, bytes) else str(c) for c in group[f"block{i}_items"][()]]
        ds = group[f"block{i}_values"]
        if ds.dtype.kind not in "biuf":  # pickled objects (vlen) or strings
            skipped += items
            continue
        values = ds[()]
        values = values if ds.attrs.get("transposed", False) else values.T
        for j, col in enumerate(items):
            data[col] = values[:, j]
    if skipped:
        warnings.warn(f"{where}: columns {skipped} are pickled objects and need PyTables; they were skipped",
                      stacklevel=3)
    return pd.DataFrame(data, index=pd.Index(index), columns=[c for c in columns if c in data])


def write_meshwork(mw: Meshwork, path: str | Path) -> Path:
    """Write a :class:`Meshwork` in MeshParty's .h5 layout (gzip-compressed arrays)."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        f.attrs["seg_id"] = int(mw.seg_id)
        f.attrs["voxel_resolution"] = np.asarray(mw.voxel_resolution, dtype=float)
        mesh = f.create_group("mesh")
        comp = {"compression": "gzip", "shuffle": True}
        mesh.create_dataset("vertices", data=mw.mesh_vertices_nm.astype(np.float32), **comp)
        mesh.create_dataset("faces", data=mw.mesh_faces.astype(np.int32), **comp)
        n = len(mw.mesh_vertices_nm)
        mesh.create_dataset("node_mask", data=np.ones(n, bool), **comp)
        mesh.create_dataset("mesh_mask", data=np.ones(n, bool), **comp)
        mesh.attrs["voxel_scaling"] = h5py.Empty("f")
        sk = f.create_group("skeleton")
        sk.create_dataset("vertices", data=mw.skeleton_vertices_nm.astype(np.float32), **comp)
        sk.create_dataset("edges", data=mw.skeleton_edges.astype(np.int32), **comp)
        sk.create_dataset("root", data=int(mw.skeleton_root))
        sk.create_dataset("mesh_to_skel_map", data=mw.mesh_to_skel_map.astype(np.int32), **comp)
        if mw.skeleton_radius_nm is not None:
            sk.create_dataset("radius", data=np.asarray(mw.skeleton_radius_nm, dtype=np.float32), **comp)
        annos = f.create_group("annotations")
        for name, df in mw.annotations.items():
            g = annos.create_group(name)
            _write_frame(g.create_group("data"), df)
            attrs = {"anchor_to_mesh": True, "point_column": "", "max_distance": np.inf, "defined_index": False,
                     "index_column": "mesh_ind", **mw.annotation_attrs.get(name, {})}
            for k in ANNOTATION_ATTRS:
                g.attrs[k] = attrs[k] if attrs[k] is not None else ""
    return path


def read_meshwork(path: str | Path) -> Meshwork:
    """Read a MeshParty meshwork .h5 file with h5py."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"meshwork file not found: {path}")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path.name}: not an HDF5 file; a meshwork is MeshParty's .h5 format")
    with h5py.File(path, "r") as f:
        for group in ("mesh", "skeleton"):
            if group not in f:
                raise ValueError(f"{path.name}: no '{group}' group; expected a MeshParty meshwork "
                                 "(groups mesh/, skeleton/, annotations/)")
        mesh, sk = f["mesh"], f["skeleton"]
        for grp, key in ((mesh, "vertices"), (sk, "vertices"), (sk, "edges"), (sk, "root"), (sk, "mesh_to_skel_map")):
            if key not in grp:
                raise ValueError(f"{path.name}: missing dataset {grp.name}/{key}")
        nvert = len(mesh["vertices"])
        mask = mesh["node_mask"][()].astype(bool) if "node_mask" in mesh else np.ones(nvert, bool)
        annotations, attrs = {}, {}
        for name, g in f.get("annotations", {}).items():
            if "data" not in g:
                raise ValueError(f"{path.name}: annotation {name!r} has no 'data' table")
            annotations[name] = _read_frame(g["data"], f"{path.name}:annotations/{name}")
            attrs[name] = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                           for k, v in g.attrs.items() if k in ANNOTATION_ATTRS}
        mw = Meshwork(
            seg_id=int(f.attrs.get("seg_id", 0)),
            mesh_vertices_nm=mesh["vertices"][()],
            mesh_faces=mesh["faces"][()] if "faces" in mesh else np.zeros((0, 3), np.int64),
            skeleton_vertices_nm=sk["vertices"][()],
            skeleton_edges=sk["edges"][()],
            skeleton_root=int(np.asarray(sk["root"][()]).ravel()[0]),
            mesh_to_skel_map=sk["mesh_to_skel_map"][()],
            skeleton_radius_nm=sk["radius"][()] if "radius" in sk else None,
            annotations=annotations, annotation_attrs=attrs,
            voxel_resolution=tuple(np.asarray(f.attrs.get("voxel_resolution", VOXEL_RESOLUTION_NM), float)),
        )
    mw.node_mask = mask  # stored for reference; the full mesh is returned (the sample masks nothing out)
    return mw
