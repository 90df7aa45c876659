"""Experiment specs and their registry: what the CLI (``twin-explorer run NAME --param key=value``), the batch
runner and the generic UI view run.

An :class:`ExperimentSpec` names an experiment and points at its function ``run(twin, units=..., progress=...,
cancel=..., **params) -> xarray.Dataset`` (built from the parts in this package: conditions → stimuli → the
runner → analysis, or an optimisation for MEIs), with a one-line ``summary`` of a result and optional plots.
Its parameters and their defaults are read from the function's signature, so a spec never repeats them.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..engine.contract import TwinLike
from .streaming import PartialCallback

#: Arguments every experiment function takes that are not parameters of the experiment itself.
RUN_ARGUMENTS = frozenset({"twin", "units", "unit", "progress", "cancel", "show_progress", "batch_size", "monitor",
                           "stimulus", "perspectives", "modulations", "options", "partial"})


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment: ``name`` (registry key, CLI name), ``run`` (the experiment function), ``description``,
    ``summary(ds) -> str``, ``plot(ds, unit)`` (one unit) and ``population_plot(ds)`` (all units), and ``kind``:
    'conditions' (stimuli through the runner) or 'optimisation' (MEI); ``options``/``options_from``: keyword
    options ``run`` takes through ``**options`` and the function whose signature documents them; ``streams``: ``run``
    takes ``partial=`` and calls it with provisional results while it runs (:mod:`.streaming`)."""

    name: str
    run: Callable[..., xr.Dataset]
    description: str
    summary: Callable[[xr.Dataset], str]
    plot: Callable[[xr.Dataset, int], Any] | None = None
    population_plot: Callable[[xr.Dataset], Any] | None = None
    kind: str = "conditions"
    #: keyword options ``run`` passes on (``**options``) and the function whose signature gives their defaults
    options: frozenset[str] = frozenset()
    options_from: Callable[..., Any] | None = None
    streams: bool = False

    def defaults(self) -> dict[str, Any]:
        """The experiment's parameters and their defaults (from ``run``'s signature, JSON-able values only)."""
        out = {}
        params = list(inspect.signature(self.run).parameters.values())
        if self.options_from is not None:
            params += [p for p in inspect.signature(self.options_from).parameters.values() if p.name in self.options]
        for p in params:
            if p.name in RUN_ARGUMENTS or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.default is p.empty:
                continue
            value = list(p.default) if isinstance(p.default, tuple) else p.default
            try:
                json.dumps(value)
            except TypeError:
                continue
            out[p.name] = value
        return out

    def parse(self, pairs: Sequence[str]) -> dict[str, Any]:
        """``["key=value", ...]`` → parameters. Values are JSON (numbers, lists ``[1,2]``, ``null``, ``true``);
        anything else is a string. Unknown keys raise ValueError listing the accepted ones."""
        known = self.defaults()
        out: dict[str, Any] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not key:
                raise ValueError(f"parameter {pair!r} is not key=value")
            if key not in known:
                raise ValueError(f"{self.name} has no parameter {key!r}; accepted: {', '.join(sorted(known))}")
            try:
                out[key] = json.loads(text)
            except json.JSONDecodeError:
                out[key] = text
        return out

    def __call__(self, twin: TwinLike, units: Any = None, *, progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None, partial: PartialCallback | None = None,
                 batch_size: int | None = None, **params: Any) -> xr.Dataset:
        """Run the experiment; ``progress(done, total)``, ``cancel`` (an Event) and ``batch_size`` (condition videos
        per ``predict`` call) go to the runner; ``partial`` gets provisional results, for a spec that ``streams``."""
        if partial is not None and not self.streams:
            raise ValueError(f"{self.name} does not stream partial results; streaming experiments: "
                             f"{', '.join(sorted(n for n, s in REGISTRY.items() if s.streams))}")
        known = self.defaults()
        unknown = set(params) - set(known)
        if unknown:
            raise ValueError(f"{self.name} has no parameter(s) {sorted(unknown)}; accepted: {', '.join(sorted(known))}")
        accepted = inspect.signature(self.run).parameters
        extra: dict[str, Any] = {"cancel": cancel}
        if partial is not None:
            extra["partial"] = partial
        if batch_size is not None:
            if "batch_size" not in accepted:
                raise ValueError(f"{self.name} takes no batch_size")
            extra["batch_size"] = batch_size
        if progress is not None:
            extra["progress"] = progress
        if "show_progress" in accepted:
            extra["show_progress"] = progress is None
        elif progress is None:
            extra["progress"] = False
        return self.run(twin, units=units, **extra, **params)


REGISTRY: dict[str, ExperimentSpec] = {}


def register(spec: ExperimentSpec) -> ExperimentSpec:
    """Add an experiment to the registry (its name must be new)."""
    if not isinstance(spec, ExperimentSpec):
        raise ValueError(f"register takes an ExperimentSpec, got {type(spec).__name__}")
    if spec.name in REGISTRY and REGISTRY[spec.name] is not spec:
        raise ValueError(f"an experiment named {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def get_experiment(name: str) -> ExperimentSpec:
    """The registered spec called ``name`` (the built-in experiments register themselves when first asked for)."""
    if name not in REGISTRY:
        # start-up time: they load torch, which a batch worker sent a plain function never needs
        from . import monet2_tuning, specs, surround  # noqa: F401
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; registered: {', '.join(sorted(REGISTRY))}") from None


def median_summary(*keys: str) -> Callable[[xr.Dataset], str]:
    """A summary line: unit count and the median of each per-unit variable in ``keys``."""
    def summary(ds: xr.Dataset) -> str:
        parts = [f"{ds.sizes.get('unit', 0)} units"]
        for k in keys:
            if k in ds:
                v = np.asarray(ds[k].values, dtype=float)
                parts.append(f"median {k} {np.nanmedian(v):.3g}" if np.isfinite(v).any() else f"{k}: no fit")
        return "; ".join(parts)
    return summary
