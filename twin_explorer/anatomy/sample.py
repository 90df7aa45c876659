"""Generate the offline anatomy sample: a synthetic MICrONS-like volume linked to a twin's units, written in the
real formats and column names (CAVE table dumps as CSV.gz, SWC skeletons in nm, MeshParty meshwork .h5 version 2).

It is not MICrONS data: the manifest says ``synthetic: true`` and its ids lie outside the real ranges (real root ids
are 18-digit 864691134…/864691136…, real nucleus ids below ~750,000; the sample's root ids start with 9 and its
nucleus ids are ≥ 10,000,000), so no sample id can be mistaken for, or looked up as, a real EM neuron.

Planted structure (recorded in manifest.json): connection probability between sampled neurons rises with the
signal correlation of their true direction tuning curves (like-to-like) and falls with lateral distance; some
units have two candidate nuclei, some none. Same inputs and seed give byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import __version__
from ..monitor import DEFAULT_MONITOR
from .coords import SAMPLE_DEPTH_FRAME, DepthFrame, nm_to_voxels
from .like_to_like import signal_correlation, tuning_curves
from .meshwork import Meshwork, write_meshwork
from .morphology import INHIBITORY_TYPES, synth_neuron, tube_mesh
from .swc import write_swc
from .tables import COREGISTRATION_TABLES, write_table

CREATED = "2023-04-20 00:00:00.000000+00:00"
#: Synthetic id ranges, clear of the real MICrONS ones (see the module docstring).
ROOT_BASE = 900_000_000_000_000_000
SV_BASE = 990_000_000_000_000_000
NUCLEUS_BASE = 10_000_000
SYNAPSE_BASE = 9_000_000_000
AREAS = ("V1", "AL", "RL", "LM")
EXCITATORY_BY_LAYER = {"L1": (("23P",), (1.0,)), "L2/3": (("23P",), (1.0,)), "L4": (("4P",), (1.0,)),
                       "L5": (("5P-IT", "5P-ET", "5P-NP"), (0.6, 0.25, 0.15)),
                       "L6": (("6P-IT", "6P-CT"), (0.5, 0.5)), "WM": (("6P-CT",), (1.0,))}


def _prepare_units(units: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    if not isinstance(units, pd.DataFrame):
        raise ValueError(f"units must be a DataFrame indexed by readout_id, got {type(units).__name__}")
    missing = [c for c in ("session", "scan_idx", "unit_id") if c not in units.columns]
    if missing:
        raise ValueError(f"units table lacks {missing}; needs session, scan_idx, unit_id (index readout_id)")
    if len(units) < 10:
        raise ValueError(f"need at least 10 units to build a sample, got {len(units)}")
    if units.duplicated(["session", "scan_idx", "unit_id"]).any():
        raise ValueError("units have duplicate (session, scan_idx, unit_id) keys")
    u = units.copy()
    u.index = u.index.rename("readout_id")
    n = len(u)
    # positions/area/layer are taken from the units when present, else drawn (seeded)
    if "x_um" not in u:
        u["x_um"] = rng.uniform(0, 800, n)
    if "y_um" not in u:
        u["y_um"] = rng.uniform(0, 800, n)
    if "depth_um" not in u:
        u["depth_um"] = rng.uniform(120, 600, n)
    if "area" not in u:
        u["area"] = np.where(u["x_um"] < np.median(u["x_um"]), "V1", rng.choice(AREAS[1:], n))
    if "layer" not in u:
        u["layer"] = SAMPLE_DEPTH_FRAME.layer_of(u["depth_um"].to_numpy())
    if u[["x_um", "y_um", "depth_um"]].isna().any(axis=None):
        raise ValueError("units have missing x_um/y_um/depth_um values")
    return u


def _layers_from_units(u: pd.DataFrame) -> tuple[tuple[str, float, float], ...]:
    """Layer bands consistent with the units' own ``layer`` labels (boundaries midway between layers)."""
    if "layer" not in u or u["layer"].isna().all():
        return SAMPLE_DEPTH_FRAME.layers
    g = u.groupby(u["layer"].astype(str))["depth_um"].agg(["min", "max", "median"]).sort_values("median")
    names = g.index.tolist()
    bounds = [max(float(g["min"].iat[0]) - 1.0, 1.0)]
    bounds += [(float(g["max"].iat[k]) + float(g["min"].iat[k + 1])) / 2 for k in range(len(g) - 1)]
    bounds.append(float(g["max"].iat[-1]) + 1.0)
    if np.any(np.diff(bounds) <= 0):  # overlapping labels: fall back to the default bands
        return SAMPLE_DEPTH_FRAME.layers
    layers = [("L1", 0.0, bounds[0])] if "L1" not in names else []
    layers += [(n, bounds[k], bounds[k + 1]) for k, n in enumerate(names)]
    if "L6" not in names:
        layers.append(("L6", bounds[-1], bounds[-1] + 250.0))
    layers.append(("WM", layers[-1][2], max(layers[-1][2] + 100.0, 2000.0)))
    return tuple((n, round(t, 1), round(b, 1)) for n, t, b in layers)


def _prepare_tuning(u: pd.DataFrame, tuning: pd.DataFrame | None, rng: np.random.Generator) -> pd.DataFrame:
    n = len(u)
    t = pd.DataFrame(index=u.index)
    src = tuning.reindex(u.index) if tuning is not None else pd.DataFrame(index=u.index)
    if tuning is not None and src.isna().all(axis=None):
        raise ValueError("tuning table shares no readout_id with the units table")

    def col(name: str, draw: np.ndarray) -> np.ndarray:
        return src[name].fillna(pd.Series(draw, index=u.index)).to_numpy(float) if name in src else draw

    t["pref_dir_deg"] = col("pref_dir_deg", rng.uniform(0, 360, n)) % 360
    t["gosi"] = col("gosi", rng.beta(2, 5, n))
    t["gdsi"] = col("gdsi", rng.beta(1.5, 8, n))
    t["osi"] = col("osi", np.clip(t["gosi"] * 1.6, 0, 1))
    t["dsi"] = col("dsi", np.clip(t["gdsi"] * 1.6, 0, 1))
    t["pref_ori_deg"] = col("pref_ori_deg", t["pref_dir_deg"].to_numpy() % 180) % 180
    cc_max = col("cc_max", rng.beta(8, 3, n))
    t["cc_max"] = cc_max
    t["cc_norm"] = col("cc_norm", rng.beta(5, 4, n))
    t["cc_abs"] = col("cc_abs", t["cc_norm"].to_numpy() * cc_max)
    loc_x, loc_y = rng.uniform(-0.8, 0.8, n), rng.uniform(-0.8, 0.8, n)
    if {"rf_az_deg", "rf_el_deg"} <= set(src.columns):  # readout location ≈ RF centre, (-1, -1) = top-left
        left, right, bottom, top = DEFAULT_MONITOR.extent_deg
        loc_x = np.clip(src["rf_az_deg"].to_numpy(float) / right, -1, 1)
        loc_y = np.clip(-src["rf_el_deg"].to_numpy(float) / top, -1, 1)
    t["readout_loc_x"] = col("readout_loc_x", loc_x)
    t["readout_loc_y"] = col("readout_loc_y", loc_y)
    return t


def _pt_cols(prefix: str, vox: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{prefix}_x": vox[:, 0], f"{prefix}_y": vox[:, 1], f"{prefix}_z": vox[:, 2]}


def generate_sample(units: pd.DataFrame, tuning: pd.DataFrame | None, out_dir: str | Path, seed: int = 0,
                    n_skeletons: int = 30, n_dense: int = 5, n_meshworks: int = 3, n_connectome: int = 250,
                    like_to_like_gain: float = 2.0, extra_nuclei_fraction: float = 0.15,
                    source: str = "", progress: bool = True) -> Path:
    """Write a synthetic MICrONS-like anatomy sample for ``units`` into ``out_dir``; returns ``out_dir``.

    units: DataFrame indexed by readout_id with session, scan_idx, unit_id and, if available, x_um, y_um,
    depth_um, area, layer, neuron_id (units sharing a neuron_id become one nucleus).
    tuning: optional DataFrame indexed like ``units`` with pref_dir_deg, gosi, gdsi (osi, dsi, pref_ori_deg,
    cc_abs, cc_max, cc_norm, readout_loc_x/y); missing values are drawn at random.
    """
    rng = np.random.default_rng(seed)
    u = _prepare_units(units, rng)
    t = _prepare_tuning(u, tuning, rng)
    out = Path(out_dir)
    for sub in ("tables", "skeletons", "meshworks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob("*"):
            old.unlink()
    frame = DepthFrame(SAMPLE_DEPTH_FRAME.pia_point_um, SAMPLE_DEPTH_FRAME.tilt_deg, _layers_from_units(u))

    # ---- neurons: one nucleus per neuron (units of one neuron_id share it), plus unimaged nuclei ----------------
    neuron_key = u["neuron_id"] if "neuron_id" in u else pd.Series(np.arange(len(u)), index=u.index)
    first = ~neuron_key.duplicated()
    neurons = u[first.to_numpy()].copy()
    neurons["neuron_key"] = neuron_key[first].to_numpy()
    n_img = len(neurons)
    n_extra = int(round(extra_nuclei_fraction * n_img))
    extra = pd.DataFrame({"x_um": rng.uniform(u["x_um"].min(), u["x_um"].max(), n_extra),
                          "y_um": rng.uniform(u["y_um"].min(), u["y_um"].max(), n_extra),
                          "depth_um": rng.uniform(max(u["depth_um"].min(), 20), u["depth_um"].max(), n_extra),
                          "area": rng.choice(np.unique(u["area"].astype(str)), n_extra)})
    extra["layer"] = frame.layer_of(extra["depth_um"].to_numpy())
    nuc = pd.concat([neurons[["x_um", "y_um", "depth_um", "area", "layer"]].reset_index(drop=True), extra],
                    ignore_index=True)
    N = len(nuc)
    nuc["nucleus_id"] = np.sort(NUCLEUS_BASE + rng.choice(600_000, N, replace=False))[rng.permutation(N)]
    nuc["pt_root_id"] = ROOT_BASE + rng.choice(10**9, N, replace=False)
    nuc["pt_supervoxel_id"] = SV_BASE + rng.choice(10**15, N, replace=False)
    aligned = nuc[["x_um", "depth_um", "y_um"]].to_numpy(float)
    vox = nm_to_voxels(frame.to_nm(aligned), round=True)
    nuc[["vx", "vy", "vz"]] = vox
    inhib = rng.random(N) < 0.12
    inhib |= nuc["layer"].to_numpy() == "L1"
    cell_type = np.empty(N, dtype=object)
    for i in range(N):
        if inhib[i]:
            cell_type[i] = rng.choice(INHIBITORY_TYPES, p=[0.45, 0.3, 0.15, 0.1])
        else:
            names, p = EXCITATORY_BY_LAYER.get(nuc["layer"].iat[i], (("23P",), (1.0,)))
            cell_type[i] = rng.choice(names, p=p)
    nuc["cell_type"] = cell_type
    nuc["classification_system"] = np.where(inhib, "inhibitory_neuron", "excitatory_neuron")
    unit_nucleus = neuron_key.map(pd.Series(np.arange(n_img), index=neurons["neuron_key"].to_numpy()))

    base = {"created": CREATED, "valid": True}
    pt = _pt_cols("pt_position", vox)
    half_bb = np.array([40, 40, 4])
    write_table(pd.DataFrame({"id": nuc["nucleus_id"], **base, "superceded_id": np.nan,
                              "volume": np.round(rng.normal(260, 50, N).clip(80), 2),
                              "pt_supervoxel_id": nuc["pt_supervoxel_id"], "pt_root_id": nuc["pt_root_id"], **pt,
                              **_pt_cols("bb_start_position", vox - half_bb),
                              **_pt_cols("bb_end_position", vox + half_bb)}), out / "tables", "nucleus_detection_v0")
    ref = {"pt_supervoxel_id": nuc["pt_supervoxel_id"], "pt_root_id": nuc["pt_root_id"], **pt}
    write_table(pd.DataFrame({"id": np.arange(1, N + 1), **base, "target_id": nuc["nucleus_id"],
                              "classification_system": nuc["classification_system"], "cell_type": nuc["cell_type"],
                              **ref}), out / "tables", "aibs_metamodel_celltypes_v661")
    write_table(pd.DataFrame({"id": np.arange(1, N + 1), **base, "target_id": nuc["nucleus_id"], "tag": nuc["area"],
                              "value": np.round(rng.uniform(10, 300, N), 1), **ref}),
                out / "tables", "nucleus_functional_area_assignment")

    # ---- coregistration: manual / auto rows, some units with two candidates, some with none ---------------------
    n_units = len(u)
    status = rng.choice(["manual", "auto", "both", "multiple", "none"], n_units, p=[0.35, 0.45, 0.06, 0.05, 0.09])
    from scipy.spatial import cKDTree

    tree = cKDTree(aligned)
    rows = {"manual": [], "auto": []}
    for k, rid in enumerate(u.index):
        st = status[k]
        if st == "none":
            continue
        i = int(unit_nucleus.iat[k])
        residual, score = float(rng.gamma(2, 2.0)), float(rng.normal(8, 4))
        row = dict(target_id=i, session=u["session"].iat[k], scan_idx=u["scan_idx"].iat[k],
                   unit_id=u["unit_id"].iat[k], field=int(rng.integers(1, 5)))
        if st in ("manual", "both"):
            rows["manual"].append({**row, "residual": residual, "score": score})
        if st in ("auto", "both", "multiple"):
            rows["auto"].append({**row, "residual": residual + rng.uniform(0, 1), "score": score})
        if st == "multiple":  # a second, nearby nucleus scores almost as well
            j = int(tree.query(aligned[i], k=2)[1][1])
            rows["auto"].append({**row, "target_id": j, "residual": residual + rng.uniform(0.2, 3),
                                 "score": score - rng.uniform(0, 3)})
    coreg_tables = dict(zip(("manual", "auto"), COREGISTRATION_TABLES))
    for kind, rs in rows.items():
        df = pd.DataFrame(rs)
        idx = df["target_id"].to_numpy()
        df = df.assign(target_id=nuc["nucleus_id"].to_numpy()[idx], residual=df["residual"].round(3),
                       score=df["score"].round(3), pt_supervoxel_id=nuc["pt_supervoxel_id"].to_numpy()[idx],
                       pt_root_id=nuc["pt_root_id"].to_numpy()[idx], **_pt_cols("pt_position", vox[idx]))
        df.insert(0, "id", np.arange(1, len(df) + 1))
        df.insert(1, "created", CREATED)
        df.insert(2, "valid", True)
        write_table(df, out / "tables", coreg_tables[kind])

    # ---- functional properties keyed by nucleus (one row per coregistered unit) ---------------------------------
    coreg_units = np.flatnonzero(status != "none")
    ci = unit_nucleus.to_numpy()[coreg_units].astype(int)
    tt = t.iloc[coreg_units]
    props = pd.DataFrame({"id": np.arange(1, len(ci) + 1), **base, "target_id": nuc["nucleus_id"].to_numpy()[ci],
                          "session": u["session"].to_numpy()[coreg_units], "scan_idx": u["scan_idx"].to_numpy()[coreg_units],
                          "unit_id": u["unit_id"].to_numpy()[coreg_units],
                          "cc_abs": tt["cc_abs"].to_numpy(), "cc_max": tt["cc_max"].to_numpy(),
                          "cc_norm": tt["cc_norm"].to_numpy(), "OSI": tt["osi"].to_numpy(), "DSI": tt["dsi"].to_numpy(),
                          "gOSI": tt["gosi"].to_numpy(), "gDSI": tt["gdsi"].to_numpy(),
                          "pref_ori": tt["pref_ori_deg"].to_numpy(), "pref_dir": tt["pref_dir_deg"].to_numpy(),
                          "readout_loc_x": tt["readout_loc_x"].to_numpy(), "readout_loc_y": tt["readout_loc_y"].to_numpy(),
                          "pt_supervoxel_id": nuc["pt_supervoxel_id"].to_numpy()[ci],
                          "pt_root_id": nuc["pt_root_id"].to_numpy()[ci], **_pt_cols("pt_position", vox[ci])})
    write_table(props.round(5), out / "tables", "digital_twin_properties_bcm_coreg_v4")

    # ---- the sampled neurons: coregistered (uniquely) neurons near the centre of the population ----------------
    unique_units = np.flatnonzero(np.isin(status, ["manual", "auto", "both"]))
    cand = pd.DataFrame({"unit_row": unique_units, "nucleus": unit_nucleus.to_numpy()[unique_units].astype(int)})
    cand = cand.drop_duplicates("nucleus")
    centre = np.median(aligned[cand["nucleus"]], axis=0)
    lateral = np.hypot(*(aligned[cand["nucleus"]][:, [0, 2]] - centre[[0, 2]]).T)
    cand = cand.iloc[np.argsort(lateral, kind="stable")]
    conn = cand.iloc[:n_connectome]
    m = len(conn)
    cn = conn["nucleus"].to_numpy()
    curves = tuning_curves(t["pref_dir_deg"].to_numpy()[conn["unit_row"]], t["gosi"].to_numpy()[conn["unit_row"]],
                           t["gdsi"].to_numpy()[conn["unit_row"]])
    sig = np.nan_to_num(signal_correlation(curves.T))
    d_lat = np.hypot(*(aligned[cn][:, None, [0, 2]] - aligned[cn][None, :, [0, 2]]).transpose(2, 0, 1))
    inhib_pre = inhib[cn][:, None]
    logit = -2.2 + np.where(inhib_pre, 0.8, like_to_like_gain * sig) - d_lat / 150.0
    p = 1 / (1 + np.exp(-logit))
    np.fill_diagonal(p, 0)
    connected = rng.random((m, m)) < p
    n_syn = np.where(connected, 1 + rng.poisson(np.where(inhib_pre, 1.0, 0.3 + 0.8 * np.clip(sig, 0, None))), 0)

    # skeletons: n_skeletons of the sampled neurons, including a few interneurons
    order = np.arange(m)
    inh_idx = order[inhib[cn]][:4]
    exc_idx = order[~inhib[cn]][: max(n_skeletons - len(inh_idx), 0)]
    sk_rows = np.sort(np.concatenate([exc_idx, inh_idx]))[:n_skeletons]
    dense = set(exc_idx[:n_dense].tolist())
    skeletons = {}
    for r in tqdm(sk_rows, desc="growing neurons", disable=not progress):
        i = int(cn[r])
        sk = synth_neuron(rng, aligned[i], str(nuc["cell_type"].iat[i]), frame, step_um=1.5 if r in dense else 3.0)
        sk.meta = {"root_id": int(nuc["pt_root_id"].iat[i]), "nucleus_id": int(nuc["nucleus_id"].iat[i]),
                   "cell_type": str(nuc["cell_type"].iat[i]), "units": "nm"}
        skeletons[r] = sk
        write_swc(sk, out / "skeletons" / f"{nuc['pt_root_id'].iat[i]}_{nuc['nucleus_id'].iat[i]}.swc",
                  header="synthetic neuron of the twin_explorer offline sample (not MICrONS data)")

    # ---- synapses ------------------------------------------------------------------------------------------------
    def place(r_post: int, r_pre: int | None, k: int) -> np.ndarray:
        """k synapse positions (nm) on the post neuron: on its dendrites if skeletonised, else near the soma;
        on the pre neuron's axon instead when only the pre side is skeletonised."""
        if r_post in skeletons:
            sk = skeletons[r_post]
            nodes = np.flatnonzero(np.isin(sk.compartment, (3, 4)))
            return sk.xyz_nm[rng.choice(nodes, k)]
        if r_pre is not None and r_pre in skeletons:
            sk = skeletons[r_pre]
            nodes = np.flatnonzero(sk.compartment == 2)
            return sk.xyz_nm[rng.choice(nodes, k)]
        i = int(cn[r_post])
        return frame.to_nm(aligned[i] + rng.normal(0, [50, 50, 50], (k, 3)))

    pre_roots, post_roots, ctr = [], [], []
    for a, b in zip(*np.nonzero(n_syn)):
        k = int(n_syn[a, b])
        ctr.append(place(b, a, k))
        pre_roots += [int(nuc["pt_root_id"].iat[int(cn[a])])] * k
        post_roots += [int(nuc["pt_root_id"].iat[int(cn[b])])] * k
    # inputs and outputs of the skeletonised neurons from/to fragments without a nucleus, so the views look full
    for r, sk in skeletons.items():
        root = int(nuc["pt_root_id"].iat[int(cn[r])])
        dend, axon = np.flatnonzero(np.isin(sk.compartment, (3, 4))), np.flatnonzero(sk.compartment == 2)
        k_in, k_out = int(rng.integers(120, 200)), int(rng.integers(40, 80))
        frag = ROOT_BASE + rng.integers(0, 10**9, k_in + k_out)
        ctr += [sk.xyz_nm[rng.choice(dend, k_in)], sk.xyz_nm[rng.choice(axon, k_out)]]
        pre_roots += frag[:k_in].tolist() + [root] * k_out
        post_roots += [root] * k_in + frag[k_in:].tolist()
    ctr_nm = np.concatenate(ctr) if ctr else np.zeros((0, 3))
    S = len(ctr_nm)
    offset = rng.normal(0, 60, (S, 3)) * np.array([1, 1, 0.2])
    pre_arr, post_arr = np.asarray(pre_roots, np.int64), np.asarray(post_roots, np.int64)
    syn = pd.DataFrame({"id": np.arange(1, S + 1) + SYNAPSE_BASE, "created": CREATED, "superceded_id": np.nan,
                        "valid": True, "size": np.round(rng.lognormal(6.5, 0.8, S)).astype(int),
                        "pre_pt_supervoxel_id": pre_arr - ROOT_BASE + SV_BASE, "pre_pt_root_id": pre_arr,
                        "post_pt_supervoxel_id": post_arr - ROOT_BASE + SV_BASE, "post_pt_root_id": post_arr,
                        **_pt_cols("pre_pt_position", nm_to_voxels(ctr_nm + offset, round=True)),
                        **_pt_cols("post_pt_position", nm_to_voxels(ctr_nm - offset, round=True)),
                        **_pt_cols("ctr_pt_position", nm_to_voxels(ctr_nm, round=True))})
    write_table(syn, out / "tables", "synapses_pni_2")

    # ---- meshworks for a few neurons ----------------------------------------------------------------------------
    mesh_rows = [r for r in sk_rows if r not in dense][:n_meshworks]
    for r in mesh_rows:
        sk = skeletons[r]
        i = int(cn[r])
        root = int(nuc["pt_root_id"].iat[i])
        verts, faces, m2s = tube_mesh(sk, sides=5)
        node_to_mesh = np.arange(sk.n_nodes) * 5  # first ring vertex of each node
        annos, attrs = {}, {}
        for name, side, col in (("pre_syn", syn["pre_pt_root_id"] == root, "pre"),
                                ("post_syn", syn["post_pt_root_id"] == root, "post")):
            s = syn[side]
            ctr_s = s[["ctr_pt_position_x", "ctr_pt_position_y", "ctr_pt_position_z"]].to_numpy() * np.array([4, 4, 40])
            annos[name] = pd.DataFrame({"id": s["id"].to_numpy(), "size": s["size"].to_numpy(),
                                        "pre_pt_root_id": s["pre_pt_root_id"].to_numpy(),
                                        "post_pt_root_id": s["post_pt_root_id"].to_numpy(),
                                        **_pt_cols("ctr_pt_position", s[["ctr_pt_position_x", "ctr_pt_position_y",
                                                                         "ctr_pt_position_z"]].to_numpy()),
                                        "mesh_ind": node_to_mesh[sk.nearest_node(ctr_s)]})
            attrs[name] = {"point_column": "ctr_pt_position", "index_column": "mesh_ind", "max_distance": 0.0}
        for name, comp in (("is_axon", 2), ("apical_mesh_labels", 4)):
            annos[name] = pd.DataFrame({"mesh_ind": np.flatnonzero(np.isin(m2s, np.flatnonzero(sk.compartment == comp)))})
            attrs[name] = {"index_column": "mesh_ind"}
        mw = Meshwork(seg_id=root, mesh_vertices_nm=verts, mesh_faces=faces, skeleton_vertices_nm=sk.xyz_nm,
                      skeleton_edges=sk.edges, skeleton_root=sk.root, mesh_to_skel_map=m2s,
                      skeleton_radius_nm=sk.radius_nm, annotations=annos, annotation_attrs=attrs)
        write_meshwork(mw, out / "meshworks" / f"{root}_{int(nuc['nucleus_id'].iat[i])}.h5")

    manifest: dict[str, Any] = {
        "description": "Synthetic MICrONS-like anatomy sample for twin_explorer: not MICrONS data (tables in the "
                       "layout of the real CAVE tables, made-up ids outside the real ranges)",
        "synthetic": True,
        "generator": "twin_explorer.anatomy.sample.generate_sample", "twin_explorer_version": __version__,
        "seed": seed, "source": source, "n_units": n_units, "n_nuclei": N, "n_sampled_neurons": m,
        "n_skeletons": len(skeletons), "n_meshworks": len(mesh_rows), "n_synapses": S,
        "coregistration": {k: int((status == k).sum()) for k in ("manual", "auto", "both", "multiple", "none")},
        "like_to_like": {"similarity": "signal correlation of true direction tuning curves (16 directions)",
                         "logit_p": f"-2.2 + {like_to_like_gain} * sig_corr - lateral_distance_um / 150 "
                                    "(inhibitory pre: -2.2 + 0.8 - d/150)",
                         "synapses_per_connection": "1 + Poisson(0.3 + 0.8 * max(sig_corr, 0))"},
        "depth_frame": {"pia_point_um": list(frame.pia_point_um), "tilt_deg": frame.tilt_deg,
                        "layers": [list(r) for r in frame.layers]},
        "voxel_resolution_nm": [4, 4, 40],
        "sampled_nucleus_ids": [int(x) for x in nuc["nucleus_id"].to_numpy()[cn]],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=float) + "\n")
    return out
