"""Saving and loading trained twins: ``model.safetensors`` + ``config.json`` + ``units.csv`` in one folder.

:func:`load_demo_twin` is what ``twin_explorer.load_twin()`` / ``load_twin("demo")`` calls: it builds the
network from ``assets/demo_twin/config.json``, loads its weights and wraps it in an engine ``Twin``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..model import Network, NetworkConfig

DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "demo_twin"
UNIT_KEY_COLUMNS = ("session", "scan_idx", "unit_id")


def save_network(net: Network, directory: str | Path, units: pd.DataFrame, metadata: dict | None = None) -> Path:
    """Write ``net`` (weights as safetensors, config as JSON) and its units table (indexed by readout_id)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    missing = set(UNIT_KEY_COLUMNS) - set(units.columns)
    if missing:
        raise ValueError(f"units table lacks columns {sorted(missing)}; needs {list(UNIT_KEY_COLUMNS)}")
    if len(units) != net.config.units:
        raise ValueError(f"units table has {len(units)} rows, the network {net.config.units} readouts")
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "twin_explorer"})
    config = {"network": net.config.to_dict(), "metadata": metadata or {}}
    (folder / "config.json").write_text(json.dumps(config, indent=2, default=str))
    table = units.copy()
    table.index.name = "readout_id"
    table.to_csv(folder / "units.csv")
    return folder


def load_network(directory: str | Path) -> tuple[Network, pd.DataFrame, dict]:
    """(network, units table indexed by readout_id, metadata) from a folder written by :func:`save_network`."""
    folder = Path(directory)
    for name in ("model.safetensors", "config.json", "units.csv"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} is missing; a twin folder needs model.safetensors, "
                                    "config.json and units.csv (train one with `twin-explorer train`)")
    config = json.loads((folder / "config.json").read_text())
    net = Network(NetworkConfig.from_dict(config["network"]))
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    units = pd.read_csv(folder / "units.csv", index_col="readout_id")
    return net, units, config.get("metadata", {})


def load_demo_twin(directory: str | Path | None = None, device: str | torch.device | None = None,
                   **twin_options: Any):
    """The demo twin (or any twin saved with :func:`save_network` in ``directory``) as an engine ``Twin``."""
    from ..engine.twin import Twin

    folder = Path(directory) if directory is not None else DEMO_DIR
    net, units, metadata = load_network(folder)
    twin_options.setdefault("id", metadata.get("id", "demo"))
    return Twin(net, units, device=device, metadata=metadata, **twin_options)
