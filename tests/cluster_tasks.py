"""Importable helpers for the cluster tests: worker processes unpickle these by module name (``cluster_tasks``),
so they live outside the test module and need only numpy, pandas and xarray."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

BUILDS: dict[str, int] = {}  # twins built by this process, by twin id


class LineTwin:
    """Unit u of scan s answers (s + 1) × (u + 1) × mean grey-level deviation of the frames: exact and cheap."""

    frame_rate = 30.0
    frame_shape = (144, 256)

    def __init__(self, scan: int, n: int) -> None:
        self.id = f"scan-{scan}"
        self.scan = scan
        self.units = pd.DataFrame({"session": 1, "scan_idx": scan, "unit_id": np.arange(n) + 1},
                                  index=pd.Index(np.arange(n), name="readout_id"))

    @property
    def n_units(self) -> int:
        return len(self.units)

    def predict(self, stimuli, perspectives=None, modulations=None, units=None):
        arr = np.asarray(stimuli, dtype=np.float32)
        idx = np.arange(self.n_units) if units is None else np.asarray(units)
        drive = (arr.mean(axis=(-1, -2)) - 128.0)[..., None]
        return ((self.scan + 1) * drive * (1 + idx)).astype(np.float32)


def make_twin(scan: int, n: int) -> LineTwin:
    """Factory for ``TwinSpec(factory=make_twin, ...)``; counts builds per process."""
    twin = LineTwin(scan, n)
    BUILDS[twin.id] = BUILDS.get(twin.id, 0) + 1
    return twin


def expected(scan: int, units, level: int) -> np.ndarray:
    return (scan + 1) * (level - 128.0) * (1 + np.asarray(units, dtype=float))


def probe(twin, units=None, level: int = 160, sleep_s: float = 0.0, marker_dir: str = "") -> xr.Dataset:
    """The experiment: mean response to a grey level, plus who computed it (process id, its build count and the
    GPU it was pinned to). ``marker_dir``: a file ``<pid>-<first unit>-<twin id>`` is written when a chunk starts."""
    units = list(twin.units.index if units is None else units)
    if marker_dir:
        Path(marker_dir, f"{os.getpid()}-{units[0]}-{twin.id}").touch()
    time.sleep(sleep_s)
    r = twin.predict(np.full((2, 144, 256), level, dtype=np.uint8), units=units).mean(0)
    n = len(units)
    return xr.Dataset({"response": ("unit", r.astype(np.float64)),
                       "pid": ("unit", np.full(n, os.getpid())),
                       "builds": ("unit", np.full(n, BUILDS.get(twin.id, 0))),
                       "gpu": ("unit", np.full(n, os.environ.get("CUDA_VISIBLE_DEVICES", "none")))},
                      coords={"unit": np.asarray(units)}, attrs={"twin_id": twin.id})
