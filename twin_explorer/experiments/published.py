"""The published digital-twin properties (v2): reading them from a local folder, downloading them, writing them.

Layout (as published on BossDB beside the weights, ``.../functional_data/digital_twin_properties/v2/``; every
``units.csv`` has ``session, scan_idx, unit_id`` first; rows follow the 104,171 readouts of the 13 scans):

* ``readout/units.csv`` + ``readout/readout_locations.npy`` (row i ↔ location i: x, y in [−1, 1], (−1, −1) the
  top-left of the stimulus, an approximation of the RF centre) (+ ``readout_weights.npy``, 104,171 × 512, not read);
* ``performance/units.csv``: ``cc_abs, cc_max, cc_norm``;
* ``ori_dir_tuning/units.csv``: ``OSI, DSI, gOSI, gDSI, pref_ori, pref_dir`` in **degrees**, 0° = a vertical bar
  moving right, counter-clockwise (the convention this package's tuning uses);
* ``anatomy/units.csv``: ``unit_x, unit_y, unit_z`` (µm), ``brain_area, field``.

:func:`read_properties` joins whatever parts are present into one table keyed by ``(session, scan_idx,
unit_id)``. :func:`download_properties` fetches the parts with pooch from the public bucket. **No checksum of
these files is published** in the material this project relies on, so none is invented: the first download
records each file's SHA-256 in ``checksums.json`` and later calls verify against it (trust on first use).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import cache_dir
from ..store import atomic_path, content_hash, write_text_atomic

__all__ = ["BASE_URL", "PARTS", "download_properties", "read_properties", "write_properties"]

BASE_URL = ("https://bossdb-open-data.s3.amazonaws.com/iarpa_microns/minnie/functional_data/"
            "digital_twin_properties/v2/")
KEY = ["session", "scan_idx", "unit_id"]
#: part -> columns it contributes (the readout's locations come from the .npy beside its units.csv)
PARTS = {
    "readout": ["readout_x", "readout_y"],
    "performance": ["cc_abs", "cc_max", "cc_norm"],
    "ori_dir_tuning": ["OSI", "DSI", "gOSI", "gDSI", "pref_ori", "pref_dir"],
    "anatomy": ["unit_x", "unit_y", "unit_z", "brain_area", "field"],
}
FILES = ["readout/units.csv", "readout/readout_locations.npy", "performance/units.csv", "ori_dir_tuning/units.csv",
         "anatomy/units.csv"]


def _read_part(folder: Path, part: str) -> pd.DataFrame | None:
    path = folder / part / "units.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    needed = KEY + (PARTS[part] if part != "readout" else [])
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; the published layout has {needed}")
    if part == "readout":
        loc_path = folder / "readout" / "readout_locations.npy"
        if not loc_path.exists():
            raise ValueError(f"{path} needs {loc_path} beside it (row i of units.csv ↔ location i)")
        locations = np.load(loc_path, allow_pickle=False)
        if locations.ndim != 2 or locations.shape != (len(table), 2):
            raise ValueError(f"{loc_path} has shape {locations.shape}; expected ({len(table)}, 2) to match "
                             f"the {len(table)} rows of {path}")
        table["readout_x"], table["readout_y"] = locations[:, 0], locations[:, 1]
        table["row"] = np.arange(len(table))
    if part == "ori_dir_tuning":
        angles = table["pref_dir"].to_numpy(dtype=float)
        if len(angles) >= 20 and np.nanmax(angles) <= 2 * np.pi + 1e-6:
            raise ValueError(f"pref_dir in {path} never exceeds 2π: it looks like radians (the older "
                             "functional_properties_v3_bcm convention); the published v2 tables are in degrees")
    if table.duplicated(KEY).any():
        raise ValueError(f"{path} lists some (session, scan_idx, unit_id) more than once")
    return table[KEY + (["row"] if part == "readout" else []) + PARTS[part]]


def read_properties(folder: str | os.PathLike, scan: tuple[int, int] | None = None) -> pd.DataFrame:
    """The published properties in ``folder`` (the layout above) joined on ``(session, scan_idx, unit_id)``;
    ``scan=(session, scan_idx)`` keeps one scan. Parts that are absent are simply missing columns."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"properties folder {root} does not exist; pass the folder holding readout/, "
                         "performance/, ori_dir_tuning/ and anatomy/ (or run download_properties)")
    tables = [t for t in (_read_part(root, p) for p in PARTS) if t is not None]
    if not tables:
        raise ValueError(f"{root} holds none of {[p + '/units.csv' for p in PARTS]}; is it the digital twin "
                         "properties v2 folder?")
    joined = tables[0]
    for t in tables[1:]:
        joined = joined.merge(t, on=KEY, how="outer")
    if scan is not None:
        session, scan_idx = (int(v) for v in scan)
        joined = joined[(joined["session"] == session) & (joined["scan_idx"] == scan_idx)]
        if joined.empty:
            raise ValueError(f"scan {session}-{scan_idx} is not in {root}; scans there: "
                             f"{sorted({(int(a), int(b)) for a, b in zip(tables[0].session, tables[0].scan_idx)})}")
    return joined.sort_values(KEY).reset_index(drop=True)


def write_properties(folder: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a table with ``session, scan_idx, unit_id`` and any of the published columns in the published layout
    (one sub-folder per part present); the inverse of :func:`read_properties`."""
    root = Path(folder)
    missing = [c for c in KEY if c not in table.columns]
    if missing:
        raise ValueError(f"the table lacks {missing}; it needs {KEY} plus published columns {PARTS}")
    table = table.sort_values(KEY).reset_index(drop=True)
    written = 0
    for part, columns in PARTS.items():
        if not set(columns) <= set(table.columns):
            continue
        (root / part).mkdir(parents=True, exist_ok=True)
        out = table[KEY] if part == "readout" else table[KEY + columns]
        with atomic_path(root / part / "units.csv") as tmp:
            out.to_csv(tmp, index=False)
        if part == "readout":
            with atomic_path(root / part / "readout_locations.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, table[columns].to_numpy(dtype=np.float32))
        written += 1
    if not written:
        raise ValueError(f"the table has none of the published column sets {PARTS}")
    return root


def download_properties(directory: str | os.PathLike | None = None, files: list[str] | None = None,
                        progress: bool = True) -> Path:
    """Download the published property files (default: all but the 203 MB readout weights and the 30 GB
    responses) into ``directory`` (default: the cache's ``microns-properties``). No published checksum exists, so
    the SHA-256 of the first download is recorded and every later call checks the files against it."""
    import pooch  # start-up time: pooch and requests load only when something is downloaded

    folder = cache_dir("microns-properties", directory)
    record_path = folder / "checksums.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    for name in files or FILES:
        if name not in FILES and name != "readout/readout_weights.npy":
            raise ValueError(f"unknown property file {name!r}; accepted: {FILES + ['readout/readout_weights.npy']}")
        target = folder / name
        known = record.get(name)
        try:
            path = pooch.retrieve(BASE_URL + name, known_hash=f"sha256:{known}" if known else None,
                                  fname=target.name, path=target.parent, progressbar=progress)
        except ValueError as exc:  # pooch's hash mismatch against the recorded first download
            raise ValueError(f"{target} no longer matches the SHA-256 recorded at its first download ({exc}); "
                             f"delete it (and its entry in {record_path}) to download again") from exc
        except Exception as exc:  # network failures come in many types
            raise ValueError(f"could not download {BASE_URL + name} ({type(exc).__name__}: {exc}). Offline? "
                             f"Fetch it elsewhere (e.g. `aws s3 sync --no-sign-request s3://bossdb-open-data/"
                             f"iarpa_microns/minnie/functional_data/digital_twin_properties/v2 <folder> --exclude "
                             f"'responses/*'`) and pass --properties <folder>") from exc
        if not known:
            record[name] = pooch.file_hash(path, alg="sha256")
    write_text_atomic(record_path, json.dumps(record, indent=1, sort_keys=True))
    return folder


def fingerprint(table: pd.DataFrame) -> str:
    """A short content hash of a properties table (goes into the comparison's provenance)."""
    return content_hash(table.to_csv(index=False))[:16]
