"""Receptive-field mapping stimuli: flashing `GaussianDots` and locally `SparseNoise`, drawn in degrees.

Every flashed element is one epoch labelled with ``x`` (azimuth, deg), ``y`` (elevation, deg), ``polarity``
(+1 = on/bright, −1 = off/dark) and ``size`` (deg); ``masks()`` gives each epoch's spatial profile
[n_epochs, H, W] (float, peak 1) so a spike-triggered average can weight pixels exactly as shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import param

from .base import AMPLITUDE, GREY, Stimulus, angular_distance_deg, to_uint8
from .sequence import seconds_to_frames

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _grid(lo: float, hi: float, step: float) -> np.ndarray:
    n = int(np.floor((hi - lo) / step + 1e-9)) + 1
    centre = (lo + hi) / 2
    return centre + (np.arange(n) - (n - 1) / 2) * step


def _range_param(default: tuple[float, float], doc: str, limit: float) -> param.Range:
    return param.Range(default=default, bounds=(-limit, limit), doc=doc)


def _downsample(masks: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return masks
    n, h, w = masks.shape
    if h % factor or w % factor:
        raise ValueError(f"downsample factor {factor} must divide the frame shape {(h, w)}")
    return masks.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


class _Flashed(Stimulus):
    """Shared machinery: a table of elements (x, y, polarity, onset/offset frames) and their profiles."""

    __abstract = True

    contrast = param.Number(default=1.0, bounds=(0, 1), doc="Element contrast: peak = 128 ± 127·contrast.")

    def _elements(self) -> list[dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _profile(self, x: float, y: float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return self._elements()

    def masks(self, downsample: int = 1) -> np.ndarray:
        """Spatial profile of each epoch's element, float32 [n_epochs, H/downsample, W/downsample], peak 1."""
        rows = self._elements()
        cache: dict[tuple[float, float], np.ndarray] = {}
        out = []
        for r in rows:
            key = (r["x"], r["y"])
            if key not in cache:
                cache[key] = _downsample(self._profile(*key)[None], int(downsample))[0]
            out.append(cache[key])
        return np.stack(out).astype(np.float32) if out else np.zeros((0, *self.frame_shape), np.float32)

    def _render(self) -> np.ndarray:
        # elements sharing a time window are composed once, then the frame is repeated over the window
        frames = np.full((self.n_frames, *self.frame_shape), GREY, dtype=np.uint8)
        cache: dict[tuple[float, float], np.ndarray] = {}
        groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for r in self._elements():
            groups.setdefault((r["onset_frame"], r["offset_frame"]), []).append(r)
        for (on, off), rows in groups.items():
            img = np.full(self.frame_shape, float(GREY), dtype=np.float32)
            for r in rows:
                key = (r["x"], r["y"])
                if key not in cache:
                    cache[key] = self._profile(*key)
                img += (r["polarity"] * AMPLITUDE * self.contrast) * cache[key]
            frames[on:off] = to_uint8(img)
        return frames


class GaussianDots(_Flashed):
    """Gaussian dots flashed one at a time on a grid of positions, on and/or off, in seeded random order.

    ``size_deg`` is the dot's full width at half maximum. Each dot lasts ``dot_s`` and is followed by
    ``isi_s`` of grey.
    """

    az_range = _range_param((-50.0, 50.0), "Azimuth span of the grid centres, degrees.", 90)
    el_range = _range_param((-30.0, 30.0), "Elevation span of the grid centres, degrees.", 90)
    spacing_deg = param.Number(default=10.0, bounds=(0.5, 90), doc="Grid spacing, degrees.")
    size_deg = param.Number(default=8.0, bounds=(0.5, 90), doc="Dot full width at half maximum, degrees.")
    polarity = param.Selector(default="both", objects=["both", "on", "off"], doc="Bright (on), dark (off) or both.")
    dot_s = param.Number(default=0.3, bounds=(1 / 30, 10), doc="Time each dot is shown, seconds.")
    isi_s = param.Number(default=0.2, bounds=(0, 10), doc="Grey after each dot, seconds.")
    repeats = param.Integer(default=1, bounds=(1, 100), doc="Presentations of each (position, polarity).")
    order = param.Selector(default="random", objects=["random", "fixed"], doc="Seeded random or raster order.")

    def positions(self) -> list[tuple[float, float]]:
        """Grid (azimuth, elevation) centres in degrees."""
        az = _grid(*self.az_range, self.spacing_deg)
        el = _grid(*self.el_range, self.spacing_deg)
        return [(float(a), float(e)) for e in el[::-1] for a in az]

    def _conditions(self) -> list[tuple[float, float, int]]:
        pols = {"both": [1, -1], "on": [1], "off": [-1]}[self.polarity]
        conds = [(a, e, p) for (a, e) in self.positions() for p in pols] * self.repeats
        if self.order == "random":
            idx = self._rng(1).permutation(len(conds))
            conds = [conds[i] for i in idx]
        return conds

    @property
    def n_frames(self) -> int:
        return len(self._conditions()) * (seconds_to_frames(self.dot_s) + seconds_to_frames(self.isi_s))

    def _elements(self) -> list[dict[str, Any]]:
        on, off = seconds_to_frames(self.dot_s), seconds_to_frames(self.isi_s)
        rows = []
        for i, (a, e, p) in enumerate(self._conditions()):
            rows.append(
                {"onset_frame": i * (on + off), "offset_frame": i * (on + off) + on, "x": a, "y": e,
                 "polarity": p, "size": float(self.size_deg), "contrast": float(self.contrast)}
            )
        return rows

    def _profile(self, x: float, y: float) -> np.ndarray:
        az, el = self.monitor.degree_grid
        d = angular_distance_deg(az, el, x, y)
        sigma = self.size_deg * FWHM_TO_SIGMA
        return np.exp(-0.5 * (d / sigma) ** 2).astype(np.float32)


class SparseNoise(_Flashed):
    """Locally sparse noise: each noise frame shows a few on/off squares on a grid, no two closer than
    ``min_distance_deg`` (as in the Allen Brain Observatory's locally sparse noise).

    Squares are ``size_deg`` wide in azimuth and elevation and fill the grid cells. Each square shown is one
    epoch (several epochs share an onset).
    """

    az_range = _range_param((-60.0, 60.0), "Azimuth span of the square centres, degrees.", 90)
    el_range = _range_param((-40.0, 40.0), "Elevation span of the square centres, degrees.", 90)
    size_deg = param.Number(default=10.0, bounds=(1, 60), doc="Side of each square (= grid spacing), degrees.")
    per_frame = param.Integer(default=4, bounds=(1, 100), doc="Maximum squares per noise frame.")
    min_distance_deg = param.Number(default=30.0, bounds=(0, 180), doc="Minimum distance between squares in a frame.")
    frame_s = param.Number(default=0.25, bounds=(1 / 30, 10), doc="Duration of each noise frame, seconds.")
    duration_s = param.Number(default=30.0, bounds=(0, 120), inclusive_bounds=(False, True), doc="Total duration, seconds.")

    def positions(self) -> list[tuple[float, float]]:
        az = _grid(*self.az_range, self.size_deg)
        el = _grid(*self.el_range, self.size_deg)
        return [(float(a), float(e)) for e in el[::-1] for a in az]

    @property
    def n_frames(self) -> int:
        return self.n_noise_frames * seconds_to_frames(self.frame_s)

    @property
    def n_noise_frames(self) -> int:
        return max(1, int(round(self.duration_s / (seconds_to_frames(self.frame_s) / 30.0))))

    def _elements(self) -> list[dict[str, Any]]:
        pos = np.array(self.positions())
        rng = self._rng(1)
        step = seconds_to_frames(self.frame_s)
        rows = []
        for k in range(self.n_noise_frames):
            chosen: list[int] = []
            for i in rng.permutation(len(pos)):
                if len(chosen) == self.per_frame:
                    break
                if chosen and np.min(
                    angular_distance_deg(pos[chosen, 0], pos[chosen, 1], pos[i, 0], pos[i, 1])
                ) < self.min_distance_deg:
                    continue
                chosen.append(int(i))
            pols = rng.choice([1, -1], size=len(chosen))
            for i, p in zip(chosen, pols):
                rows.append(
                    {"onset_frame": k * step, "offset_frame": (k + 1) * step, "x": float(pos[i, 0]),
                     "y": float(pos[i, 1]), "polarity": int(p), "size": float(self.size_deg),
                     "contrast": float(self.contrast), "noise_frame": k}
                )
        return rows

    def _profile(self, x: float, y: float) -> np.ndarray:
        az, el = self.monitor.degree_grid
        h = self.size_deg / 2
        return ((np.abs(az - x) <= h) & (np.abs(el - y) <= h)).astype(np.float32)
