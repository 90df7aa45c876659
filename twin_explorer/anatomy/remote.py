"""Live MICrONS data through the optional extra ``twin_explorer[microns]`` (caveclient, cloud-volume).

Nothing here runs without that extra; importing this module is cheap and the clients are imported on first use.
The CAVE token is never handled here: caveclient reads it from its own config (``~/.cloudvolume/secrets``) or,
when set, from the ``CAVE_TOKEN`` environment variable; it is passed through, never written.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np
import pandas as pd

from .neuroglancer import MINNIE65_SEGMENTATION
from .swc import Skeleton
from .tables import TABLE_COLUMNS

DATASTACK = "minnie65_public"
_EXTRA_HINT = "pip install 'twin_explorer[microns]'"


def require(module: str) -> Any:
    """Import an optional dependency or raise ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is needed for live MICrONS data; install it with `{_EXTRA_HINT}`") from exc


def _root(root_id: Any) -> int:
    try:
        r = int(root_id)
    except (TypeError, ValueError):
        raise ValueError(f"root_id must be an integer, got {root_id!r}") from None
    if r <= 0:
        raise ValueError(f"root_id must be a positive integer, got {r}")
    return r


def cave_client(datastack: str = DATASTACK, version: int | None = None, server_address: str | None = None) -> Any:
    """A ``caveclient.CAVEclient`` for ``datastack`` (optionally pinned to a materialisation ``version``)."""
    if not isinstance(datastack, str) or not datastack:
        raise ValueError(f"datastack must be a non-empty name, got {datastack!r}")
    if version is not None and (not isinstance(version, int) or version <= 0):
        raise ValueError(f"version must be a positive materialisation number, got {version!r}")
    caveclient = require("caveclient")
    kw: dict[str, Any] = {}
    if server_address:
        kw["server_address"] = server_address
    token = os.environ.get("CAVE_TOKEN")
    if token:
        kw["auth_token"] = token
    client = caveclient.CAVEclient(datastack, **kw)
    if version is not None:
        client.version = version
    return client


def query_table(table: str, filter_in: dict[str, list] | None = None, client: Any = None,
                version: int | None = None) -> pd.DataFrame:
    """Query a CAVE table (positions split into ``_x/_y/_z`` like the offline dumps)."""
    if not isinstance(table, str) or not table:
        raise ValueError(f"table must be a table name, e.g. one of {list(TABLE_COLUMNS)}")
    if filter_in is not None and not isinstance(filter_in, dict):
        raise ValueError("filter_in must be a dict {column: [values]}")
    client = client or cave_client(version=version)
    return client.materialize.query_table(table, filter_in_dict=filter_in, split_positions=True)


def fetch_synapses(root_id: Any, direction: str = "input", client: Any = None) -> pd.DataFrame:
    """Synapses onto (``input``) or from (``output``) a root id, from ``synapses_pni_2``."""
    if direction not in ("input", "output"):
        raise ValueError(f"direction must be 'input' or 'output', got {direction!r}")
    col = "post_pt_root_id" if direction == "input" else "pre_pt_root_id"
    return query_table("synapses_pni_2", {col: [_root(root_id)]}, client=client)


def fetch_skeleton(root_id: Any, client: Any = None, skeleton_version: int = 4) -> Skeleton:
    """A skeleton from the CAVE skeleton service, as a :class:`Skeleton` in nm with compartments."""
    root = _root(root_id)
    client = client or cave_client()
    d = client.skeleton.get_skeleton(root, output_format="dict", skeleton_version=skeleton_version)
    from .swc import skeleton_from_edges

    verts = np.asarray(d["vertices"], dtype=float)
    comp = np.asarray(d.get("compartment", np.zeros(len(verts))), dtype=np.int64)
    radius = np.asarray(d.get("radius", np.full(len(verts), 100.0)), dtype=float)
    sk = skeleton_from_edges(verts, np.asarray(d["edges"]), int(d.get("root", 0)), comp, radius)
    sk.meta = {"root_id": root, "source": "caveclient skeleton service"}
    return sk


def fetch_mesh(root_id: Any, source: str = MINNIE65_SEGMENTATION, lod: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(vertices nm [n, 3], faces [m, 3]) of a root id from a precomputed source through cloud-volume."""
    root = _root(root_id)
    if not isinstance(lod, int) or not 0 <= lod <= 3:
        raise ValueError(f"lod must be 0..3, got {lod!r}")
    cloudvolume = require("cloudvolume")
    cv = cloudvolume.CloudVolume(source.removeprefix("precomputed://"), use_https=True, progress=False)
    mesh = cv.mesh.get(root, lod=lod)
    mesh = mesh[root] if isinstance(mesh, dict) else mesh
    return np.asarray(mesh.vertices, dtype=float), np.asarray(mesh.faces, dtype=np.int64)
