"""The one runner of condition experiments: condition videos (grey pre-blank, stimulus, grey post-blank) run through
any twin in batched ``predict`` calls, with progress, cancel and latency-shifted response windows.

Response window convention (documented once, used everywhere): a condition whose stimulus is on screen over
``[onset, offset)`` seconds is summarised by the mean response over ``[onset + latency, offset + latency)``,
i.e. the window is shifted by the response latency (default 100 ms). Condition videos start with a grey
pre-blank at least ``BURN_IN_FRAMES`` long so the recurrent network's start-up transient never falls in a
window, and end with a grey post-blank at least ``latency`` long so the shifted window stays inside the video.
All condition videos of one batch share the same grey pre-blank, so the twin's start-up work is the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..engine.contract import TwinLike
from ..stimuli.sequence import pad_with_grey
from .checks import check_positive

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` (condition videos) after every batch; raising stops the run."""

BURN_IN_FRAMES = 10  # published burn-in of the foundation model's exported responses
DEFAULT_LATENCY_S = 0.1
MAX_FRAMES_PER_CALL = 2400  # bounds memory: 2400 × 144 × 256 uint8 ≈ 88 MB per call plus the twin's own work


class Cancelled(Exception):
    """Raised by a run whose ``cancel`` event was set (checked between batches)."""


@dataclass(frozen=True)
class Timing:
    """Frame layout of a condition video: grey pre-blank, stimulus, grey post-blank (all in frames)."""

    pre: int
    stim: int
    post: int
    frame_rate: float

    @property
    def total(self) -> int:
        return self.pre + self.stim + self.post

    @classmethod
    def make(cls, duration_s: float, latency_s: float, frame_rate: float, pre_s: float = 0.5,
             post_s: float | None = None) -> "Timing":
        duration_s = check_positive("duration_s", duration_s)
        latency_s = check_positive("latency_s", latency_s, allow_zero=True)
        pre_s = check_positive("pre_s", pre_s, allow_zero=True)
        pre = max(int(round(pre_s * frame_rate)), BURN_IN_FRAMES)
        stim = int(round(duration_s * frame_rate))
        if stim < 1:
            raise ValueError(f"duration_s={duration_s} is shorter than one frame at {frame_rate} Hz")
        lat = int(np.ceil(latency_s * frame_rate - 1e-9))
        post = lat if post_s is None else max(lat, int(round(check_positive("post_s", post_s, True) * frame_rate)))
        return cls(pre, stim, post, float(frame_rate))

    def window(self, latency_s: float, onset_frame: int = 0, offset_frame: int | None = None) -> tuple[int, int]:
        """[start, stop) frames of the latency-shifted response window of a stimulus epoch (frames
        counted from the stimulus start)."""
        offset_frame = self.stim if offset_frame is None else offset_frame
        lat = int(round(latency_s * self.frame_rate))
        return self.pre + onset_frame + lat, self.pre + offset_frame + lat

    def pad(self, frames: np.ndarray) -> np.ndarray:
        """Surround stimulus frames [T, H, W] with the grey pre- and post-blank."""
        if frames.shape[0] != self.stim:
            raise ValueError(f"expected {self.stim} stimulus frames, got {frames.shape[0]}")
        return pad_with_grey(frames, self.pre, self.post)


def window_mean(responses: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Mean over time of responses [..., T, U] in frames [start, stop) -> [..., U]."""
    T = responses.shape[-2]
    if not (0 <= start < stop <= T):
        raise ValueError(f"response window [{start}, {stop}) frames is outside the {T}-frame video")
    return responses[..., start:stop, :].mean(axis=-2)


def _getter(videos: Sequence[np.ndarray] | Callable[[int], np.ndarray], n: int | None
            ) -> tuple[Callable[[int], np.ndarray], int]:
    if callable(videos) and not isinstance(videos, np.ndarray):
        if n is None:
            raise ValueError("n (number of conditions) is required when videos is a callable")
        return videos, int(n)
    return videos.__getitem__, len(videos) if n is None else int(n)


def run_conditions(twin: TwinLike, videos: Sequence[np.ndarray] | Callable[[int], np.ndarray], n: int | None = None,
                   units: np.ndarray | None = None, *, batch_size: int | None = None,
                   max_frames_per_call: int = MAX_FRAMES_PER_CALL, progress: ProgressCallback | None = None,
                   desc: str = "conditions", show_progress: bool = True,
                   reduce: Callable[[int, np.ndarray], np.ndarray] | None = None,
                   cancel: threading.Event | None = None, first_batch: int | None = None) -> np.ndarray:
    """Run N condition videos (each uint8 [T, H, W], all the same T) through ``twin.predict`` in batches.

    ``videos`` is a sequence or a callable ``i -> video`` (rendered lazily so memory stays bounded). Each call
    stacks up to ``batch_size`` videos (default: as many as fit in ``max_frames_per_call`` frames) into one
    [B, T, H, W] batch. Returns float32 [N, T, U], or, if ``reduce(i, response[T, U])`` is given, the stacked
    reductions (lets long experiments keep only window means). ``cancel`` (an Event) stops the run between
    batches with :class:`Cancelled`. ``first_batch`` (< ``batch_size``) makes the first call smaller, so a
    streaming display gets its first result sooner (it costs one more pass over the shared grey prefix).
    """
    if isinstance(progress, bool):  # progress=True/False means "show a bar or not", not a callback
        show_progress, progress = progress, None
    get, n = _getter(videos, n)
    if n < 1:
        raise ValueError("an experiment needs at least one condition video")
    first = np.asarray(get(0))
    T = first.shape[0]
    if batch_size is None:
        batch_size = max(1, max_frames_per_call // max(T, 1))
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    unit_arg = None if units is None else np.asarray(units)
    starts = list(range(0, n, batch_size))
    if first_batch is not None and 0 < int(first_batch) < min(batch_size, n):
        starts = [0] + list(range(int(first_batch), n, batch_size))
    out: list[np.ndarray] = []
    with tqdm(total=n, desc=desc, disable=not show_progress, leave=False) as bar:
        for b0, b1 in zip(starts, starts[1:] + [n]):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{desc} cancelled after {b0} of {n} conditions")
            idx = range(b0, b1)
            batch = np.stack([first if i == 0 else np.asarray(get(i)) for i in idx])
            if batch.shape[1] != T:
                raise ValueError("all condition videos of one experiment must have the same length")
            resp = np.asarray(twin.predict(batch, units=unit_arg), dtype=np.float32)
            if resp.ndim != 3 or resp.shape[:2] != batch.shape[:2]:
                raise ValueError(f"twin.predict returned shape {resp.shape} for a batch of shape {batch.shape}; "
                                 "the twin contract requires [N, T, U]")
            if reduce is not None:
                out.extend(np.asarray(reduce(i, r)) for i, r in zip(idx, resp))
            else:
                out.append(resp)
            bar.update(len(idx))
            if progress is not None:
                progress(idx.stop, n)
    return np.stack(out) if reduce is not None else np.concatenate(out, axis=0)
