"""Neuroglancer links to the public minnie65 data: a viewer state (EM image, the segmentation that matches the
root ids' materialization version, the selected neurons, synapse point annotations in voxels) encoded into the URL
fragment of a public viewer, kept short (annotations capped to a URL byte budget) or stored on a state server.

Root ids change with proofreading, so the segmentation must be the one the ids were read from: versions with a
flat precomputed segmentation (``STATIC_SEGMENTATIONS``) open it in the Google demo viewer; any other version (and
live ids) use the proofreadable graphene segmentation in the CAVE viewer (Spelunker).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import numpy as np
import pandas as pd

from .coords import VOXEL_RESOLUTION_NM, nm_to_voxels

MINNIE65_IMAGE = "precomputed://https://bossdb-open-data.s3.amazonaws.com/iarpa_microns/minnie/minnie65/em"
_STATIC = "precomputed://gs://iarpa_microns/minnie/minnie65/"
#: materialization version -> its flat (static) precomputed segmentation (MICrONS tutorial, static repositories)
STATIC_SEGMENTATIONS: dict[int, str] = {117: _STATIC + "seg", 343: _STATIC + "seg_m343",
                                        943: _STATIC + "seg_m943", 1300: _STATIC + "seg_m1300"}
#: the proofreadable segmentation behind the minnie65_public datastack (any version, and live root ids)
MINNIE65_GRAPHENE = "graphene://https://minnie.microns-daf.com/segmentation/table/minnie65_public"
#: kept for callers of the old constant: the v1300 static segmentation
MINNIE65_SEGMENTATION = STATIC_SEGMENTATIONS[1300]
NEUROGLANCER_HOST = "https://neuroglancer-demo.appspot.com"
CAVE_VIEWER = "https://spelunker.cave-explorer.org"
#: default byte budget of a link; browsers, chat tools and markdown renderers cut long URLs
MAX_URL_BYTES = 8000
# characters neuroglancer leaves unescaped in its own URLs (shorter links, still parsed back by unquote)
_SAFE = "~@#$&()*!+=:;,.?/'"


def segmentation_for_version(version: int | None) -> tuple[str, str]:
    """(segmentation source, viewer host) for root ids of materialization ``version`` (None: live ids).

    The graphene segmentation shows the current state of proofreading: a root id of an older version without a
    static segmentation shows only if it has not been edited since (else update it with the chunkedgraph, or
    export at a version listed in ``STATIC_SEGMENTATIONS``)."""
    if version is None:
        return MINNIE65_GRAPHENE, CAVE_VIEWER
    try:
        v = int(version)
    except (TypeError, ValueError):
        raise ValueError(f"version must be a materialization version number, got {version!r}") from None
    if v <= 0:
        raise ValueError(f"version must be a positive materialization version, got {v}")
    if v in STATIC_SEGMENTATIONS:
        return STATIC_SEGMENTATIONS[v], NEUROGLANCER_HOST
    return MINNIE65_GRAPHENE, CAVE_VIEWER


def _ids(root_ids: Any) -> list[str]:
    ids = [root_ids] if np.isscalar(root_ids) else list(root_ids)
    out = []
    for r in ids:
        try:
            v = int(r)
        except (TypeError, ValueError):
            raise ValueError(f"root ids must be integers, got {r!r}") from None
        if v <= 0:
            raise ValueError(f"root ids are positive integers, got {v}")
        out.append(str(v))  # neuroglancer keeps uint64 ids as strings
    return out


def _synapse_voxels(synapses: Any, synapse_units: str) -> tuple[np.ndarray, pd.DataFrame | None]:
    df = synapses if isinstance(synapses, pd.DataFrame) else None
    if df is not None and {"x_nm", "y_nm", "z_nm"} <= set(df.columns):
        return nm_to_voxels(df[["x_nm", "y_nm", "z_nm"]].to_numpy(float)).reshape(-1, 3), df
    ctr = ["ctr_pt_position_x", "ctr_pt_position_y", "ctr_pt_position_z"]
    if df is not None and set(ctr) <= set(df.columns):
        return df[ctr].to_numpy(float), df
    if df is not None:
        raise ValueError("synapse table needs x_nm/y_nm/z_nm or ctr_pt_position_x/_y/_z columns")
    arr = np.asarray(synapses, dtype=float).reshape(-1, 3)
    return (nm_to_voxels(arr).reshape(-1, 3) if synapse_units == "nm" else arr), None


def _annotations(vox: np.ndarray, df: pd.DataFrame | None, rows: np.ndarray) -> list[dict]:
    out = []
    for k in rows:
        ann = {"point": [round(float(v), 1) for v in vox[k]], "type": "point", "id": str(k)}
        if df is not None:
            if "id" in df.columns:
                ann["id"] = str(df["id"].iat[k])
            desc = " ".join(f"{c}={df[c].iat[k]}" for c in ("direction", "partner_root_id") if c in df.columns)
            if desc:
                ann["description"] = desc
        out.append(ann)
    return out


def neuroglancer_state(root_ids: Any, synapses: pd.DataFrame | np.ndarray | None = None,
                       synapse_units: str = "nm", position_vox: Any = None, position_nm: Any = None,
                       version: int | None = None, image_source: str = MINNIE65_IMAGE,
                       segmentation_source: str | None = None, layout: str = "xy-3d",
                       max_annotations: int | None = None) -> dict:
    """A neuroglancer state dict.

    synapses: a DataFrame with ``x_nm, y_nm, z_nm`` (e.g. ``Anatomy.synapses``) or ``ctr_pt_position_x/_y/_z``
    voxels, or an [n, 3] array in ``synapse_units`` ('nm' or 'voxels'). The view is centred on ``position_vox``
    (voxels) or ``position_nm`` (e.g. the nucleus), else on the first synapse. ``version`` picks the segmentation
    (:func:`segmentation_for_version`) unless ``segmentation_source`` is given. ``max_annotations`` keeps that
    many synapses, evenly spread over the table; the layer name says how many were kept.
    """
    if synapse_units not in ("nm", "voxels"):
        raise ValueError(f"synapse_units must be 'nm' or 'voxels', got {synapse_units!r}")
    if max_annotations is not None and max_annotations < 0:
        raise ValueError(f"max_annotations must be ≥ 0, got {max_annotations}")
    segments = _ids(root_ids)
    source = segmentation_source or segmentation_for_version(version)[0]
    annotations: list[dict] = []
    n_total = 0
    if synapses is not None:
        vox, df = _synapse_voxels(synapses, synapse_units)
        n_total = len(vox)
        keep = n_total if max_annotations is None else min(max_annotations, n_total)
        rows = np.unique(np.linspace(0, n_total - 1, keep).round().astype(int)) if keep else np.zeros(0, int)
        annotations = _annotations(vox, df, rows)
    if position_vox is None and position_nm is not None:
        position_vox = nm_to_voxels(np.asarray(position_nm, dtype=float).reshape(3))
    if position_vox is None and annotations:
        position_vox = annotations[0]["point"]
    name = "synapses" if len(annotations) == n_total else f"synapses ({len(annotations)} of {n_total})"
    state: dict = {
        "dimensions": {ax: [r * 1e-9, "m"] for ax, r in zip("xyz", VOXEL_RESOLUTION_NM)},
        "layers": [
            {"type": "image", "source": image_source, "name": "em"},
            {"type": "segmentation", "source": source, "name": "segmentation" if version is None
             else f"segmentation v{int(version)}", "segments": segments, "selectedAlpha": 0.3},
            {"type": "annotation", "source": {"url": "local://annotations"}, "name": name,
             "tool": "annotatePoint", "annotationColor": "#ff8c00", "annotations": annotations},
        ],
        "selectedLayer": {"layer": "segmentation" if version is None else f"segmentation v{int(version)}",
                          "visible": True},
        "layout": layout,
        "crossSectionScale": 1.0,
        "projectionScale": 250000,
    }
    if position_vox is not None:
        state["position"] = [round(float(v), 1) for v in np.asarray(position_vox, dtype=float).reshape(3)]
    return state


def neuroglancer_url(state: dict, host: str = NEUROGLANCER_HOST) -> str:
    """Encode a state as ``<host>/#!<JSON>`` (escaped as neuroglancer itself does)."""
    if not isinstance(state, dict) or "layers" not in state:
        raise ValueError("state must be a neuroglancer state dict with a 'layers' list")
    if not host.startswith(("http://", "https://")):
        raise ValueError(f"host must be an http(s) URL, got {host!r}")
    return host.rstrip("/") + "/#!" + quote(json.dumps(state, separators=(",", ":")), safe=_SAFE)


def parse_neuroglancer_url(url: str) -> dict:
    """The state dict encoded in a neuroglancer URL (inverse of :func:`neuroglancer_url`)."""
    frag = urlsplit(url).fragment
    if not frag.startswith("!"):
        raise ValueError("not a neuroglancer state URL: its fragment must start with '#!'")
    if frag.startswith("!middleauth+") or frag[1:].startswith("http"):
        raise ValueError("this link points at a state server; fetch the state from there to read it")
    try:
        return json.loads(unquote(frag[1:]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"the URL fragment is not valid JSON: {exc}") from None


def _fit_budget(make_state: Callable[[int | None], dict], n_synapses: int, host: str, max_url_bytes: int) -> str:
    """The URL with as many annotations as fit in ``max_url_bytes`` (binary search on the count)."""
    url = neuroglancer_url(make_state(None), host)
    if len(url.encode()) <= max_url_bytes:
        return url
    lo, hi = 0, n_synapses  # lo always fits once checked; hi does not
    best = neuroglancer_url(make_state(0), host)
    if len(best.encode()) > max_url_bytes:
        raise ValueError(f"even without synapses the state takes {len(best.encode())} bytes > max_url_bytes="
                         f"{max_url_bytes}; raise the budget or use a state server")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        candidate = neuroglancer_url(make_state(mid), host)
        if len(candidate.encode()) <= max_url_bytes:
            lo, best = mid, candidate
        else:
            hi = mid
    return best


def neuroglancer_link(root_ids: Any, synapses: Any = None, host: str | None = None, version: int | None = None,
                      max_url_bytes: int | None = MAX_URL_BYTES,
                      state_uploader: Callable[[dict], str] | None = None, **kw: Any) -> str:
    """A link that opens ``root_ids`` (and their synapses) in the viewer that matches ``version``.

    With ``state_uploader`` (e.g. :func:`cave_state_uploader`) the whole state is stored on a state server and
    the returned short link points at it. Otherwise the state is in the URL, and synapse annotations are thinned
    (evenly) until the URL fits ``max_url_bytes`` (None: no limit). Other keywords go to
    :func:`neuroglancer_state` (``position_nm`` of the nucleus, ``segmentation_source``, ...).
    """
    if max_url_bytes is not None and max_url_bytes <= 0:
        raise ValueError(f"max_url_bytes must be positive or None, got {max_url_bytes}")
    host = host or segmentation_for_version(version)[1]
    if state_uploader is not None:
        url = state_uploader(neuroglancer_state(root_ids, synapses, version=version, **kw))
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"the state uploader must return an http(s) link, got {url!r}")
        return url
    user_cap = kw.pop("max_annotations", None)

    def make(cap: int | None) -> dict:
        caps = [c for c in (cap, user_cap) if c is not None]
        return neuroglancer_state(root_ids, synapses, version=version, max_annotations=min(caps) if caps else None,
                                  **kw)

    if max_url_bytes is None:
        return neuroglancer_url(make(None), host)
    n = 0 if synapses is None else len(synapses)
    return _fit_budget(make, n, host, max_url_bytes)


def cave_state_uploader(client: Any, viewer: str = CAVE_VIEWER) -> Callable[[dict], str]:
    """An uploader for :func:`neuroglancer_link` that stores states on the CAVE state server of ``client`` (a
    ``caveclient.CAVEclient``; needs a token) and returns the short viewer link."""
    state_api = getattr(client, "state", None)
    if state_api is None or not hasattr(state_api, "upload_state_json"):
        raise ValueError("client must be a CAVEclient (with .state.upload_state_json); got "
                         f"{type(client).__name__}")

    def upload(state: dict) -> str:
        state_id = state_api.upload_state_json(state)
        return state_api.build_neuroglancer_url(state_id, ngl_url=viewer)

    return upload


def neuroglancer_link_for_neuron(anatomy: Any, nucleus_id: int, with_synapses: bool = True, **kw: Any) -> str:
    """The link for one neuron of an anatomy folder: its root id, centred on its nucleus, in the segmentation of
    the folder's materialization version (``manifest['materialization_version']``); raises ValueError for a
    folder that records none (e.g. the synthetic sample, whose ids are not real EM ids)."""
    version = anatomy.manifest.get("materialization_version")
    if version is None:
        raise ValueError(f"{anatomy.folder} records no materialization_version in its manifest, so its root ids "
                         "cannot be matched to a real EM segmentation (the synthetic sample has none)")
    row = anatomy.nuclei.loc[int(nucleus_id)]
    syn = anatomy.synapses(int(nucleus_id)) if with_synapses else None
    return neuroglancer_link([int(row["pt_root_id"])], syn, version=int(version),
                             position_nm=[row["x_nm"], row["y_nm"], row["z_nm"]], **kw)
