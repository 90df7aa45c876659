"""Stimulus library: parametric and natural visual stimuli as uint8 [T, 144, 256] frames at 30 Hz.

Every family is a ``param.Parameterized`` subclass of `Stimulus` with parameters in physical units drawn
through the shared monitor model, ``render()`` (deterministic for ``seed``), ``epochs`` (onset/offset in
seconds and frames plus condition labels), ``duration`` and ``params_dict()``. Mean luminance is grey 128 and
contrast c draws ``128 + 127·c·wave``. Directions use the v2 convention (0° = rightward motion, CCW).
"""

from __future__ import annotations

from typing import Any

from ..monitor import Monitor

from .base import GREY, MAX_DURATION_S, Stimulus, aperture_mask, angular_distance_deg
from .dots import GaussianDots, SparseNoise
from .gratings import DirectionSeries, DriftingGrating, Plaid
from .natural import NaturalClip, make_natural_video
from .noise import Monet2, Trippy
from .rdk import RandomDotKinematogram
from .sequence import Sequence
from .simple import Flash, Grey
from .video import VideoFile, read_video, save_mp4, save_npy

FAMILIES: dict[str, type[Stimulus]] = {
    cls.__name__: cls
    for cls in (
        DriftingGrating, Plaid, DirectionSeries, GaussianDots, SparseNoise, RandomDotKinematogram, Monet2, Trippy,
        NaturalClip, Flash, Grey, VideoFile, Sequence,
    )
}

#: Families offered in interactive menus (the designer), in menu order: those that render quickly from defaults.
INTERACTIVE_FAMILIES: tuple[str, ...] = ("DriftingGrating", "Plaid", "GaussianDots", "SparseNoise",
                                         "RandomDotKinematogram", "Monet2", "Trippy", "Flash", "Grey")


def stimulus_from_params(params: dict[str, Any]) -> Stimulus:
    """Rebuild a stimulus from ``Stimulus.params_dict()`` output (provenance round trip)."""
    d = dict(params)
    family = d.pop("family", None)
    if family not in FAMILIES:
        raise ValueError(f"unknown stimulus family {family!r}; known: {sorted(FAMILIES)}")
    if isinstance(d.get("monitor"), dict):
        d["monitor"] = Monitor(**d["monitor"])
    if family == "Sequence":
        d["items"] = [stimulus_from_params(x) for x in d.get("items", [])]
    for key in ("aperture", "az_range", "el_range"):
        if isinstance(d.get(key), list):
            d[key] = tuple(d[key])
    return FAMILIES[family](**d)


__all__ = [
    "Stimulus", "Sequence", "DriftingGrating", "Plaid", "DirectionSeries", "GaussianDots", "SparseNoise",
    "RandomDotKinematogram", "Monet2", "Trippy", "NaturalClip", "Flash", "Grey", "VideoFile",
    "make_natural_video", "read_video", "save_mp4", "save_npy", "stimulus_from_params", "FAMILIES", "INTERACTIVE_FAMILIES",
    "aperture_mask", "angular_distance_deg", "GREY", "MAX_DURATION_S",
]
