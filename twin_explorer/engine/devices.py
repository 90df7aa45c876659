"""Device and precision choice: CUDA when present, then Apple MPS, else CPU."""

from __future__ import annotations

import torch

PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or the best available one (cuda > mps > cpu) when ``None``/"auto"."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; accepted: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use 'cpu' or 'auto'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was requested but Apple MPS is not available; use 'cpu' or 'auto'")
    return dev


def autocast_dtype(precision: str, device: torch.device):
    """The autocast dtype for a precision name (None for float32). Reduced precision is GPU-only."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is not None and device.type == "cpu":
        raise ValueError(f"precision {precision!r} is offered on GPU only; on CPU use 'float32'")
    return dtype


_ALLOCATOR_TUNED = False


def tune_cpu_allocator() -> bool:
    """Keep freed activation memory in the process instead of handing it back to the OS (glibc only).

    The network allocates and frees tens of MB per layer and frame; by default glibc returns such blocks to
    the kernel at once, and every new one is page-faulted in again (a quarter of the CPU time in system
    time, measured). Raising the trim threshold keeps freed heap memory for reuse, and turning off mmap for large
    blocks puts the biggest activations (over glibc's 32 MB mmap ceiling, e.g. a 118 MB dense-block output in a
    16-video tuning batch) on that heap too: 55 000 page faults per tuning batch before, none after.
    Returns whether the settings were applied.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
        ok = (libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
              and libc.mallopt(m_top_pad, 64 * 2**20) == 1)
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    _ALLOCATOR_TUNED = ok
    return ok


def disable_tf32() -> None:
    """Keep float32 matmuls/convolutions in full float32 on GPUs (needed for parity). A process-wide torch setting:
    a float32 twin on CUDA sets it when it is made."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
