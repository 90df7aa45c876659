"""Every real MICrONS sample in ../shared/fixtures/microns-real loads through the public API with the right units.

Positions, cable lengths and soma radii come out in µm and are checked to be plausible for a neuron in the
minnie65 volume (x 0–2,000 µm, y 0–1,500 µm, z 500–1,200 µm); files that describe the same neuron in different
units (voxels vs nm) are checked against each other.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from twin_explorer.anatomy import (Anatomy, read_cave_table, read_meshwork, read_npz_skeleton, read_skeleton,
                                   read_skeleton_json, read_swc, read_synapses)
from twin_explorer.anatomy.io import read_l2_graph
from twin_explorer.anatomy.io.cave_table_io import POSITION_SUFFIXES, position_columns
from twin_explorer.anatomy.tables import functional_properties_to_degrees

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "microns-real"
PCG = REAL / "CAVEconnectome+pcg_skel" / "tests" / "data"
MP = REAL / "CAVEconnectome+MeshParty"
TUT = REAL / "AllenInstitute+microns_tutorial" / "transcribed_from_notebook_output"
NPZ = REAL / "spapa013+microns-funconn-2025" / "methods" / "sample_data" / "skeletons"
VOLUME_UM = np.array([[0.0, 0.0, 500.0], [2000.0, 1500.0, 1200.0]])  # minnie65 bounds, EM µm

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _in_volume(um: np.ndarray) -> bool:
    um = np.asarray(um, float).reshape(-1, 3)
    um = um[np.isfinite(um).all(axis=1)]
    return len(um) > 0 and bool(((um >= VOLUME_UM[0]) & (um <= VOLUME_UM[1])).all())


def _transcribed(path: Path) -> pd.DataFrame:
    """A printed pandas table: drop the '...' rows pandas prints between head and tail."""
    df = pd.read_csv(path)
    return df[~(df.astype(str) == "...").any(axis=1)]


def test_fixtures_present():
    assert (REAL / "README.md").exists(), f"real MICrONS samples missing at {REAL}"


# ---- meshwork version 2 (pcg_skel) -------------------------------------------------------------------------------
def test_meshwork_v2_real_neuron():
    mw = read_meshwork(PCG / "test_neuron.h5")
    assert mw.version == 2 and mw.seg_id == 864691135273655569
    assert mw.n_masked_out == 0 and len(mw.mesh_vertices_nm) == 17656  # its mesh_mask keeps every vertex
    assert {"pre_syn", "post_syn", "is_axon", "lvl2_ids", "segment_properties", "vol_prop"} <= set(mw.annotations)
    assert len(mw.annotations["pre_syn"]) == 585 and len(mw.annotations["post_syn"]) == 11823
    assert mw.annotation_attrs["post_syn"]["index_column"] == "post_pt_mesh_ind"
    sk = mw.skeleton()
    assert sk.n_nodes == 7710 and sk.source_unit == "nm"
    assert 5_000 < sk.cable_length_um() < 50_000  # a neuron with its axon: mm of cable
    assert sk.soma_radius_um == pytest.approx(7.5)  # pcg_skel's soma radius, 7500 nm
    soma_nm = [mw.skeleton_meta[f"soma_pt_{a}"] for a in "xyz"]
    assert np.allclose(sk.soma_um, np.asarray(soma_nm) / 1000, atol=1.0)
    assert _in_volume(sk.xyz_um)
    # is_axon labels the axon; the rest are dendrites; post_syn anchors sit on the mesh
    comp = np.bincount(sk.compartment, minlength=4)
    assert comp[1] == 1 and comp[2] > 1000 and comp[3] > 1000
    assert sk.cable_length_um(2) + sk.cable_length_um(3) == pytest.approx(sk.cable_length_um(), rel=1e-6)
    ind = mw.annotations["post_syn"]["post_pt_mesh_ind"].to_numpy()
    assert ind.min() >= 0 and ind.max() < len(mw.mesh_vertices_nm)
    ctr = mw.annotation_positions_um("post_syn")  # its point column, nm in this file
    assert _in_volume(ctr)
    d = np.linalg.norm(ctr - mw.mesh_vertices_nm[ind] / 1000, axis=1)
    assert np.median(d) < 3.0


# ---- synapse rows in both layouts --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, rows, root_col", [("pre_syn.feather", 259, "pre_pt_root_id"),
                                                  ("post_syn.feather", 2165, "post_pt_root_id")])
def test_synapses_voxel_lists_pcg_skel(name, rows, root_col):
    syn = read_synapses(PCG / name)
    assert len(syn) == rows and (syn[root_col] == 864691136040432126).all()
    assert syn.attrs["position_source_resolution_nm"] == (4.0, 4.0, 40.0)  # [x, y, z] lists in voxels
    assert _in_volume(syn[["x_um", "y_um", "z_um"]].to_numpy())
    # the same neuron's level-2 graph (nm, another file): synapses lie on it, so the units agree
    graph = read_l2_graph(PCG / "lvl2_eg.npy", PCG / "l2_info.converted.json")
    assert graph.n_components == 1 and len(graph.l2_ids) == 5830
    d = cKDTree(graph.vertices_um).query(syn[["x_um", "y_um", "z_um"]].to_numpy())[0]
    assert np.median(d) < 2.0


@pytest.mark.parametrize("name, rows, root_col", [("pre.feather", 6514, "pre_pt_root_id"),
                                                  ("post.feather", 12424, "post_pt_root_id")])
def test_synapses_split_nm_meshparty(name, rows, root_col):
    syn = read_synapses(MP / name)
    assert len(syn) == rows and (syn[root_col] == 864691135101289504).all()
    assert syn.attrs["position_source_resolution_nm"] == (1.0, 1.0, 1.0)  # split columns queried in nm
    um = syn[["x_um", "y_um", "z_um"]].to_numpy()
    assert _in_volume(um)
    sk = read_skeleton_json(MP / "skel.json")  # the same root's skeleton: synapses sit on it
    assert np.median(cKDTree(sk.xyz_um).query(um)[0]) < 2.0


def test_synapse_query_split_voxels():
    syn = read_synapses(REAL / "CAVEconnectome+CAVEclient" / "tests" / "test_data" / "synapse_query_split.converted.csv")
    assert len(syn) == 1000 and syn.attrs["position_source_resolution_nm"] == (4.0, 4.0, 40.0)
    assert _in_volume(syn[["x_um", "y_um", "z_um"]].to_numpy())
    assert set(syn["pre_pt_root_id"]) | set(syn["post_pt_root_id"]) <= {500, 501} | set(syn["pre_pt_root_id"])


def test_synapse_resolution_override_and_errors(tmp_path):
    syn = read_synapses(MP / "pre.feather", resolution=(1, 1, 1))
    auto = read_synapses(MP / "pre.feather")
    assert np.allclose(syn["x_um"], auto["x_um"])
    with pytest.raises(ValueError, match="resolution must be 3 positive"):
        read_synapses(MP / "pre.feather", resolution=(4, 4))
    (tmp_path / "s.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(ValueError, match="pickles are never read"):
        read_synapses(tmp_path / "s.pkl")
    pd.DataFrame({"id": [1], "size": [3]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="pre_pt_root_id"):
        read_synapses(tmp_path / "bad.csv")


# ---- skeletons ---------------------------------------------------------------------------------------------------
def test_skeleton_service_dict_json():
    sk = read_skeleton_json(MP / "skel.json")
    assert sk.meta["root_id"] == 864691135101289504 and sk.source_unit == "nm"
    assert sk.n_nodes == 16720 and set(np.unique(sk.compartment)) == {1, 2, 3}
    assert 10_000 < sk.cable_length_um() < 100_000  # tens of mm with the axon
    assert 1_000 < sk.cable_length_um(3) < 20_000  # dendrites: mm
    assert sk.soma_radius_um == pytest.approx(7.5)
    meta = json.loads((MP / "skel.json").read_text())["meta"]
    assert np.allclose(sk.soma_um, [meta["soma_pt_x"] / 1000, meta["soma_pt_y"] / 1000, meta["soma_pt_z"] / 1000],
                       atol=1.0)
    assert np.nanmedian(sk.radius_um) < 2.0 and _in_volume(sk.xyz_um)
    # its level-2 graph (feather properties, nm) is where the skeleton vertices come from
    graph = read_l2_graph(MP / "l2graph.json", MP / "l2properties.feather")
    assert len(graph.l2_ids) == 25889 and np.median(cKDTree(sk.xyz_nm).query(graph.vertices_nm)[0]) < 500
    assert read_skeleton(MP / "skel.json").n_nodes == sk.n_nodes
    assert json.loads((MP / "root_id.json").read_text()) == sk.meta["root_id"]


def _swc_file(rows: pd.DataFrame, path: Path, scale: float = 1.0) -> Path:
    lines = [f"{int(r.id)} {int(r.type)} {r.x * scale} {r.y * scale} {r.z * scale} {r.radius * scale} {int(r.parent)}"
             for r in rows.itertuples()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_skeleton_service_swc_is_micrometres(tmp_path):
    table = _transcribed(TUT / "07-cave-download-skeleton__cell08__skeleton_service_swc.csv")
    for sk in (read_swc(table), read_swc(_swc_file(table, tmp_path / "svc.swc"))):
        assert sk.source_unit == "um"  # detected from the coordinates
        assert sk.soma_radius_um == pytest.approx(3.643)
        assert np.allclose(sk.soma_um, [1365.12, 763.456, 812.6])
        assert 1.0 < sk.cable_length_um() < 20.0  # the first 5 nodes: a few µm, not 1000× less
    forced = read_swc(_swc_file(table, tmp_path / "svc2.swc"), unit="nm")
    assert forced.source_unit == "nm" and forced.soma_radius_um == pytest.approx(0.003643)
    with pytest.raises(ValueError, match="accepted: 'nm' or 'um'"):
        read_swc(tmp_path / "svc.swc", unit="mm")


def test_v661_swc_nm_and_skeleton_plot_um(tmp_path):
    """skeleton_plot shows a v661 BossDB SWC in µm; the file itself is in nm. Both read to the same skeleton."""
    table = _transcribed(REAL / "AllenInstitute+skeleton_plot" / "transcribed_from_notebook_output"
                         / "demo__864691135212946560_301225_swc.head_tail.csv")
    head = table[table["id"] <= 4]
    um = read_swc(_swc_file(head, tmp_path / "864691135212946560_301225_um.swc"))
    nm = read_swc(_swc_file(head, tmp_path / "864691135212946560_301225.swc", scale=1000.0))
    assert (um.source_unit, nm.source_unit) == ("um", "nm")
    assert np.allclose(um.xyz_nm, nm.xyz_nm) and nm.soma_radius_um == pytest.approx(6.817)
    assert list(nm.compartment_names()[:2]) == ["soma", "apical dendrite"]
    assert nm.cable_length_um() == pytest.approx(um.cable_length_um()) and 3 < nm.cable_length_um() < 20


@pytest.mark.parametrize("path", sorted(NPZ.glob("*.npz")), ids=lambda p: p.name)
def test_like_to_like_npz_skeletons(path):
    sk = read_npz_skeleton(path)
    lookup = pd.read_csv(NPZ / "skeleton_lookup.csv").set_index("filename").loc[path.name]
    assert sk.meta["root_id"] == lookup["segment_id"] and sk.meta["nucleus_id"] == lookup["nucleus_id"]
    assert sk.source_unit == "nm" and _in_volume(sk.xyz_um)
    if lookup["compartment"] == "axon":
        assert (sk.compartment == 2).all() and 5_000 < sk.cable_length_um() < 50_000 and sk.meta["n_pieces"] == 1
    else:
        assert (sk.compartment == 3).all() and 1_000 < sk.cable_length_um() < 10_000 and sk.meta["n_pieces"] > 1
    step = np.linalg.norm(sk.xyz_um[sk.edges[:, 0]] - sk.xyz_um[sk.edges[:, 1]], axis=1)
    assert np.median(step) < 5.0  # node spacing of a skeleton, in µm


def test_npz_with_objects_is_refused(tmp_path):
    np.savez(tmp_path / "skeleton_axon_1.npz", vertices=np.array([object()], dtype=object), edges=np.zeros((0, 2)))
    with pytest.raises(ValueError, match="pickled objects; refused"):
        read_npz_skeleton(tmp_path / "skeleton_axon_1.npz")


# ---- transcribed CAVE tables -------------------------------------------------------------------------------------
def _cave_tables() -> list[Path]:
    keep = []
    for p in sorted(REAL.glob("*/transcribed_from_notebook_output/*.csv")):
        if any(s in p.parent.parent.name for s in ("vijk777", "skeleton_plot")) or "nglui" in p.name or "swc" in p.name:
            continue  # not CAVE annotation tables (fnn exports, SWC, Neuroglancer states)
        if "Milano" in p.parent.parent.name and "coregistration" not in p.name:
            continue  # the datacleaner's own merged tables (µm, already transformed): used in test_anatomy_coords
        keep.append(p)
    return keep


@pytest.mark.parametrize("path", _cave_tables(), ids=lambda p: p.name[:70])
def test_transcribed_cave_tables_load_with_positions_in_the_volume(path):
    df = read_cave_table(_transcribed(path))
    for col in df.columns:
        if str(col).endswith("_root_id"):
            assert df[col].dtype in ("int64", "Int64")  # 18-digit ids stay exact
    cols = position_columns(df)
    if cols:
        vox = np.concatenate([df[[c + s for s in POSITION_SUFFIXES]].to_numpy(float) for c in cols])
        if np.isfinite(vox).any():
            assert _in_volume(vox * np.array([4, 4, 40]) / 1000)  # voxels (4×4×40 nm) after normalising


def test_nucleus_table_root_zero_and_split_nm_positions():
    listed = read_cave_table(_transcribed(TUT / "02-cave-query-cell-types__cell16__nucleus_detection_v0.csv"))
    split = read_cave_table(_transcribed(TUT / "02-cave-query-cell-types__cell18__nucleus_detection_v0.csv"))
    assert listed.attrs["position_source_resolution_nm"] == (4.0, 4.0, 40.0)
    assert split.attrs["position_source_resolution_nm"] == (1.0, 1.0, 1.0)
    assert (listed["pt_root_id"] == 0).sum() >= 1  # nuclei outside any segment
    assert np.allclose(listed.loc[listed["id"] == 373879, ["pt_position_x", "pt_position_y", "pt_position_z"]],
                       [[228816, 239776, 19593]])


def test_functional_properties_v3_radians_to_project_degrees():
    rows = read_cave_table(_transcribed(TUT / "functional_inputs_orientation__cell10.csv"))
    conv = functional_properties_to_degrees(rows)
    assert conv.attrs["converted_columns"] == ["pref_ori_pre", "pref_ori_post"]
    assert "counter-clockwise" in conv.attrs["angle_convention"]
    assert conv["pref_ori_pre"].between(0, 180).all()
    raw = rows["pref_ori_pre"].to_numpy()
    assert np.allclose(conv["pref_ori_pre"], np.mod(90 - np.degrees(raw), 180))
    with pytest.raises(ValueError, match="not radians"):
        functional_properties_to_degrees(conv)  # degrees given twice: refused


def test_coregistration_v3_v661_folder(tmp_path):
    """A v661-era folder: nucleus rows and coregistration_manual_v3 as the nda notebook printed them."""
    v3 = _transcribed(REAL / "cajal+microns_phase3_nda" / "transcribed_from_notebook_output"
                      / "Matched_Cell_Functional_Data__cell15__coregistration_manual_v3.csv")
    tables = tmp_path / "tables"
    tables.mkdir()
    v3.drop(columns="df_index").to_csv(tables / "coregistration_manual_v3.csv", index=False)
    nuc = v3[["target_id", "pt_supervoxel_id", "pt_root_id", "pt_position", "volume"]].rename(columns={"target_id": "id"})
    nuc = nuc.drop_duplicates("id")  # a nucleus appears once per scan and field it was matched in
    nuc.to_csv(tables / "nucleus_detection_v0.csv", index=False)
    (tmp_path / "manifest.json").write_text(json.dumps({"materialization_version": 661}))
    a = Anatomy(tmp_path)
    units = v3[["session", "scan_idx", "unit_id"]].reset_index(drop=True)
    res = a.resolve_units(units.rename_axis("readout_id"))
    assert (res["coreg_source"] == "coregistration_manual_v3").all() and (res["match"] == "unique").all()
    assert res.index.names == ["session", "scan_idx", "readout_id"]  # several scans: readout ids restart per scan
    want = v3.set_index(["session", "scan_idx", "unit_id"])["target_id"].astype("int64")
    got = res.reset_index().set_index(["session", "scan_idx", "unit_id"])["nucleus_id"].astype("int64")
    assert got.sort_index().tolist() == want.sort_index().tolist()
    assert res["depth_um"].between(0, 900).all() and res["layer"].isin(["L1", "L2/3", "L4", "L5", "L6"]).all()
    assert a.materialization_version == 661


def test_real_pieces_assembled_into_an_anatomy_folder(tmp_path):
    """A folder in the real layout from real pieces (tests/anatomy_folders.py): the skeleton-service JSON and synapse
    feathers of root 864691135101289504, the v2 meshwork of root 864691135273655569; nucleus rows at their soma points
    (the nucleus ids are made up: the samples do not name them)."""
    from anatomy_folders import build_real_folder

    mp_root = 864691135101289504
    build_real_folder(tmp_path)
    a = Anatomy(tmp_path)
    assert a.depth_frame.name == "minnie65" and a.materialization_version == 1300
    assert a.skeleton_ids == [901] and a.meshwork_ids == [902]
    sk = a.skeleton(901)
    assert sk.meta["nucleus_id"] == 901 and 10_000 < sk.cable_length_um() < 100_000
    depth = a.nuclei.loc[901, "depth_um"]
    assert 0 < depth < 900 and a.nuclei.loc[901, "layer"] in ("L2/3", "L4", "L5")
    syn901 = a.synapses(901)
    assert (syn901["direction"] == "output").sum() == 6514 and (syn901["direction"] == "input").sum() == 12424
    xyz_um = syn901[["x_nm", "y_nm", "z_nm"]].to_numpy() / 1000
    assert np.median(cKDTree(sk.xyz_um).query(xyz_um)[0]) < 2.0  # nm in the file, µm here: the units line up
    partners = a.partners(901)
    assert partners["n_synapses"].sum() == len(syn901)
    others = partners[partners["partner_root_id"] != mp_root]  # autapses name the neuron itself
    assert others["partner_nucleus_id"].isna().all() and (partners["partner_nucleus_id"] == 901).sum() == 2
    assert a.meshwork(902).skeleton().n_nodes == 7710


def test_published_twin_tuning_is_degrees_not_radians():
    """The digital-twin properties v2 (BossDB ori_dir_tuning) are already in degrees: the radians converter for
    functional_properties_v3_bcm refuses them instead of converting twice."""
    fnn = REAL / "vijk777+fnn" / "transcribed_from_notebook_output"
    tuning = pd.read_csv(fnn / "ori_dir_tuning__units.head_tail.csv")
    assert tuning["pref_ori"].between(0, 180).all() and tuning["pref_ori"].max() > 2 * np.pi
    with pytest.raises(ValueError, match="not radians"):
        functional_properties_to_degrees(tuning)
