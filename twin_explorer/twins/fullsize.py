"""Full-size stand-ins for the published MICrONS bundle: random weights at the published shapes and unit counts.

:func:`make_bundle` writes a folder in the published layout (spec section 11) that :func:`.microns.load_microns`
loads like the real download: ``params_core.pt`` (the ``core.*`` keys), ``params_{session}_{scan_idx}.pt`` (all
other keys of one scan), ``scans.csv`` (session, scan_idx, units, data_id) and ``units.csv`` (session, scan_idx,
unit_id, readout_id), all weights saved as plain tensor dicts so ``torch.load(weights_only=True)`` reads them.
Benchmarks and tests use it to run at the published scale without the 222 MB download. The weights are random:
responses mean nothing biologically, only their cost and shapes are those of the published twin.

Published unit counts (:data:`PUBLISHED_UNITS`). The 13 scans hold 104,171 units in all (the digital-twin
properties v2, ``/work/shared/research/paper-facts.md`` section 4 and ``shared/spec/fnn-architecture.md`` section
11). Known per scan: 8-5 has 9,941 (rows 73,272–83,212 of the properties' ``readout/units.csv``, transcribed in
``shared/fixtures/microns-real/vijk777+fnn/transcribed_from_notebook_output/readout__units.head_tail.csv``) and
4-7 has 7,493 (paper-facts, from ``tinker.ipynb``). Derived from those row numbers: the eight scans 5-6 … 7-5
hold 73,272 − 7,493 = 65,779 units together and 9-3, 9-4, 9-6 hold 104,171 − 83,213 = 20,958. Their individual
counts are not public in our material, so they are split evenly (:data:`EXACT_UNIT_COUNTS` lists the exact ones);
every total above is kept exactly.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..model import Network, NetworkConfig
from ..store import atomic_path
from .microns import PUBLISHED_SCANS

TOTAL_PUBLISHED_UNITS = 104_171
#: scans whose unit count is published; the others share the derived totals evenly (module docstring)
EXACT_UNIT_COUNTS = {(4, 7): 7_493, (8, 5): 9_941}


def _split_evenly(total: int, scans: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
    base, extra = divmod(total, len(scans))
    return {scan: base + (i < extra) for i, scan in enumerate(scans)}


PUBLISHED_UNITS: dict[tuple[int, int], int] = {
    (4, 7): 7_493,
    **_split_evenly(73_272 - 7_493, PUBLISHED_SCANS[1:9]),  # 5-6 … 7-5: rows 7,493–73,271
    (8, 5): 9_941,
    **_split_evenly(TOTAL_PUBLISHED_UNITS - 83_213, PUBLISHED_SCANS[10:]),  # 9-3, 9-4, 9-6: rows 83,213–104,170
}
assert sum(PUBLISHED_UNITS.values()) == TOTAL_PUBLISHED_UNITS and list(PUBLISHED_UNITS) == PUBLISHED_SCANS


def bundle_manifest(n_units: int) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Key -> (shape, dtype) of the whole state dict of one scan with ``n_units`` readouts, computed on torch's
    meta device: nothing is allocated, so the published sizes can be checked for every scan cheaply."""
    with torch.device("meta"):
        network = Network(NetworkConfig.microns(n_units))
    return {k: (tuple(v.shape), v.dtype) for k, v in network.state_dict().items()}


def parse_scans(scans: str | list | None) -> list[tuple[int, int]]:
    """``None``/"8-5" -> [(8, 5)]; "all" -> the 13 published scans; "4-7,8-5" or [(4, 7), "8-5"] -> those."""
    if scans is None:
        return [(8, 5)]
    if isinstance(scans, str):
        if scans.strip().lower() == "all":
            return list(PUBLISHED_SCANS)
        scans = [s for s in scans.split(",") if s.strip()]
    out = []
    for scan in scans:
        try:
            session, scan_idx = (int(x) for x in (scan.split("-") if isinstance(scan, str) else scan))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"scan {scan!r} is not 'session-scan_idx' (e.g. '8-5') or a (session, scan_idx) "
                             f"pair; accepted: 'all', '8-5', '4-7,8-5'") from exc
        out.append((session, scan_idx))
    if not out or len(set(out)) != len(out):
        raise ValueError(f"scans must name at least one scan, each once; got {scans!r}")
    return out


def randomize(network: Network, generator: torch.Generator) -> None:
    """Make every path contribute (a freshly built network has zero readouts and input layers, spec pitfall 18),
    in the spirit of the fixture weights (shared/fixtures/fnn/README.md section 2)."""
    def normal(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(torch.randn(t.shape, generator=generator) * std + mean)

    with torch.no_grad():
        for p in network.modulation.mlp.linears[0].weights:
            normal(p, 0.8)
        normal(network.perspective.mlp.linears[0].weights[0], 0.8)
        for p in network.perspective.mlp.linears[-1].gains:
            normal(p, 0.02, 0.12)
        for p in network.readout.feature.weights:
            normal(p, 3 / math.sqrt(p.shape[-1]))
        for p in network.readout.biases:
            normal(p, 0.3)
        normal(network.readout.position.mu, 0.8)
        for p in network.core.recurrent.scales:
            p.copy_(20 * torch.exp(0.3 * torch.randn(p.shape, generator=generator)))


def _unit_ids(n_units: int, rng: np.random.Generator) -> np.ndarray:
    """Increasing, non-consecutive unit ids starting near 1, as in the published tables (8-5: 9,941 up to 10,575)."""
    pool = np.arange(1, int(n_units * 1.064) + 2)
    return np.sort(rng.choice(pool, n_units, replace=False))


def _save(state: dict[str, torch.Tensor], path: Path) -> None:
    plain = OrderedDict((k, v.detach().clone().contiguous()) for k, v in state.items())
    with atomic_path(path) as tmp:
        torch.save(plain, tmp)


def make_bundle(directory: str | os.PathLike, scans: str | list | None = None,
                units: int | dict[tuple[int, int], int] | None = None, seed: int = 0) -> Path:
    """Write a random-weight bundle in the published layout into ``directory``; returns the folder.

    ``scans``: "8-5" (default), "all" (the 13 published scans) or a list; ``units``: None for the published
    count of each scan (:data:`PUBLISHED_UNITS`), an int for every scan (small bundles for tests), or a dict per
    scan. The core is shared by all scans, as in the published bundle. Load a scan with
    ``twin_explorer.load_twin("microns", session=8, scan_idx=5, directory=folder)``."""
    chosen = parse_scans(scans)
    counts = {}
    for scan in chosen:
        n = units.get(scan) if isinstance(units, dict) else units
        n = PUBLISHED_UNITS.get(scan) if n is None else n
        if n is None or int(n) != n or n < 1:
            raise ValueError(f"scan {scan[0]}-{scan[1]} needs a positive unit count (it is not a published scan, "
                             f"so pass units=); got {n!r}")
        counts[scan] = int(n)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, unit_rows = [], []
    for i, ((session, scan_idx), n) in enumerate(counts.items()):
        torch.manual_seed(seed)  # the same core for every scan (it is built with the network)
        network = Network(NetworkConfig.microns(n))
        randomize(network, torch.Generator().manual_seed(seed * 1_000_003 + 7919 * (i + 1)))
        state = network.state_dict()
        if i == 0:
            _save({k: v for k, v in state.items() if k.startswith("core.")}, folder / "params_core.pt")
        _save({k: v for k, v in state.items() if not k.startswith("core.")},
              folder / f"params_{session}_{scan_idx}.pt")
        data_id = hashlib.md5(f"twin_explorer synthetic bundle {seed} {session}-{scan_idx}".encode()).hexdigest()
        rows.append({"session": session, "scan_idx": scan_idx, "units": n, "data_id": data_id})
        unit_rows.append(pd.DataFrame({"session": session, "scan_idx": scan_idx, "unit_id": _unit_ids(n, rng),
                                       "readout_id": np.arange(n)}))
    for name, table in (("scans.csv", pd.DataFrame(rows)), ("units.csv", pd.concat(unit_rows, ignore_index=True))):
        with atomic_path(folder / name) as tmp:
            table.to_csv(tmp, index=False)
    (folder / "README.md").write_text(
        "Random-weight stand-in for the published MICrONS foundation-model bundle, made by "
        f"twin_explorer.twins.fullsize.make_bundle(seed={seed}). Published layout and shapes; the weights and "
        "unit ids are random and mean nothing biologically.\n")
    return folder
