"""Gratings drawn in visual degrees: drifting/static `DriftingGrating`, `Plaid` and the `DirectionSeries` protocol.

Phase of a grating moving toward direction θ (v2 convention: 0° = rightward, counter-clockwise, 90° = upward)
at time t: ``2π·(sf·(az·cosθ + el·sinθ) − tf·t) + phase``, with (az, el) from ``Monitor.degree_grid`` — so
sf is in cycles per degree of azimuth/elevation and the pattern moves toward θ. Orientation = direction mod 180
(0° = vertical bars). Pixels are ``128 + 127·contrast·wave`` (mean luminance 128), times an optional circular
aperture with a cosine edge over a grey background.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import param

from ..monitor import FRAME_RATE
from .base import AMPLITUDE, GREY, Stimulus, aperture_mask, duration_param, to_uint8
from .sequence import Sequence


def _direction_param(default: float = 0.0) -> param.Number:
    return param.Number(
        default=default, bounds=(-360, 720), softbounds=(0, 360), doc="Direction of motion, degrees (0 = right, CCW)."
    )


class _Windowed(Stimulus):
    """Shared aperture parameters."""

    __abstract = True

    aperture = param.NumericTuple(
        default=None,
        length=3,
        allow_None=True,
        doc="None for full field, or (center_az, center_el, diameter_deg) of a circular window in degrees.",
    )
    aperture_edge_deg = param.Number(
        default=2.0, bounds=(0, 90), doc="Width of the aperture's raised-cosine edge, degrees (centred on the radius)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._check_aperture()

    def _check_aperture(self) -> None:
        if self.aperture is not None:
            az, el, diam = self.aperture
            if not (np.isfinite(diam) and 0 < diam <= 360 and abs(az) <= 180 and abs(el) <= 90):
                raise ValueError(
                    f"aperture must be (center_az in [-180, 180], center_el in [-90, 90], diameter_deg in (0, 360]), got {self.aperture!r}"
                )

    def _window(self) -> np.ndarray | None:
        self._check_aperture()
        if self.aperture is None:
            return None
        az, el, diam = self.aperture
        return aperture_mask(self.monitor, az, el, diam, self.aperture_edge_deg)

    def _frames(self, wave: np.ndarray, amplitude: float) -> np.ndarray:
        """Scale a [T, H, W] wave in −1…1, apply the aperture, and centre it on mean grey (in place)."""
        wave *= amplitude
        window = self._window()
        if window is not None:
            wave *= window[None]
        wave += GREY
        return to_uint8(wave)

    def _aperture_labels(self) -> dict[str, Any]:
        if self.aperture is None:
            return {"x": np.nan, "y": np.nan, "size": np.nan}
        return {"x": float(self.aperture[0]), "y": float(self.aperture[1]), "size": float(self.aperture[2])}


def whole_period(tf_hz: float, n: int) -> int:
    """Frames in one temporal period when that is a whole number below n (1 for a static grating), else n."""
    if tf_hz <= 0:
        return min(1, n) or n
    period = FRAME_RATE / tf_hz
    whole = round(period)
    return whole if 0 < whole < n and abs(period - whole) < 1e-9 and tf_hz * whole == FRAME_RATE else n


def grating_wave(
    stim: Stimulus, direction_deg: float, sf_cpd: float, tf_hz: float, phase_deg: float, waveform: str, n: int
) -> np.ndarray:
    """Unit-amplitude grating [n, H, W] float32 in [-1, 1] (sin(a − b) expanded so no per-frame sin is needed)."""
    az, el = stim.monitor.degree_grid
    theta = np.radians(direction_deg)
    spatial = (2 * np.pi * sf_cpd * (az * np.cos(theta) + el * np.sin(theta)) + np.radians(phase_deg)).astype(np.float32)
    # phase in cycles reduced modulo whole cycles before the float32 cast, so a grating whose period is a whole
    # number of frames repeats exactly (identical frames; the engine projects repeated frames only once)
    temporal = (2 * np.pi * (np.mod(tf_hz * np.arange(n), FRAME_RATE) / FRAME_RATE)).astype(np.float32)
    s, c = np.sin(spatial), np.cos(spatial)
    wave = s[None] * np.cos(temporal)[:, None, None]
    wave -= c[None] * np.sin(temporal)[:, None, None]
    if waveform == "square":
        np.sign(wave, out=wave)
    return wave


class DriftingGrating(_Windowed):
    """A drifting (tf > 0) or static (tf = 0) sine or square-wave grating, full field or in an aperture."""

    direction_deg = _direction_param()
    sf_cpd = param.Number(
        default=0.04, bounds=(0, 1), inclusive_bounds=(False, True), softbounds=(0.005, 0.3), doc="Spatial frequency, cycles/degree."
    )
    tf_hz = param.Number(default=2.0, bounds=(0, 15), inclusive_bounds=(True, False), softbounds=(0, 8), doc="Temporal frequency, Hz (0 = static).")
    contrast = param.Number(default=1.0, bounds=(0, 1), doc="Michelson contrast: pixels = 128 + 127·contrast·wave.")
    phase_deg = param.Number(default=0.0, bounds=(-360, 720), softbounds=(0, 360), doc="Spatial phase at t = 0, degrees.")
    waveform = param.Selector(default="sine", objects=["sine", "square"], doc="Luminance profile across a cycle.")
    duration_s = duration_param(2.0)

    def _render(self) -> np.ndarray:
        n = self.n_frames
        period = whole_period(self.tf_hz, n)
        wave = grating_wave(self, self.direction_deg, self.sf_cpd, self.tf_hz, self.phase_deg, self.waveform, period)
        frames = self._frames(wave, AMPLITUDE * self.contrast)
        # one period rendered, then repeated: the frames are the same as rendering all n (phases are exactly periodic)
        return frames if period == n else np.resize(frames, (n, *frames.shape[1:]))

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "onset_frame": 0,
                "offset_frame": self.n_frames,
                "direction": float(self.direction_deg % 360),
                "orientation": float(self.direction_deg % 180),
                "sf": float(self.sf_cpd),
                "tf": float(self.tf_hz),
                "contrast": float(self.contrast),
                "phase": float(self.phase_deg),
                "waveform": self.waveform,
                **self._aperture_labels(),
            }
        ]


class Plaid(_Windowed):
    """Sum of two gratings whose directions are ``direction_deg ± angle_deg/2``; the pattern moves toward
    ``direction_deg``. Each component has contrast ``contrast/2`` so the sum never clips."""

    direction_deg = _direction_param()
    angle_deg = param.Number(default=120.0, bounds=(0, 180), doc="Angle between the two components' directions, degrees.")
    sf_cpd = param.Number(default=0.04, bounds=(0, 1), inclusive_bounds=(False, True), softbounds=(0.005, 0.3), doc="Spatial frequency of each component, cycles/degree.")
    tf_hz = param.Number(default=2.0, bounds=(0, 15), inclusive_bounds=(True, False), softbounds=(0, 8), doc="Temporal frequency of each component, Hz.")
    contrast = param.Number(default=1.0, bounds=(0, 1), doc="Total contrast (each component gets half).")
    duration_s = duration_param(2.0)

    def _render(self) -> np.ndarray:
        half = self.angle_deg / 2
        wave = grating_wave(self, self.direction_deg - half, self.sf_cpd, self.tf_hz, 0.0, "sine", self.n_frames)
        wave += grating_wave(self, self.direction_deg + half, self.sf_cpd, self.tf_hz, 0.0, "sine", self.n_frames)
        return self._frames(wave, AMPLITUDE * self.contrast / 2)

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "onset_frame": 0,
                "offset_frame": self.n_frames,
                "direction": float(self.direction_deg % 360),
                "angle": float(self.angle_deg),
                "direction_1": float((self.direction_deg - self.angle_deg / 2) % 360),
                "direction_2": float((self.direction_deg + self.angle_deg / 2) % 360),
                "sf": float(self.sf_cpd),
                "tf": float(self.tf_hz),
                "contrast": float(self.contrast),
                **self._aperture_labels(),
            }
        ]


class DirectionSeries(_Windowed):
    """Direction-tuning protocol: a grating in each of ``directions`` (an int N for k·360/N, or a list of
    degrees) × ``repeats``, each preceded by ``gap_s`` of grey, in fixed or seeded random order.
    Each presentation is one epoch labelled with its direction."""

    directions = param.Parameter(default=16, doc="Number of evenly spaced directions, or a list of directions in degrees.")
    repeats = param.Integer(default=1, bounds=(1, 100), doc="Presentations of each direction.")
    order = param.Selector(default="random", objects=["random", "fixed"], doc="Random (seeded) or ascending order.")
    sf_cpd = param.Number(default=0.04, bounds=(0, 1), inclusive_bounds=(False, True), softbounds=(0.005, 0.3), doc="Spatial frequency, cycles/degree.")
    tf_hz = param.Number(default=2.0, bounds=(0, 15), inclusive_bounds=(True, False), softbounds=(0, 8), doc="Temporal frequency, Hz.")
    contrast = param.Number(default=1.0, bounds=(0, 1), doc="Contrast of every grating.")
    waveform = param.Selector(default="sine", objects=["sine", "square"], doc="Luminance profile across a cycle.")
    duration_s = duration_param(2.0, "Duration of each grating, seconds.")
    gap_s = param.Number(default=1.0, bounds=(0, 60), doc="Grey before each grating, seconds.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.direction_list()  # validate now so bad input fails at construction

    def direction_list(self) -> list[float]:
        """The distinct directions in degrees (before ordering/repeats)."""
        d = self.directions
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            if not 1 <= d <= 360:
                raise ValueError(f"directions as a count must be between 1 and 360, got {d}")
            return [k * 360.0 / d for k in range(int(d))]
        try:
            values = [float(x) for x in d]
        except TypeError:
            raise ValueError(f"directions must be an int count or a list of degrees, got {d!r}") from None
        if not values or not np.all(np.isfinite(values)):
            raise ValueError(f"directions must be a non-empty list of finite degrees, got {d!r}")
        return [v % 360 for v in values]

    def presentation_order(self) -> list[float]:
        dirs = np.tile(self.direction_list(), self.repeats)
        if self.order == "random":
            # shuffle within each repeat block so every direction appears once per block
            n = len(self.direction_list())
            rng = self._rng(1)
            dirs = np.concatenate([rng.permutation(dirs[i * n : (i + 1) * n]) for i in range(self.repeats)])
        return [float(x) for x in dirs]

    def sequence(self) -> Sequence:
        """The equivalent `Sequence` of `DriftingGrating`s."""
        items = [
            DriftingGrating(
                direction_deg=d, sf_cpd=self.sf_cpd, tf_hz=self.tf_hz, contrast=self.contrast, waveform=self.waveform,
                duration_s=self.duration_s, aperture=self.aperture, aperture_edge_deg=self.aperture_edge_deg,
                monitor=self.monitor, seed=self.seed,
            )
            for d in self.presentation_order()
        ]
        return Sequence(items, gap_s=self.gap_s, pre_s=self.gap_s, monitor=self.monitor)

    @property
    def n_frames(self) -> int:
        return self.sequence().n_frames

    def _render(self) -> np.ndarray:
        # one template per distinct direction, reused across repeats
        seq = self.sequence()
        out = np.full((seq.n_frames, *self.frame_shape), GREY, dtype=np.uint8)
        cache: dict[float, np.ndarray] = {}
        for start, it in zip(seq._layout(), seq.items):
            if it.direction_deg not in cache:
                cache[it.direction_deg] = it.render()
            out[start : start + it.n_frames] = cache[it.direction_deg]
        return out

    def _epoch_rows(self) -> list[dict[str, Any]]:
        ep = self.sequence().epochs
        ep["repeat"] = ep.groupby("direction").cumcount()
        ep["stimulus"] = "DriftingGrating"
        return ep.drop(columns=["onset", "offset"]).to_dict("records")
