"""MeshParty meshwork .h5 files, both versions in circulation, read with h5py (never through pickle).

* Version 2 (root attr ``version=2``, MeshParty since 2021): each annotation is a JSON string of
  ``DataFrame.to_dict()``.
* Version 1 (no ``version`` attr): each annotation is a pandas ``to_hdf`` frame in PyTables' "fixed" layout
  (``axis0`` column names, ``axis1`` index, ``block<i>_items`` / ``block<i>_values``), blosc-compressed. The
  blosc filter comes from ``hdf5plugin``. Numeric, boolean and datetime blocks are read; blocks pandas stored
  as pickled Python objects (strings, lists such as positions) are skipped, never unpickled, and named in a
  warning and in ``Meshwork.skipped_columns``.

The file's ``mesh_mask`` is applied: masked-out mesh vertices, their faces, skeleton vertices only they reach,
and annotation rows anchored to them are removed, and indices are renumbered.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..coords import VOXEL_RESOLUTION_NM
from ..meshwork import ANNOTATION_ATTRS, Meshwork


def _text(v: object) -> object:
    return v.decode() if isinstance(v, bytes) else v


def _attr_value(v: object) -> object:
    v = _text(v)
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.item()
    if isinstance(v, str):  # version-2 files store numbers and flags as strings ('1', 'inf')
        try:
            return float(v) if v.lower() in ("inf", "-inf", "nan") or "." in v else int(v)
        except ValueError:
            return v
    return v.item() if hasattr(v, "item") else v


def _frame_from_json(raw: bytes, where: str) -> pd.DataFrame:
    try:
        d = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: version-2 annotation is not JSON ({exc})") from None
    df = pd.DataFrame(d)
    try:
        df.index = df.index.astype(np.int64)
    except (TypeError, ValueError):
        pass
    return df.sort_index()


def _frame_from_fixed(group: h5py.Group, where: str) -> tuple[pd.DataFrame, list[str]]:
    """A pandas fixed-format frame read block by block; returns it and the skipped (pickled) columns."""
    if _text(group.attrs.get("pandas_type", b"")) != "frame":
        raise ValueError(f"{where}: not a pandas fixed-format frame (pandas_type="
                         f"{group.attrs.get('pandas_type')!r}); table-format annotations are not supported")
    try:
        import hdf5plugin  # noqa: F401  registers the blosc filter PyTables compressed the blocks with (optional dep)
    except ImportError:
        hdf5plugin = None  # gzip-compressed frames still read; blosc ones raise below, saying what to install

    columns = [str(_text(c)) for c in group["axis0"][()]]
    index = group["axis1"][()]
    data: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    for i in range(int(group.attrs["nblocks"])):
        items = [str(_text(c)) for c in group[f"block{i}_items"][()]]
        ds = group[f"block{i}_values"]
        if ds.dtype.kind not in "biufc":  # a VLArray of pickled objects: never unpickled
            skipped += items
            continue
        try:
            values = ds[()]
        except OSError as exc:
            hint = " (pip install hdf5plugin: it provides the blosc filter)" if hdf5plugin is None else ""
            raise ValueError(f"{where}: cannot decompress {ds.name}{hint}: {exc}") from None
        values = values if ds.attrs.get("transposed", False) else values.T
        kind = str(_text(ds.attrs.get("value_type", "")))
        if kind.startswith("datetime64"):
            values = values.astype(kind if "[" in kind else "datetime64[ns]")
        for j, col in enumerate(items):
            data[col] = values[:, j]
    return pd.DataFrame(data, index=pd.Index(index), columns=[c for c in columns if c in data]), skipped


def _apply_mesh_mask(mw: Meshwork, mask: np.ndarray, link_edges: np.ndarray | None) -> None:
    """Restrict ``mw`` (read unmasked) to the mesh vertices ``mask`` keeps, renumbering every index."""
    if mask.all():
        return
    n = len(mask)
    new = np.full(n, -1, np.int64)
    new[mask] = np.arange(mask.sum())
    faces = mw.mesh_faces[mask[mw.mesh_faces].all(axis=1)] if mw.mesh_faces.size else mw.mesh_faces
    m2s = mw.mesh_to_skel_map[mask]
    keep_sk = np.zeros(len(mw.skeleton_vertices_nm), bool)
    keep_sk[m2s] = True
    if not keep_sk[mw.skeleton_root]:
        raise ValueError("the mesh_mask removes the skeleton root; the file is inconsistent")
    new_sk = np.full(len(keep_sk), -1, np.int64)
    new_sk[keep_sk] = np.arange(keep_sk.sum())
    edges = mw.skeleton_edges[keep_sk[mw.skeleton_edges].all(axis=1)]
    for name, df in list(mw.annotations.items()):
        try:
            col = mw.index_column(name)
        except ValueError:
            continue
        idx = df[col].to_numpy(dtype=np.int64)
        inside = (idx >= 0) & (idx < n)
        inside[inside] = mask[idx[inside]]
        df = df[inside].copy()
        df[col] = new[df[col].to_numpy(dtype=np.int64)]
        mw.annotations[name] = df
    mw.mesh_vertices_nm = mw.mesh_vertices_nm[mask]
    mw.mesh_faces = new[faces]
    mw.mesh_to_skel_map = new_sk[m2s]
    mw.skeleton_vertices_nm = mw.skeleton_vertices_nm[keep_sk]
    if mw.skeleton_radius_nm is not None:
        mw.skeleton_radius_nm = np.asarray(mw.skeleton_radius_nm)[keep_sk]
    mw.skeleton_edges = new_sk[edges]
    mw.skeleton_root = int(new_sk[mw.skeleton_root])
    mw.n_masked_out = int(n - mask.sum())
    if link_edges is not None:
        mw.link_edges = new[link_edges[mask[link_edges].all(axis=1)]]


def read_meshwork(path: str | Path, apply_mask: bool = True) -> Meshwork:
    """Read a MeshParty meshwork .h5 (version 1 or 2) with h5py; see the module docstring."""
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
        version = int(np.asarray(f.attrs.get("version", 1)).ravel()[0])
        if version not in (1, 2):
            raise ValueError(f"{path.name}: meshwork format version {version}; readable versions are 1 and 2")
        mesh, sk = f["mesh"], f["skeleton"]
        for grp, key in ((mesh, "vertices"), (sk, "vertices"), (sk, "edges"), (sk, "root"), (sk, "mesh_to_skel_map")):
            if key not in grp:
                raise ValueError(f"{path.name}: missing dataset {grp.name}/{key}")
        nvert = len(mesh["vertices"])
        mask = mesh["mesh_mask"][()].astype(bool) if "mesh_mask" in mesh else np.ones(nvert, bool)
        annotations, attrs, skipped = {}, {}, {}
        for name, g in f.get("annotations", {}).items():
            if "data" not in g:
                raise ValueError(f"{path.name}: annotation {name!r} has no 'data'")
            where = f"{path.name}:annotations/{name}"
            if isinstance(g["data"], h5py.Dataset):
                annotations[name] = _frame_from_json(g["data"][()], where)
            else:
                annotations[name], cols = _frame_from_fixed(g["data"], where)
                if cols:
                    skipped[name] = cols
            attrs[name] = {k: _attr_value(v) for k, v in g.attrs.items() if k in ANNOTATION_ATTRS}
        faces = mesh["faces"][()] if "faces" in mesh else np.zeros((0, 3), np.int64)
        faces = faces.reshape(-1, 3)
        if len(faces) == 1 and not faces.any():  # a level-2 graph "mesh" has one placeholder face
            faces = np.zeros((0, 3), np.int64)
        meta = json.loads(sk["meta"][()]) if "meta" in sk else {}
        mw = Meshwork(
            seg_id=int(np.asarray(f.attrs.get("seg_id", 0)).ravel()[0]),
            mesh_vertices_nm=mesh["vertices"][()], mesh_faces=faces,
            skeleton_vertices_nm=sk["vertices"][()], skeleton_edges=sk["edges"][()],
            skeleton_root=int(np.asarray(sk["root"][()]).ravel()[0]),
            mesh_to_skel_map=sk["mesh_to_skel_map"][()],
            skeleton_radius_nm=sk["radius"][()] if "radius" in sk else None,
            annotations=annotations, annotation_attrs=attrs,
            voxel_resolution=tuple(np.asarray(f.attrs.get("voxel_resolution", VOXEL_RESOLUTION_NM), float).ravel()),
            version=version, skeleton_meta=meta, skipped_columns=skipped)
        link_edges = mesh["link_edges"][()] if "link_edges" in mesh else None
    mw.link_edges = link_edges
    if skipped:
        warnings.warn(f"{path.name}: version-1 columns stored as pickled objects were skipped (never unpickled): "
                      + "; ".join(f"{k}: {v}" for k, v in skipped.items()), stacklevel=2)
    if apply_mask:
        _apply_mesh_mask(mw, mask, link_edges)
    return mw
