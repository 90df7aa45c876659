"""The monitor model: converts between stimulus pixels and visual degrees.

One geometry shared by the stimulus library, the synthetic mouse and the experiments, so that
"2 degrees" or "0.04 cycles/degree" mean the same thing everywhere.

Conventions
-----------
* The eye looks perpendicularly at the screen centre from ``distance_cm``.
* Azimuth grows to the right, elevation grows *upwards* (pixel row 0 is the top of the screen).
* Angles are spherical: azimuth = atan(x / d), elevation = atan(y / sqrt(x² + d²)), so straight lines
  of constant azimuth/elevation are the natural axes for gratings drawn "in degrees".
* Directions of motion follow the published v2 convention: 0° = rightward motion (a vertical bar
  moving right), angles increase counter-clockwise (90° = upward motion).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

FRAME_SHAPE: tuple[int, int] = (144, 256)
FRAME_RATE: float = 30.0  # frames per second of every stimulus and prediction
GREY: int = 128  # the mean grey level of the screen between stimuli (uint8)


@dataclass(frozen=True)
class Monitor:
    """A flat screen in front of one eye. Defaults: the lab's rig (56.5 × 31.8 cm at 15 cm)."""

    width_cm: float = 56.5
    height_cm: float = 31.8
    distance_cm: float = 15.0
    height_px: int = FRAME_SHAPE[0]
    width_px: int = FRAME_SHAPE[1]

    def __post_init__(self) -> None:
        for name in ("width_cm", "height_cm", "distance_cm"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"Monitor.{name} must be a positive finite number of cm, got {value!r}")
        for name in ("height_px", "width_px"):
            value = getattr(self, name)
            if int(value) != value or value < 2:
                raise ValueError(f"Monitor.{name} must be an integer ≥ 2, got {value!r}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height_px, self.width_px)

    @cached_property
    def _pixel_cm(self) -> tuple[np.ndarray, np.ndarray]:
        """Screen coordinates (cm) of pixel centres relative to the screen centre, y up."""
        x = (np.arange(self.width_px) + 0.5) / self.width_px * self.width_cm - self.width_cm / 2
        y = self.height_cm / 2 - (np.arange(self.height_px) + 0.5) / self.height_px * self.height_cm
        return x, y

    @cached_property
    def degree_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(azimuth, elevation) in degrees of every pixel centre, each [H, W] float64."""
        x, y = self._pixel_cm
        X, Y = np.meshgrid(x, y)
        az = np.degrees(np.arctan2(X, self.distance_cm))
        el = np.degrees(np.arctan2(Y, np.hypot(X, self.distance_cm)))
        return az, el

    @property
    def extent_deg(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) of the screen in degrees, along its central axes."""
        half_w = np.degrees(np.arctan2(self.width_cm / 2, self.distance_cm))
        half_h = np.degrees(np.arctan2(self.height_cm / 2, self.distance_cm))
        return (-half_w, half_w, -half_h, half_h)

    @property
    def pixels_per_degree(self) -> float:
        """Horizontal pixels per degree at the screen centre."""
        return float(self.width_px / self.width_cm * self.distance_cm * np.pi / 180)

    def degrees_to_pixels(self, azimuth: np.ndarray | float, elevation: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Continuous (column, row) pixel coordinates (0.5 = centre of the first pixel) of a direction."""
        az = np.radians(np.asarray(azimuth, dtype=float))
        el = np.radians(np.asarray(elevation, dtype=float))
        x = self.distance_cm * np.tan(az)
        y = np.tan(el) * np.hypot(x, self.distance_cm)
        col = (x + self.width_cm / 2) / self.width_cm * self.width_px
        row = (self.height_cm / 2 - y) / self.height_cm * self.height_px
        return col, row

    def pixels_to_degrees(self, col: np.ndarray | float, row: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(azimuth, elevation) in degrees of continuous pixel coordinates (inverse of degrees_to_pixels)."""
        x = np.asarray(col, dtype=float) / self.width_px * self.width_cm - self.width_cm / 2
        y = self.height_cm / 2 - np.asarray(row, dtype=float) / self.height_px * self.height_cm
        az = np.degrees(np.arctan2(x, self.distance_cm))
        el = np.degrees(np.arctan2(y, np.hypot(x, self.distance_cm)))
        return az, el

    def to_dict(self) -> dict:
        return {
            "width_cm": self.width_cm,
            "height_cm": self.height_cm,
            "distance_cm": self.distance_cm,
            "height_px": self.height_px,
            "width_px": self.width_px,
        }


DEFAULT_MONITOR = Monitor()
