"""The ``Twin``: a loaded network behind the twin contract, with device choice, batching and caching.

``predict`` validates its input, runs all videos of a batch together in chunks sized to a memory
budget (inference mode, no autograd), and keeps recent results in a bounded cache keyed by a hash
of the inputs, the options and the model id. Work that an experiment's batch repeats is done once:
the frames all videos start with (a grey pre-blank) run for one video and the state is copied, and
repeated frames (periodic gratings, blanks, flashed dots) are projected onto the retina once.
``response`` is the differentiable path used by MEI optimisation; ``stream`` feeds frames one at a
time for live previews and equals ``predict``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..model import Network, NetworkState
from ..monitor import FRAME_RATE, FRAME_SHAPE
from ..store import BytesLRU, content_hash
from .chunks import (MIN_SHARED_PREFIX, default_budget_mb, estimate_frame_bytes, padded_chunks, repeated_frames,
                     shared_prefix, time_chunks)
from .contract import TwinMetadata, validate_behaviour, validate_stimuli
from .devices import autocast_dtype, disable_tf32, resolve_device, tune_cpu_allocator
from .graphs import BUCKETS, GraphedSteps, bucket_for, pad_batch

#: video-frames a CPU pass may hold even when that exceeds the default memory budget (see Twin.chunk_plan)
CPU_MIN_VIDEO_FRAMES_PER_PASS = 16
#: frames of each video a CPU pass holds at least, under the default budget (see Twin.chunk_plan)
CPU_MIN_FRAMES_PER_PASS = 4
#: what a twin's ``truth()`` calls: the ground truth behind it (a DataFrame indexed by readout_id) or None
TruthProvider = Callable[[], "pd.DataFrame | None"]


def _pixels(video: torch.Tensor) -> torch.Tensor:
    """8-bit videos go to the network as they are (its gamma is a table lookup then); anything else as float."""
    return video if video.dtype == torch.uint8 else video.float()


def _unpadded(report: Callable[[int, int], None], start: int, scale: float) -> Callable[[int, int], None]:
    """A progress callback of a padded pass that counts only its real videos' frames."""
    return lambda done, total: report(start + round((done - start) * scale), total)


class Twin:
    """A digital twin obeying the twin contract (see :mod:`twin_explorer.engine.contract`).

    ``precision``: "float32" (exact, the default), "bfloat16" (GPUs, and CPUs with AMX/AVX-512-BF16) or "float16"
    (GPUs). ``batch_buckets`` (default: on for CUDA) pads every pass to a fixed batch size
    (:mod:`twin_explorer.engine.graphs`) and, on CUDA, replays the recurrent step as CUDA graphs.

    ``metadata`` says what it is (:class:`TwinMetadata`; its precision is set to the twin's); ``truth`` is called by
    :meth:`truth` for the ground truth behind it (:mod:`twin_explorer.twins` supplies one for twins trained on a
    synthetic mouse)."""

    frame_rate: float = FRAME_RATE
    frame_shape: tuple[int, int] = FRAME_SHAPE

    def __init__(self, network: Network, units: pd.DataFrame | None = None, id: str = "twin",
                 device: str | torch.device | None = None, precision: str = "float32",
                 memory_budget_mb: float | None = None, cache_mb: float = 256, metadata: TwinMetadata | None = None,
                 truth: TruthProvider | None = None, batch_buckets: bool | None = None):
        if metadata is not None and not isinstance(metadata, TwinMetadata):
            raise ValueError(f"metadata must be a twin_explorer.engine.contract.TwinMetadata (kind, model_id, precision, "
                             f"trained_on, extra), got {type(metadata).__name__}; put free-form fields in its extra")
        if truth is not None and not callable(truth):
            raise ValueError(f"truth must be a callable returning the ground truth DataFrame (or None), "
                             f"got {type(truth).__name__}")
        self.device = resolve_device(device)
        self.precision = precision
        self._autocast = autocast_dtype(precision, self.device)
        self.network = network.to(self.device).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.network.freeze()  # parameters are fixed from here on: effective weights computed once
        n = network.config.units
        if units is None:
            units = pd.DataFrame({"session": 0, "scan_idx": 0, "unit_id": np.arange(n)},
                                 index=pd.RangeIndex(n, name="readout_id"))
        if len(units) != n:
            raise ValueError(f"the units table has {len(units)} rows but the network has {n} readouts")
        self._units = units
        self.id = id
        # the precision predictions really run in is the twin's, whatever the source recorded
        self.metadata = dataclasses.replace(metadata or TwinMetadata(model_id=id), precision=precision)
        self._truth = truth
        if self.device.type == "cpu":
            tune_cpu_allocator()
        elif self.device.type == "cuda" and precision == "float32":
            # cuDNN runs float32 convolutions in TF32 by default: measured on an H200, responses then differ from
            # the reference by 3e-4 (relative) instead of 5e-7, outside the parity tolerance
            disable_tf32()
        # GPU: passes padded to fixed batch buckets, the recurrent step replayed as one CUDA graph per bucket
        self.batch_buckets = self.device.type == "cuda" if batch_buckets is None else bool(batch_buckets)
        # the twin's own stepper, put on the network at each pass: twins sharing one network (a benchmark's graphed
        # and plain twins) each run their own way
        self._stepper = (GraphedSteps(self.network.core.recurrent)
                         if self.device.type == "cuda" and self.batch_buckets else None)
        # the default budget is a guide (CPU passes may exceed it, see chunk_plan); a budget given is a hard limit
        self.budget_is_default = memory_budget_mb is None
        if memory_budget_mb is None:
            memory_budget_mb = default_budget_mb(self.device)
        self.memory_budget_bytes = int(memory_budget_mb * 2**20)
        # copies: callers can't change what is cached; cache_mb=0 keeps nothing (a 1-byte budget holds no result)
        self.cache = BytesLRU(max(1, int(cache_mb * 2**20)), copy=True)

    # --- contract attributes -------------------------------------------------------------------
    @property
    def units(self) -> pd.DataFrame:
        return self._units

    @property
    def n_units(self) -> int:
        return len(self._units)

    def truth(self) -> pd.DataFrame | None:
        """The ground truth behind this twin (e.g. the synthetic mouse it was trained on), or None."""
        return None if self._truth is None else self._truth()

    # --- what the model says about itself -------------------------------------------------------
    def readout_positions(self) -> np.ndarray:
        """Each readout's position on the core's grid, tanh(mu) as float64 [U, 2] (x, y in (−1, 1), y = −1 at the
        top); see :meth:`twin_explorer.model.Network.readout_positions`."""
        return self.network.readout_positions()

    @property
    def retina_degrees(self) -> float:
        """Field of view: eccentricity in degrees of the retina's left/right edge."""
        return self.network.retina_degrees

    def __repr__(self) -> str:
        return f"Twin(id={self.id!r}, units={self.n_units}, device={self.device}, precision={self.precision})"

    # --- helpers --------------------------------------------------------------------------------
    def precision_context(self) -> torch.autocast:
        """Autocast to the twin's reduced precision (a no-op context for float32)."""
        return torch.autocast(self.device.type, dtype=self._autocast or torch.bfloat16,
                              enabled=self._autocast is not None)

    def unit_index(self, units: Any) -> torch.Tensor | None:
        """Readout ids (int sequence), a boolean mask of length U, or None (all) -> index tensor or None."""
        if units is None:
            return None
        if isinstance(units, slice):
            units = np.arange(self.n_units)[units]
        arr = np.asarray(units)
        if arr.dtype == bool:
            if arr.shape != (self.n_units,):
                raise ValueError(f"a boolean unit mask must have length {self.n_units}, got shape {arr.shape}")
            arr = np.flatnonzero(arr)
        arr = arr.reshape(-1)
        if arr.size == 0:
            raise ValueError("units selects no readout; pass readout ids in 0..U-1, a boolean mask, or None")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"units must be integer readout ids or a boolean mask, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= self.n_units:
            raise ValueError(f"readout ids must lie in 0..{self.n_units - 1}; got {arr.min()}..{arr.max()}")
        return torch.tensor(arr.astype(np.int64), dtype=torch.long, device=self.device)  # a copy: input may be read-only

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:  # torch refuses read-only memory (e.g. broadcast or memory-mapped input)
            a = a.copy()
        return torch.from_numpy(a).to(self.device)

    def chunk_plan(self, n_videos: int, n_frames: int, n_units: int) -> tuple[int, int]:
        """(videos per pass, frames per pass) that keep activations under the memory budget."""
        per_frame = estimate_frame_bytes(self.network, n_units)
        frame_videos = max(1, self.memory_budget_bytes // per_frame)
        if self.device.type == "cpu" and self.budget_is_default:
            # measured (MICrONS network, 10,000 units, 2 cores): 4 videos ran 1.8x faster in passes of 4 frames
            # than of 1 frame; a single video gained 1.3x from 8 frames a pass over 5. Below 16 video-frames a
            # pass, meeting the budget cost more speed than the memory it saved
            frame_videos = max(frame_videos, CPU_MIN_VIDEO_FRAMES_PER_PASS)
        videos_cap = frame_videos
        if self.device.type == "cpu" and self.budget_is_default:
            # measured (10,000 units, 2 quiet cores): 8 videos in passes of 2 frames ran at 0.87x one video's
            # frames/s, 4 videos in passes of 4 at 1.02x; each pass re-reads the causal convolutions' history, so
            # passes shorter than 4 frames spend more on it than more videos a pass gain
            videos_cap = max(1, frame_videos // min(n_frames, CPU_MIN_FRAMES_PER_PASS))
        if self.batch_buckets:
            # a pass holds at most the largest bucket of videos, however many frames each. (Capping video-frames
            # instead left a batch of 64 one frame a pass: on an H200, float32 ran at 704 frames/s at batch 64
            # against 1031 at batch 1.)
            videos_cap = min(videos_cap, BUCKETS[-1])
        # equal passes: 16 videos in a budget of 5 run as 4 passes of 4, not 5 + 5 + 5 + 1 (one shape, no tail)
        passes = -(-n_videos // min(frame_videos, videos_cap))
        videos = -(-n_videos // passes)
        frames = max(1, min(n_frames, frame_videos // videos))
        return videos, frames

    def _run(self, video: torch.Tensor, persp: torch.Tensor, mod: torch.Tensor, index, frames_per_pass: int,
             progress: Callable[[int, int], None] | None = None, done: int = 0, total: int = 0) -> torch.Tensor:
        n = video.shape[0]
        self.network.core.recurrent.stepper = self._stepper
        shared = shared_prefix(video, persp, mod)
        if shared < MIN_SHARED_PREFIX:
            return self._run_frames(video, persp, mod, None, index, frames_per_pass, progress, done, total,
                                    last=True)[0]
        # the frames every video starts with (an experiment's grey pre-blank) run once, then the state is copied
        head, state = self._run_frames(video[:1, :shared], persp[:1, :shared], mod[:1, :shared], None, index,
                                       frames_per_pass * n)
        if progress is not None:
            progress(done + n * shared, total)
        if shared == video.shape[1]:
            return head.expand(n, -1, -1)
        tail, _ = self._run_frames(video[:, shared:], persp[:, shared:], mod[:, shared:], state.expand(n), index,
                                   frames_per_pass, progress, done + n * shared, total, last=True)
        return torch.cat([head.expand(n, -1, -1), tail], 1)

    def _run_frames(self, video: torch.Tensor, persp: torch.Tensor, mod: torch.Tensor, state: NetworkState | None,
                    index, frames_per_pass: int, progress: Callable[[int, int], None] | None = None, done: int = 0,
                    total: int = 0, last: bool = False) -> tuple[torch.Tensor, NetworkState | None]:
        """Frames in passes from ``state``. ``last``: nothing continues from the returned state, so the final
        passes may be padded (with copies of the last frame) into one power-of-two pass; the state is then None."""
        outputs = []
        t = video.shape[1]
        chunks = padded_chunks(t, frames_per_pass) if last else time_chunks(t, frames_per_pass)
        if chunks[-1].stop > t:
            extra = chunks[-1].stop - t
            video, persp, mod = (torch.cat([x, x[:, -1:].expand(-1, extra, *x.shape[2:])], 1)
                                 for x in (video, persp, mod))
        retina = self._distinct_retina(video, persp)
        for sl in chunks:
            chunk = None if retina is None else retina[0][retina[1][:, sl]].unsqueeze(1)
            with self.precision_context():
                out, state = self.network.run(_pixels(video[:, sl]), persp[:, sl], mod[:, sl], state, index,
                                              retina=chunk)
            outputs.append(out.float())
            if progress is not None:
                progress(done + video.shape[0] * min(sl.stop, t), total)
        if chunks[-1].stop > t:
            return torch.cat(outputs, 1)[:, :t], None
        return torch.cat(outputs, 1), state

    def _distinct_retina(self, video: torch.Tensor, persp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(retina images of the distinct frames [K, h, w], frame index [N, T] into them) when many frames of an
        8-bit batch repeat (periodic gratings, grey blanks) and the distinct ones fit a quarter of the memory
        budget; None otherwise. Projecting and gamma-correcting each distinct frame once was a fifth of a
        16-direction tuning run."""
        if video.dtype != torch.uint8 or self.network.training:
            return None
        n, t = video.shape[:2]
        flat, eyes = video.reshape(n * t, *video.shape[2:]), persp.reshape(n * t, 2)
        keep, inverse = repeated_frames(flat, eyes)
        h, w = self.network.config.retina_shape
        if keep is None or 4 * keep.numel() * h * w * 4 > self.memory_budget_bytes:
            return None
        with self.precision_context():
            retina = self.network.retina(flat[keep].unsqueeze(0), eyes[keep].unsqueeze(0))  # [1, 1, K, h, w]
        return retina[0, 0], inverse.view(n, t)

    # --- the contract ---------------------------------------------------------------------------
    def predict(self, stimuli: Any, perspectives: Any = None, modulations: Any = None, units: Any = None,
                progress: Callable[[int, int], None] | bool | None = None, use_cache: bool = True) -> np.ndarray:
        """Responses to videos: uint8 [T,144,256] -> float32 [T,U]; [N,T,144,256] -> [N,T,U].

        ``progress``: True for a tqdm bar, or a callback ``(frames_done, frames_total)``.
        """
        video, batched = validate_stimuli(stimuli, self.frame_shape)
        n, t = video.shape[:2]
        persp = validate_behaviour("perspectives", perspectives, n, t, batched)
        mod = validate_behaviour("modulations", modulations, n, t, batched)
        index = self.unit_index(units)
        key = None
        if use_cache:
            key = content_hash(self.id, self.precision, video, persp, mod,
                               None if index is None else index.cpu().numpy())
            hit = self.cache.get(key)
            if hit is not None:
                return hit if batched else hit[0]
        n_out = self.n_units if index is None else len(index)
        videos_per_pass, frames_per_pass = self.chunk_plan(n, t, n_out)
        bar = None
        if progress is True:
            from tqdm.auto import tqdm  # only when a bar is asked for

            bar = tqdm(total=n * t, unit="frame", desc=f"{self.id}")
            progress = lambda done, total: bar.update(done - bar.n)  # noqa: E731
        out = np.empty((n, t, n_out), dtype=np.float32)
        with torch.inference_mode():
            for v0 in range(0, n, videos_per_pass):
                sl = slice(v0, v0 + videos_per_pass)
                tensors = [self._tensor(x[sl]) for x in (video, persp, mod)]
                real = tensors[0].shape[0]
                report = progress or None
                if self.batch_buckets:
                    tensors = [pad_batch(x, bucket_for(real)) for x in tensors]
                    if report is not None:  # count real videos only, not the padding rows
                        report = _unpadded(report, v0 * t, real / tensors[0].shape[0])
                result = self._run(*tensors, index, frames_per_pass, report, v0 * t, n * t)
                out[sl] = result[:real].cpu().numpy()
        if bar is not None:
            bar.close()
        if key is not None:
            self.cache.put(key, out)
        return out if batched else out[0]

    def response(self, video: torch.Tensor, perspectives: torch.Tensor | None = None,
                 modulations: torch.Tensor | None = None, units: Any = None) -> torch.Tensor:
        """Differentiable responses: float video [N,T,144,256] in 0–255 -> [N,T,U] (gradients flow to video)."""
        if not torch.is_tensor(video) or not video.is_floating_point():
            raise ValueError("response() takes a float torch tensor [N, T, 144, 256] in pixel units 0–255")
        if video.ndim != 4 or tuple(video.shape[-2:]) != self.frame_shape:
            raise ValueError(f"response() takes video [N, T, {self.frame_shape[0]}, {self.frame_shape[1]}], "
                             f"got shape {tuple(video.shape)}")
        n, t = video.shape[:2]

        def behaviour(name, x):
            if x is None:
                return video.new_zeros(n, t, 2)
            x = torch.as_tensor(x, dtype=video.dtype, device=video.device)
            x = x.expand(n, t, 2) if x.ndim == 2 else x
            if tuple(x.shape) != (n, t, 2):
                raise ValueError(f"{name} must be [T, 2] or [N, T, 2] matching the video, got {tuple(x.shape)}")
            return x

        index = self.unit_index(units)
        video = video.to(self.device)
        with self.precision_context():
            return self.network.run(video, behaviour("perspectives", perspectives).to(self.device),
                                    behaviour("modulations", modulations).to(self.device), None, index)[0]

    def stream(self, units: Any = None) -> "StreamingSession":
        """A session that takes frames one at a time (for live previews); equals ``predict``."""
        return StreamingSession(self, units)


class StreamingSession:
    """Frame-by-frame prediction with carried state: ``step(frame)`` -> responses [U] (or [N, U])."""

    def __init__(self, twin: Twin, units: Any = None):
        self.twin = twin
        self.index = twin.unit_index(units)
        self.reset()

    def reset(self) -> None:
        """Clear all recurrent and temporal state (as at the start of ``predict``)."""
        self.state: NetworkState | None = None
        self.frames = 0

    @staticmethod
    def _behaviour(name: str, value: Any, n: int, batched: bool) -> np.ndarray:
        if value is not None:
            value = np.asarray(value, dtype=np.float32)
            if value.shape != ((n, 2) if batched else (2,)):
                raise ValueError(f"{name} must have shape {(n, 2) if batched else (2,)} for this frame, "
                                 f"got {value.shape}")
            value = value.reshape(n, 1, 2)
        return validate_behaviour(name, value, n, 1, True)

    def step(self, frame: Any, perspective: Any = None, modulation: Any = None) -> np.ndarray:
        """frame uint8 [144,256] (or a batch [N,144,256]) -> float32 [U] (or [N, U])."""
        arr = np.asarray(frame)
        batched = arr.ndim == 3
        if arr.ndim not in (2, 3):
            raise ValueError(f"step() takes one frame [144, 256] or a batch [N, 144, 256], got shape {arr.shape}")
        video, _ = validate_stimuli(arr[:, None] if batched else arr[None], self.twin.frame_shape)
        n = video.shape[0]
        persp = self._behaviour("perspective", perspective, n, batched)
        mod = self._behaviour("modulation", modulation, n, batched)
        t = self.twin
        t.network.core.recurrent.stepper = t._stepper
        with torch.inference_mode(), t.precision_context():
            out, self.state = t.network.run(_pixels(t._tensor(video)), t._tensor(persp), t._tensor(mod),
                                            self.state, self.index)
        self.frames += 1
        result = out[:, 0].float().cpu().numpy()
        return result if batched else result[0]
