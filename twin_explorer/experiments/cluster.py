"""Dask clusters for the batch runner on one machine: process-based workers, one GPU per worker when GPUs exist.

* :func:`local_cluster` — without GPUs a ``LocalCluster(processes=True)`` (each worker its own process, so the
  twins built on the workers run in parallel without sharing the interpreter lock); with GPUs one worker per GPU,
  each started with ``CUDA_VISIBLE_DEVICES`` set to its own device (so ``device="cuda"`` or the engine's automatic
  choice is that worker's GPU) and advertising the worker resource ``GPU=1``.
* :func:`gpu_worker_specs` — the per-worker specs behind it, for any ``SpecCluster``.
* The batch runner asks for ``resources={"GPU": 1}`` per task when the client's workers advertise GPUs
  (:func:`wants_gpu`), so no two chunks share a device.

Multi-machine clusters (``dask scheduler`` / ``dask worker``, SLURM, Kubernetes) work the same way: start each
worker with ``CUDA_VISIBLE_DEVICES=<its GPU> dask worker ... --resources GPU=1`` and pass a ``Client`` to
:class:`~.batch.BatchRunner`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["GPU_RESOURCE", "gpu_worker_specs", "local_cluster", "visible_gpus", "wants_gpu"]

GPU_RESOURCE = "GPU"


def visible_gpus() -> list[str]:
    """CUDA device ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else ``0..n-1`` from torch."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    import torch  # start-up time: torch is needed only when GPUs are counted

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def gpu_worker_specs(gpus: Sequence[str | int], threads_per_worker: int = 1,
                     memory_limit: str | int | None = "auto") -> dict[str, dict[str, Any]]:
    """One nanny-managed worker process per GPU: ``{name: {"cls": Nanny, "options": {...}}}`` with
    ``env={"CUDA_VISIBLE_DEVICES": gpu}`` and ``resources={"GPU": 1}``."""
    from distributed import Nanny  # optional dependency at call time: clusters are opt-in

    gpus = [str(g).strip() for g in gpus]
    if not gpus or any(not g for g in gpus) or len(set(gpus)) != len(gpus):
        raise ValueError(f"gpus must be distinct CUDA device ids such as ['0', '1']; got {gpus!r}")
    if int(threads_per_worker) < 1:
        raise ValueError(f"threads_per_worker must be ≥ 1, got {threads_per_worker!r}")
    return {f"gpu-{g}": {"cls": Nanny, "options": {
        "nthreads": int(threads_per_worker), "env": {"CUDA_VISIBLE_DEVICES": g},
        "resources": {GPU_RESOURCE: 1}, "memory_limit": memory_limit, "host": "127.0.0.1",
        "dashboard_address": None}} for g in gpus}


def local_cluster(n_workers: int | None = None, *, gpus: Sequence[str | int] | str | None = "auto",
                  threads_per_worker: int = 1, **cluster_kwargs: Any) -> Any:
    """A process-based cluster on this machine (listening on 127.0.0.1 only).

    ``gpus``: "auto" (the GPUs this process sees; none → CPU workers), a list of device ids, or None/[] for CPU
    workers only. With GPUs there is one worker per GPU (``n_workers`` must be None or equal to their count);
    without, ``n_workers`` CPU worker processes (default 2). Use as a context manager, or close it yourself."""
    from distributed import LocalCluster, Scheduler, SpecCluster  # optional dependency at call time

    chosen = visible_gpus() if isinstance(gpus, str) and gpus == "auto" else list(gpus or [])
    if isinstance(gpus, str) and gpus != "auto":
        raise ValueError(f"gpus must be 'auto', a list of CUDA device ids or None; got {gpus!r}")
    if chosen:
        if n_workers is not None and n_workers != len(chosen):
            raise ValueError(f"with GPUs there is one worker per GPU: {len(chosen)} GPUs {chosen} but "
                             f"n_workers={n_workers}; pass n_workers=None or gpus=None for CPU workers")
        scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
        return SpecCluster(workers=gpu_worker_specs(chosen, threads_per_worker), scheduler=scheduler,
                           **cluster_kwargs)
    n = 2 if n_workers is None else int(n_workers)
    if n < 1:
        raise ValueError(f"n_workers must be ≥ 1, got {n_workers!r}")
    options = {"host": "127.0.0.1", "dashboard_address": None, **cluster_kwargs}
    return LocalCluster(n_workers=n, threads_per_worker=int(threads_per_worker), processes=True, **options)


def wants_gpu(client: Any) -> bool:
    """True when every worker of ``client`` advertises the ``GPU`` resource (then each task asks for one)."""
    try:
        workers = client.scheduler_info().get("workers", {})
    except Exception:  # a client without a scheduler (tests' stand-ins) simply has no GPUs to share
        return False
    return bool(workers) and all(w.get("resources", {}).get(GPU_RESOURCE, 0) >= 1 for w in workers.values())
