"""The simplest stimuli: uniform `Grey` and a full-field `Flash`."""

from __future__ import annotations

from typing import Any

import numpy as np
import param

from .base import AMPLITUDE, GREY, Stimulus, duration_param


class Grey(Stimulus):
    """A uniform screen at ``level`` (default 128, the mean luminance of every other stimulus)."""

    level = param.Integer(default=GREY, bounds=(0, 255), doc="Grey level, 0..255.")
    duration_s = duration_param(1.0)

    def _render(self) -> np.ndarray:
        return self._grey(level=self.level)

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [{"onset_frame": 0, "offset_frame": self.n_frames, "level": int(self.level)}]


class Flash(Stimulus):
    """A full-field flash: the whole screen at ``128 ± 127·contrast`` (on = bright, off = dark)."""

    polarity = param.Selector(default="on", objects=["on", "off"], doc="Bright (on) or dark (off) flash.")
    contrast = param.Number(default=1.0, bounds=(0, 1), doc="Flash contrast relative to grey 128.")
    duration_s = duration_param(0.5)

    @property
    def level(self) -> int:
        sign = 1 if self.polarity == "on" else -1
        return int(round(GREY + sign * AMPLITUDE * self.contrast))

    def _render(self) -> np.ndarray:
        return self._grey(level=self.level)

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [
            {"onset_frame": 0, "offset_frame": self.n_frames, "polarity": 1 if self.polarity == "on" else -1,
             "contrast": float(self.contrast), "level": self.level}
        ]
