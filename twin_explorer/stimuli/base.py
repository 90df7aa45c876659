"""The `Stimulus` base class and helpers every stimulus family shares.

A stimulus is a ``param.Parameterized`` object with parameters in physical units (degrees, cycles/degree,
Hz, seconds, contrast) that renders uint8 frames ``[T, 144, 256]`` at 30 Hz and describes itself with an
``epochs`` table (one row per condition: onset/offset in seconds and frames, plus condition labels), so that
experiments align responses without guessing.

Luminance convention: the mean (grey) level is 128; a pattern of contrast ``c`` and unit amplitude ``w`` in
[-1, 1] is drawn as ``128 + 127·c·w``, so contrast 1 spans 1..255 and never clips.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import param

from ..monitor import DEFAULT_MONITOR, FRAME_RATE, GREY, Monitor

AMPLITUDE: float = 127.0
MAX_DURATION_S: float = 120.0  # the longest stimulus the library renders (memory: 120 s ≈ 133 MB of uint8 frames)
EPOCH_COLUMNS: list[str] = ["onset", "offset", "onset_frame", "offset_frame"]


def n_frames_for(duration_s: float) -> int:
    """Number of 30 Hz frames in ``duration_s`` seconds (rounded, at least 1 for any positive duration)."""
    return max(1, int(round(float(duration_s) * FRAME_RATE)))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round a float array of grey levels to uint8, clipping to 0..255."""
    out = np.empty(x.shape, dtype=np.uint8)
    np.clip(x, 0.0, 255.0, out=x)
    x += 0.5  # truncation after +0.5 rounds half up for non-negative values; cheaper than np.rint
    out[...] = x
    return out


def angular_distance_deg(az: np.ndarray, el: np.ndarray, az0: float, el0: float) -> np.ndarray:
    """Great-circle distance in degrees between directions (az, el) and (az0, el0) (haversine, stable near 0)."""
    az, el = np.radians(az), np.radians(el)
    az0, el0 = np.radians(az0), np.radians(el0)
    h = np.sin((el - el0) / 2) ** 2 + np.cos(el) * np.cos(el0) * np.sin((az - az0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def aperture_mask(
    monitor: Monitor, center_az: float, center_el: float, diameter_deg: float, edge_deg: float
) -> np.ndarray:
    """Circular window [H, W] float32 in visual degrees with a raised-cosine edge.

    The mask is 1 inside, 0 outside and exactly 0.5 at the radius ``diameter_deg / 2``; the cosine ramp spans
    ``edge_deg`` centred on that radius (``edge_deg = 0`` gives a hard edge).
    """
    if not (np.isfinite(diameter_deg) and diameter_deg > 0):
        raise ValueError(f"aperture diameter must be a positive number of degrees, got {diameter_deg!r}")
    az, el = monitor.degree_grid
    d = angular_distance_deg(az, el, center_az, center_el)
    r = diameter_deg / 2
    if edge_deg <= 0:
        return (d <= r).astype(np.float32)
    x = np.clip((d - (r - edge_deg / 2)) / edge_deg, 0.0, 1.0)
    return (0.5 * (1 + np.cos(np.pi * x))).astype(np.float32)


def _plain(value: Any) -> Any:
    """Convert a parameter value to plain JSON-friendly Python for provenance."""
    if isinstance(value, Monitor):
        return value.to_dict()
    if isinstance(value, Stimulus):
        return value.params_dict()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Stimulus(param.Parameterized):
    """Base class of all stimulus families.

    Subclasses implement ``_render() -> uint8 [T, H, W]`` and ``_epoch_rows() -> list[dict]`` (condition labels
    plus ``onset_frame``/``offset_frame``); this class adds the seconds columns, validation and provenance.
    Families with a fixed length declare a ``duration_s`` parameter; ``duration=`` is accepted as an alias.
    """

    __abstract = True

    seed = param.Integer(default=0, bounds=(0, 2**32 - 1), doc="Random seed; the same seed renders the same frames.")
    monitor = param.ClassSelector(
        class_=Monitor, default=DEFAULT_MONITOR, instantiate=False, doc="Screen geometry used to draw in degrees."
    )

    def __init__(self, **params: Any) -> None:
        if "duration" in params:
            if "duration_s" not in self.param:
                raise ValueError(f"{type(self).__name__} has no duration parameter; its length follows from its content")
            params["duration_s"] = params.pop("duration")
        unknown = [k for k in params if k not in self.param]
        if unknown:
            accepted = ", ".join(k for k in self.param if k != "name")
            raise ValueError(f"{type(self).__name__} got unknown parameter(s) {unknown}; accepted: {accepted}")
        super().__init__(**params)

    # -- geometry -----------------------------------------------------------------------------------
    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.monitor.shape

    @property
    def frame_rate(self) -> float:
        return FRAME_RATE

    @property
    def n_frames(self) -> int:
        """Number of frames ``render()`` returns."""
        return n_frames_for(self.duration_s)

    @property
    def duration(self) -> float:
        """Length in seconds (``n_frames / 30``)."""
        return self.n_frames / FRAME_RATE

    @property
    def frame_times(self) -> np.ndarray:
        """Onset time in seconds of every frame."""
        return np.arange(self.n_frames) / FRAME_RATE

    # -- output ---------------------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """Frames, uint8 ``[T, H, W]`` at 30 Hz; deterministic for ``seed``."""
        frames = self._render()
        expected = (self.n_frames, *self.frame_shape)
        if frames.dtype != np.uint8 or frames.shape != expected:  # a family bug, not a user error
            raise RuntimeError(f"{type(self).__name__} rendered {frames.dtype} {frames.shape}, expected uint8 {expected}")
        return frames

    @property
    def epochs(self) -> pd.DataFrame:
        """One row per condition epoch: onset, offset (s), onset_frame, offset_frame (exclusive), labels."""
        return make_epochs(self._epoch_rows(), type(self).__name__)

    def params_dict(self) -> dict[str, Any]:
        """All parameter values as plain Python (JSON-friendly), plus ``family``, for provenance."""
        out: dict[str, Any] = {"family": type(self).__name__}
        for k in self.param:
            if k == "name":
                continue
            out[k] = _plain(getattr(self, k))
        return out

    def _render(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [{"onset_frame": 0, "offset_frame": self.n_frames}]

    def _rng(self, *stream: int) -> np.random.Generator:
        """Independent, reproducible random stream for each purpose inside a family."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, *stream]))

    def _grey(self, n: int | None = None, level: float = GREY) -> np.ndarray:
        return np.full((self.n_frames if n is None else n, *self.frame_shape), level, dtype=np.uint8)

    def __repr__(self) -> str:
        d = self.params_dict()
        d.pop("family")
        d.pop("monitor", None)
        args = ", ".join(f"{k}={v!r}" for k, v in d.items() if not isinstance(v, list) or len(v) < 8)
        return f"{type(self).__name__}({args})"


def make_epochs(rows: list[dict[str, Any]], family: str) -> pd.DataFrame:
    """Build the epochs table from rows with onset_frame/offset_frame; adds seconds and a ``stimulus`` label."""
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["onset_frame", "offset_frame"])
    df["onset_frame"] = df["onset_frame"].astype(np.int64)
    df["offset_frame"] = df["offset_frame"].astype(np.int64)
    df["onset"] = df["onset_frame"] / FRAME_RATE
    df["offset"] = df["offset_frame"] / FRAME_RATE
    if "stimulus" not in df:
        df["stimulus"] = family
    labels = [c for c in df.columns if c not in EPOCH_COLUMNS]
    df = df[EPOCH_COLUMNS + labels].reset_index(drop=True)
    df.index.name = "epoch"
    return df


def duration_param(default: float, doc: str = "Duration in seconds.") -> param.Number:
    return param.Number(
        default=default, bounds=(0, MAX_DURATION_S), inclusive_bounds=(False, True), softbounds=(0.1, 30), doc=doc
    )
