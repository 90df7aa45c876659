"""Prediction engine: the twin contract, device choice, batched/streamed execution and caching."""

from .contract import TwinLike, validate_behaviour, validate_stimuli

__all__ = ["TwinLike", "validate_stimuli", "validate_behaviour"]
