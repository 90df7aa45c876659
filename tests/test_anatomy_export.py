"""The version-pinned CAVE export, end to end against a fake caveclient that answers in the real shapes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fake_caveclient import MESHPARTY, REAL_ROOT, FakeCAVEclient, volume
from typer.testing import CliRunner

from twin_explorer.anatomy import Anatomy
from twin_explorer.anatomy.export import export_anatomy, parse_scans, skeleton_from_service

REAL_NUCLEUS = 301225  # the fake's nucleus id of the real neuron


def _units() -> pd.DataFrame:
    """A MICrONS-layout units table: readout ids restart per scan, keyed by (session, scan_idx, unit_id)."""
    return pd.DataFrame({"session": [8, 8, 8, 9, 9, 4], "scan_idx": [5, 5, 5, 3, 3, 7],
                         "unit_id": [4909, 812, 3051, 9575, 77, 1203]}, index=pd.Index(range(6), name="readout_id"))


def test_export_writes_a_folder_the_loader_opens(tmp_path):
    client = FakeCAVEclient()
    manifest = export_anatomy(client, tmp_path / "v1300", 1300, "8-5,9-3", progress=False)
    assert manifest["materialization_version"] == 1300 and manifest["datastack"] == "minnie65_public"
    assert manifest["coregistration_tables"] == ["coregistration_manual_v4"]
    assert manifest["materialization_time"].startswith("2021-") and manifest["exported_at"]
    assert manifest["software"]["client"].endswith("FakeCAVEclient") and manifest["software"]["pandas"]
    assert json.loads((tmp_path / "v1300" / "manifest.json").read_text()) == manifest
    counts = manifest["counts"]
    assert counts["neurons"] == 4 and counts["skipped_root_0"] == 1 and counts["skeletons"] == 4
    assert {c[1] for c in client.calls if c[0] == "query_table"} >= {"nucleus_detection_v0",
                                                                     "coregistration_manual_v4"}

    a = Anatomy(tmp_path / "v1300")
    links = a.link_units(_units())
    by_unit = links.set_index("readout_id")
    assert by_unit.loc[0, "nucleus_id"] == REAL_NUCLEUS and by_unit.loc[0, "match"] == "unique"
    assert by_unit.loc[5, "match"] == "none"  # scan 4-7 was not exported
    assert pd.isna(by_unit.loc[2, "pt_root_id"])  # root 0 (no segment at this version): kept as no root, unfetched
    assert set(a.skeleton_ids) == {REAL_NUCLEUS, 255142, 302310, 488811}
    sk = a.skeleton(REAL_NUCLEUS)
    assert sk.n_nodes == 16720 and 5_000 < sk.cable_length_um() < 100_000  # µm of a whole neuron with its axon
    assert set(np.unique(sk.compartment)) == {1, 2, 3}
    # synapses: the real rows of this root, autapses removed as synapse_query does by default
    pre, post = pd.read_feather(MESHPARTY / "pre.feather"), pd.read_feather(MESHPARTY / "post.feather")
    syn = a.synapses(REAL_NUCLEUS)
    real_out = int((pre["pre_pt_root_id"] != pre["post_pt_root_id"]).sum())
    real_in = int((post["pre_pt_root_id"] != post["post_pt_root_id"]).sum())
    fake = volume().synapses
    fake = fake[~fake["id"].isin(pre["id"]) & ~fake["id"].isin(post["id"])]  # the fake's synthetic rows
    extra_out = int((fake["pre_pt_root_id"] == REAL_ROOT).sum())
    extra_in = int((fake["post_pt_root_id"] == REAL_ROOT).sum())
    assert (syn["direction"] == "output").sum() == real_out + extra_out
    assert (syn["direction"] == "input").sum() == real_in + extra_in
    # voxel positions written, nm read back: the first real synapse lands where the feather (nm) puts it
    row = syn[syn["id"] == pre["id"].iat[0]].iloc[0]
    assert row["x_nm"] == pytest.approx(pre["ctr_pt_position_x"].iat[0], abs=4)
    assert row["z_nm"] == pytest.approx(pre["ctr_pt_position_z"].iat[0], abs=40)
    partners = a.partners(REAL_NUCLEUS)
    assert partners["partner_nucleus_id"].notna().sum() >= 3 and "cell_type" in partners
    for table in ("aibs_metamodel_celltypes_v661", "proofreading_status_and_strategy",
                  "digital_twin_properties_bcm_coreg_v4", "nucleus_functional_area_assignment", "synapses_pni_2"):
        assert (tmp_path / "v1300" / "tables" / f"{table}.csv.gz").exists(), table
    assert manifest["tables"]["synapses_pni_2"] == counts["synapses"] == len(a.synapse_table)


def test_export_resumes_after_an_interruption_without_refetching(tmp_path):
    out = tmp_path / "run"
    failing = FakeCAVEclient(fail_after=5)  # neurons 1 and 2 done (2 queries each), neuron 3 fails midway
    with pytest.raises(ConnectionError, match="503"):
        export_anatomy(failing, out, 1300, "8-5,9-3", progress=False)
    done = sorted(p.name for p in (out / "cave_cache" / "neurons").iterdir())
    assert len(done) == 2 and not (out / "manifest.json").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no half-written neuron left behind
    done_roots = {int(name.split("_")[0]) for name in done}

    rerun = FakeCAVEclient()
    manifest = export_anatomy(rerun, out, 1300, "8-5,9-3", progress=False)
    assert not done_roots & rerun.roots_fetched()  # done neurons are not queried again
    assert rerun.synapse_queries == 2 * (manifest["counts"]["neurons"] - 2)
    clean = export_anatomy(FakeCAVEclient(), tmp_path / "clean", 1300, "8-5,9-3", progress=False)
    assert manifest["counts"] == clean["counts"] and manifest["tables"] == clean["tables"]
    a, b = Anatomy(out), Anatomy(tmp_path / "clean")
    pd.testing.assert_frame_equal(a.synapse_table, b.synapse_table)
    again = FakeCAVEclient()
    export_anatomy(again, out, 1300, "8-5,9-3", progress=False)
    assert again.synapse_queries == 0 and not again.roots_fetched()  # a finished export is all cached


def test_version_decides_tables_and_versions_never_mix(tmp_path):
    manifest = export_anatomy(FakeCAVEclient(), tmp_path / "v661", 661, ["9-3"], progress=False)
    tables = tmp_path / "v661" / "tables"
    assert manifest["coregistration_tables"] == ["coregistration_manual_v3"]
    assert (tables / "coregistration_manual_v3.csv.gz").exists()
    assert (tables / "functional_properties_v3_bcm.csv.gz").exists()
    assert not (tables / "digital_twin_properties_bcm_coreg_v4.csv.gz").exists()
    v3 = pd.read_csv(tables / "coregistration_manual_v3.csv.gz")
    assert set(zip(v3["session"], v3["scan_idx"])) == {(9, 3)} and "pt_position_x" in v3
    nuclei = Anatomy(tmp_path / "v661").nuclei  # v661 rows lack 'created'; written with the column empty
    assert {302310, 488811} <= set(nuclei.index) and nuclei["x_nm"].notna().all()
    with pytest.raises(ValueError, match="must not mix"):
        export_anatomy(FakeCAVEclient(), tmp_path / "v661", 1300, ["9-3"], progress=False)
    with pytest.raises(ValueError, match=r"available: \[661, 1300, 1507\]"):
        export_anatomy(FakeCAVEclient(), tmp_path / "x", 999, "8-5", progress=False)
    auto = export_anatomy(FakeCAVEclient(), tmp_path / "auto", 1507, "8-5", include_auto=True, progress=False)
    assert auto["coregistration_tables"] == ["coregistration_manual_v4",
                                             "coregistration_auto_phase3_fwd_apl_vess_combined_v2"]


def test_scans_and_skeleton_dicts_are_checked():
    assert parse_scans("8-5, 9-3,8-5") == [(8, 5), (9, 3)]
    for bad in ("8.5", "", "a-b", "8-"):
        with pytest.raises(ValueError, match="session"):
            parse_scans(bad)
    d = json.loads((MESHPARTY / "skel.json").read_text())
    sk = skeleton_from_service(d)
    assert sk.n_nodes == len(d["vertices"]) and (sk.parent == -1).sum() == 1 and sk.parent[d["root"]] == -1
    # every edge of the dict is a parent link of the tree
    edges = {frozenset(e) for e in d["edges"]}
    links = {frozenset((i, p)) for i, p in enumerate(sk.parent) if p >= 0}
    assert links == edges
    with pytest.raises(ValueError, match="edges"):
        skeleton_from_service({"vertices": [[0, 0, 0]]})


def test_cli_export(tmp_path, monkeypatch):
    from twin_explorer.anatomy import cave
    from twin_explorer.cli import typer_app

    monkeypatch.setattr(cave, "cave_client", lambda datastack, version=None: FakeCAVEclient(datastack))
    res = CliRunner().invoke(typer_app, ["anatomy", "export", "--version", "1300", "--scans", "8-5",
                                         "--out", str(tmp_path / "cli"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "exported 2 neurons (2 skeletons" in res.output and "v1300" in res.output
    assert Anatomy(tmp_path / "cli").manifest["materialization_version"] == 1300
    res = CliRunner().invoke(typer_app, ["anatomy", "export", "--version", "1300", "--scans", "85",
                                         "--out", str(tmp_path / "bad")])
    assert res.exit_code != 0 and "session" in res.output


def test_roots_holding_several_nuclei_are_not_fetched(tmp_path, monkeypatch):
    import copy

    import fake_caveclient

    vol = copy.deepcopy(volume())
    twin = vol.nucleus[vol.nucleus["id"] == 255142].assign(id=255143)  # a merge error: two somata, one root
    vol.nucleus = pd.concat([vol.nucleus, twin], ignore_index=True)
    vol.coreg = pd.concat([vol.coreg, vol.coreg[vol.coreg["target_id"] == 255142].assign(
        id=13500, target_id=255143, unit_id=999)], ignore_index=True)
    monkeypatch.setattr(fake_caveclient, "VOLUME", vol)
    client = FakeCAVEclient()
    manifest = export_anatomy(client, tmp_path / "merge", 1300, "8-5", progress=False)
    assert manifest["counts"]["skipped_shared_root"] == 2 and manifest["counts"]["neurons"] == 1
    assert client.roots_fetched() == {REAL_ROOT}
    written = pd.read_csv(tmp_path / "merge" / "tables" / "nucleus_detection_v0.csv.gz")
    assert {255142, 255143} <= set(written["id"])  # the rows stay in the table, flagged by the shared root


def test_a_root_without_skeleton_is_recorded_and_the_export_goes_on(tmp_path):
    missing = 864691135000000101
    manifest = export_anatomy(FakeCAVEclient(no_skeleton=(missing,)), tmp_path / "s", 1300, "8-5", progress=False)
    assert manifest["counts"]["skeletons"] == 1 and manifest["counts"]["skeleton_failures"] == 1
    err = tmp_path / "s" / "cave_cache" / "neurons" / f"{missing}_255142" / "skeleton_error.txt"
    assert "no skeleton" in err.read_text()
    a = Anatomy(tmp_path / "s")
    assert a.skeleton_ids == [REAL_NUCLEUS] and len(a.synapses(255142)) > 0
