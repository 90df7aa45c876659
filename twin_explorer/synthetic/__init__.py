"""The synthetic mouse: a ground-truth neuron population obeying the twin contract, with known tuning and
noisy recordings, for validating experiments and training the demo twin."""

from .constants import MODEL_VERSION
from .mouse import SyntheticMouse

__all__ = ["MODEL_VERSION", "SyntheticMouse"]
