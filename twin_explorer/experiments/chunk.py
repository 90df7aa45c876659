"""One task of the batch runner (:mod:`.batch`): build or receive the twin, run the experiment on one chunk of units,
check the result. A dask worker unpickles :func:`run_chunk` and :class:`TwinSpec` by this module's name, so importing
it must stay cheap: numpy and xarray, no torch (a twin loaded by name imports it when built), no plotting.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..engine.contract import TwinLike
from .spec import ExperimentSpec

__all__ = ["TwinSpec", "run_chunk", "experiment_name", "canonical"]


@dataclass(frozen=True)
class TwinSpec:
    """A recipe that builds a twin wherever it runs: ``load_twin(name, **options)`` or ``factory(**options)``
    (factory: an importable module-level callable)."""

    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    factory: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.factory is None):
            raise ValueError("TwinSpec needs exactly one of name= (a load_twin name such as 'synthetic') or factory=")
        if not isinstance(self.options, dict):
            raise ValueError(f"TwinSpec.options must be a dict of keyword arguments, got {type(self.options).__name__}")

    @property
    def token(self) -> str:
        """Stable text identifying the recipe (used to cache built twins per process)."""
        what = self.name if self.factory is None else f"{self.factory.__module__}.{self.factory.__qualname__}"
        return json.dumps({"twin": what, "options": canonical(self.options)}, sort_keys=True)

    def build(self) -> Any:
        """The twin, built once per process and then reused."""
        with _TWIN_LOCK:
            twin = _TWINS.get(self.token)
            if twin is None:
                if self.factory is not None:
                    twin = self.factory(**self.options)
                else:
                    from ..twins import load_twin  # start-up time: a worker given a twin factory needs no torch

                    twin = load_twin(self.name, **self.options)
                _TWINS[self.token] = twin
            return twin


_TWINS: dict[str, Any] = {}
_TWIN_LOCK = threading.Lock()


def canonical(value: Any) -> Any:
    """JSON-able canonical form of experiment parameters; refuses values without a stable text form."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "to_dict") and callable(value.to_dict):  # Monitor and similar value objects
        return {type(value).__name__: canonical(value.to_dict())}
    if hasattr(value, "params_dict") and callable(value.params_dict):  # stimulus objects
        return {type(value).__name__: canonical(value.params_dict())}
    if callable(value) and hasattr(value, "__qualname__"):
        return {"callable": f"{value.__module__}.{value.__qualname__}"}
    text = repr(value)
    if re.search(r" at 0x[0-9a-fA-F]+", text):
        raise ValueError(f"parameter value {text} has no stable text form, so it cannot key the cache; "
                         "pass plain numbers, strings, lists, dicts, arrays or objects with to_dict()")
    return text


def experiment_name(experiment: ExperimentSpec | Callable[..., Any]) -> str:
    """The spec's name, or ``module.qualname`` of an experiment function (the cache and the task names use it)."""
    if isinstance(experiment, ExperimentSpec):
        return experiment.name
    if not callable(experiment):
        raise ValueError(f"experiment must be a callable experiment(twin, units=..., **params), got {experiment!r}")
    inner = getattr(experiment, "func", experiment)  # functools.partial
    return f"{getattr(inner, '__module__', 'unknown')}.{getattr(inner, '__qualname__', type(inner).__name__)}"



def run_chunk(experiment: ExperimentSpec | Callable[..., Any], twin: TwinLike | TwinSpec, units: list[int], params: dict[str, Any]) -> xr.Dataset:
    """One task: build/receive the twin, run the experiment on the chunk, check the result's shape."""
    if isinstance(twin, TwinSpec):
        twin = twin.build()
    ds = experiment(twin, units=list(units), **params)
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"{experiment_name(experiment)} returned {type(ds).__name__}; the batch runner needs an "
                         "xarray.Dataset with a 'unit' dimension")
    if "unit" not in ds.dims or ds.sizes["unit"] != len(units):
        raise ValueError(f"{experiment_name(experiment)} returned dims {dict(ds.sizes)} for {len(units)} units; "
                         "the result must have a 'unit' dimension with one entry per requested unit")
    if "unit" in ds.coords and not np.array_equal(np.asarray(ds["unit"].values).astype(np.int64), units):
        raise ValueError(f"{experiment_name(experiment)} returned units {ds['unit'].values[:5].tolist()}… but "
                         f"{units[:5]}… were requested (same order expected)")
    return ds
