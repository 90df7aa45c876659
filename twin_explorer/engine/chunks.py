"""How the engine cuts work: chunk sizes for a memory budget, pass lengths, and work a batch repeats.

Pass lengths come from a small fixed set so kernels built per tensor shape are reused; the frames all videos of a
batch start with, and repeated (frame, eye position) pairs, are found here so the twin runs them once.
"""

from __future__ import annotations

import torch

from ..model import Network


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


GPU_BUDGET_FRACTION = 0.4  # of the memory free on the GPU when the twin is made: the estimate is rough (cuDNN
# workspaces, autocast copies and the caller's own tensors come on top)
GPU_BUDGET_MAX_MB = 48 * 1024


def default_budget_mb(device: torch.device) -> float:
    """Activation memory per pass: small on CPU, where batching buys no speed but big blocks cost page faults
    (glibc maps blocks over 32 MB afresh each time); on CUDA a share of the memory free now (long passes of many
    videos are what make a GPU fast: the published network needs ~75 MB a video-frame, so a fixed 8 GB left a
    batch of 64 videos one frame a pass); 8 GB elsewhere (MPS, which reports no free memory)."""
    if device.type == "cpu":
        return 384
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return max(1024.0, min(GPU_BUDGET_FRACTION * free / 2**20, GPU_BUDGET_MAX_MB))
    return 8192
