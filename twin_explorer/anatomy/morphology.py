"""Synthetic neuron morphologies for the offline sample: pyramidal cells (basal dendrites, apical dendrite with
obliques and a tuft in L1, descending axon with collaterals) and interneurons (multipolar dendrites, local or
ascending axon). Grown as persistent random walks with branching, in the pia-aligned frame, returned in EM nm.
"""

from __future__ import annotations

import numpy as np

from .coords import DepthFrame
from .swc import Skeleton

UP = np.array([0.0, -1.0, 0.0])  # towards the pia in (x, depth, z)
INHIBITORY_TYPES = ("BC", "MC", "BPC", "NGC")


class _Tree:
    def __init__(self, soma: np.ndarray, soma_radius_um: float) -> None:
        self.xyz = [np.asarray(soma, float)]
        self.parent = [-1]
        self.comp = [1]
        self.radius = [soma_radius_um]

    def add(self, xyz: np.ndarray, parent: int, comp: int, radius: float) -> int:
        self.xyz.append(xyz)
        self.parent.append(parent)
        self.comp.append(comp)
        self.radius.append(radius)
        return len(self.xyz) - 1


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(np.linalg.norm(v), 1e-9)


def _turn(rng: np.random.Generator, d: np.ndarray, angle_deg: float) -> np.ndarray:
    """A direction at ``angle_deg`` from ``d`` around a random axis."""
    perp = _unit(np.cross(d, rng.normal(size=3)))
    a = np.deg2rad(angle_deg)
    return _unit(np.cos(a) * d + np.sin(a) * perp)


def _branch(tree: _Tree, rng: np.random.Generator, start: int, direction: np.ndarray, length: float, comp: int,
            step: float, r0: float, r1: float, wiggle: float = 0.12, pull: np.ndarray | None = None,
            pull_w: float = 0.0, branch_len: float = 0.0, child_frac: float = 0.6, order: int = 0,
            max_order: int = 2, depth_limits: tuple[float, float] = (2.0, 1e9)) -> None:
    n = max(2, int(length / step))
    d = _unit(np.asarray(direction, float))
    idx = start
    p = tree.xyz[start].copy()
    # mean distance between branch points, in steps
    every = branch_len / step if branch_len > 0 else np.inf
    for i in range(n):
        d = d + wiggle * rng.normal(size=3)
        if pull is not None:
            d = d + pull_w * pull
        d = _unit(d)
        p = p + step * d
        p[1] = np.clip(p[1], *depth_limits)
        idx = tree.add(p.copy(), idx, comp, r0 + (r1 - r0) * i / n)
        if order < max_order and rng.random() < 1.0 / every and i < n - 3:
            _branch(tree, rng, idx, _turn(rng, d, rng.uniform(30, 70)), length * child_frac * rng.uniform(0.6, 1.2),
                    comp, step, r0 * 0.8, r1, wiggle, pull, pull_w, branch_len, child_frac, order + 1, max_order,
                    depth_limits)


def _horizontal(rng: np.random.Generator, down: float = 0.0) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    return _unit(np.array([np.cos(a), down + rng.normal(0, 0.3), np.sin(a)]))


def synth_neuron(rng: np.random.Generator, soma_aligned_um: np.ndarray, cell_type: str, frame: DepthFrame,
                 step_um: float = 2.0) -> Skeleton:
    """Grow one neuron at ``soma_aligned_um`` (x_um, depth_um, z_um) and return it in EM nm (SWC compartments)."""
    soma = np.asarray(soma_aligned_um, float)
    depth = soma[1]
    inhibitory = cell_type in INHIBITORY_TYPES
    tree = _Tree(soma, 5.0 if inhibitory else 7.0)
    lim = (2.0, 1000.0)
    if inhibitory:
        for _ in range(rng.integers(4, 8)):
            _branch(tree, rng, 0, _horizontal(rng), rng.uniform(60, 120), 3, step_um, 1.0, 0.3, wiggle=0.2,
                    branch_len=45, child_frac=0.6, max_order=2, depth_limits=lim)
        if cell_type == "MC":  # Martinotti: axon ascends to L1 and spreads there
            top = len(tree.xyz)
            _branch(tree, rng, 0, UP, max(depth - 40, 60), 2, step_um, 0.3, 0.2, wiggle=0.08, depth_limits=lim)
            for _ in range(rng.integers(4, 7)):
                _branch(tree, rng, len(tree.xyz) - 1 if _ == 0 else rng.integers(top, len(tree.xyz)),
                        _horizontal(rng), rng.uniform(100, 220), 2, step_um, 0.25, 0.2, wiggle=0.15,
                        branch_len=70, child_frac=0.5, max_order=1, depth_limits=lim)
        else:  # basket-like: a dense local arbour
            for _ in range(rng.integers(5, 9)):
                _branch(tree, rng, 0, _horizontal(rng, 0.3), rng.uniform(120, 220), 2, step_um, 0.3, 0.2,
                        wiggle=0.25, branch_len=40, child_frac=0.55, max_order=3, depth_limits=lim)
    else:
        # apical dendrite to L1 with obliques, then a tuft
        start_tuft = len(tree.xyz)
        _branch(tree, rng, 0, UP, max(depth - 40.0, 30.0), 4, step_um, 2.0, 0.8, wiggle=0.05, pull=UP, pull_w=0.1,
                branch_len=45, child_frac=0.25, max_order=1, depth_limits=lim)
        tip = max(i for i in range(start_tuft, len(tree.xyz)) if tree.parent[i] >= 0 and tree.comp[i] == 4
                  and abs(tree.xyz[i][1] - min(p[1] for p in tree.xyz[start_tuft:])) < 1e-6)
        for _ in range(rng.integers(3, 6)):
            _branch(tree, rng, tip, _unit(_horizontal(rng) + UP * 0.5), rng.uniform(60, 120), 4, step_um, 0.8, 0.3,
                    wiggle=0.15, branch_len=50, child_frac=0.5, max_order=1, depth_limits=lim)
        for _ in range(rng.integers(5, 9)):
            _branch(tree, rng, 0, _horizontal(rng, 0.4), rng.uniform(80, 150), 3, step_um, 1.2, 0.3, wiggle=0.15,
                    branch_len=50, child_frac=0.6, max_order=2, depth_limits=lim)
        ax0 = len(tree.xyz)
        _branch(tree, rng, 0, -UP, rng.uniform(250, 400), 2, step_um, 0.4, 0.25, wiggle=0.06, pull=-UP,
                pull_w=0.05, depth_limits=lim)
        axon = list(range(ax0, len(tree.xyz)))
        for k in rng.choice(axon, size=min(len(axon), int(rng.integers(4, 8))), replace=False):
            _branch(tree, rng, int(k), _horizontal(rng), rng.uniform(100, 220), 2, step_um, 0.25, 0.2,
                    wiggle=0.12, branch_len=80, child_frac=0.5, max_order=1, depth_limits=lim)
    xyz = frame.to_nm(np.asarray(tree.xyz))
    return Skeleton(xyz_nm=np.round(xyz), parent=np.asarray(tree.parent), compartment=np.asarray(tree.comp),
                    radius_nm=np.round(np.asarray(tree.radius) * 1000.0), meta={"cell_type": cell_type})


def tube_mesh(skeleton: Skeleton, sides: int = 6, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A coarse surface mesh: a ring of ``sides`` vertices round each node, joined to its parent's ring.
    Returns (vertices nm [n*sides, 3], faces [m, 3], mesh_to_skel_map [n*sides])."""
    xyz = skeleton.xyz_nm
    n = len(xyz)
    par = skeleton.parent
    d = np.where(par[:, None] >= 0, xyz - xyz[np.maximum(par, 0)], np.array([0.0, 1.0, 0.0]))
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    helper = np.where(np.abs(d[:, [2]]) < 0.9, np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]))
    u = np.cross(d, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(d, u)
    ang = 2 * np.pi * np.arange(sides) / sides
    r = np.maximum(skeleton.radius_nm, 150.0)[:, None, None] * scale
    ring = xyz[:, None, :] + r * (np.cos(ang)[None, :, None] * u[:, None, :] + np.sin(ang)[None, :, None] * v[:, None, :])
    verts = ring.reshape(-1, 3)
    child = np.flatnonzero(par >= 0)
    k = np.arange(sides)
    a = child[:, None] * sides + k
    b = child[:, None] * sides + (k + 1) % sides
    c = par[child][:, None] * sides + k
    e = par[child][:, None] * sides + (k + 1) % sides
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([b, e, c], -1).reshape(-1, 3)])
    return verts, faces, np.repeat(np.arange(n), sides)
