"""Trained twins on disk (the demo twin's format): ``model.safetensors`` + ``config.json`` + ``units.csv`` in one folder.

``config.json`` holds ``{"network": NetworkConfig, "metadata": {...}}``; the metadata is free-form JSON written by
training (``id``, ``trained_on`` — the synthetic mouse's recording spec —, training settings, scores). Loading turns
it into the twin contract's :class:`TwinMetadata`: ``trained_on`` as is, everything else in ``extra``, and a twin
trained on a synthetic mouse gets that mouse's ground truth as its ``truth()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..engine.contract import TwinMetadata
from ..engine.twin import Twin
from ..model import Network, NetworkConfig
from ..paths import bundled
from ..store import content_hash
from .synthetic_mouse import truth_provider

UNIT_KEY_COLUMNS = ("session", "scan_idx", "unit_id")
TWIN_FILES = ("model.safetensors", "config.json", "units.csv")


def demo_dir() -> Path:
    """The shipped demo twin's folder (inside the installed package, or the checkout's ``assets/demo_twin``)."""
    return bundled("demo_twin")


def demo_available() -> bool:
    """Whether the demo twin's weights are present."""
    try:
        return (demo_dir() / "model.safetensors").exists()
    except FileNotFoundError:
        return False


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


def _check_folder(folder: Path) -> None:
    for name in TWIN_FILES:
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} is missing; a twin folder needs model.safetensors, "
                                    "config.json and units.csv (train one with `twin-explorer train`)")


def load_network(directory: str | Path) -> tuple[Network, pd.DataFrame, dict]:
    """(network, units table indexed by readout_id, metadata as written) from a folder written by :func:`save_network`."""
    folder = Path(directory)
    _check_folder(folder)
    config = json.loads((folder / "config.json").read_text())
    net = Network(NetworkConfig.from_dict(config["network"]))
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    units = pd.read_csv(folder / "units.csv", index_col="readout_id")
    return net, units, config.get("metadata", {})


def twin_metadata(metadata: dict, model_id: str, precision: str = "float32") -> TwinMetadata:
    """The contract's metadata of a trained twin from its config.json ``metadata`` (kept whole in ``extra``)."""
    trained_on = metadata.get("trained_on")
    if trained_on is not None and not isinstance(trained_on, dict):
        raise ValueError(f"metadata.trained_on must be a JSON object (the recording spec), got {trained_on!r}")
    extra = {k: v for k, v in metadata.items() if k != "trained_on"}
    return TwinMetadata(kind="demo", model_id=model_id, precision=precision, trained_on=trained_on, extra=extra)


def weights_id(directory: str | Path) -> str:
    """A stable id of a twin folder's weights: the first 16 hex digits of their sha256."""
    return content_hash((Path(directory) / "model.safetensors").read_bytes())[:16]


def read_metadata(directory: str | Path) -> TwinMetadata:
    """The contract's metadata of a twin folder without building its network (e.g. what it was trained on)."""
    folder = Path(directory)
    _check_folder(folder)
    metadata = json.loads((folder / "config.json").read_text()).get("metadata", {})
    return twin_metadata(metadata, weights_id(folder))


def load_demo_twin(directory: str | Path | None = None, device: str | torch.device | None = None,
                   **twin_options: Any) -> Twin:
    """The demo twin (or any twin saved with :func:`save_network` in ``directory``) as an engine ``Twin``."""
    folder = Path(directory) if directory is not None else demo_dir()
    net, units, metadata = load_network(folder)
    twin_options.setdefault("id", metadata.get("id", "demo"))
    meta = twin_metadata(metadata, weights_id(folder), twin_options.get("precision", "float32"))
    return Twin(net, units, device=device, metadata=meta, truth=truth_provider(meta.trained_on, units.index),
                **twin_options)
