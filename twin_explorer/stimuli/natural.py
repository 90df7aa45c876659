"""Natural-like video built from the photographs scikit-image ships (no download needed), and `NaturalClip`.

Recipe of ``make_natural_video(n_frames, seed)`` (everything drawn from ``numpy.random.default_rng(seed)``):

* **Images.** Twelve natural photographs and textures bundled with scikit-image (camera, astronaut, chelsea,
  coffee, rocket, grass, gravel, brick, coins, moon, clock, hubble_deep_field), converted to grey as the mean
  over RGB (the MICrONS clip convention). Being photographs, they carry natural ~1/f amplitude spectra.
* **Scenes.** The video is cut into scenes of 2–5 s. Each scene takes one image as background, standardised and
  given a random mean luminance (95–160) and RMS contrast (30–55 grey levels), and zoomed (0.9–1.8× the smallest
  zoom that leaves room for camera motion) to make the canvas the camera looks at.
* **Camera motion.** The 144×256 view window moves over the canvas by slow drift (an Ornstein–Uhlenbeck
  velocity, ~0.3–1 px/frame) interrupted by saccades: every 0.3–1 s a jump of 10–45 px executed in 2 frames.
  Sub-pixel positions are rendered with bilinear interpolation so drift is smooth.
* **Moving objects.** Each scene gets 0–3 objects: elliptical patches cut from *other* images with a soft
  (Gaussian-edged) alpha mask, 25–80 px tall, crossing the frame on straight paths in 1–4 s, independent of the
  camera.
* Frames are clipped to 0..255 and returned as uint8 ``[T, H, W]``. About 300 frames take well under a second
  once the image pool is loaded (cached per process).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..monitor import DEFAULT_MONITOR, FRAME_RATE, Monitor
from .base import MAX_DURATION_S, Stimulus, duration_param

IMAGE_NAMES: tuple[str, ...] = (
    "camera", "astronaut", "chelsea", "coffee", "rocket", "grass",
    "gravel", "brick", "coins", "moon", "clock", "hubble_deep_field",
)


@lru_cache(maxsize=1)
def image_pool() -> tuple[np.ndarray, ...]:
    """The bundled images as standardised (zero-mean, unit-SD) float32 grey arrays."""
    from skimage import data

    out = []
    for name in IMAGE_NAMES:
        im = np.asarray(getattr(data, name)(), dtype=np.float32)
        if im.ndim == 3:
            im = im[..., :3].mean(axis=2)
        im = (im - im.mean()) / max(float(im.std()), 1e-6)
        im.setflags(write=False)
        out.append(im)
    return tuple(out)


def _zoom(im: np.ndarray, z: float) -> np.ndarray:
    from scipy.ndimage import zoom

    return zoom(im, z, order=1, prefilter=False)


def _camera_path(rng: np.random.Generator, n: int, max_y: float, max_x: float) -> np.ndarray:
    """Top-left positions [n, 2] (y, x) of the view window: OU drift plus saccades, kept inside the canvas."""
    pos = np.array([rng.uniform(0, max_y), rng.uniform(0, max_x)])
    vel = rng.normal(0, 0.5, 2)
    next_sacc = int(rng.uniform(0.3, 1.0) * FRAME_RATE)
    path = np.empty((n, 2))
    pending: list[np.ndarray] = []
    for k in range(n):
        if k == next_sacc:
            amp, ang = rng.uniform(10, 45), rng.uniform(0, 2 * np.pi)
            target = np.clip(pos + amp * np.array([np.sin(ang), np.cos(ang)]), 0, [max_y, max_x])
            pending = [pos + (target - pos) / 2, target]
            next_sacc = k + int(rng.uniform(0.3, 1.0) * FRAME_RATE)
        if pending:
            pos = pending.pop(0)
        else:
            vel = 0.9 * vel + rng.normal(0, 0.15, 2)
            pos = pos + vel
            for j, hi in enumerate((max_y, max_x)):
                if not 0 <= pos[j] <= hi:
                    vel[j] = -vel[j]
                    pos[j] = np.clip(pos[j], 0, hi)
        path[k] = pos
    return path


def _object(rng: np.random.Generator, pool: tuple[np.ndarray, ...], exclude: int) -> tuple[np.ndarray, np.ndarray]:
    """A patch [h, w] in grey levels and its soft elliptical alpha mask."""
    idx = rng.choice([i for i in range(len(pool)) if i != exclude])
    src = pool[idx]
    h = int(rng.uniform(25, 80))
    w = int(np.clip(h * rng.uniform(0.6, 1.6), 15, 150))
    y0 = rng.integers(0, max(1, src.shape[0] - h))
    x0 = rng.integers(0, max(1, src.shape[1] - w))
    patch = src[y0 : y0 + h, x0 : x0 + w]
    patch = patch * rng.uniform(30, 55) + rng.choice([rng.uniform(50, 100), rng.uniform(160, 210)])
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((yy - (h - 1) / 2) / (h / 2), (xx - (w - 1) / 2) / (w / 2))
    alpha = np.exp(-0.5 * (np.maximum(r - 0.7, 0) / 0.12) ** 2)
    alpha[r > 1] = 0
    return patch.astype(np.float32), alpha.astype(np.float32)


def _paste(frame: np.ndarray, patch: np.ndarray, alpha: np.ndarray, top: int, left: int) -> None:
    H, W = frame.shape
    h, w = patch.shape
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + h, H), min(left + w, W)
    if y1 <= y0 or x1 <= x0:
        return
    p = patch[y0 - top : y1 - top, x0 - left : x1 - left]
    a = alpha[y0 - top : y1 - top, x0 - left : x1 - left]
    region = frame[y0:y1, x0:x1]
    region += a * (p - region)


def make_natural_video(
    n_frames: int, seed: int, monitor: Monitor = DEFAULT_MONITOR, *, progress: bool | None = None
) -> np.ndarray:
    """Natural-like video uint8 [n_frames, H, W] at 30 Hz (see the module docstring for the recipe).

    ``progress`` shows a tqdm bar (default: only for videos longer than 2 minutes).
    """
    from tqdm.auto import tqdm

    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    if n_frames > MAX_DURATION_S * FRAME_RATE * 10:
        raise ValueError(f"n_frames={n_frames} is too long for one call; generate it in pieces of different seeds")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n_frames = int(n_frames)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    pool = image_pool()
    H, W = monitor.shape
    out = np.empty((n_frames, H, W), dtype=np.uint8)
    buf = np.empty((H, W), dtype=np.float32)
    bar = tqdm(total=int(n_frames), desc="natural video", unit="frame",
               disable=not (progress if progress is not None else n_frames > 3600))
    t = 0
    while t < n_frames:
        n = min(n_frames - t, int(rng.uniform(2, 5) * FRAME_RATE))
        bg_idx = int(rng.integers(len(pool)))
        bg = pool[bg_idx]
        pad = 90
        z = max((H + pad) / bg.shape[0], (W + pad) / bg.shape[1]) * rng.uniform(0.9, 1.8)
        canvas = _zoom(bg, z) * rng.uniform(30, 55) + rng.uniform(95, 160)
        if rng.random() < 0.5:
            canvas = canvas[:, ::-1]
        path = _camera_path(rng, n, canvas.shape[0] - H - 1, canvas.shape[1] - W - 1)
        objects = []
        for _ in range(int(rng.integers(0, 4))):
            patch, alpha = _object(rng, pool, bg_idx)
            h, w = patch.shape
            ang = rng.uniform(0, 2 * np.pi)
            direction = np.array([np.sin(ang), np.cos(ang)])
            # start off-screen behind the centre along -direction, cross in 1-4 s
            centre = np.array([H / 2, W / 2]) + rng.normal(0, [H / 6, W / 6])
            reach = np.hypot(H, W) / 2 + max(h, w)
            speed = 2 * reach / (rng.uniform(1, 4) * FRAME_RATE)
            start = centre - direction * reach - np.array([h / 2, w / 2]) + direction * speed * rng.uniform(0, n / 2)
            objects.append((patch, alpha, start, direction * speed))
        for k in range(n):
            y, x = path[k]
            iy, ix = int(y), int(x)
            fy, fx = np.float32(y - iy), np.float32(x - ix)
            c = canvas[iy : iy + H + 1, ix : ix + W + 1]
            np.multiply(c[:-1, :-1], (1 - fy) * (1 - fx), out=buf)
            buf += c[:-1, 1:] * ((1 - fy) * fx)
            buf += c[1:, :-1] * (fy * (1 - fx))
            buf += c[1:, 1:] * (fy * fx)
            for patch, alpha, start, vel in objects:
                top, left = np.round(start + vel * k).astype(int)
                _paste(buf, patch, alpha, int(top), int(left))
            np.clip(buf, 0, 255, out=buf)
            buf += 0.5
            out[t + k] = buf
        t += n
        bar.update(n)
    bar.close()
    return out


class NaturalClip(Stimulus):
    """A bundled natural-like clip: ``seed`` picks the clip (the same seed is the same movie)."""

    duration_s = duration_param(10.0)

    def _render(self) -> np.ndarray:
        return make_natural_video(self.n_frames, self.seed, self.monitor)

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [{"onset_frame": 0, "offset_frame": self.n_frames, "clip": int(self.seed)}]
