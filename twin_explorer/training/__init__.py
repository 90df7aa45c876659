"""Training twins on synthetic-mouse recordings: the demo twin, its accuracy report, adapting to a new mouse."""

from .checkpoint import load_demo_twin, load_network, save_network
from .data import RecordingCache, RecordingSpec
from .train import TrainConfig, demo_network_config, train

__all__ = ["RecordingCache", "RecordingSpec", "TrainConfig", "demo_network_config", "train", "load_demo_twin",
           "load_network", "save_network"]
