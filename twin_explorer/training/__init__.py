"""Training twins on synthetic-mouse recordings: the demo twin, its accuracy report, adapting to a new mouse, and a
foundation core shared by several mice (:mod:`.foundation`).

Trained twins are saved and loaded in the demo twin's format, :mod:`twin_explorer.twins.demo`. The training loop is
``twin_explorer.training.train.train`` (the package attribute ``train`` is that module)."""

from .data import RecordingCache, RecordingSpec
from .train import TrainConfig, demo_network_config, train_twin

__all__ = ["RecordingCache", "RecordingSpec", "TrainConfig", "demo_network_config", "train_twin"]
