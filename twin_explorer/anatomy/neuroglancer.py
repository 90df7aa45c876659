"""Neuroglancer links to the public minnie65 data: a viewer state (EM image, static segmentation with the
selected root ids, synapse point annotations in voxels) JSON-encoded into the URL fragment of a public host."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import numpy as np
import pandas as pd

from .coords import VOXEL_RESOLUTION_NM, nm_to_voxels

MINNIE65_IMAGE = "precomputed://https://bossdb-open-data.s3.amazonaws.com/iarpa_microns/minnie/minnie65/em"
#: static segmentation of materialisation 1300; root ids must belong to that version
MINNIE65_SEGMENTATION = "precomputed://gs://iarpa_microns/minnie/minnie65/seg_m1300"
NEUROGLANCER_HOST = "https://neuroglancer-demo.appspot.com"


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


def neuroglancer_state(root_ids: Any, synapses: pd.DataFrame | np.ndarray | None = None,
                       synapse_units: str = "nm", position_vox: Any = None,
                       image_source: str = MINNIE65_IMAGE, segmentation_source: str = MINNIE65_SEGMENTATION,
                       layout: str = "xy-3d", max_annotations: int = 5000) -> dict:
    """A neuroglancer state dict.

    synapses: a DataFrame with ``x_nm, y_nm, z_nm`` (e.g. ``Anatomy.synapses``) or ``ctr_pt_position_x/_y/_z``
    voxels, or an [n, 3] array in ``synapse_units`` ('nm' or 'voxels'). ``position_vox`` centres the view
    (default: the first synapse). Optional columns ``id``, ``direction`` and ``partner_root_id`` become the
    annotation id and description.
    """
    if synapse_units not in ("nm", "voxels"):
        raise ValueError(f"synapse_units must be 'nm' or 'voxels', got {synapse_units!r}")
    segments = _ids(root_ids)
    annotations: list[dict] = []
    if synapses is not None:
        df = synapses if isinstance(synapses, pd.DataFrame) else None
        if df is not None and {"x_nm", "y_nm", "z_nm"} <= set(df.columns):
            vox = nm_to_voxels(df[["x_nm", "y_nm", "z_nm"]].to_numpy(float))
        elif df is not None and {"ctr_pt_position_x", "ctr_pt_position_y", "ctr_pt_position_z"} <= set(df.columns):
            vox = df[["ctr_pt_position_x", "ctr_pt_position_y", "ctr_pt_position_z"]].to_numpy(float)
        elif df is None:
            arr = np.asarray(synapses, dtype=float).reshape(-1, 3)
            vox = nm_to_voxels(arr) if synapse_units == "nm" else arr
        else:
            raise ValueError("synapse table needs x_nm/y_nm/z_nm or ctr_pt_position_x/_y/_z columns")
        for k, p in enumerate(vox[:max_annotations]):
            ann = {"point": [float(v) for v in p], "type": "point", "id": str(k)}
            if df is not None:
                if "id" in df.columns:
                    ann["id"] = str(df["id"].iat[k])
                desc = " ".join(f"{c}={df[c].iat[k]}" for c in ("direction", "partner_root_id") if c in df.columns)
                if desc:
                    ann["description"] = desc
            annotations.append(ann)
    if position_vox is None:
        position_vox = annotations[0]["point"] if annotations else None
    state: dict = {
        "dimensions": {ax: [r * 1e-9, "m"] for ax, r in zip("xyz", VOXEL_RESOLUTION_NM)},
        "layers": [
            {"type": "image", "source": image_source, "name": "em"},
            {"type": "segmentation", "source": segmentation_source, "name": "segmentation",
             "segments": segments, "selectedAlpha": 0.3},
            {"type": "annotation", "source": {"url": "local://annotations"}, "name": "synapses",
             "tool": "annotatePoint", "annotationColor": "#ff8c00", "annotations": annotations},
        ],
        "selectedLayer": {"layer": "segmentation", "visible": True},
        "layout": layout,
        "crossSectionScale": 1.0,
        "projectionScale": 250000,
    }
    if position_vox is not None:
        state["position"] = [float(v) for v in np.asarray(position_vox, dtype=float).reshape(3)]
    return state


def neuroglancer_url(state: dict, host: str = NEUROGLANCER_HOST) -> str:
    """Encode a state as ``<host>/#!<url-quoted JSON>``."""
    if not isinstance(state, dict) or "layers" not in state:
        raise ValueError("state must be a neuroglancer state dict with a 'layers' list")
    if not host.startswith(("http://", "https://")):
        raise ValueError(f"host must be an http(s) URL, got {host!r}")
    return host.rstrip("/") + "/#!" + quote(json.dumps(state, separators=(",", ":")), safe="")


def parse_neuroglancer_url(url: str) -> dict:
    """The state dict encoded in a neuroglancer URL (inverse of :func:`neuroglancer_url`)."""
    frag = urlsplit(url).fragment
    if not frag.startswith("!"):
        raise ValueError("not a neuroglancer state URL: its fragment must start with '#!'")
    try:
        return json.loads(unquote(frag[1:]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"the URL fragment is not valid JSON: {exc}") from None


def neuroglancer_link(root_ids: Any, synapses: Any = None, host: str = NEUROGLANCER_HOST, **kw: Any) -> str:
    """Convenience: :func:`neuroglancer_state` then :func:`neuroglancer_url`."""
    return neuroglancer_url(neuroglancer_state(root_ids, synapses, **kw), host=host)
