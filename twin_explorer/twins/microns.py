"""Twins of real mice: the published MICrONS weight bundle, download (pooch, md5-checked, unzipped once) and loading.

Files after extraction (spec 11): ``params_core.pt`` (the shared core), ``params_{session}_{scan_idx}.pt``
(perspective, modulation and readout of one scan), ``scans.csv`` and ``units.csv``. Weights are read
with ``torch.load(weights_only=True)``: plain tensors only, never pickled code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..engine.contract import TwinMetadata
from ..engine.twin import Twin
from ..model import Network, NetworkConfig
from ..paths import cache_dir

ARCHIVE_URL = ("https://bossdb-open-data.s3.amazonaws.com/iarpa_microns/minnie/functional_data/foundation_model/"
               "foundational_model_weights_and_metadata_v1.zip")
ARCHIVE_MD5 = "58fcac4b31ad2902c81e339432cec787"
ARCHIVE_NAME = "foundational_model_weights_and_metadata_v1.zip"
README_URL = ("https://bossdb-open-data.s3.amazonaws.com/iarpa_microns/minnie/functional_data/foundation_model/"
              "readme_v2.md")
PUBLISHED_SCANS = [(4, 7), (5, 6), (5, 7), (6, 2), (6, 4), (6, 6), (6, 7), (7, 3), (7, 5), (8, 5), (9, 3), (9, 4),
                   (9, 6)]


class BundleError(ValueError):
    """A bundle folder or file that cannot be used; the message says what and how to fix it."""


def bundle_dir(directory: str | os.PathLike | None = None) -> Path:
    """Where the MICrONS bundle lives: ``directory``, else the cache folder's ``microns`` (see :mod:`..paths`)."""
    return cache_dir("microns", directory)


def download_microns(directory: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Download and unzip the published bundle (about 222 MB) once; returns the folder holding its files.

    The archive's md5 is checked. Offline, a manually downloaded archive placed at
    ``<folder>/foundational_model_weights_and_metadata_v1.zip`` is verified and unzipped instead.
    """
    import pooch  # start-up time: pooch and requests load only when something is downloaded

    folder = bundle_dir(directory)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "scans.csv").exists() and (folder / "params_core.pt").exists():
        return folder
    try:
        archive = pooch.retrieve(ARCHIVE_URL, known_hash=f"md5:{ARCHIVE_MD5}", fname=ARCHIVE_NAME, path=folder,
                                 progressbar=progress)
    except ValueError as exc:  # pooch's hash mismatch
        raise BundleError(f"the MICrONS archive in {folder} failed its md5 check ({exc}). Delete "
                          f"{folder / ARCHIVE_NAME} and download again.") from exc
    except Exception as exc:  # network failures come in many types
        raise BundleError(
            f"could not download the MICrONS bundle ({type(exc).__name__}: {exc}).\n"
            f"Offline? Download {ARCHIVE_URL}\n(md5 {ARCHIVE_MD5}) on another machine and place it at\n"
            f"  {folder / ARCHIVE_NAME}\nthen run `twin-explorer download` again (it verifies and unzips it), or "
            f"unzip it yourself into {folder}.") from exc
    extract(archive, folder)
    try:
        pooch.retrieve(README_URL, known_hash=None, fname="README.md", path=folder, progressbar=False)
    except Exception:  # the companion readme is optional
        pass
    return folder


def extract(archive: str | os.PathLike, folder: Path) -> None:
    """Unzip the archive flat into ``folder`` (the files sit at the top level of the published zip)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                name = Path(member.filename).name
                if member.is_dir() or not name:
                    continue
                with zf.open(member) as src, open(folder / name, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{archive} is not a valid zip archive; delete it and download again") from exc


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A dict of tensors from a ``.pt`` file, refusing anything that is not plain tensors."""
    if not path.exists():
        raise BundleError(f"missing bundle file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BundleError(f"{path} holds objects other than plain tensors and was refused (weights-only "
                          f"loading; it may be malicious or not a twin weight file): {exc}") from exc
    except Exception as exc:  # torch raises many types for damaged files
        raise BundleError(f"{path} could not be read as a torch weight file (corrupt or truncated?): {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BundleError(f"{path} does not hold a dict of tensors (got {type(state).__name__})")
    return dict(state)


def read_scans(folder: Path) -> pd.DataFrame:
    path = folder / "scans.csv"
    if not path.exists():
        raise BundleError(f"no scans.csv in {folder}: is this the unzipped MICrONS bundle? Run "
                          f"`twin-explorer download` or pass directory=<folder with params_core.pt>")
    scans = pd.read_csv(path)
    missing = {"session", "scan_idx", "units"} - set(scans.columns)
    if missing:
        raise BundleError(f"{path} lacks columns {sorted(missing)}")
    return scans


def available_scans(directory: str | os.PathLike | None = None) -> list[tuple[int, int]]:
    """(session, scan_idx) pairs listed in the bundle's scans.csv (empty when no bundle is present)."""
    folder = bundle_dir(directory)
    if not (folder / "scans.csv").exists():
        return []
    scans = read_scans(folder)
    return [(int(a), int(b)) for a, b in zip(scans["session"], scans["scan_idx"])]


def scan_unit_counts(directory: str | os.PathLike | None = None) -> dict[tuple[int, int], int]:
    """Units per (session, scan_idx) as the bundle's scans.csv lists them (empty when no bundle is present)."""
    folder = bundle_dir(directory)
    if not (folder / "scans.csv").exists():
        return {}
    scans = read_scans(folder)
    return {(int(a), int(b)): int(n) for a, b, n in zip(scans["session"], scans["scan_idx"], scans["units"])}


def load_microns(session: int, scan_idx: int, directory: str | os.PathLike | None = None,
                 device: str | None = None, **twin_options: Any) -> Twin:
    """The published twin of one scan as a :class:`~twin_explorer.engine.twin.Twin`."""
    folder = bundle_dir(directory)
    if not folder.is_dir():
        raise BundleError(f"bundle folder {folder} does not exist; run `twin-explorer download` or pass the "
                          f"folder holding params_core.pt, params_<session>_<scan_idx>.pt, scans.csv and units.csv")
    scans = read_scans(folder)
    row = scans[(scans["session"] == session) & (scans["scan_idx"] == scan_idx)]
    if row.empty:
        listed = ", ".join(f"({a}, {b})" for a, b in zip(scans["session"], scans["scan_idx"]))
        raise BundleError(f"scan (session={session}, scan_idx={scan_idx}) is not in {folder / 'scans.csv'}; "
                          f"available: {listed}")
    n_units = int(row["units"].iloc[0])
    state = load_state_file(folder / "params_core.pt")
    state.update(load_state_file(folder / f"params_{session}_{scan_idx}.pt"))
    mu = state.get("readout.position.mu")
    if mu is not None and mu.shape[0] != n_units:
        raise BundleError(f"scans.csv says scan {session}-{scan_idx} has {n_units} units but its weights have "
                          f"{mu.shape[0]} readouts")
    network = Network(NetworkConfig.microns(n_units))
    try:
        result = network.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise BundleError(f"weights in {folder} do not fit the MICrONS network: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise BundleError(f"weights in {folder} do not match the MICrONS network: missing keys "
                          f"{result.missing_keys[:5]}{'…' if len(result.missing_keys) > 5 else ''}, unexpected keys "
                          f"{result.unexpected_keys[:5]}{'…' if len(result.unexpected_keys) > 5 else ''}")
    units = read_units(folder, session, scan_idx, n_units)
    data_id = str(row["data_id"].iloc[0]) if "data_id" in row else ""
    name = f"microns-{session}-{scan_idx}"
    metadata = TwinMetadata(kind="microns", model_id=name, trained_on=None,
                            extra={"source": str(folder), "data_id": data_id, "session": int(session),
                                   "scan_idx": int(scan_idx)})
    return Twin(network, units, id=name, device=device, metadata=metadata, **twin_options)


def read_units(folder: Path, session: int, scan_idx: int, n_units: int) -> pd.DataFrame:
    path = folder / "units.csv"
    if not path.exists():
        raise BundleError(f"missing {path}")
    units = pd.read_csv(path)
    units = units[(units["session"] == session) & (units["scan_idx"] == scan_idx)]
    if len(units) != n_units:
        raise BundleError(f"units.csv has {len(units)} rows for scan {session}-{scan_idx}, scans.csv says {n_units}")
    units = units.set_index("readout_id").sort_index()
    if not np.array_equal(units.index.to_numpy(), np.arange(n_units)):
        raise BundleError(f"readout_id of scan {session}-{scan_idx} in {path} must be 0..{n_units - 1}")
    return units
