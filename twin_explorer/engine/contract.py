"""The twin contract every part of twin_explorer relies on, and the input validation behind it.

Any object with these attributes and methods can be used by the experiments, the UI and the CLI:
the MICrONS twin (:class:`twin_explorer.engine.twin.Twin`), the demo twin and the synthetic mouse.

``predict(stimuli, perspectives=None, modulations=None, units=None) -> np.ndarray``
    stimuli uint8 [T, 144, 256] -> float32 [T, U]; a batch uint8 [N, T, 144, 256] -> [N, T, U].
    perspectives (eye position x, y) and modulations (pupil, running) are [T, 2] or [N, T, 2] or
    None (zeros, i.e. the standardised mean). ``units`` selects readouts (readout ids, or a boolean
    mask); None means all.
``response(video, perspectives=None, modulations=None, units=None) -> torch.Tensor``
    the same computation on a float tensor [N, T, 144, 256] in pixel units (0–255), differentiable
    with respect to ``video`` (used by MEI optimisation). Returns [N, T, U].
Attributes: ``id`` (str, for provenance), ``units`` (DataFrame indexed by readout_id), ``n_units``,
``frame_rate`` (30.0), ``frame_shape`` ((144, 256)), ``device`` (torch.device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..monitor import FRAME_SHAPE


@dataclass(frozen=True)
class TwinMetadata:
    """What a twin is, for provenance and for finding its ground truth.

    ``kind``: "demo", "microns", "synthetic" or "custom"; ``model_id``: a stable id of the weights (a hash
    or the published name); ``precision``: the numeric precision predictions are made in; ``trained_on``:
    for a twin trained on a synthetic mouse, that mouse (``mouse_seed``, ``n_neurons``, ...), else None;
    ``extra``: anything else the source recorded (training settings, scan)."""

    kind: str = "custom"
    model_id: str = ""
    precision: str = "float32"
    trained_on: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TwinLike(Protocol):
    """The twin contract (see the module docstring). ``truth()`` is the ground truth behind a twin made from
    or trained on a synthetic mouse (a DataFrame indexed by readout_id), or None for real mice."""

    id: str
    frame_rate: float
    frame_shape: tuple[int, int]
    metadata: TwinMetadata

    @property
    def n_units(self) -> int: ...

    @property
    def units(self) -> Any: ...

    def predict(self, stimuli: np.ndarray, perspectives: np.ndarray | None = None,
                modulations: np.ndarray | None = None, units: Any = None) -> np.ndarray: ...

    def truth(self) -> Any: ...


def validate_stimuli(stimuli: Any, frame_shape: tuple[int, int] = FRAME_SHAPE) -> tuple[np.ndarray, bool]:
    """Check a stimulus array and return it as uint8 [N, T, H, W] plus whether the input was batched.

    Accepted: uint8 [T, H, W] or [N, T, H, W]; also integer or float arrays whose values are whole
    numbers in 0–255 (they are converted losslessly). Anything else raises ValueError saying why.
    """
    if hasattr(stimuli, "detach"):  # a torch tensor
        stimuli = stimuli.detach().cpu().numpy()
    try:
        arr = np.asarray(stimuli)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"stimuli must be an array-like of frames, got {type(stimuli).__name__}") from exc
    H, W = frame_shape
    accepted = f"accepted: uint8 [T, {H}, {W}] or [N, T, {H}, {W}] with values 0–255"
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
                                   or arr.dtype == bool):
        raise ValueError(f"stimuli have dtype {arr.dtype}; {accepted}")
    if arr.ndim not in (3, 4):
        raise ValueError(f"stimuli have {arr.ndim} dimensions (shape {arr.shape}); {accepted}")
    if arr.shape[-2:] != (H, W):
        raise ValueError(f"stimulus frames are {arr.shape[-2]}×{arr.shape[-1]} pixels (shape {arr.shape}); "
                         f"{accepted}. Resize your video first, e.g. with twin_explorer.stimuli.")
    if arr.size == 0:
        raise ValueError(f"stimuli are empty (shape {arr.shape}); at least one frame is needed; {accepted}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"stimuli contain NaN or infinite values; {accepted}")
            if not np.all(arr == np.round(arr)):
                raise ValueError("stimuli are floats with fractional values; the twin takes whole grey levels. "
                                 f"Convert with np.clip(np.round(x), 0, 255).astype(np.uint8); {accepted}")
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > 255:
            raise ValueError(f"stimulus values span {lo}…{hi}, outside 0–255; {accepted}")
        arr = arr.astype(np.uint8)
    batched = arr.ndim == 4
    if not batched:
        arr = arr[None]
    return arr, batched


def validate_behaviour(name: str, values: Any, n: int, t: int, batched: bool) -> np.ndarray:
    """Check perspectives/modulations and return float32 [N, T, 2] (zeros when None)."""
    if values is None:
        return np.zeros((n, t, 2), dtype=np.float32)
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    accepted = f"accepted: None, [T, 2] or [N, T, 2] real numbers with T = {t}" + (f", N = {n}" if batched else "")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} have dtype {arr.dtype}; {accepted}")
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        if arr.shape[1] != 2:
            raise ValueError(f"{name} have shape {arr.shape}; {accepted}")
        arr = np.broadcast_to(arr[None], (n,) + arr.shape)
    elif arr.ndim == 3:
        if arr.shape[2] != 2 or arr.shape[0] != n:
            raise ValueError(f"{name} have shape {arr.shape} but the batch has {n} videos; {accepted}")
    else:
        raise ValueError(f"{name} have {arr.ndim} dimensions (shape {arr.shape}); {accepted}")
    if arr.shape[1] != t:
        raise ValueError(f"{name} cover {arr.shape[1]} frames but the stimuli have {t}; lengths must match; {accepted}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contain NaN or infinite values; {accepted}")
    return np.ascontiguousarray(arr)
