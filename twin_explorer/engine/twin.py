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

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..model import Network, NetworkState
from .contract import FRAME_SHAPE, validate_behaviour, validate_stimuli
from .devices import autocast_dtype, disable_tf32, resolve_device, tune_cpu_allocator

FRAME_RATE = 30.0


def estimate_frame_bytes(net: Network, n_units: int) -> int:
    """Rough peak activation memory of one frame of one video (float32), for chunk sizing."""
    cfg = net.config
    h, w = cfg.retina_shape
    h, w = h // cfg.input_stride, w // cfg.input_stride
    total = h * w * 2  # retina
    for c, pool in zip(cfg.ff_channels, cfg.ff_pools):
        total += 9 * cfg.streams * c * h * w  # activations of a dense block alive at once
        h, w = h // pool, w // pool
    p = h * w
    total += cfg.streams * p * (3 * cfg.rec_input + cfg.rec_out + 2 * cfg.rec_hidden)
    total += cfg.streams * cfg.rec_out * n_units  # sampled readout features
    return 4 * total


def _pixels(video: torch.Tensor) -> torch.Tensor:
    """8-bit videos go to the network as they are (its gamma is a table lookup then); anything else as float."""
    return video if video.dtype == torch.uint8 else video.float()


def time_chunks(n_frames: int, frames_per_pass: int) -> list[slice]:
    """Split frames into passes whose lengths come from a small fixed set (powers of two).

    oneDNN builds its kernels per tensor shape on first use, which costs far more than a small pass;
    keeping pass lengths to {2^k} lets repeated calls of any length reuse the same few kernels.
    """
    size = 1 << max(0, int(frames_per_pass).bit_length() - 1)  # largest power of two ≤ frames_per_pass
    slices, start = [], 0
    while start < n_frames:
        while size > n_frames - start:
            size //= 2
        slices.append(slice(start, start + size))
        start += size
    return slices


def padded_chunks(n_frames: int, frames_per_pass: int) -> list[slice]:
    """:func:`time_chunks`, except that a remainder the power-of-two rule would split into several small passes
    is run as one pass rounded up to the next power of two when that adds at most a quarter (or one frame):
    30 frames run as one pass of 32 instead of 16 + 8 + 4 + 2. The last slice may then end past ``n_frames``;
    the caller pads the input (a causal network: frames after the end cannot change earlier outputs)."""
    slices = time_chunks(n_frames, frames_per_pass)
    full = 1 << max(0, int(frames_per_pass).bit_length() - 1)
    k = next((i for i, sl in enumerate(slices) if sl.stop - sl.start < full), len(slices))
    if len(slices) - k < 2:
        return slices
    start = slices[k].start
    rest = n_frames - start
    rounded = 1 << (rest - 1).bit_length()
    if rounded > full or rounded - rest > max(1, rest // 4):
        return slices
    return slices[:k] + [slice(start, start + rounded)]


def repeated_frames(frames: torch.Tensor, eyes: torch.Tensor, min_saving: float = 0.25
                    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Distinct (frame, eye position) pairs of uint8 frames [M, H, W] and eyes [M, 2]: (keep [K], inverse [M]) with
    ``frames[keep][inverse]`` equal to ``frames``, or (None, None) when fewer than ``min_saving`` of them repeat.

    Frames are grouped by a fingerprint of a sparse pixel sample plus the eye position, then every repeat is
    checked pixel for pixel against the frame that stands for it, so a fingerprint collision can never merge two
    different frames (the batch is then left as it is)."""
    m = frames.shape[0]
    if m < 4:
        return None, None
    sample = frames.reshape(m, -1)[:, ::61].to(torch.int64)  # ~600 of 36 864 pixels
    weights = torch.arange(1, sample.shape[1] + 1, device=frames.device, dtype=torch.int64) * 2654435761
    key = torch.cat([(sample * weights).sum(1, keepdim=True), eyes.to(torch.float64).view(torch.int64)], 1)
    unique, inverse = torch.unique(key, dim=0, return_inverse=True)
    if unique.shape[0] > (1 - min_saving) * m:
        return None, None
    order = torch.arange(m, device=frames.device)
    keep = torch.full((unique.shape[0],), m, device=frames.device, dtype=torch.int64).scatter_reduce(
        0, inverse, order, reduce="amin")  # the first frame of each group stands for it
    repeats = torch.nonzero(order != keep[inverse]).squeeze(1)
    same = torch.equal(frames.index_select(0, repeats), frames.index_select(0, keep[inverse[repeats]]))
    return (keep, inverse) if same else (None, None)


MIN_SHARED_PREFIX = 4  # frames; below this, splitting the batch costs more than it saves


def shared_prefix(video: torch.Tensor, persp: torch.Tensor, mod: torch.Tensor) -> int:
    """How many leading frames (pixels and behaviour) all videos of a batch have in common.

    In-silico experiments start every condition with the same grey pre-blank; those frames give the same
    responses and the same network state in every video, so they need to run only once."""
    n, t = video.shape[:2]
    if n < 2:
        return 0
    k = 0
    while k < t and bool((video[:, k] == video[:1, k]).all()) and bool((persp[:, k] == persp[:1, k]).all()) \
            and bool((mod[:, k] == mod[:1, k]).all()):
        k += 1
    return k


def default_budget_mb(device: torch.device) -> float:
    """Activation memory per pass: small on CPU, where batching buys no speed but big blocks cost page faults
    (glibc maps blocks over 32 MB afresh each time); large on GPUs, where batching is what makes them fast."""
    return 384 if device.type == "cpu" else 8192


class ResultCache:
    """A bounded LRU of prediction results (by total bytes), safe to share between threads."""

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value.copy()

    def put(self, key: str, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key).nbytes
            self._items[key] = value.copy()
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)


_HASH_PART = 8 * 2**20  # bytes; bigger arrays are hashed in parts, two threads at a time (hashlib frees the GIL)
_HASHERS: ThreadPoolExecutor | None = None


def _sha256(data: memoryview) -> bytes:
    return hashlib.sha256(data).digest()


def _digest(*arrays: Any) -> str:
    """Cache key of the inputs: sha256 (hardware-accelerated on current CPUs, twice blake2b's speed), of each big
    array's parts in parallel (a 16-video tuning batch is 46 MB: 45 → ~25 ms on 2 cores)."""
    global _HASHERS
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, np.ndarray):
            h.update(str((a.dtype, a.shape)).encode())
            data = memoryview(np.ascontiguousarray(a)).cast("B")
            if data.nbytes > _HASH_PART:
                if _HASHERS is None:
                    _HASHERS = ThreadPoolExecutor(2, thread_name_prefix="twin-hash")
                parts = [data[i:i + _HASH_PART] for i in range(0, data.nbytes, _HASH_PART)]
                for d in _HASHERS.map(_sha256, parts):
                    h.update(d)
            else:
                h.update(data)
        else:
            h.update(repr(a).encode())
    return h.hexdigest()


class Twin:
    """A digital twin obeying the twin contract (see :mod:`twin_explorer.engine.contract`)."""

    frame_rate: float = FRAME_RATE
    frame_shape: tuple[int, int] = FRAME_SHAPE

    def __init__(self, network: Network, units: pd.DataFrame | None = None, id: str = "twin",
                 device: str | torch.device | None = None, precision: str = "float32",
                 memory_budget_mb: float | None = None, cache_mb: float = 256, metadata: dict | None = None):
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
        self.metadata = dict(metadata or {})
        if self.device.type == "cpu":
            tune_cpu_allocator()
        elif self.device.type == "cuda" and precision == "float32":
            # cuDNN runs float32 convolutions in TF32 by default: measured on an H200, responses then differ from
            # the reference by 3e-4 (relative) instead of 5e-7, outside the parity tolerance
            disable_tf32()
        if memory_budget_mb is None:
            memory_budget_mb = default_budget_mb(self.device)
        self.memory_budget_bytes = int(memory_budget_mb * 2**20)
        self.cache = ResultCache(int(cache_mb * 2**20))

    # --- contract attributes -------------------------------------------------------------------
    @property
    def units(self) -> pd.DataFrame:
        return self._units

    @property
    def n_units(self) -> int:
        return len(self._units)

    def __repr__(self) -> str:
        return f"Twin(id={self.id!r}, units={self.n_units}, device={self.device}, precision={self.precision})"

    # --- helpers --------------------------------------------------------------------------------
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
        videos = min(n_videos, frame_videos)
        frames = max(1, min(n_frames, frame_videos // videos))
        return videos, frames

    def _run(self, video: torch.Tensor, persp: torch.Tensor, mod: torch.Tensor, index, frames_per_pass: int,
             progress: Callable[[int, int], None] | None = None, done: int = 0, total: int = 0) -> torch.Tensor:
        n = video.shape[0]
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
            with torch.autocast(self.device.type, dtype=self._autocast, enabled=self._autocast is not None):
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
        with torch.autocast(self.device.type, dtype=self._autocast, enabled=self._autocast is not None):
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
            key = _digest(self.id, self.precision, video, persp, mod,
                          None if index is None else index.cpu().numpy())
            hit = self.cache.get(key)
            if hit is not None:
                return hit if batched else hit[0]
        n_out = self.n_units if index is None else len(index)
        videos_per_pass, frames_per_pass = self.chunk_plan(n, t, n_out)
        bar = None
        if progress is True:
            from tqdm.auto import tqdm

            bar = tqdm(total=n * t, unit="frame", desc=f"{self.id}")
            progress = lambda done, total: bar.update(done - bar.n)  # noqa: E731
        out = np.empty((n, t, n_out), dtype=np.float32)
        with torch.inference_mode():
            for v0 in range(0, n, videos_per_pass):
                sl = slice(v0, v0 + videos_per_pass)
                result = self._run(self._tensor(video[sl]), self._tensor(persp[sl]), self._tensor(mod[sl]),
                                   index, frames_per_pass, progress or None, v0 * t, n * t)
                out[sl] = result.cpu().numpy()
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
        with torch.inference_mode():
            out, self.state = t.network.run(_pixels(t._tensor(video)), t._tensor(persp), t._tensor(mod),
                                            self.state, self.index)
        self.frames += 1
        result = out[:, 0].float().cpu().numpy()
        return result if batched else result[0]
