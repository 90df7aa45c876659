"""One file for the results of many scans: a netCDF-4 (HDF5) store with one group per scan (twin id).

Scans have different units, so each keeps its own ``unit`` dimension in its own group (a common ``scan`` dimension
would be mostly padding). The root group's attributes say which experiment, parameters and scans the file holds.
The whole file is written at a temporary path and renamed into place, so a killed run never leaves half a store;
the per-chunk cache of the batch runner is what makes a run resumable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import xarray as xr

from ..store import atomic_path

__all__ = ["read_results", "write_results"]


def write_results(path: str | os.PathLike, results: Mapping[str, xr.Dataset], attrs: Mapping[str, Any] | None = None,
                  prepare: Any = None) -> Path:
    """Write ``{scan id: Dataset}`` as groups of one netCDF file; ``prepare(ds)`` makes attributes storable.
    Returns the path."""
    target = Path(path)
    if not results:
        raise ValueError("no results to store: pass {scan id: Dataset} with at least one scan")
    for name in results:
        if not name or "/" in str(name):
            raise ValueError(f"scan id {name!r} cannot name a group in the store (empty or contains '/')")
    root = {"scans": json.dumps([str(k) for k in results]), **{str(k): v for k, v in (attrs or {}).items()}}
    root = {k: v if isinstance(v, (str, int, float)) else json.dumps(v, default=str) for k, v in root.items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        xr.Dataset(attrs=root).to_netcdf(tmp, mode="w", engine="h5netcdf")
        for name, ds in results.items():
            (prepare(ds) if prepare else ds).to_netcdf(tmp, mode="a", group=str(name), engine="h5netcdf")
    return target


def read_results(path: str | os.PathLike) -> dict[str, xr.Dataset]:
    """``{scan id: Dataset}`` from a store written by :func:`write_results` (loaded into memory), in written order."""
    source = Path(path)
    if not source.exists():
        raise ValueError(f"no results store at {source}")
    try:
        with h5py.File(source, "r") as f:
            scans = json.loads(f.attrs["scans"])
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{source} is not a batch results store (a netCDF file with a 'scans' attribute)") from exc
    return {name: xr.load_dataset(source, group=name, engine="h5netcdf") for name in scans}
