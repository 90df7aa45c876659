"""The skeleton service's dict JSON: what ``client.skeleton.get_skeleton(root_id, output_format='dict')``
returns (skeleton version 4), saved as JSON. Vertices and radius are in nm; ``compartment`` is 1 soma, 2 axon,
3 dendrite; ``edges`` are vertex-index pairs; ``root`` the soma vertex; ``meta`` holds ``root_id`` and the soma
radius (nm) the skeletoniser used.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..coords import LENGTH_UNITS, check_length_unit
from ..swc import Skeleton, skeleton_from_edges

REQUIRED_KEYS = ("vertices", "edges", "root")


def skeleton_from_dict(d: dict, where: str = "skeleton dict", unit: str = "nm") -> Skeleton:
    """A :class:`Skeleton` (nm) from a skeleton-service dict; ``unit`` is that of its vertices and radius."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a skeleton dict (keys {list(REQUIRED_KEYS)}...), got {type(d).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in d]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}; a skeleton-service dict has vertices, edges, root, "
                         f"radius, compartment, meta; it has {sorted(d)}")
    scale = LENGTH_UNITS[check_length_unit(unit)]
    vertices = np.asarray(d["vertices"], dtype=float).reshape(-1, 3) * scale
    n = len(vertices)
    comp = np.asarray(d.get("compartment", np.zeros(n)), dtype=np.int64)
    radius = np.asarray(d["radius"], dtype=float) * scale if d.get("radius") is not None else None
    if len(comp) != n or (radius is not None and len(radius) != n):
        raise ValueError(f"{where}: compartment/radius need one value per vertex ({n})")
    sk = skeleton_from_edges(vertices, np.asarray(d["edges"], dtype=np.int64), int(d["root"]), comp, radius)
    meta = dict(d.get("meta") or {})
    sk.meta = {k: v for k, v in meta.items() if not isinstance(v, (dict, list))}
    if "root_id" in meta:
        sk.meta["root_id"] = int(meta["root_id"])
    sk.meta["format"] = "skeleton-service dict"
    sk.source_unit = check_length_unit(unit)
    if meta.get("soma_radius") is not None:
        sk.soma_radius_nm = float(meta["soma_radius"]) * scale
    return sk


def read_skeleton_json(path: str | Path, unit: str = "nm") -> Skeleton:
    """Read a skeleton-service dict saved as JSON (``skel.json``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"skeleton JSON not found: {path}")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: not JSON ({exc}); expected a skeleton-service dict") from None
    return skeleton_from_dict(d, path.name, unit)
