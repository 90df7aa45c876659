"""Live MICrONS data through the optional extra ``twin_explorer[microns]`` (caveclient, cloud-volume): the client,
single-table and synapse queries, meshes. The version-pinned export of a whole anatomy folder is :mod:`.export`.

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

from .neuroglancer import segmentation_for_version
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


#: positions are asked for in annotation voxels, the unit the anatomy folder stores
VOXEL_RESOLUTION = [4, 4, 40]


def query_table(table: str, filter_in: dict[str, list] | None = None, client: Any = None,
                version: int | None = None) -> pd.DataFrame:
    """Query a CAVE table at materialization ``version`` (positions split into ``_x/_y/_z`` voxels, like the
    offline dumps)."""
    if not isinstance(table, str) or not table:
        raise ValueError(f"table must be a table name, e.g. one of {list(TABLE_COLUMNS)}")
    if filter_in is not None and not isinstance(filter_in, dict):
        raise ValueError("filter_in must be a dict {column: [values]}")
    client = client or cave_client(version=version)
    return client.materialize.query_table(table, filter_in_dict=filter_in, split_positions=True,
                                          materialization_version=version, desired_resolution=VOXEL_RESOLUTION)


def fetch_synapses(root_id: Any, direction: str = "input", client: Any = None,
                   version: int | None = None) -> pd.DataFrame:
    """Synapses onto (``input``) or from (``output``) a root id (``synapse_query``; positions in voxels)."""
    if direction not in ("input", "output"):
        raise ValueError(f"direction must be 'input' or 'output', got {direction!r}")
    root = _root(root_id)
    client = client or cave_client(version=version)
    ids = {"post_ids": root} if direction == "input" else {"pre_ids": root}
    return client.materialize.synapse_query(**ids, split_positions=True, desired_resolution=VOXEL_RESOLUTION,
                                            materialization_version=version)


def fetch_mesh(root_id: Any, source: str | None = None, lod: int = 2,
               version: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(vertices nm [n, 3], faces [m, 3]) of a root id through cloud-volume, from ``source`` or else the
    segmentation of materialization ``version`` (static precomputed where one exists)."""
    root = _root(root_id)
    source = source or segmentation_for_version(version)[0]
    if not isinstance(lod, int) or not 0 <= lod <= 3:
        raise ValueError(f"lod must be 0..3, got {lod!r}")
    cloudvolume = require("cloudvolume")
    cv = cloudvolume.CloudVolume(source.removeprefix("precomputed://"), use_https=True, progress=False)
    mesh = cv.mesh.get(root, lod=lod)
    mesh = mesh[root] if isinstance(mesh, dict) else mesh
    return np.asarray(mesh.vertices, dtype=float), np.asarray(mesh.faces, dtype=np.int64)
