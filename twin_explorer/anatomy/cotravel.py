"""Axon–dendrite co-travel: how much cable of two neurons runs close together, the exposure that turns synapse
counts into a connection density (Ding et al. 2025, MICrONS functional connectomics).

Both skeletons are cut into pieces no longer than ``max_segment_um``; a piece of one neuron is "in proximity" when
one of its ends lies within ``radius_um`` of a node of the other neuron's (cut) skeleton. The co-travel length
of a side is the summed length of its pieces in proximity (the paper: 5 µm radius, pieces of at most 1 µm; with
those settings this reproduces the co-travel lengths its methods notebook prints for its sample skeletons).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.spatial import cKDTree

from .swc import Skeleton

AXON = (2,)
DENDRITE = (1, 3, 4)  # soma, basal and apical dendrite: where an axon can land a synapse


@dataclass
class Cable:
    """A skeleton (or part of one) as line pieces: ``start`` and ``end`` [n, 3] in µm."""

    start: np.ndarray
    end: np.ndarray

    @property
    def length_um(self) -> float:
        return float(np.linalg.norm(self.end - self.start, axis=1).sum())

    @cached_property
    def tree(self) -> cKDTree:
        """KD-tree of the pieces' end points (built once per cable)."""
        return cKDTree(np.unique(np.concatenate([self.start, self.end]), axis=0))

    @cached_property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.minimum(self.start, self.end).min(0), np.maximum(self.start, self.end).max(0)


def cut_segments(start: np.ndarray, end: np.ndarray, max_segment_um: float = 1.0) -> Cable:
    """Split line pieces (µm) so that none is longer than ``max_segment_um``."""
    if max_segment_um <= 0:
        raise ValueError(f"max_segment_um must be positive, got {max_segment_um}")
    start, end = np.asarray(start, float).reshape(-1, 3), np.asarray(end, float).reshape(-1, 3)
    n_parts = np.maximum(1, np.ceil(np.linalg.norm(end - start, axis=1) / max_segment_um).astype(int))
    rep = np.repeat(np.arange(len(start)), n_parts)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n_parts) - n_parts, n_parts)
    t0, t1 = k / n_parts[rep], (k + 1) / n_parts[rep]
    d = (end - start)[rep]
    return Cable(start[rep] + t0[:, None] * d, start[rep] + t1[:, None] * d)


def skeleton_cable(skeleton: Skeleton, compartments: tuple[int, ...] | None, max_segment_um: float = 1.0) -> Cable:
    """The edges of ``skeleton`` whose child node is in ``compartments`` (None: all), cut into short pieces.
    A skeleton without compartment labels (all 0) is used whole."""
    child = np.flatnonzero(skeleton.parent >= 0)
    if compartments is not None and np.any(skeleton.compartment != 0):
        child = child[np.isin(skeleton.compartment[child], compartments)]
    xyz = skeleton.xyz_nm / 1000.0
    return cut_segments(xyz[child], xyz[skeleton.parent[child]], max_segment_um)


def cotravel_length(a: Cable, b: Cable, radius_um: float = 5.0) -> tuple[float, float]:
    """(length of ``a`` within ``radius_um`` of ``b``, length of ``b`` within ``radius_um`` of ``a``) in µm."""
    if radius_um <= 0:
        raise ValueError(f"radius_um must be positive, got {radius_um}")
    if not len(a.start) or not len(b.start):
        return 0.0, 0.0

    def near(side: Cable, other: Cable) -> float:
        tree = other.tree
        ok_start = tree.query(side.start, distance_upper_bound=radius_um)[0] <= radius_um
        ok_end = tree.query(side.end, distance_upper_bound=radius_um)[0] <= radius_um
        keep = ok_start | ok_end
        return float(np.linalg.norm(side.end[keep] - side.start[keep], axis=1).sum())

    # quick reject: bounding boxes farther apart than the radius
    (lo_a, hi_a), (lo_b, hi_b) = a.bounds, b.bounds
    if np.any(lo_a - radius_um > hi_b) or np.any(lo_b - radius_um > hi_a):
        return 0.0, 0.0
    return near(a, b), near(b, a)


def _near_length(tree_owner: list[Cable], pieces: Cable, owner: np.ndarray, n_owners: int,
                 radius_um: float) -> np.ndarray:
    """[len(tree_owner), n_owners]: length of ``pieces`` (grouped by ``owner``) near each cable of tree_owner."""
    length = np.linalg.norm(pieces.end - pieces.start, axis=1)
    out = np.zeros((len(tree_owner), n_owners))
    for k, cable in enumerate(tree_owner):
        if not len(cable.start):
            continue
        lo, hi = cable.bounds
        box = np.all((np.minimum(pieces.start, pieces.end) <= hi + radius_um)
                     & (np.maximum(pieces.start, pieces.end) >= lo - radius_um), axis=1)
        idx = np.flatnonzero(box)
        if not len(idx):
            continue
        ok = (cable.tree.query(pieces.start[idx], distance_upper_bound=radius_um)[0] <= radius_um) | \
             (cable.tree.query(pieces.end[idx], distance_upper_bound=radius_um)[0] <= radius_um)
        out[k] = np.bincount(owner[idx[ok]], weights=length[idx[ok]], minlength=n_owners)
    return out


def cotravel_matrix(axons: list[Cable], dendrites: list[Cable], radius_um: float = 5.0) -> tuple[np.ndarray, ...]:
    """(axon co-travel [A, D], dendrite co-travel [A, D]) in µm for every axon × dendrite, the same numbers as
    :func:`cotravel_length` pair by pair, with one KD-tree query per neuron instead of one per pair."""
    if radius_um <= 0:
        raise ValueError(f"radius_um must be positive, got {radius_um}")

    def stack(cables: list[Cable]) -> tuple[Cable, np.ndarray]:
        owner = np.repeat(np.arange(len(cables)), [len(c.start) for c in cables])
        starts = [c.start for c in cables] or [np.zeros((0, 3))]
        ends = [c.end for c in cables] or [np.zeros((0, 3))]
        return Cable(np.concatenate(starts), np.concatenate(ends)), owner

    d_all, d_owner = stack(dendrites)
    a_all, a_owner = stack(axons)
    dend_len = _near_length(axons, d_all, d_owner, len(dendrites), radius_um)
    axon_len = _near_length(dendrites, a_all, a_owner, len(axons), radius_um).T
    return axon_len, dend_len
