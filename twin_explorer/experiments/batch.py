"""Batch runner: any experiment over all units of one or several twins, chunked, cached on disk, resumable,
locally or on a dask.distributed cluster.

An *experiment* is a registered :class:`~.spec.ExperimentSpec` (or its name, e.g. ``"direction_tuning"``), or any
callable ``experiment(twin, units=[readout ids], **params) -> xarray.Dataset`` whose result has a ``unit``
dimension listing those units in order.

* **Chunks.** The selected units are split into chunks of ``chunk_size``; each chunk is one call (one task).
* **Cache.** Each finished chunk is written to ``cache_dir/<experiment>/<twin id>/<key>.nc`` (netCDF via h5netcdf,
  written with ``store.atomic_path``, so an interrupted write never leaves a half file) with a ``.json``
  sidecar describing it. ``key`` = ``store.content_hash`` of (experiment name, parameters, twin id, chunk units,
  package version), so changing any of them recomputes; identical requests reuse the files. A rerun after an
  interruption or an error only computes the chunks that are missing (resumable). The cache files are written by
  the calling process, so a cluster needs no shared filesystem.
* **Results.** One twin: the chunks concatenated along ``unit`` (one Dataset). Several twins (a list): a dict
  ``{twin id: Dataset}``, because different scans have different units (a common ``twin`` dimension would be mostly
  padding).
* **Twins.** A twin object, or a :class:`TwinSpec` / name string (``"synthetic"``) resolved with
  ``twin_explorer.load_twin``. With a dask ``client``, a spec is sent to the workers and built there once per worker
  process (cached); a twin object is scattered to the workers, so it must be picklable for process-based clusters
  (threads-only ``LocalCluster(processes=False)`` needs no pickling). Experiments must be importable
  module-level functions for the same reason. The task itself is :func:`.chunk.run_chunk`, in a module a worker
  imports without torch or plotting (a twin built by name, or a spec's experiment, brings what it needs). :func:`.cluster.local_cluster` starts a process-based cluster with
  one worker per GPU when GPUs exist; when the workers advertise the ``GPU`` resource each task asks for one.
* **Killed workers.** Dask reschedules the chunks of a worker that dies on the other workers; chunks finished
  before are already on disk, so a rerun after the whole run died recomputes only what is missing.
* **Store.** ``store=path``: the combined results of all scans also go to one netCDF file, one group per scan
  (:mod:`.results_store`); a progress bar counts scans next to the one counting chunks.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import twin_explorer  # the package version goes into cache keys (read at call time)

from ..engine.contract import TwinLike
from ..store import atomic_path, content_hash, write_text_atomic
from .checks import resolve_units
from .chunk import TwinSpec, canonical, experiment_name, run_chunk
from .cluster import GPU_RESOURCE, wants_gpu
from .results_store import write_results
from .spec import ExperimentSpec, get_experiment

__all__ = ["TwinSpec", "BatchRunner", "run_batch", "experiment_name", "cache_key"]

ProgressArg = bool | Callable[[int, int], None]


def cache_key(name: str, params: dict[str, Any], twin_id: str, units: Sequence[int]) -> str:
    """SHA-256 hex of (experiment name, parameters, twin id, units, package version)."""
    return content_hash({"experiment": name, "params": canonical(params), "twin_id": str(twin_id),
                         "units": [int(u) for u in units], "version": twin_explorer.__version__})


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)[:120] or "_"


def _netcdf_safe(ds: xr.Dataset) -> xr.Dataset:
    """Copy with attributes netCDF can store: dicts, lists, None and bools become JSON/ints."""
    def fix(attrs: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in attrs.items():
            if isinstance(v, (bool, np.bool_)):
                v = int(v)
            elif v is None or isinstance(v, (dict, list, tuple)):
                v = json.dumps(canonical(v))
            out[str(k)] = v
        return out

    ds = ds.copy()
    ds.attrs = fix(ds.attrs)
    for name in ds.variables:
        ds[name].attrs = fix(ds[name].attrs)
    return ds


@dataclass
class _Chunk:
    twin_id: str
    units: list[int]
    key: str
    path: Path | None
    index: int

    @property
    def cached(self) -> bool:
        return self.path is not None and self.path.exists()


class BatchRunner:
    """Runs ``experiment`` over many units and twins; see the module docstring for the behaviour.

    ``chunk_size``: units per task. ``cache_dir``: folder for the per-chunk netCDF files (None: no caching).
    ``client``: a ``dask.distributed.Client`` to run chunks as tasks (None: in this process, in order).
    ``progress``: True for a tqdm bar, or a callback ``progress(done_chunks, total_chunks)``.
    ``resources``: dask worker resources each task needs; "auto" asks for one GPU per task when all workers
    advertise ``GPU`` (see :mod:`.cluster`), None for none. ``store``: a netCDF file for all scans' results.
    """

    def __init__(self, experiment: ExperimentSpec | str | Callable[..., Any], *, chunk_size: int = 64, cache_dir: str | Path | None = None,
                 client: Any = None, progress: ProgressArg = True, name: str | None = None,
                 resources: dict[str, float] | str | None = "auto", store: str | Path | None = None) -> None:
        if isinstance(experiment, str):
            experiment = get_experiment(experiment)
        self.name = name or experiment_name(experiment)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer (units per chunk), got {chunk_size!r}")
        if client is not None and not hasattr(client, "submit"):
            raise ValueError(f"client must be a dask.distributed.Client (or None to run locally), got {client!r}")
        self.experiment = experiment
        self.chunk_size = int(chunk_size)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.client = client
        self.progress = progress
        if not (resources is None or resources == "auto" or isinstance(resources, dict)):
            raise ValueError(f"resources must be 'auto', None or a dict such as {{'GPU': 1}}, got {resources!r}")
        self.resources = resources
        self.store = None if store is None else Path(store)
        self.computed = 0  # chunks computed (not read from the cache) by the last run()

    # -- planning ------------------------------------------------------------------------------------------
    @staticmethod
    def _resolve(twin: TwinLike | TwinSpec | str) -> tuple[TwinLike, TwinLike | TwinSpec]:
        """(local twin object, what to send to workers)."""
        if isinstance(twin, str):
            twin = TwinSpec(name=twin)
        if isinstance(twin, TwinSpec):
            return twin.build(), twin
        for attr in ("id", "units", "predict"):
            if not hasattr(twin, attr):
                raise ValueError(f"{twin!r} is not a twin: it lacks {attr!r}; pass a twin object, a load_twin name "
                                 "such as 'synthetic', or a TwinSpec")
        return twin, twin

    def _chunks(self, twin: TwinLike, units: Any, params: dict[str, Any]) -> list[_Chunk]:
        ids = resolve_units(twin, None if (isinstance(units, str) and units == "all") else units)
        twin_id = str(twin.id)
        out = []
        for i, start in enumerate(range(0, len(ids), self.chunk_size)):
            chunk = [int(u) for u in ids[start:start + self.chunk_size]]
            key = cache_key(self.name, params, twin_id, chunk)
            path = None if self.cache_dir is None else (
                self.cache_dir / _safe(self.name) / _safe(twin_id) / f"{key[:24]}.nc")
            out.append(_Chunk(twin_id, chunk, key, path, i))
        return out

    def plan(self, twins: Any, units: Any = "all", **params: Any) -> pd.DataFrame:
        """One row per chunk: twin id, first/last unit, unit count, cache key, whether it is cached, its file."""
        rows = []
        for twin in self._twin_list(twins)[0]:
            local, _ = self._resolve(twin)
            for c in self._chunks(local, units, params):
                rows.append({"twin_id": c.twin_id, "chunk": c.index, "first_unit": c.units[0],
                             "last_unit": c.units[-1], "n_units": len(c.units), "key": c.key, "cached": c.cached,
                             "path": None if c.path is None else str(c.path)})
        return pd.DataFrame(rows)

    @staticmethod
    def _twin_list(twins: Any) -> tuple[list[Any], bool]:
        if isinstance(twins, (list, tuple)):
            if not twins:
                raise ValueError("twins is an empty list; pass a twin, a load_twin name, a TwinSpec or a list of them")
            return list(twins), True
        return [twins], False

    # -- running -------------------------------------------------------------------------------------------
    def _store(self, chunk: _Chunk, ds: xr.Dataset, params: dict[str, Any]) -> None:
        if chunk.path is None:
            return
        with atomic_path(chunk.path) as tmp:
            _netcdf_safe(ds).to_netcdf(tmp, engine="h5netcdf")
        meta = {"experiment": self.name, "twin_id": chunk.twin_id, "units": chunk.units, "key": chunk.key,
                "params": canonical(params)}
        write_text_atomic(chunk.path.with_suffix(".json"), json.dumps(meta, indent=1))

    @staticmethod
    def _load(chunk: _Chunk) -> xr.Dataset:
        return xr.load_dataset(chunk.path, engine="h5netcdf")

    def run(self, twins: Any, units: Any = "all", **params: Any) -> xr.Dataset | dict[str, xr.Dataset]:
        """Run (or read from the cache) every chunk and combine; see the module docstring."""
        from tqdm.auto import tqdm

        twin_list, several = self._twin_list(twins)
        plans: list[tuple[Any, Any, list[_Chunk]]] = []
        for twin in twin_list:
            local, remote = self._resolve(twin)
            plans.append((local, remote, self._chunks(local, units, params)))
        ids = [p[2][0].twin_id for p in plans]
        if len(set(ids)) != len(ids):
            raise ValueError(f"twins have repeated ids {ids}; each twin in a batch needs its own id")
        total = sum(len(p[2]) for p in plans)
        results: dict[tuple[str, int], xr.Dataset] = {}
        todo: list[tuple[Any, Any, _Chunk]] = []
        for local, remote, chunks in plans:
            for c in chunks:
                if c.cached:
                    results[(c.twin_id, c.index)] = self._load(c)
                else:
                    todo.append((local, remote, c))
        self.computed = 0
        callback = self.progress if callable(self.progress) else None
        show = self.progress is True
        left = {p[2][0].twin_id: sum(not c.cached for c in p[2]) for p in plans}  # chunks to compute per scan
        scan_bar = tqdm(total=len(plans), initial=sum(n == 0 for n in left.values()), desc="scans", unit="scan",
                        disable=not show or len(plans) < 2, position=0)
        bar = tqdm(total=total, initial=total - len(todo), desc=self.name.rsplit(".", 1)[-1],
                   disable=not show, unit="chunk", position=1 if len(plans) > 1 else None)
        done = total - len(todo)

        def finished(chunk: _Chunk, ds: xr.Dataset) -> None:
            nonlocal done
            self._store(chunk, ds, params)
            results[(chunk.twin_id, chunk.index)] = ds
            self.computed += 1
            done += 1
            bar.update(1)
            left[chunk.twin_id] -= 1
            if left[chunk.twin_id] == 0:
                scan_bar.update(1)
            if callback is not None:
                callback(done, total)

        try:
            if self.client is None:
                for local, _, c in todo:
                    finished(c, run_chunk(self.experiment, local, c.units, params))
            else:
                self._run_distributed(todo, params, finished)
        finally:
            bar.close()
            scan_bar.close()

        combined = {}
        for local, _, chunks in plans:
            parts = [results[(c.twin_id, c.index)] for c in chunks]
            combined[chunks[0].twin_id] = parts[0] if len(parts) == 1 else xr.concat(
                parts, dim="unit", data_vars="minimal", coords="minimal", compat="override", join="exact",
                combine_attrs="drop_conflicts")
        if self.store is not None:
            write_results(self.store, combined, {"experiment": self.name, "params": canonical(params)},
                          prepare=_netcdf_safe)
        return combined if several else combined[ids[0]]

    def _run_distributed(self, todo: list[tuple[Any, Any, _Chunk]], params: dict[str, Any],
                         finished: Callable[[_Chunk, xr.Dataset], None]) -> None:
        from distributed import as_completed

        client = self.client
        resources = self.resources
        if resources == "auto":
            resources = {GPU_RESOURCE: 1} if wants_gpu(client) else None
        sent: dict[int, Any] = {}  # one scattered copy per twin object
        futures = {}
        for _, remote, c in todo:
            if isinstance(remote, TwinSpec):
                payload = remote
            else:
                if id(remote) not in sent:
                    try:
                        sent[id(remote)] = client.scatter(remote, hash=False)
                    except Exception as exc:  # pickling failures surface here on process clusters
                        raise ValueError(f"could not send twin {remote.id!r} to the dask workers ({exc}); pass a "
                                         "TwinSpec (e.g. TwinSpec('synthetic', {'seed': 0})) so workers build it "
                                         "themselves") from exc
                payload = sent[id(remote)]
            # a fresh task key per run: a failed task of an earlier run must not be reused
            fut = client.submit(run_chunk, self.experiment, payload, c.units, params,
                                key=f"{_safe(self.name)}-{c.key[:16]}-{uuid.uuid4().hex[:8]}", resources=resources)
            futures[fut] = c
        errors: list[BaseException] = []
        for fut in as_completed(list(futures)):
            try:
                ds = fut.result()
            except Exception as exc:  # keep collecting: every chunk that succeeded gets cached
                errors.append(exc)
                continue
            finished(futures[fut], ds)
        if errors:
            raise errors[0]


def run_batch(experiment: ExperimentSpec | str | Callable[..., Any], twins: Any, units: Any = "all", *, chunk_size: int = 64,
              cache_dir: str | Path | None = None, client: Any = None, progress: ProgressArg = True,
              store: str | Path | None = None, **params: Any) -> xr.Dataset | dict[str, xr.Dataset]:
    """Run ``experiment(twin, units=chunk, **params)`` over all (or the given) units of one twin or a list of
    twins, chunked, cached and resumable; returns a Dataset (one twin) or ``{twin id: Dataset}`` (a list)."""
    runner = BatchRunner(experiment, chunk_size=chunk_size, cache_dir=cache_dir, client=client, progress=progress,
                         store=store)
    return runner.run(twins, units=units, **params)
