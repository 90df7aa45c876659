"""The pair table of a like-to-like analysis: one row per (proofread presynaptic axon, postsynaptic neuron) whose
cables run close together, with the synapse count, the co-travel length (the exposure), the soma distance and,
added later, the functional similarity of the two neurons.

Only axons whose proofreading status says they are extended (or clean) are used: an unproofread axon misses most
of its synapses, which would read as "not connected".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .cotravel import AXON, DENDRITE, Cable, cotravel_matrix, skeleton_cable
from .swc import Skeleton

#: ``strategy_axon`` values of ``proofreading_status_and_strategy`` that mark an axon proofread for connectivity
PROOFREAD_AXON_STRATEGIES = ("axon_fully_extended", "axon_partially_extended", "axon_interareal")
#: ``status_axon`` values of ``proofreading_status_public_release`` that do
PROOFREAD_AXON_STATUS = ("extended", "clean")
_TRUE = {"t", "true", "1", "yes"}


def proofread_axons(table: pd.DataFrame, strategies: tuple[str, ...] = PROOFREAD_AXON_STRATEGIES,
                    statuses: tuple[str, ...] = PROOFREAD_AXON_STATUS) -> np.ndarray:
    """Root ids whose axon is proofread, from ``proofreading_status_and_strategy`` (``status_axon`` true and
    ``strategy_axon`` in ``strategies``) or ``proofreading_status_public_release`` (``status_axon`` in
    ``statuses``)."""
    if "pt_root_id" not in table.columns or "status_axon" not in table.columns:
        raise ValueError("a proofreading table needs pt_root_id and status_axon columns "
                         f"(proofreading_status_and_strategy or _public_release); got {list(table.columns)}")
    status = table["status_axon"].astype(str).str.strip().str.lower()
    if "strategy_axon" in table.columns:
        keep = status.isin(_TRUE) & table["strategy_axon"].isin(strategies)
    else:
        keep = status.isin([s.lower() for s in statuses])
    roots = table.loc[keep, "pt_root_id"].astype("int64").to_numpy()
    return np.unique(roots[roots > 0])


def _cable(x: Skeleton | Cable, compartments: tuple[int, ...], max_segment_um: float) -> Cable:
    return x if isinstance(x, Cable) else skeleton_cable(x, compartments, max_segment_um)


def pair_table(axons: Mapping[Any, Skeleton | Cable], dendrites: Mapping[Any, Skeleton | Cable],
               synapses: pd.DataFrame, positions_um: pd.DataFrame, radius_um: float = 5.0,
               max_segment_um: float = 1.0, pre: str = "pre_id", post: str = "post_id") -> pd.DataFrame:
    """One row per (axon, dendrite) pair of different neurons with co-travel (> 0).

    axons / dendrites: neuron id → skeleton (its axon, resp. soma and dendrites, are used) or a ready :class:`Cable`.
    synapses: rows with the pre and post neuron id in columns ``pre`` and ``post`` (one row per synapse).
    positions_um: soma position per neuron id (columns x, y, z in µm).
    Columns: pre_id, post_id, n_synapses, cotravel_um (dendrite length near the axon), axon_cotravel_um,
    distance_um (between somata). ``attrs['dropped_synapses']`` counts synapses of pairs without co-travel.
    """
    for c in (pre, post):
        if c not in synapses.columns:
            raise ValueError(f"synapse table has no column {c!r}; columns: {list(synapses.columns)}")
    missing = [c for c in ("x", "y", "z") if c not in positions_um.columns]
    if missing:
        raise ValueError(f"positions_um needs columns x, y, z (µm); missing {missing}")
    unknown = [i for i in [*axons, *dendrites] if i not in positions_um.index]
    if unknown:
        raise ValueError(f"no soma position for neurons {unknown[:5]}")
    a_cab = {i: _cable(s, AXON, max_segment_um) for i, s in axons.items()}
    d_cab = {i: _cable(s, DENDRITE, max_segment_um) for i, s in dendrites.items()}
    counts = synapses.groupby([pre, post]).size()
    axon_len, dend_len = cotravel_matrix(list(a_cab.values()), list(d_cab.values()), radius_um)
    a_ids, d_ids = np.array(list(a_cab), dtype=object), np.array(list(d_cab), dtype=object)
    i, j = np.indices(axon_len.shape).reshape(2, -1)
    df = pd.DataFrame({"pre_id": a_ids[i].tolist(), "post_id": d_ids[j].tolist(), "cotravel_um": dend_len[i, j],
                       "axon_cotravel_um": axon_len[i, j]})
    df = df[df["pre_id"] != df["post_id"]]
    df.insert(2, "n_synapses", counts.reindex(pd.MultiIndex.from_arrays([df["pre_id"], df["post_id"]]),
                                              fill_value=0).to_numpy().astype("int64") if len(df) else [])
    xyz = positions_um[["x", "y", "z"]]
    df["distance_um"] = np.linalg.norm(xyz.loc[df["pre_id"]].to_numpy(float) - xyz.loc[df["post_id"]].to_numpy(float),
                                       axis=1) if len(df) else []
    dropped = int(df.loc[df["cotravel_um"] <= 0, "n_synapses"].sum())
    out = df[df["cotravel_um"] > 0].reset_index(drop=True)
    out.attrs.update(dropped_synapses=dropped, radius_um=radius_um, max_segment_um=max_segment_um)
    return out


def add_similarity(pairs: pd.DataFrame, similarity: pd.DataFrame, name: str = "similarity") -> pd.DataFrame:
    """Add column ``name`` = similarity[pre_id, post_id] (a square DataFrame indexed and columned by neuron id);
    pairs without a value are dropped."""
    if not isinstance(similarity, pd.DataFrame):
        raise ValueError("similarity must be a DataFrame indexed and columned by neuron id")
    stacked = similarity.stack()
    stacked.index = stacked.index.set_names(["pre_id", "post_id"])
    out = pairs.join(stacked.rename(name), on=["pre_id", "post_id"])
    out = out[out[name].notna()].reset_index(drop=True)
    out.attrs.update(pairs.attrs)
    return out


def pairs_from_anatomy(anatomy: Any, similarity: pd.DataFrame, proofreading: pd.DataFrame | None = None,
                       require_proofread: bool = True, radius_um: float = 5.0,
                       max_segment_um: float = 1.0) -> pd.DataFrame:
    """The pair table of the neurons of an :class:`~twin_explorer.anatomy.Anatomy` folder that have a skeleton
    and a similarity (``similarity`` indexed and columned by nucleus id). Presynaptic neurons are restricted to
    proofread axons (``proofreading``, else the folder's ``proofreading_status_and_strategy``); with
    ``require_proofread=False`` and no table, every axon is used (say so when reporting)."""
    ids = [int(n) for n in anatomy.skeleton_ids if n in similarity.index]
    if len(ids) < 3:
        raise ValueError(f"only {len(ids)} neurons have both a skeleton and a similarity value")
    if proofreading is None:
        try:
            proofreading = anatomy.table("proofreading_status_and_strategy")
        except (FileNotFoundError, ValueError):
            proofreading = None
    nuclei = anatomy.nuclei.loc[ids]
    if proofreading is not None:
        ok = set(proofread_axons(proofreading).tolist())
        pre_ids = [n for n in ids if int(nuclei.loc[n, "pt_root_id"]) in ok]
    elif require_proofread:
        raise ValueError("no proofreading table: pass `proofreading` (proofreading_status_and_strategy) or "
                         "require_proofread=False to use unproofread axons")
    else:
        pre_ids = ids
    if not pre_ids:
        raise ValueError("none of these neurons has a proofread axon")
    skel = {n: anatomy.skeleton(n) for n in ids}
    syn = anatomy.synapse_table.rename(columns={"pre_nucleus_id": "pre_id", "post_nucleus_id": "post_id"})
    syn = syn[syn["pre_id"].notna() & syn["post_id"].notna()]
    pos = pd.DataFrame({"x": nuclei["x_nm"] / 1000, "y": nuclei["y_nm"] / 1000, "z": nuclei["z_nm"] / 1000})
    pairs = pair_table({n: skel[n] for n in pre_ids}, skel, syn.astype({"pre_id": "int64", "post_id": "int64"}),
                       pos, radius_um=radius_um, max_segment_um=max_segment_um)
    pairs.attrs["proofread_axons_only"] = proofreading is not None
    return add_similarity(pairs, similarity)


def similarity_by_nucleus(anatomy: Any, units: pd.DataFrame, similarity: pd.DataFrame) -> pd.DataFrame:
    """A readout-indexed similarity (index and columns readout_id, e.g. in-silico signal correlation of a twin's
    units) re-indexed by nucleus id through the units' unique coregistration matches (ambiguous units left out)."""
    if not isinstance(similarity, pd.DataFrame):
        raise ValueError("similarity must be a DataFrame indexed and columned by readout_id")
    res = anatomy.resolve_units(units, policy="unique")
    res = res[res["nucleus_id"].notna() & res.index.isin(similarity.index)]
    res = res[~res["nucleus_id"].duplicated(keep=False)]  # one unit per neuron, else the value is ambiguous
    rid = res.index.to_numpy()
    nid = res["nucleus_id"].astype("int64").to_numpy()
    return pd.DataFrame(similarity.loc[rid, rid].to_numpy(float), index=nid, columns=nid)
