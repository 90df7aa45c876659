"""The link chain on real-shaped tables: units per scan (13 scans), root 0, roots with several nuclei, the
coregistration tables of every era, functional properties in radians, and one materialization version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin_explorer.anatomy import Anatomy

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "microns-real"
FNN = REAL / "vijk777+fnn" / "transcribed_from_notebook_output"
TUT = REAL / "AllenInstitute+microns_tutorial" / "transcribed_from_notebook_output"
AUTO = "coregistration_auto_phase3_fwd_apl_vess_combined_v2"
ROOT0 = 864691135000000000


def _scans() -> pd.DataFrame:
    """The 13 modelled scans as the published digital-twin properties list them."""
    scans = pd.read_csv(FNN / "responses__metadata_subset_cols.head_tail.csv")[["session", "scan_idx"]]
    assert len(scans) == 13
    return scans


def _nuclei(n: int, shared: dict[int, int] | None = None, root0: tuple[int, ...] = ()) -> pd.DataFrame:
    ids = 100_000 + np.arange(n)
    roots = ROOT0 + ids
    for nid, other in (shared or {}).items():
        roots[nid - 100_000] = ROOT0 + other
    roots[[r - 100_000 for r in root0]] = 0
    rng = np.random.default_rng(0)
    pos = [f"[{x}, {y}, {z}]" for x, y, z in zip(rng.integers(150_000, 300_000, n), rng.integers(120_000, 250_000, n),
                                                 rng.integers(16_000, 26_000, n))]
    return pd.DataFrame({"id": ids, "pt_root_id": roots, "pt_position": pos})


def _coreg(keys: pd.DataFrame, nuclei: np.ndarray, residual: float = 2.0) -> pd.DataFrame:
    return keys.assign(target_id=nuclei, residual=residual, score=5.0, field=1).reset_index(drop=True)


def _folder(tmp_path: Path, manifest: dict | None = None, **tables: pd.DataFrame) -> Path:
    (tmp_path / "tables").mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(tmp_path / "tables" / f"{name}.csv", index=False)
    if manifest is not None:
        (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def _units(per_scan: int, scans: pd.DataFrame) -> pd.DataFrame:
    """readout ids restart at 0 in every scan; unit ids are not consecutive (as in units.csv)."""
    parts = [pd.DataFrame({"session": s, "scan_idx": k, "readout_id": np.arange(per_scan),
                           "unit_id": 1 + 2 * np.arange(per_scan)}) for s, k in scans.itertuples(index=False)]
    return pd.concat(parts, ignore_index=True)


def test_two_scans_keep_every_unit(tmp_path):
    scans = _scans().iloc[:2]
    units = _units(1000, scans).set_index("readout_id")
    keys = units[["session", "scan_idx", "unit_id"]]
    coreg = _coreg(keys, 100_000 + np.arange(2000))
    a = Anatomy(_folder(tmp_path, nucleus_detection_v0=_nuclei(2000), coregistration_manual_v4=coreg))
    links = a.link_units(units)
    assert len(links) == 2000 and (links["match"] == "unique").all()
    res = a.resolve_units(units)
    assert len(res) == 2000 and res.index.names == ["session", "scan_idx", "readout_id"]
    # the same readout id in two scans is two neurons
    s0, s1 = scans.itertuples(index=False)
    assert res.loc[(s0.session, s0.scan_idx, 7), "nucleus_id"] == 100_007
    assert res.loc[(s1.session, s1.scan_idx, 7), "nucleus_id"] == 101_007
    row = a.neuron_of_unit(units, (s1.session, s1.scan_idx, 7))
    assert row["nucleus_id"] == 101_007
    with pytest.raises(ValueError, match="several scans"):
        a.neuron_of_unit(units, 7)
    with pytest.raises(ValueError, match="repeats"):
        a.link_units(pd.concat([units, units.iloc[:1]]))


def test_all_13_scans_and_the_published_readout_rows(tmp_path):
    scans = _scans()
    units = _units(20, scans)
    # scan 8-5 as published: readout rows 73272.. of the 104,171, readout_id = row - first row of the scan
    fnn = pd.read_csv(FNN / "readout__units.head_tail.csv")
    head = fnn[fnn["row_index_in_original_file"] < 73272 + 5]
    published = head.assign(readout_id=head["row_index_in_original_file"] - 73272)
    units = units[~((units.session == 8) & (units.scan_idx == 5))]
    units = pd.concat([units, published[["session", "scan_idx", "readout_id", "unit_id"]]], ignore_index=True)
    nuclei = 100_000 + np.arange(len(units))
    coreg = _coreg(units[["session", "scan_idx", "unit_id"]], nuclei)
    a = Anatomy(_folder(tmp_path, nucleus_detection_v0=_nuclei(len(units)), coregistration_manual_v4=coreg))
    res = a.resolve_units(units)
    assert len(res) == 12 * 20 + 5 and res["match"].eq("unique").all()
    assert res.reset_index().groupby(["session", "scan_idx"]).size().size == 13
    got = res.reset_index().set_index(["session", "scan_idx", "unit_id"])["nucleus_id"]
    want = pd.Series(nuclei, index=pd.MultiIndex.from_frame(units[["session", "scan_idx", "unit_id"]]))
    assert (got.loc[want.index].to_numpy() == want.to_numpy()).all()
    assert res.loc[(8, 5, 4), "nucleus_id"] == want.loc[(8, 5, 5)]  # readout 4 of scan 8-5 is unit 5


def test_root_zero_and_shared_roots_are_never_joined(tmp_path):
    real = pd.read_csv(TUT / "02-cave-query-cell-types__cell16__nucleus_detection_v0.csv").drop(columns="df_index")
    assert (real["pt_root_id"] == 0).sum() == 3  # the real table's nuclei outside any segment
    extra = _nuclei(4, shared={100_001: 9, 100_002: 9})  # nuclei 100001 and 100002 share one root (a merge)
    nuc = pd.concat([real[["id", "pt_root_id", "pt_position"]], extra], ignore_index=True)
    shared_root = ROOT0 + 9
    syn = pd.DataFrame({"id": [1, 2, 3, 4], "size": 100, "pre_pt_root_id": [shared_root, ROOT0 + 100_000, 0, ROOT0 + 100_003],
                        "post_pt_root_id": [ROOT0 + 100_000, shared_root, ROOT0 + 100_000, ROOT0 + 100_000],
                        "ctr_pt_position": ["[200000, 200000, 20000]"] * 4})
    units = pd.DataFrame({"session": 4, "scan_idx": 7, "unit_id": [1, 2, 3]}, index=pd.Index([0, 1, 2], name="readout_id"))
    coreg = _coreg(units.reset_index(drop=True), np.array([100_000, 100_001, 730537]))
    a = Anatomy(_folder(tmp_path, nucleus_detection_v0=nuc, synapses_pni_2=syn, coregistration_manual_v4=coreg))
    assert a.nuclei.loc[[730537, 601340, 600774], "pt_root_id"].isna().all()
    assert a.nuclei.loc[100_001, "root_nuclei"] == 2 and a.nuclei.loc[373879, "root_nuclei"] == 1
    assert 0 not in a.root_to_nucleus.index and shared_root not in a.root_to_nucleus.index
    table = a.synapse_table  # used to raise InvalidIndexError
    assert table["pre_nucleus_id"].isna().tolist() == [True, False, True, False]  # shared root, -, root 0, -
    assert table.loc[1, "pre_nucleus_id"] == 100_000 and table["post_nucleus_id"].isna().tolist() == [False, True] + [False] * 2
    assert a.nucleus_id(ROOT0 + 100_000) == 100_000
    with pytest.raises(ValueError, match="holds 2 nuclei"):
        a.nucleus_id(shared_root)  # used to raise TypeError
    with pytest.raises(ValueError, match="root id 0"):
        a.nucleus_id(0)
    with pytest.raises(ValueError, match="no segment"):
        a.root_id(730537)
    syn100 = a.synapses(100_000, "input")
    assert len(syn100) == 3 and syn100["partner_nucleus_id"].isna().sum() == 2  # shared root and root 0: no join
    links = a.link_units(units).set_index("readout_id")
    assert links.loc[1, "root_shared"] and not links.loc[0, "root_shared"]
    assert pd.isna(links.loc[2, "pt_root_id"]) and links.loc[2, "in_volume"]


def test_coregistration_tables_of_every_era_and_their_priority(tmp_path):
    units = pd.DataFrame({"session": 4, "scan_idx": 7, "unit_id": [107, 152, 487, 600]},
                         index=pd.Index([0, 1, 2, 3], name="readout_id"))
    keys = units.reset_index(drop=True)
    # the auto table's real head rows (MICrONS-datacleaner, v1718): units 107, 152, 487, 600 of scan 4-7
    auto = _coreg(keys, np.array([388868, 357165, 323782, 452040]), residual=20.0)
    v3 = _coreg(keys.iloc[[0, 1]], np.array([388868, 111111]), residual=5.0)
    v4 = _coreg(keys.iloc[[0]], np.array([388868]), residual=3.0)
    nuc = pd.DataFrame({"id": [388868, 357165, 323782, 452040, 111111], "pt_root_id": ROOT0 + np.arange(5),
                        "pt_position": ["[238400, 102576, 15126]"] * 5})
    a = Anatomy(_folder(tmp_path, nucleus_detection_v0=nuc, coregistration_manual_v4=v4, coregistration_manual_v3=v3,
                        **{AUTO: auto}))
    res = a.resolve_units(units)
    assert res.loc[0, "coreg_source"] == "coregistration_manual_v4"
    assert res.loc[1, "match"] == "multiple" and res.loc[1, "nucleus_id"] == 111111  # manual v3 beats auto
    assert res.loc[1, "coreg_source"] == "coregistration_manual_v3"
    assert res.loc[2, "coreg_source"] == AUTO and res.loc[3, "nucleus_id"] == 452040
    only_auto = Anatomy(tmp_path, coregistration=(AUTO,)).resolve_units(units)
    assert only_auto.loc[1, "nucleus_id"] == 357165
    with pytest.raises(ValueError, match="coregistration must name"):
        Anatomy(tmp_path, coregistration=("func_unit_em_match_release",))


def test_functional_properties_v3_in_radians_and_dt_v4_in_degrees(tmp_path):
    units = pd.DataFrame({"session": 4, "scan_idx": 7, "unit_id": [1, 2]}, index=pd.Index([0, 1], name="readout_id"))
    keys = units.reset_index(drop=True)
    coreg = _coreg(keys, np.array([100_000, 100_001]))
    v3 = keys.assign(target_id=[100_000, 100_001], pref_ori=[0.0, np.pi / 4], pref_dir=[np.pi / 2, np.pi])
    folder = _folder(tmp_path, nucleus_detection_v0=_nuclei(2), coregistration_manual_v4=coreg,
                     functional_properties_v3_bcm=v3)
    a = Anatomy(folder)
    props = a.properties
    assert "counter-clockwise" in props.attrs["angle_convention"]
    pop = a.population(units)
    # 0 rad = upward motion = 90° in the project's convention; π/4 clockwise from up = 45°
    assert pop["pref_ori"].tolist() == pytest.approx([90.0, 45.0])
    assert pop["pref_dir"].tolist() == pytest.approx([0.0, 270.0])  # right; down
    assert "0° = rightward motion" in pop.attrs["angle_convention"]
    dt = keys.assign(target_id=[100_000, 100_001], pref_ori=[10.0, 20.0], pref_dir=[190.0, 200.0])
    dt.to_csv(folder / "tables" / "digital_twin_properties_bcm_coreg_v4.csv", index=False)
    assert Anatomy(folder).population(units)["pref_ori"].tolist() == [10.0, 20.0]  # the current table wins


def test_materialization_version_recorded_and_never_mixed(tmp_path):
    units = pd.DataFrame({"session": 4, "scan_idx": 7, "unit_id": [1]}, index=pd.Index([0], name="readout_id"))
    coreg = _coreg(units.reset_index(drop=True), np.array([100_000]))
    folder = _folder(tmp_path, {"materialization_version": 943}, nucleus_detection_v0=_nuclei(1),
                     coregistration_manual_v4=coreg)
    a = Anatomy(folder)
    assert a.materialization_version == 943 and a.table("nucleus_detection_v0").attrs["materialization_version"] == 943
    with pytest.raises(ValueError, match="holds materialization v943, not the requested v661"):
        Anatomy(folder, version=661)
    # a caveclient frame saved with its attrs (parquet keeps them) from another version is refused
    syn = pd.DataFrame({"id": [1], "size": [1], "pre_pt_root_id": [ROOT0 + 100_000], "post_pt_root_id": [ROOT0 + 5],
                        "ctr_pt_position": [[200000, 200000, 20000]]})
    syn.attrs["materialization_version"] = 1300
    syn.to_parquet(folder / "tables" / "synapses_pni_2.parquet")
    with pytest.raises(ValueError, match="v1300 but this folder is v943"):
        Anatomy(folder).synapses(100_000)
    # so is a table the manifest itself declares at another version
    (folder / "tables" / "synapses_pni_2.parquet").unlink()
    syn.to_csv(folder / "tables" / "synapses_pni_2.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({"materialization_version": 943,
                                                      "table_versions": {"synapses_pni_2": 1507}}))
    with pytest.raises(ValueError, match="never joined"):
        Anatomy(folder).synapse_table
    # without a manifest the first versioned table sets the folder's version
    (folder / "manifest.json").unlink()
    syn.attrs["materialization_version"] = 1300
    (folder / "tables" / "synapses_pni_2.csv").unlink()
    syn.to_parquet(folder / "tables" / "synapses_pni_2.parquet")
    b = Anatomy(folder)
    assert b.materialization_version is None
    b.synapse_table
    assert b.materialization_version == 1300


def test_units_without_any_match(tmp_path):
    units = pd.DataFrame({"session": 9, "scan_idx": 6, "unit_id": [1, 2]}, index=pd.Index([0, 1], name="readout_id"))
    coreg = _coreg(pd.DataFrame({"session": [4], "scan_idx": [7], "unit_id": [1]}), np.array([100_000]))
    a = Anatomy(_folder(tmp_path, nucleus_detection_v0=_nuclei(1), coregistration_manual_v4=coreg))
    res = a.resolve_units(units)
    assert (res["match"] == "none").all() and res["nucleus_id"].isna().all()
    assert res["root_shared"].dtype == bool and not res["root_shared"].any()
