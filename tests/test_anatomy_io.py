"""Anatomy loaders and the link chain: coordinates, SWC, meshwork .h5, CAVE table dumps, the unit→nucleus join."""

from __future__ import annotations

import gzip
import json

import h5py
import numpy as np
import pandas as pd
import pytest

from twin_explorer.anatomy import (MINNIE65_FRAME, Anatomy, DepthFrame, Meshwork, Skeleton, nm_to_voxels, read_meshwork, read_swc,
                                   read_table, voxels_to_nm, voxels_to_um, write_meshwork, write_swc, write_table)
from twin_explorer.anatomy.tables import TABLE_COLUMNS


# ---- coordinates -----------------------------------------------------------------------------------------------
def test_voxel_nm_um_round_trip():
    vox = np.array([[100_000, 200_000, 20_000], [1, 1, 1]])
    nm = voxels_to_nm(vox)
    assert np.allclose(nm[1], [4, 4, 40])
    assert np.allclose(voxels_to_um(vox)[0], [400, 800, 800])
    assert np.array_equal(nm_to_voxels(nm, round=True), vox)
    with pytest.raises(ValueError, match="3 coordinates"):
        voxels_to_nm([1, 2])
    with pytest.raises(ValueError, match="positive"):
        voxels_to_nm(vox, resolution=(4, 0, 40))


def test_depth_frame_tilt_round_trip_and_layers():
    frame = DepthFrame(pia_point_um=(100.0, 50.0, 0.0), tilt_deg=5.0)
    # a point on the tilted pia line, 200 µm along it, has depth 0; moving 300 µm perpendicular gives depth 300
    a = np.deg2rad(5.0)
    along = np.array([100 + 200 * np.cos(a), 50 + 200 * np.sin(a), 0.0])
    normal = np.array([-np.sin(a), np.cos(a), 0.0])
    pts_um = np.stack([along, along + 300 * normal])
    aligned = frame.from_nm(pts_um * 1000)
    assert np.allclose(aligned[:, 1], [0, 300], atol=1e-9)
    assert np.allclose(aligned[:, 0], [200, 200], atol=1e-9)
    assert np.allclose(frame.to_nm(aligned), pts_um * 1000)
    assert list(frame.layer_of([-5, 50, 200, 400, 500, 800, 1500])) == ["pia", "L1", "L2/3", "L4", "L5", "L6", "WM"]
    with pytest.raises(ValueError, match="layers"):
        DepthFrame(layers=(("L1", 0, 100), ("L2/3", 50, 40)))


# ---- SWC -------------------------------------------------------------------------------------------------------
def _toy_skeleton() -> Skeleton:
    xyz = np.array([[0, 0, 0], [0, -10_000, 0], [0, -20_000, 0], [5_000, 5_000, 0], [0, 30_000, 0]], float)
    return Skeleton(xyz_nm=xyz, parent=[-1, 0, 1, 0, 0], compartment=[1, 4, 4, 3, 2],
                    radius_nm=[7000, 1500, 900, 800, 250], meta={"root_id": 864691135000000001})


def test_swc_round_trip_keeps_compartments_and_nm(tmp_path):
    sk = _toy_skeleton()
    path = write_swc(sk, tmp_path / "864691135000000001_123456.swc")
    back = read_swc(path)
    assert np.allclose(back.xyz_nm, sk.xyz_nm) and np.array_equal(back.parent, sk.parent)
    assert list(back.compartment_names()) == ["soma", "apical dendrite", "apical dendrite", "basal dendrite", "axon"]
    assert back.meta["root_id"] == "864691135000000001"
    assert back.cable_length_um() == pytest.approx(10 + 10 + np.hypot(5, 5) + 30)
    assert back.cable_length_um(4) == pytest.approx(20)


def test_swc_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_swc(tmp_path / "missing.swc")
    (tmp_path / "x.txt").write_text("1 1 0 0 0 1 -1\n")
    with pytest.raises(ValueError, match="SWC"):
        read_swc(tmp_path / "x.txt")
    (tmp_path / "short.swc").write_text("1 1 0 0 0 -1\n")
    with pytest.raises(ValueError, match="7 columns"):
        read_swc(tmp_path / "short.swc")
    (tmp_path / "orphan.swc").write_text("1 1 0 0 0 1 -1\n2 3 1 1 1 1 9\n")
    with pytest.raises(ValueError, match="parent ids"):
        read_swc(tmp_path / "orphan.swc")
    (tmp_path / "text.swc").write_text("1 soma 0 0 0 1 -1\n")
    with pytest.raises(ValueError, match="non-numeric"):
        read_swc(tmp_path / "text.swc")


# ---- meshwork --------------------------------------------------------------------------------------------------
def test_meshwork_round_trip_version_2(tmp_path):
    from twin_explorer.anatomy.morphology import tube_mesh

    sk = _toy_skeleton()
    verts, faces, m2s = tube_mesh(sk, sides=4)
    annos = {"post_syn": pd.DataFrame({"id": [7, 8], "size": [300, 500], "pre_pt_root_id": [11, 12],
                                       "post_pt_root_id": [1, 1], "mesh_ind": [4, 8]}),
             "is_axon": pd.DataFrame({"mesh_ind": np.flatnonzero(m2s == 4)}),
             "apical_mesh_labels": pd.DataFrame({"mesh_ind": np.flatnonzero(np.isin(m2s, [1, 2]))})}
    mw = Meshwork(seg_id=864691135000000001, mesh_vertices_nm=verts, mesh_faces=faces,
                  skeleton_vertices_nm=sk.xyz_nm, skeleton_edges=sk.edges, skeleton_root=0, mesh_to_skel_map=m2s,
                  skeleton_radius_nm=sk.radius_nm, annotations=annos)
    path = write_meshwork(mw, tmp_path / "mw.h5")
    with h5py.File(path) as f:  # MeshParty's version-2 layout: annotations as JSON strings
        assert {"mesh", "skeleton", "annotations"} <= set(f)
        assert int(f.attrs["version"]) == 2
        assert json.loads(f["annotations/post_syn/data"][()])["size"] == {"0": 300, "1": 500}
        assert f["annotations/post_syn"].attrs["index_column"] == "mesh_ind"
    back = read_meshwork(path)
    assert back.version == 2 and back.n_masked_out == 0
    assert back.seg_id == 864691135000000001
    assert np.allclose(back.mesh_vertices_nm, verts, atol=0.5) and np.array_equal(back.mesh_faces, faces)
    pd.testing.assert_frame_equal(back.annotations["post_syn"], annos["post_syn"], check_dtype=False)
    skb = back.skeleton()
    assert list(skb.compartment) == [1, 4, 4, 3, 2]
    assert np.array_equal(skb.parent, sk.parent)


def test_meshwork_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_meshwork(tmp_path / "none.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5"):
        read_meshwork(tmp_path / "text.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("mesh")
    with pytest.raises(ValueError, match="skeleton"):
        read_meshwork(tmp_path / "empty.h5")


# ---- tables ----------------------------------------------------------------------------------------------------
def _coreg_rows(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["target_id", "session", "scan_idx", "unit_id", "residual", "score"])
    return df.assign(id=np.arange(1, len(df) + 1), created="2023-01-01", valid=True, field=1,
                     pt_supervoxel_id=1, pt_root_id=df["target_id"] + 864691135000000000,
                     pt_position_x=1, pt_position_y=2, pt_position_z=3)


def test_table_round_trip_real_columns_and_position_formats(tmp_path):
    df = _coreg_rows([(10, 4, 7, 1, 2.5, 8.0)])
    path = write_table(df, tmp_path, "coregistration_manual_v4")
    header = gzip.open(path, "rt").readline().strip().split(",")
    assert header[:7] == ["id", "created", "valid", "target_id", "session", "scan_idx", "unit_id"]
    assert "pt_position_x" in header and "pt_root_id" in header
    back = read_table(tmp_path, "coregistration_manual_v4")
    assert back["pt_root_id"].iat[0] == 864691135000000010  # 18-digit ids survive exactly
    # a combined position column as CAVE's postgres dump writes it
    raw = df.drop(columns=["pt_position_x", "pt_position_y", "pt_position_z"]).assign(pt_position="POINTZ(5 6 7)")
    raw.to_csv(tmp_path / "coregistration_auto_phase3_fwd_apl_vess_combined_v2.csv", index=False)
    auto = read_table(tmp_path, "coregistration_auto_phase3_fwd_apl_vess_combined_v2")
    assert auto[["pt_position_x", "pt_position_y", "pt_position_z"]].iloc[0].tolist() == [5, 6, 7]


#: the static dump header as the public bucket has it: headerless ``name,type`` rows, one column per line
NUCLEUS_HEADER = ("id,bigint\ncreated,timestamp without time zone\nsuperceded_id,bigint\nvalid,boolean\n"
                  "volume,double precision\npt_supervoxel_id,bigint\npt_root_id,bigint\npt_position,USER-DEFINED\n"
                  "bb_start_position,USER-DEFINED\nbb_end_position,USER-DEFINED\n")


def test_headerless_merged_dump_and_errors(tmp_path):
    (tmp_path / "nucleus_detection_v0_merged_header.csv").write_text(NUCLEUS_HEADER)
    # postgres CSV: booleans t/f, NULL empty, geometry as PostGIS EWKB hex (POINT Z, SRID flag) or text
    ewkb = "01010000a0" + "00000000" + np.array([10.0, 20.0, 30.0], "<f8").tobytes().hex()
    rows = [[5, "2020-01-01", "", "t", 250.0, 99, 864691135000000005, ewkb, "", ""],
            [6, "2020-01-01", "", "f", 12.5, 0, 0, "POINT Z (1 2 3)", "", ""]]
    pd.DataFrame(rows).to_csv(tmp_path / "nucleus_detection_v0_merged.csv.gz", header=False, index=False)
    nuc = read_table(tmp_path, "nucleus_detection_v0")
    assert list(nuc.columns[:5]) == ["id", "created", "superceded_id", "valid", "volume"]
    assert nuc[["pt_position_x", "pt_position_y", "pt_position_z"]].iloc[0].tolist() == [10, 20, 30]
    assert nuc[["pt_position_x", "pt_position_y", "pt_position_z"]].iloc[1].tolist() == [1, 2, 3]
    assert nuc["valid"].tolist() == [True, False] and nuc["pt_root_id"].iat[0] == 864691135000000005
    # a one-line header (what the old parser assumed) is not the dump's format: a clear error
    (tmp_path / "nucleus_detection_v0_merged_header.csv").write_text(",".join(TABLE_COLUMNS["nucleus_detection_v0"]))
    with pytest.raises(ValueError, match="name,type"):
        read_table(tmp_path, "nucleus_detection_v0")
    with pytest.raises(ValueError, match="unknown table"):
        read_table(tmp_path, "synapses_v1")
    with pytest.raises(FileNotFoundError, match="synapses_pni_2"):
        read_table(tmp_path, "synapses_pni_2")
    pd.DataFrame({"id": [1], "session": [4]}).to_csv(tmp_path / "coregistration_manual_v4.csv", index=False)
    with pytest.raises(ValueError, match="missing columns"):
        read_table(tmp_path, "coregistration_manual_v4")
    (tmp_path / "synapses_pni_2.csv.gz").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(ValueError, match="cannot be read"):
        read_table(tmp_path, "synapses_pni_2")


# ---- the join --------------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_volume(tmp_path):
    """Nuclei 10..14; units: 1 unique (manual), 2 in both tables (same nucleus), 3 two candidates, 4 none,
    5 matched to a nucleus missing from the volume."""
    t = tmp_path / "tables"
    nuc = pd.DataFrame({"id": [10, 11, 12, 13, 14], "created": "x", "superceded_id": np.nan, "valid": True,
                        "volume": 200.0, "pt_supervoxel_id": 1,
                        "pt_root_id": 864691135000000000 + np.arange(10, 15) * 1000 + 1,
                        "pt_position_x": [1000, 2000, 3000, 4000, 5000], "pt_position_y": 100_000,
                        "pt_position_z": 20_000, "bb_start_position_x": 0, "bb_start_position_y": 0,
                        "bb_start_position_z": 0, "bb_end_position_x": 0, "bb_end_position_y": 0,
                        "bb_end_position_z": 0})
    write_table(nuc, t, "nucleus_detection_v0")
    write_table(_coreg_rows([(10, 4, 7, 1, 1.0, 9.0), (11, 4, 7, 2, 2.0, 5.0)]), t, "coregistration_manual_v4")
    write_table(_coreg_rows([(11, 4, 7, 2, 3.0, 4.0), (12, 4, 7, 3, 4.0, 3.0), (13, 4, 7, 3, 2.0, 1.0),
                             (99, 4, 7, 5, 1.0, 1.0)]),
                t, "coregistration_auto_phase3_fwd_apl_vess_combined_v2")
    return tmp_path


def test_join_keeps_duplicates_and_misses_visible(tiny_volume):
    units = pd.DataFrame({"session": 4, "scan_idx": 7, "unit_id": [1, 2, 3, 4, 5]},
                         index=pd.Index([100, 101, 102, 103, 104], name="readout_id"))
    a = Anatomy(tiny_volume)
    links = a.link_units(units)
    per = links.groupby("readout_id")
    assert per.size().tolist() == [1, 1, 2, 1, 1]
    assert per["match"].first().tolist() == ["unique", "unique", "multiple", "none", "unique"]
    u2 = links[links.readout_id == 101].iloc[0]
    assert u2["coreg_source"] == "coregistration_manual_v4" and u2["residual"] == 2.0
    best3 = links[(links.readout_id == 102) & links.best]
    assert best3["nucleus_id"].tolist() == [13]  # lower residual wins among auto candidates
    assert not links.loc[links.readout_id == 104, "in_volume"].item()  # matched, but nucleus 99 is not in the volume
    assert links.loc[links.readout_id == 100, "in_volume"].item()
    assert int(links.loc[links.readout_id == 100, "pt_root_id"].item()) == 864691135000010001
    res = a.resolve_units(units)
    assert list(res.index) == [100, 101, 102, 103, 104]
    assert pd.isna(res.loc[103, "nucleus_id"]) and res.loc[103, "match"] == "none"
    assert res.loc[102, "nucleus_id"] == 13
    assert pd.isna(a.resolve_units(units, policy="unique").loc[102, "nucleus_id"])
    # no manifest: the minnie65 frame (5° about z, the published pia point), not pia at the origin
    assert a.depth_frame is MINNIE65_FRAME
    assert a.nuclei.loc[10, "depth_um"] == pytest.approx(MINNIE65_FRAME.depth_um([4000.0, 400_000.0, 800_000.0]))
    flat = Anatomy(tiny_volume, depth_frame=DepthFrame())
    assert flat.nuclei.loc[10, "depth_um"] == pytest.approx(400.0)  # 100000 voxels × 4 nm, pia at 0
    with pytest.raises(ValueError, match="unknown nucleus"):
        a.skeleton(12345)
    with pytest.raises(FileNotFoundError, match="no skeleton"):
        a.skeleton(10)
    with pytest.raises(ValueError, match="no nucleus"):
        a.nucleus_id(1)
    with pytest.raises(ValueError, match="lacks columns"):
        a.link_units(units.drop(columns="scan_idx"))
    with pytest.raises(ValueError, match="unknown readout_id"):
        a.neuron_of_unit(units, 7)


# ---- caveclient frames -----------------------------------------------------------------------------------------
def test_caveclient_frames_in_every_position_layout():
    from twin_explorer.anatomy import read_cave_table

    base = {"id": [1, 2], "pt_root_id": [864691135000000001, 0], "pt_supervoxel_id": [5, 0]}
    lists_vox = pd.DataFrame({**base, "pt_position": [np.array([200_000, 150_000, 20_000]), [201_000, 151_000, 21_000]]})
    split_nm = pd.DataFrame({**base, "pt_position_x": [800_000.0, 804_000.0], "pt_position_y": [600_000.0, 604_000.0],
                             "pt_position_z": [800_000.0, 840_000.0]})
    split_nm.attrs = {"dataframe_resolution": [1, 1, 1], "materialization_version": 1300, "table_name": "x"}
    a, b = read_cave_table(lists_vox), read_cave_table(split_nm)
    want = [[200_000, 150_000, 20_000], [201_000, 151_000, 21_000]]
    for df in (a, b):
        assert np.allclose(df[["pt_position_x", "pt_position_y", "pt_position_z"]], want)
        assert df["pt_root_id"].dtype == "int64" and df["pt_root_id"].iat[0] == 864691135000000001
    assert b.attrs["materialization_version"] == 1300 and b.attrs["position_source_resolution_nm"] == (1, 1, 1)
    c = read_cave_table(split_nm.assign(pt_position_z=[20_000.0, 21_000.0]), resolution=(4, 4, 40), version=943)
    assert c.attrs["materialization_version"] == 943 and c["pt_position_x"].iat[0] == 800_000
    with pytest.raises(ValueError, match="cannot tell whether positions"):
        read_cave_table(pd.DataFrame({"pt_position": ["[1000000, 1000000, 100000]"]}))
    with pytest.raises(ValueError, match="cannot read a 3-D position"):
        read_cave_table(pd.DataFrame({"pt_position": ["[1, 2]"]}))


def test_static_dump_version_from_its_public_folder(tmp_path):
    from twin_explorer.anatomy import read_static_dump

    folder = tmp_path / "minnie65_phase3_v1" / "v661"
    folder.mkdir(parents=True)
    (folder / "nucleus_detection_v0_merged_header.csv").write_text(NUCLEUS_HEADER)
    pd.DataFrame([[5, "2020-01-01", "", "t", 250.0, 99, 864691135000000005, "POINT Z (10 20 30)", "", ""]]).to_csv(
        folder / "nucleus_detection_v0_merged.csv.gz", header=False, index=False)
    df = read_static_dump(folder / "nucleus_detection_v0_merged.csv.gz")
    assert df.attrs["materialization_version"] == 661 and df.attrs["table"] == "nucleus_detection_v0"
    assert read_static_dump(folder / "nucleus_detection_v0_merged.csv.gz", version=943).attrs["materialization_version"] == 943
    (folder / "nucleus_detection_v0_merged_header.csv").unlink()
    with pytest.raises(FileNotFoundError, match="header nucleus_detection_v0_merged_header.csv is missing"):
        read_static_dump(folder / "nucleus_detection_v0_merged.csv.gz")


def test_swc_unit_header_wins_over_detection(tmp_path):
    small = Skeleton(xyz_nm=[[0, 0, 0], [0, 1500, 0]], parent=[-1, 0], compartment=[1, 3], radius_nm=[700, 100])
    path = write_swc(small, tmp_path / "tiny.swc")  # writes '# unit: nm'
    assert "# unit: nm" in path.read_text()
    back = read_swc(path)  # coordinates alone (≤ 1,500) would read as µm
    assert back.source_unit == "nm" and back.cable_length_um() == pytest.approx(1.5)
    assert read_swc(path, unit="um").cable_length_um() == pytest.approx(1500.0)  # the argument wins over the header


def test_root_ids_with_blanks_keep_every_digit(tmp_path):
    from twin_explorer.anatomy import read_cave_table

    (tmp_path / "t.csv").write_text("id,pt_root_id,pt_position\n1,864691135738685297,\"[338720, 125232, 19589]\"\n"
                                    "2,,\"[136400, 170640, 17951]\"\n")
    df = read_cave_table(tmp_path / "t.csv")
    assert df["pt_root_id"].iat[0] == 864691135738685297 and pd.isna(df["pt_root_id"].iat[1])
