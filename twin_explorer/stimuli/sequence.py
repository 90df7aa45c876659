"""`Sequence`: concatenates stimuli with grey gaps and shifts their epochs accordingly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import param

from ..monitor import FRAME_RATE
from .base import EPOCH_COLUMNS, GREY, Stimulus, make_epochs


def seconds_to_frames(seconds: float) -> int:
    """Frames in a (possibly zero) gap of ``seconds``."""
    return int(round(float(seconds) * FRAME_RATE))


def pad_with_grey(frames: np.ndarray, pre: int, post: int) -> np.ndarray:
    """uint8 frames [T, H, W] with ``pre`` grey frames before and ``post`` after: the one grey padding of the
    package (sequences and experiment condition videos both use it)."""
    frames = np.asarray(frames)
    out = np.full((int(pre) + frames.shape[0] + int(post),) + frames.shape[1:], GREY, dtype=np.uint8)
    out[int(pre):int(pre) + frames.shape[0]] = frames
    return out


class Sequence(Stimulus):
    """Stimuli played one after the other: ``pre_s`` grey, item, ``gap_s`` grey, item, ..., ``post_s`` grey.

    ``epochs`` holds every item's epochs shifted to the sequence's clock, with an ``item`` column (position in
    the sequence) and the item's ``stimulus`` family; grey gaps get no epoch rows.
    """

    items = param.List(default=[], item_type=Stimulus, doc="Stimuli to play in order.")
    gap_s = param.Number(default=0.5, bounds=(0, 60), doc="Grey (128) between consecutive items, seconds.")
    pre_s = param.Number(default=0.0, bounds=(0, 60), doc="Grey before the first item, seconds.")
    post_s = param.Number(default=0.0, bounds=(0, 60), doc="Grey after the last item, seconds.")

    def __init__(self, items: list[Stimulus] | None = None, **params: Any) -> None:
        if items is not None:
            params["items"] = list(items)
        for i, it in enumerate(params.get("items", [])):
            if not isinstance(it, Stimulus):
                raise ValueError(f"Sequence item {i} is a {type(it).__name__}; items must be Stimulus objects")
        if params.get("items") and "monitor" not in params:
            params["monitor"] = params["items"][0].monitor
        super().__init__(**params)
        if not self.items:
            raise ValueError("Sequence needs at least one stimulus in items")
        for i, it in enumerate(self.items):
            if it.monitor != self.monitor:
                raise ValueError(f"Sequence item {i} ({type(it).__name__}) uses a different monitor than the sequence")

    def _layout(self) -> list[int]:
        """Start frame of each item."""
        starts, t = [], seconds_to_frames(self.pre_s)
        gap = seconds_to_frames(self.gap_s)
        for i, it in enumerate(self.items):
            starts.append(t)
            t += it.n_frames + (gap if i < len(self.items) - 1 else 0)
        return starts

    @property
    def n_frames(self) -> int:
        return self._layout()[-1] + self.items[-1].n_frames + seconds_to_frames(self.post_s)

    def _render(self) -> np.ndarray:
        starts = self._layout()
        pre, post = starts[0], seconds_to_frames(self.post_s)
        body = np.full((self.n_frames - pre - post, *self.frame_shape), GREY, dtype=np.uint8)
        for start, it in zip(starts, self.items):  # grey gaps between items stay grey
            body[start - pre : start - pre + it.n_frames] = it.render()
        return pad_with_grey(body, pre, post)

    @property
    def epochs(self) -> pd.DataFrame:
        parts = []
        for i, (start, it) in enumerate(zip(self._layout(), self.items)):
            ep = it.epochs.reset_index(drop=True)
            ep["onset_frame"] += start
            ep["offset_frame"] += start
            ep["item"] = i  # nested sequences are labelled by their position in this one
            parts.append(ep.drop(columns=["onset", "offset"]))
        df = pd.concat(parts, ignore_index=True, sort=False)
        return make_epochs(df.to_dict("records"), "Sequence")

    def params_dict(self) -> dict[str, Any]:
        d = super().params_dict()
        d["items"] = [it.params_dict() for it in self.items]
        return d


__all__ = ["Sequence", "seconds_to_frames", "pad_with_grey", "EPOCH_COLUMNS"]
