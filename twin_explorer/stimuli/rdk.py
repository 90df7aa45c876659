"""`RandomDotKinematogram`: dots moving coherently (translation, radial or rotation) among noise dots.

Dots live in visual degrees (azimuth, elevation) on a rectangle covering the screen and are drawn as discs of
``dot_size_deg`` with an anti-aliased edge. Each frame a fresh random ``coherence`` fraction of dots moves with
the pattern at ``speed_dps``; the others step the same distance in random directions (random-walk noise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import param

from ..monitor import FRAME_RATE
from .base import AMPLITUDE, GREY, Stimulus, duration_param, to_uint8


class RandomDotKinematogram(Stimulus):
    """Random-dot kinematogram.

    * ``motion='translation'``: coherent dots move toward ``direction_deg`` (0 = right, CCW); they wrap around.
    * ``motion='radial'``: expansion from (``center_az``, ``center_el``); ``reverse=True`` contracts.
    * ``motion='rotation'``: counter-clockwise about the centre at constant linear speed; ``reverse=True`` is
      clockwise.
    Dots leaving the field (or reaching the centre when contracting, or exceeding ``lifetime_s``) reappear at a
    random position.
    """

    motion = param.Selector(default="translation", objects=["translation", "radial", "rotation"], doc="Flow pattern.")
    direction_deg = param.Number(default=0.0, bounds=(-360, 720), softbounds=(0, 360), doc="Translation direction, degrees.")
    reverse = param.Boolean(default=False, doc="Radial: contraction instead of expansion; rotation: clockwise.")
    center_az = param.Number(default=0.0, bounds=(-90, 90), doc="Centre of radial/rotational flow, azimuth degrees.")
    center_el = param.Number(default=0.0, bounds=(-90, 90), doc="Centre of radial/rotational flow, elevation degrees.")
    coherence = param.Number(default=1.0, bounds=(0, 1), doc="Fraction of dots moving with the pattern each frame.")
    density = param.Number(default=0.01, bounds=(0, 1), inclusive_bounds=(False, True), softbounds=(0.001, 0.05), doc="Dots per square degree.")
    speed_dps = param.Number(default=20.0, bounds=(0, 500), softbounds=(0, 100), doc="Dot speed, degrees/second.")
    dot_size_deg = param.Number(default=3.0, bounds=(0.2, 30), doc="Dot diameter, degrees.")
    dot_polarity = param.Selector(default="on", objects=["on", "off", "mixed"], doc="Bright, dark or half of each.")
    contrast = param.Number(default=1.0, bounds=(0, 1), doc="Dot contrast: 128 ± 127·contrast.")
    lifetime_s = param.Number(default=None, allow_None=True, bounds=(1 / 30, 120), doc="Dot lifetime (None = unlimited).")
    duration_s = duration_param(2.0)

    def _field(self) -> tuple[float, float, float, float]:
        left, right, bottom, top = self.monitor.extent_deg
        m = self.dot_size_deg / 2
        return left - m, right + m, bottom - m, top + m

    def _random_positions(self, rng: np.random.Generator, n: int) -> np.ndarray:
        l, r, b, t = self._field()
        return np.column_stack([rng.uniform(l, r, n), rng.uniform(b, t, n)])

    def _velocity(self, p: np.ndarray) -> np.ndarray:
        """Unit direction of coherent motion for dots at p [N, 2] (az, el)."""
        if self.motion == "translation":
            th = np.radians(self.direction_deg)
            return np.broadcast_to([np.cos(th), np.sin(th)], p.shape)
        rel = p - [self.center_az, self.center_el]
        r = np.hypot(rel[:, 0], rel[:, 1])[:, None]
        radial = rel / np.maximum(r, 1e-9)
        sign = -1.0 if self.reverse else 1.0
        if self.motion == "radial":
            return sign * radial
        return sign * np.column_stack([-radial[:, 1], radial[:, 0]])

    def trajectories(self) -> tuple[np.ndarray, np.ndarray]:
        """Dot positions [T, N, 2] (az, el degrees) and polarities [N] (+1/−1)."""
        rng = self._rng(1)
        l, r, b, t = self._field()
        n = max(1, int(round(self.density * (r - l) * (t - b))))
        p = self._random_positions(rng, n)
        pol = {"on": np.ones(n), "off": -np.ones(n)}.get(self.dot_polarity)
        if pol is None:
            pol = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        life = None if self.lifetime_s is None else max(1, int(round(self.lifetime_s * FRAME_RATE)))
        age = rng.integers(0, life, n) if life else np.zeros(n, int)
        step = self.speed_dps / FRAME_RATE
        out = np.empty((self.n_frames, n, 2))
        for k in range(self.n_frames):
            out[k] = p
            coherent = rng.random(n) < self.coherence
            ang = rng.uniform(0, 2 * np.pi, n)
            v = np.column_stack([np.cos(ang), np.sin(ang)])
            v[coherent] = self._velocity(p[coherent])
            p = p + step * v
            if self.motion == "translation":  # wrap keeps the density uniform
                p[:, 0] = l + np.mod(p[:, 0] - l, r - l)
                p[:, 1] = b + np.mod(p[:, 1] - b, t - b)
            outside = (p[:, 0] < l) | (p[:, 0] > r) | (p[:, 1] < b) | (p[:, 1] > t)
            if self.motion == "radial" and self.reverse:
                rel = p - [self.center_az, self.center_el]
                outside |= np.hypot(rel[:, 0], rel[:, 1]) < step
            age += 1
            if life:
                outside |= age >= life
            if outside.any():
                p[outside] = self._random_positions(rng, int(outside.sum()))
                age[outside] = 0
        return out, pol

    def _render(self) -> np.ndarray:
        az, el = self.monitor.degree_grid
        H, W = self.frame_shape
        traj, pol = self.trajectories()
        T, N, _ = traj.shape
        rad = self.dot_size_deg / 2
        ramp = 1.0 / self.monitor.pixels_per_degree  # anti-aliasing ramp about one pixel wide
        # pixel bounding box of every dot from the corners of its degree box
        cols, rows = [], []
        for dx in (-rad, rad):
            for dy in (-rad, rad):
                c, r_ = self.monitor.degrees_to_pixels(traj[..., 0] + dx, traj[..., 1] + dy)
                cols.append(c), rows.append(r_)
        c0 = np.floor(np.min(cols, 0)).astype(int) - 1
        r0 = np.floor(np.min(rows, 0)).astype(int) - 1
        span = np.maximum(np.ceil(np.max(cols, 0)) + 1 - c0, np.ceil(np.max(rows, 0)) + 1 - r0).astype(int)
        bucket = 4 * np.ceil(span / 4).astype(int)  # dots near the screen edge cover more pixels
        t_idx = np.broadcast_to(np.arange(T)[:, None], (T, N))
        amp = AMPLITUDE * self.contrast
        parts: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {1.0: [], -1.0: []}
        for size in np.unique(bucket):
            sel = bucket == size
            off = np.arange(size)
            rr = r0[sel][:, None, None] + off[:, None]
            cc = c0[sel][:, None, None] + off[None, :]
            valid = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
            rr, cc = np.clip(rr, 0, H - 1), np.clip(cc, 0, W - 1)
            sa, se = az[rr, cc], el[rr, cc]
            p = traj[sel]
            d = np.hypot((sa - p[:, 0, None, None]) * np.cos(np.radians(se)), se - p[:, 1, None, None])
            cover = np.where(valid, np.clip((rad - d) / ramp + 0.5, 0, 1), 0).astype(np.float32)
            flat = t_idx[sel][:, None, None] * (H * W) + rr * W + cc
            dot_pol = np.broadcast_to(pol[None], (T, N))[sel]
            for sign in (1.0, -1.0):
                m = dot_pol == sign
                if m.any():
                    parts[sign].append((flat[m].ravel(), cover[m].ravel()))
        frames = np.full(T * H * W, float(GREY), dtype=np.float32)
        for sign, chunks in parts.items():
            if chunks:
                idx = np.concatenate([c[0] for c in chunks])
                wts = np.concatenate([c[1] for c in chunks])
                cov = np.bincount(idx, weights=wts, minlength=T * H * W)
                # overlapping dots of one polarity saturate; on and off dots then add around grey
                frames += (sign * amp) * np.minimum(cov, 1.0).astype(np.float32)
        return to_uint8(frames.reshape(T, H, W))

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [
            {"onset_frame": 0, "offset_frame": self.n_frames, "motion": self.motion,
             "direction": float(self.direction_deg % 360) if self.motion == "translation" else np.nan,
             "reverse": bool(self.reverse), "coherence": float(self.coherence), "speed": float(self.speed_dps),
             "density": float(self.density), "size": float(self.dot_size_deg), "contrast": float(self.contrast)}
        ]
