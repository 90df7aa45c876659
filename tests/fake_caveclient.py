"""A stand-in for ``caveclient.CAVEclient`` (8.x) on the minnie65_public datastack, for export tests (CAVE cannot be
reached here). It implements the calls the export makes, with caveclient's keyword names, and answers in the
shapes real queries return: one real neuron (root 864691135101289504: its synapse_query rows and skeleton-service
dict, from CAVEconnectome/MeshParty's test data) plus synthetic neighbours whose rows copy the real columns and
dtypes (transcribed tutorial tables): position lists in 4×4×40 nm voxels unless ``desired_resolution`` /
``split_positions`` ask otherwise, merged reference columns, ``t`` flags, timestamps with time zones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "microns-real"
MESHPARTY = FIXTURES / "CAVEconnectome+MeshParty"
REAL_ROOT = 864691135101289504
BASE_RES = np.array([4.0, 4.0, 40.0])
CREATED = pd.Timestamp("2020-09-28 22:41:51.767906", tz="UTC")
TABLES = {
    661: ["nucleus_detection_v0", "synapses_pni_2", "coregistration_manual_v3", "aibs_metamodel_celltypes_v661",
          "proofreading_status_public_release", "functional_properties_v3_bcm"],
    1300: ["nucleus_detection_v0", "synapses_pni_2", "coregistration_manual_v4",
           "coregistration_auto_phase3_fwd_apl_vess_combined_v2", "aibs_metamodel_celltypes_v661",
           "proofreading_status_and_strategy", "digital_twin_properties_bcm_coreg_v4",
           "nucleus_functional_area_assignment"],
}
TABLES[1507] = TABLES[1300]


def _position_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.endswith("_position")]


def _in_units(df: pd.DataFrame, desired_resolution, split: bool) -> pd.DataFrame:
    """Position lists (voxels) → the requested resolution, split into _x/_y/_z when asked (as caveclient does)."""
    df = df.copy()
    for col in _position_columns(df):
        vox = np.array([np.asarray(v, float) if v is not None else [np.nan] * 3 for v in df[col]]).reshape(-1, 3)
        pts = vox if desired_resolution is None else vox * BASE_RES / np.asarray(desired_resolution, float)
        if split:
            at = df.columns.get_loc(col)
            df = df.drop(columns=col)
            for k, s in enumerate("xyz"):
                df.insert(at + k, f"{col}_{s}", pts[:, k])
        else:
            df[col] = [list(p) for p in (pts if desired_resolution is not None else pts.astype(np.int64))]
    return df


class _Volume:
    """The fake database: 6 coregistered neurons (scans 8-5, 9-3 and 4-7), one nucleus without a root, the real
    neuron's partners; the same segmentation in every version."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        pre = pd.read_feather(MESHPARTY / "pre.feather")
        post = pd.read_feather(MESHPARTY / "post.feather")
        real = pd.concat([pre, post], ignore_index=True)
        self.skeletons = {REAL_ROOT: json.loads((MESHPARTY / "skel.json").read_text())}
        soma_nm = np.array([self.skeletons[REAL_ROOT]["meta"][f"soma_pt_{a}"] for a in "xyz"])
        roots = [REAL_ROOT] + [864691135000000101 + k for k in range(4)] + [0]
        nuclei_ids = [301225, 255142, 302310, 488811, 522470, 286990]
        soma = [soma_nm] + [soma_nm + rng.uniform(-80_000, 80_000, 3) * [1, 1, 0.3] for _ in range(5)]
        # real partners get nuclei too: the three strongest outputs and inputs
        outputs = pre.loc[pre["post_pt_root_id"] != REAL_ROOT, "post_pt_root_id"].value_counts().index[:3]
        inputs = post.loc[post["pre_pt_root_id"] != REAL_ROOT, "pre_pt_root_id"].value_counts().index[:3]
        partners = list(dict.fromkeys([*outputs, *inputs]))
        roots += [int(r) for r in partners]
        nuclei_ids += [600001 + k for k in range(len(partners))]
        soma += [soma_nm + rng.uniform(-200_000, 200_000, 3) * [1, 1, 0.3] for _ in partners]
        vox = [np.round(np.asarray(p) / BASE_RES).astype(np.int64) for p in soma]
        self.nucleus = pd.DataFrame({
            "id": np.array(nuclei_ids, np.int64), "created": CREATED, "superceded_id": np.nan, "valid": True,
            "volume": rng.uniform(40, 320, len(roots)), "pt_supervoxel_id": np.where(
                np.array(roots) > 0, 89090542457286893 + np.arange(len(roots)), 0).astype(np.int64),
            "pt_root_id": np.array(roots, np.int64), "pt_position": [list(v) for v in vox],
            "bb_start_position": [[None] * 3] * len(roots), "bb_end_position": [[None] * 3] * len(roots)})
        scans = [(8, 5), (8, 5), (9, 3), (9, 3), (4, 7), (8, 5)]  # the last: a nucleus whose root is 0 here
        self.coreg = pd.DataFrame({
            "id": np.arange(13434, 13440), "created": pd.Timestamp("2023-04-05 22:39:53.474202", tz="UTC"),
            "valid": "t", "target_id": self.nucleus["id"][:6].to_numpy(), "session": [s for s, _ in scans],
            "scan_idx": [i for _, i in scans], "unit_id": [4909, 812, 9575, 77, 1203, 3051],
            "field": [4, 2, 6, 1, 3, 5], "residual": rng.uniform(2, 9, 6).round(5),
            "score": rng.uniform(-1, 12, 6).round(6)})
        self.synapses = self._synapses(real, roots[:5], rng)
        for root in roots[1:5]:
            self.skeletons[root] = self._skeleton(root, soma[roots.index(root)], rng)

    @staticmethod
    def _synapses(real: pd.DataFrame, roots: list[int], rng: np.random.Generator) -> pd.DataFrame:
        """The real neuron's rows (nm split columns → voxel lists) plus synthetic rows among the other neurons."""
        df = real.copy()
        for col in ("pre_pt_position", "post_pt_position", "ctr_pt_position"):
            nm = df[[f"{col}_{a}" for a in "xyz"]].to_numpy(float)
            df[col] = [list(p) for p in np.round(nm / BASE_RES).astype(np.int64)]
            df = df.drop(columns=[f"{col}_{a}" for a in "xyz"])
        rows = []
        for k in range(120):
            a, b = rng.choice(roots, 2, replace=False)
            p = rng.integers([150_000, 100_000, 18_000], [250_000, 200_000, 24_000])
            rows.append({"id": 300_000_000 + k, "created": df["created"].iat[0], "superceded_id": np.nan,
                         "valid": "t", "size": int(rng.integers(100, 8000)), "pre_pt_supervoxel_id": 9e16 + k,
                         "pre_pt_root_id": a, "post_pt_supervoxel_id": 9e16 + k + 1, "post_pt_root_id": b,
                         "pre_pt_position": list(p), "post_pt_position": list(p + 2), "ctr_pt_position": list(p + 1)})
        syn = pd.concat([df, pd.DataFrame(rows)], ignore_index=True)
        return syn.astype({"pre_pt_supervoxel_id": "int64", "post_pt_supervoxel_id": "int64"})

    @staticmethod
    def _skeleton(root: int, soma_nm: np.ndarray, rng: np.random.Generator) -> dict:
        """A small skeleton-service dict (structure version 4): soma, one axon, two dendrites, in nm."""
        verts, comp, edges = [soma_nm], [1], []
        for branch, c in ((0, 2), (1, 3), (2, 3)):
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            prev = 0
            for step in range(1, 40):
                verts.append(soma_nm + direction * step * 2500 + rng.normal(0, 300, 3))
                comp.append(c)
                edges.append([len(verts) - 1, prev])  # child → parent, towards the root
                prev = len(verts) - 1
        n = len(verts)
        return {"meta": {"root_id": root, "soma_pt_x": float(soma_nm[0]), "soma_pt_y": float(soma_nm[1]),
                         "soma_pt_z": float(soma_nm[2]), "soma_radius": 7500, "skeleton_type": "pcg_skel",
                         "sk_dict_structure_version": 4, "skeleton_version": 4},
                "edges": edges, "mesh_to_skel_map": list(range(n)), "root": 0,
                "vertices": [list(map(float, v)) for v in verts], "compartment": comp,
                "radius": list(rng.uniform(100, 400, n)), "lvl2_ids": list(range(10**17, 10**17 + n))}

    def table(self, name: str) -> pd.DataFrame:
        nuc = self.nucleus
        ref = nuc.rename(columns={"id": "target_id", "created": "created_ref", "valid": "valid_ref"})
        merged = ref.assign(id_ref=ref["target_id"])
        n = len(nuc)
        if name == "nucleus_detection_v0":
            return nuc
        if name.startswith("coregistration"):
            return self.coreg.merge(merged.drop(columns=["superceded_id"]), on="target_id")
        if name == "aibs_metamodel_celltypes_v661":
            types = np.array(["23P", "4P", "BC", "5P-IT", "MC", "23P"] * 3)[:n]
            return pd.DataFrame({"id": np.arange(11282, 11282 + n), "created": CREATED, "valid": True,
                                 "target_id": nuc["id"], "classification_system": np.where(
                                     np.isin(types, ["BC", "MC"]), "inhibitory_neuron", "excitatory_neuron"),
                                 "cell_type": types}).merge(merged[["target_id", "volume", "pt_supervoxel_id",
                                                                    "pt_root_id", "pt_position"]], on="target_id")
        if name == "proofreading_status_and_strategy":
            return pd.DataFrame({"id": np.arange(5209, 5209 + n), "created": CREATED, "superceded_id": np.nan,
                                 "valid": True, "pt_position": nuc["pt_position"], "valid_id": nuc["pt_root_id"],
                                 "status_dendrite": True, "status_axon": np.arange(n) % 2 == 0,
                                 "strategy_dendrite": "dendrite_extended", "strategy_axon": np.where(
                                     np.arange(n) % 2 == 0, "axon_fully_extended", "none"),
                                 "pt_supervoxel_id": nuc["pt_supervoxel_id"], "pt_root_id": nuc["pt_root_id"]})
        if name == "proofreading_status_public_release":
            return pd.DataFrame({"pt_root_id": nuc["pt_root_id"], "status_dendrite": "extended",
                                 "status_axon": np.where(np.arange(n) % 2 == 0, "extended", "non"),
                                 "pt_position": nuc["pt_position"]})
        units = self.coreg[["target_id", "session", "scan_idx", "unit_id"]]
        k = len(units)
        rng = np.random.default_rng(1)
        if name == "digital_twin_properties_bcm_coreg_v4":
            props = {c: rng.uniform(0, 1, k) for c in ("cc_abs", "cc_max", "cc_norm", "OSI", "DSI", "gOSI", "gDSI")}
            return units.assign(id=np.arange(k), created=CREATED, valid=True, **props,
                                pref_ori=rng.uniform(0, 180, k), pref_dir=rng.uniform(0, 360, k),
                                readout_loc_x=rng.uniform(-1, 1, k), readout_loc_y=rng.uniform(-1, 1, k)).merge(
                merged[["target_id", "pt_supervoxel_id", "pt_root_id", "pt_position"]], on="target_id")
        if name == "functional_properties_v3_bcm":
            return units.assign(id=np.arange(k), created=CREATED, valid=True, pref_ori=rng.uniform(0, np.pi, k),
                                pref_dir=rng.uniform(0, 2 * np.pi, k), gOSI=rng.uniform(0, 1, k),
                                gDSI=rng.uniform(0, 1, k)).merge(
                merged[["target_id", "pt_supervoxel_id", "pt_root_id", "pt_position"]], on="target_id")
        if name == "nucleus_functional_area_assignment":
            return pd.DataFrame({"id": np.arange(n), "created": CREATED, "valid": True, "target_id": nuc["id"],
                                 "tag": "V1", "value": rng.uniform(0, 400, n), "pt_supervoxel_id": nuc[
                                     "pt_supervoxel_id"], "pt_root_id": nuc["pt_root_id"],
                                 "pt_position": nuc["pt_position"]})
        raise KeyError(name)


VOLUME = None


def volume() -> _Volume:
    global VOLUME
    if VOLUME is None:
        VOLUME = _Volume()
    return VOLUME


class _Materialize:
    def __init__(self, parent: FakeCAVEclient) -> None:
        self._p = parent
        self.version = max(TABLES)

    def get_versions(self, datastack_name=None, expired=False):
        return sorted(TABLES)

    def get_version_metadata(self, version=None, datastack_name=None):
        v = version or self.version
        return {"version": v, "time_stamp": pd.Timestamp("2025-01-13 10:10:01", tz="UTC") - pd.Timedelta(days=v),
                "expires_on": pd.Timestamp("2027-01-01", tz="UTC"), "valid": True}

    def get_tables(self, datastack_name=None, version=None):
        return list(TABLES[version or self.version])

    def _check(self, table: str, version) -> int:
        v = version or self.version
        if v not in TABLES:
            raise ValueError(f"version {v} is not valid")  # what the server says, roughly
        if table not in TABLES[v]:
            raise ValueError(f"table {table} not found in version {v}")
        return v

    def query_table(self, table, filter_in_dict=None, filter_out_dict=None, filter_equal_dict=None,
                    filter_spatial_dict=None, filter_regex_dict=None, select_columns=None, offset=None, limit=None,
                    datastack_name=None, return_df=True, split_positions=False, materialization_version=None,
                    timestamp=None, metadata=True, merge_reference=True, desired_resolution=None, get_counts=False,
                    random_sample=None, log_warning=True):
        self._check(table, materialization_version)
        self._p.calls.append(("query_table", table, json.dumps(filter_in_dict, default=int)))
        df = volume().table(table)
        if table == "nucleus_detection_v0" and (materialization_version or self.version) == 661:
            df = df.drop(columns=["created", "superceded_id"])  # as the v661 tutorial query prints it
        for col, values in (filter_in_dict or {}).items():
            df = df[df[col].isin(list(values))]
        return _in_units(df.reset_index(drop=True), desired_resolution, split_positions)

    def live_query(self, table, timestamp, filter_in_dict=None, split_positions=False, desired_resolution=None,
                   **kw):
        return self.query_table(table, filter_in_dict=filter_in_dict, split_positions=split_positions,
                                desired_resolution=desired_resolution)

    def synapse_query(self, pre_ids=None, post_ids=None, bounding_box=None, bounding_box_column="post_pt_position",
                      timestamp=None, remove_autapses=True, include_zeros=True, limit=None, offset=None,
                      split_positions=False, desired_resolution=None, materialization_version=None,
                      synapse_table=None, datastack_name=None, metadata=True):
        self._check("synapses_pni_2", materialization_version)
        self._p.synapse_queries += 1
        if self._p.fail_after is not None and self._p.synapse_queries > self._p.fail_after:
            raise ConnectionError("503 Server Error: Service Unavailable for url: .../synapse_query")
        key = "pre" if pre_ids is not None else "post"
        root = int(pre_ids if pre_ids is not None else post_ids)
        self._p.calls.append(("synapse_query", key, root))
        syn = volume().synapses
        df = syn[syn[f"{key}_pt_root_id"] == root]
        if remove_autapses:
            df = df[df["pre_pt_root_id"] != df["post_pt_root_id"]]
        return _in_units(df.reset_index(drop=True), desired_resolution, split_positions)


class _Skeleton:
    def __init__(self, parent: FakeCAVEclient) -> None:
        self._p = parent

    def get_skeleton(self, root_id, datastack_name=None, skeleton_version=4, output_format="dict", log_warning=True,
                     verbose_level=0):
        if output_format != "dict":
            raise NotImplementedError("the fake serves output_format='dict' only")
        self._p.calls.append(("get_skeleton", int(root_id)))
        if int(root_id) in self._p.no_skeleton:
            raise ValueError(f"500 Server Error: no skeleton could be generated for {root_id}")
        return json.loads(json.dumps(volume().skeletons[int(root_id)]))


class FakeCAVEclient:
    """``FakeCAVEclient(fail_after=k)`` raises a ConnectionError on the (k+1)-th synapse_query; roots in
    ``no_skeleton`` get a server error from the skeleton service."""

    def __init__(self, datastack_name: str = "minnie65_public", fail_after: int | None = None,
                 no_skeleton: tuple[int, ...] = ()) -> None:
        self.datastack_name = datastack_name
        self.no_skeleton = set(no_skeleton)
        self.fail_after = fail_after
        self.synapse_queries = 0
        self.calls: list[tuple] = []
        self.materialize = _Materialize(self)
        self.skeleton = _Skeleton(self)

    def roots_fetched(self) -> set[int]:
        return {c[-1] for c in self.calls if c[0] in ("synapse_query", "get_skeleton")}
