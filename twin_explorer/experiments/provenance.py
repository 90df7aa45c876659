"""Provenance of an experiment result: the netCDF-safe attrs every experiment Dataset carries (twin id, model id,
precision, experiment name, parameters, seed, monitor, stimulus, package version, time)."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import numpy as np

import twin_explorer

from ..engine.contract import TwinLike
from ..monitor import Monitor
from .checks import twin_frame_rate


def jsonable(value: Any) -> Any:
    """A JSON-able copy of experiment parameters (arrays as lists, monitors as dicts, others by repr)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Monitor):
        return value.to_dict()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def provenance(twin: TwinLike, experiment: str, params: dict[str, Any], seed: int | None = None,
               monitor: Monitor | None = None, stimulus: Any = None) -> dict[str, Any]:
    """netCDF-safe attrs for an experiment's Dataset: twin id, model id and precision (from ``twin.metadata``
    when it has one), experiment name, its parameters (JSON), seed, monitor, stimulus provenance
    (``params_dict()`` of a stimulus object when given), package version, time."""
    meta = getattr(twin, "metadata", None)
    attrs: dict[str, Any] = {
        "experiment": experiment,
        "twin_id": str(getattr(twin, "id", type(twin).__name__)),
        "model_id": str(getattr(meta, "model_id", "") or ""),
        "precision": str(getattr(meta, "precision", "") or ""),
        "params": json.dumps(jsonable(params), sort_keys=True),
        "seed": -1 if seed is None else int(seed),
        "twin_explorer_version": twin_explorer.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "frame_rate": twin_frame_rate(twin),
    }
    if monitor is not None:
        attrs["monitor"] = json.dumps(monitor.to_dict(), sort_keys=True)
    if stimulus is not None:
        pd_fn = getattr(stimulus, "params_dict", None)
        attrs["stimulus"] = json.dumps(jsonable(pd_fn() if callable(pd_fn) else stimulus), sort_keys=True,
                                       default=repr)
    return attrs
