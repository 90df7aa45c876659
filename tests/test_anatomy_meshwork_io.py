"""Meshwork HDF5 versions 1 and 2 written the field's way, read by ours: MeshParty writes version 2 (with a
mesh_mask applied); version 1 is written as MeshParty's v1 layout does it — h5py groups for mesh and skeleton,
each annotation a pandas ``to_hdf`` frame (PyTables, blosc level 5) — because MeshParty 2.0.3's own v1 writer
fails under pandas 3 (it passes ``to_hdf`` a positional key)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from twin_explorer.anatomy import read_meshwork

REAL_H5 = (Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "microns-real"
           / "CAVEconnectome+pcg_skel" / "tests" / "data" / "test_neuron.h5")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def write_v1(src: Path, out: Path, with_version_attr: bool) -> dict[str, pd.DataFrame]:
    """Copy the real v2 neuron into the version-1 layout; returns the annotation frames written."""
    frames: dict[str, pd.DataFrame] = {}
    with h5py.File(src) as f, h5py.File(out, "w") as g:
        g.attrs["seg_id"] = f.attrs["seg_id"]
        g.attrs["voxel_resolution"] = f.attrs["voxel_resolution"]
        if with_version_attr:  # MeshParty 2 marks v1 files; files written before 2021 have no attr at all
            g.attrs["version"] = 1
        for group in ("mesh", "skeleton"):
            for key, ds in f[group].items():
                g.create_dataset(f"{group}/{key}", data=ds[()], compression="gzip" if ds.shape else None)
        for name, grp in f["annotations"].items():
            frames[name] = pd.DataFrame(json.loads(grp["data"][()]))
            frames[name].index = frames[name].index.astype(np.int64)
            h = g.create_group(f"annotations/{name}")
            for k, v in grp.attrs.items():
                h.attrs[k] = int(v) if k in ("anchor_to_mesh", "defined_index") else (np.inf if v == "inf" else v)
    for name, df in frames.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns that it pickles the object columns: that is the point
            df.to_hdf(out, key=f"annotations/{name}/data", complib="blosc", complevel=5)
    return frames


@pytest.mark.parametrize("with_version_attr", [False, True])
def test_version_1_blosc_frames_without_unpickling(tmp_path, with_version_attr):
    path = tmp_path / "v1.h5"
    frames = write_v1(REAL_H5, path, with_version_attr)
    with h5py.File(path) as f:  # really PyTables' layout with the blosc filter (id 32001)
        block = f["annotations/post_syn/data/block0_values"]
        assert f["annotations/post_syn/data"].attrs["pandas_type"] in (b"frame", "frame")
        plist = block.id.get_create_plist()
        assert 32001 in [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        assert ("version" in f.attrs) == with_version_attr
    with pytest.warns(UserWarning, match="pickled objects were skipped") as record:
        mw = read_meshwork(path)
    assert mw.version == 1
    assert mw.skipped_columns["post_syn"] == ["ctr_pt_position", "post_pt_position", "pre_pt_position"]
    assert "post_syn: ['ctr_pt_position'" in str(record[0].message)
    v2 = read_meshwork(REAL_H5)
    for name, df in frames.items():
        got = mw.annotations[name]
        numeric = [c for c in df.columns if c not in mw.skipped_columns.get(name, [])]
        assert list(got.columns) == numeric
        pd.testing.assert_frame_equal(got, v2.annotations[name][numeric], check_dtype=False, check_index_type=False)
    assert mw.skeleton().cable_length_um() == pytest.approx(v2.skeleton().cable_length_um())
    assert np.array_equal(mw.skeleton().compartment, v2.skeleton().compartment)


def test_version_1_file_is_meshpartys_layout(tmp_path):
    meshwork = pytest.importorskip("meshparty.meshwork")  # the field's reader agrees our v1 file is its format
    path = tmp_path / "v1.h5"
    write_v1(REAL_H5, path, with_version_attr=False)
    theirs = meshwork.load_meshwork(str(path))
    assert len(theirs.anno.post_syn.df) == 11823 and theirs.skeleton.n_vertices == 7710


def test_version_2_written_by_meshparty_with_a_mesh_mask(tmp_path):
    meshwork = pytest.importorskip("meshparty.meshwork")
    mw = meshwork.load_meshwork(str(REAL_H5))
    keep = np.ones(mw.mesh.n_vertices, bool)
    keep[np.asarray(mw.anno.is_axon.mesh_index)] = False  # mask the axon out, as a dendrite analysis does
    mw.apply_mask(keep)
    path = tmp_path / "masked_v2.h5"
    mw.save_meshwork(str(path), version=2)
    with h5py.File(path) as f:  # the file keeps the full mesh and stores the mask
        assert len(f["mesh/vertices"]) == 17656 and f["mesh/mesh_mask"][()].sum() == mw.mesh.n_vertices
    ours = read_meshwork(path)
    assert ours.version == 2 and ours.n_masked_out == 17656 - mw.mesh.n_vertices
    assert len(ours.mesh_vertices_nm) == mw.mesh.n_vertices == 11757
    assert len(ours.skeleton_vertices_nm) == mw.skeleton.n_vertices
    assert np.allclose(np.sort(ours.mesh_vertices_nm, axis=0), np.sort(mw.mesh.vertices, axis=0))
    assert len(ours.annotations["pre_syn"]) == len(mw.anno.pre_syn.df) == 76
    assert len(ours.annotations["post_syn"]) == len(mw.anno.post_syn.df)
    assert len(ours.annotations["is_axon"]) == 0
    sk = ours.skeleton()
    assert sk.cable_length_um() == pytest.approx(mw.skeleton.path_length() / 1000, rel=1e-6)
    assert set(np.unique(sk.compartment)) == {1, 3}  # soma and dendrite: the axon is masked out
    unmasked = read_meshwork(path, apply_mask=False)
    assert len(unmasked.mesh_vertices_nm) == 17656 and unmasked.n_masked_out == 0


def test_meshwork_version_errors(tmp_path):
    with h5py.File(tmp_path / "v3.h5", "w") as f:
        f.attrs["version"] = 3
        f.create_group("mesh")
        f.create_group("skeleton")
    with pytest.raises(ValueError, match="readable versions are 1 and 2"):
        read_meshwork(tmp_path / "v3.h5")
