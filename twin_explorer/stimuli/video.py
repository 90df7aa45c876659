"""The user's own videos as stimuli (`VideoFile`, `read_video`) and export helpers (`save_mp4`, `save_npy`).

Files are converted to grey (mean over RGB, the MICrONS clip convention), fitted to the 144×256 frame
(``fit='crop'``: scale to cover then centre-crop; ``'pad'``: scale to fit then pad with grey 128; ``'stretch'``)
and resampled to 30 Hz by showing, at each output frame time, the latest source frame.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import param

from ..monitor import DEFAULT_MONITOR, FRAME_RATE, Monitor
from .base import GREY, MAX_DURATION_S, Stimulus

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
ARRAY_EXTS = (".npy",)
TIFF_EXTS = (".tif", ".tiff")
ACCEPTED = "video files (mp4, avi, mov, mkv, webm, m4v) read with PyAV, .npy arrays [T,H,W] or [T,H,W,3|4], or .tif/.tiff stacks"
FITS = ("crop", "pad", "stretch")


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"video file {str(p)!r} does not exist; accepted: {ACCEPTED}")
    if not p.is_file():
        raise ValueError(f"{str(p)!r} is not a file; accepted: {ACCEPTED}")
    if p.suffix.lower() not in VIDEO_EXTS + ARRAY_EXTS + TIFF_EXTS:
        raise ValueError(f"cannot read {str(p)!r}: unsupported extension {p.suffix!r}; accepted: {ACCEPTED}")
    return p


def _fit_plan(h: int, w: int, H: int, W: int, fit: str) -> tuple[int, int]:
    """Intermediate size (h2, w2) to resize to before centre-cropping/padding to (H, W)."""
    if fit == "stretch":
        return H, W
    s = max(H / h, W / w) if fit == "crop" else min(H / h, W / w)
    return max(1, round(h * s)), max(1, round(w * s))


def _crop_or_pad(frame: np.ndarray, H: int, W: int) -> np.ndarray:
    """Centre-crop and/or pad (grey) a [..., h, w] array to [..., H, W]."""
    h, w = frame.shape[-2:]
    y0, x0 = max(0, (h - H) // 2), max(0, (w - W) // 2)
    frame = frame[..., y0 : y0 + H, x0 : x0 + W]
    h, w = frame.shape[-2:]
    if (h, w) == (H, W):
        return frame
    out = np.full((*frame.shape[:-2], H, W), GREY, dtype=frame.dtype)
    oy, ox = (H - h) // 2, (W - w) // 2
    out[..., oy : oy + h, ox : ox + w] = frame
    return out


def _to_grey_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """[T,H,W] / [T,H,W,C] / [H,W] of any numeric dtype -> float32 [T,H,W] in 0..255."""
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4:
        if arr.shape[-1] not in (1, 3, 4):
            raise ValueError(f"{str(path)!r}: 4-D array must be [T,H,W,C] with C in 1, 3, 4; got shape {arr.shape}")
        arr = arr[..., :3].mean(axis=-1) if arr.shape[-1] >= 3 else arr[..., 0]
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ValueError(f"{str(path)!r}: expected frames [T,H,W] or [T,H,W,C], got shape {arr.shape}; accepted: {ACCEPTED}")
    if arr.dtype == bool:
        return arr.astype(np.float32) * 255
    if np.issubdtype(arr.dtype, np.integer):
        top = 255 if arr.dtype.itemsize == 1 else np.iinfo(arr.dtype).max
        return arr.astype(np.float32) * (255.0 / top)
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{str(path)!r}: array contains NaN or infinite values")
        # float frames in 0..1 are scaled; otherwise they are taken as grey levels 0..255
        return arr * 255 if arr.size and float(arr.max()) <= 1.0 else arr
    raise ValueError(f"{str(path)!r}: unsupported array dtype {arr.dtype}; use uint8, integers or floats")


def _resize(frames: np.ndarray, h2: int, w2: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    if frames.shape[-2:] == (h2, w2):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[:, None]
    return F.interpolate(x, size=(h2, w2), mode="bilinear", antialias=True, align_corners=False)[:, 0].numpy()


def _resample(times: np.ndarray, n_out: int, start_s: float) -> np.ndarray:
    """Index of the source frame shown at each 30 Hz output frame."""
    t = start_s + np.arange(n_out) / FRAME_RATE
    return np.clip(np.searchsorted(times, t + 1e-6, side="right") - 1, 0, len(times) - 1)


def _read_av(path: Path, H: int, W: int, fit: str, start_s: float, max_s: float) -> tuple[np.ndarray, np.ndarray, float]:
    import av

    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("it has no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or FRAME_RATE)
            h2 = w2 = None
            for i, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else i / rate
                if t < start_s - 1.0 / rate:
                    continue
                if t >= start_s + max_s:
                    break
                if h2 is None:
                    h2, w2 = _fit_plan(frame.height, frame.width, H, W, fit)
                rgb = frame.reformat(width=w2, height=h2, format="rgb24").to_ndarray()
                frames.append(rgb.mean(axis=2, dtype=np.float32))
                times.append(t)
    except ValueError as e:
        raise ValueError(f"cannot read video {str(path)!r}: {e}; accepted: {ACCEPTED}") from None
    except Exception as e:  # PyAV raises several FFmpeg error types for corrupt/unsupported files
        raise ValueError(f"cannot read video {str(path)!r}: {type(e).__name__}: {e}; accepted: {ACCEPTED}") from None
    if not frames:
        raise ValueError(f"video {str(path)!r} has no frames after start_s={start_s}")
    return _crop_or_pad(np.stack(frames), H, W), np.asarray(times), rate


def read_video(
    path: str | os.PathLike,
    fps: float | None = None,
    fit: str = "crop",
    start_s: float = 0.0,
    duration_s: float | None = None,
    monitor: Monitor = DEFAULT_MONITOR,
) -> np.ndarray:
    """Read a video/array file as grey uint8 frames [T, H, W] at 30 Hz fitted to the monitor's frame.

    ``fps`` is the source rate of .npy/.tif files (default 30; video files carry their own timestamps).
    ``duration_s`` None means to the end of the file (at most 120 s). Raises ValueError naming the path and
    problem for missing, unsupported or unreadable files.
    """
    p = _check_path(path)
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if start_s < 0:
        raise ValueError(f"start_s must be ≥ 0, got {start_s!r}")
    max_s = MAX_DURATION_S if duration_s is None else float(duration_s)
    if not 0 < max_s <= MAX_DURATION_S:
        raise ValueError(f"duration_s must be in (0, {MAX_DURATION_S}], got {duration_s!r}")
    H, W = monitor.shape
    ext = p.suffix.lower()
    if ext in VIDEO_EXTS:
        frames, times, rate = _read_av(p, H, W, fit, start_s, max_s)
        end = times[-1] + 1.0 / rate
    else:
        try:
            if ext in ARRAY_EXTS:
                arr = np.load(p, allow_pickle=False, mmap_mode="r")
            else:
                import imageio.v3 as iio

                arr = iio.imread(p, index=None) if ext in TIFF_EXTS else None
        except Exception as e:
            raise ValueError(f"cannot read {str(p)!r}: {type(e).__name__}: {e}; accepted: {ACCEPTED}") from None
        rate = FRAME_RATE if fps is None else float(fps)
        src = np.asarray(arr)
        n_src = 1 if src.ndim == 2 else src.shape[0]
        first = int(np.floor(start_s * rate + 1e-9))
        last = min(n_src, int(np.ceil((start_s + max_s) * rate)))
        if first >= n_src:
            raise ValueError(f"{str(p)!r} has {n_src} frames ({n_src / rate:.2f} s at {rate} fps), none after start_s={start_s}")
        grey = _to_grey_uint8(src if src.ndim == 2 else src[first:last], p)
        h2, w2 = _fit_plan(*grey.shape[-2:], H, W, fit)
        frames = _crop_or_pad(_resize(grey, h2, w2), H, W)
        times = (first + np.arange(len(frames))) / rate
        end = (first + len(frames)) / rate
    n_out = int(round((min(end, start_s + max_s) - start_s) * FRAME_RATE))
    if duration_s is not None:
        n_out = int(round(duration_s * FRAME_RATE))  # hold the last frame if the file is shorter
    n_out = max(1, n_out)
    idx = _resample(times, n_out, start_s)
    out = np.clip(frames[idx], 0, 255)
    return (out + 0.5).astype(np.uint8)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8 or frames.shape[0] < 1:
        raise ValueError(f"frames must be uint8 [T, H, W] with T ≥ 1, got {frames.dtype} {frames.shape}")
    return frames


def save_npy(frames: np.ndarray, path: str | os.PathLike) -> Path:
    """Save uint8 frames [T, H, W] as .npy; returns the path written."""
    frames = _check_frames(frames)
    p = Path(path)
    if p.suffix.lower() != ".npy":
        raise ValueError(f"save_npy writes .npy files, got {str(p)!r}")
    np.save(p, frames)
    return p


def save_mp4(frames: np.ndarray, path: str | os.PathLike, fps: float = FRAME_RATE, crf: int = 12) -> Path:
    """Encode uint8 grey frames [T, H, W] (H, W even) as H.264 mp4 at ``fps``; returns the path written.

    ``crf`` trades size for fidelity (0 lossless-ish, 12 default visually lossless, 23 x264's default).
    """
    import av

    frames = _check_frames(frames)
    T, H, W = frames.shape
    if H % 2 or W % 2:
        raise ValueError(f"mp4 (yuv420p) needs even height and width, got {H}×{W}")
    if not (np.isfinite(fps) and 0 < fps <= 240):
        raise ValueError(f"fps must be in (0, 240], got {fps!r}")
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf!r}")
    p = Path(path)
    if p.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise ValueError(f"save_mp4 writes .mp4/.m4v/.mov files, got {str(p)!r}")
    with av.open(str(p), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": str(int(crf))}
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="gray").reformat(format="yuv420p")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return p


class VideoFile(Stimulus):
    """The user's own video (mp4/avi/... via PyAV, .npy, .tif/.tiff) as a stimulus; see `read_video`.

    The file is read once and cached on the object (re-read if the file or the parameters change).
    """

    path = param.String(default=None, allow_None=True, doc="Path to the file.")
    fit = param.Selector(default="crop", objects=list(FITS), doc="Fit to 144×256: crop, pad (grey) or stretch.")
    fps = param.Number(default=None, allow_None=True, bounds=(0, 1000), inclusive_bounds=(False, True), doc="Source rate of .npy/.tif files (default 30).")
    start_s = param.Number(default=0.0, bounds=(0, None), doc="Start reading at this time, seconds.")
    duration_s = param.Number(default=None, allow_None=True, bounds=(0, MAX_DURATION_S), inclusive_bounds=(False, True), doc="Seconds to play (None: to the end, at most 120 s).")

    def __init__(self, path: str | os.PathLike | None = None, **params: Any) -> None:
        if path is not None:
            params["path"] = str(path)
        super().__init__(**params)
        if self.path is None:
            raise ValueError(f"VideoFile needs a path; accepted: {ACCEPTED}")
        _check_path(self.path)
        self._cache: tuple[tuple, np.ndarray] | None = None

    def _frames(self) -> np.ndarray:
        p = Path(self.path).expanduser()
        key = (str(p), p.stat().st_mtime_ns if p.exists() else None, self.fit, self.fps, self.start_s, self.duration_s, self.monitor)
        if self._cache is None or self._cache[0] != key:
            frames = read_video(p, self.fps, self.fit, self.start_s, self.duration_s, self.monitor)
            frames.setflags(write=False)
            self._cache = (key, frames)
        return self._cache[1]

    @property
    def n_frames(self) -> int:
        return len(self._frames())

    def _render(self) -> np.ndarray:
        return self._frames().copy()

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [{"onset_frame": 0, "offset_frame": self.n_frames, "file": Path(self.path).name}]
