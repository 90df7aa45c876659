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


#: CPU feature flags (as in /proc/cpuinfo) that give native bfloat16 arithmetic to oneDNN's kernels
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")  # Intel AMX, AVX-512-BF16; "bf16": Arm's BFloat16 extension


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return {flag for line in f if line.lower().startswith(("flags", "features"))
                    for flag in line.split(":", 1)[1].split()}
    except OSError:  # not Linux: nothing detected, bfloat16 is then refused with the reason
        return set()


def cpu_bf16_support() -> tuple[bool, str]:
    """(whether this CPU computes bfloat16 natively, a sentence saying what was detected).

    Detected, never assumed: the CPU's feature flags (``amx_bf16`` / ``avx512_bf16``, Arm ``bf16``) and torch's
    kernel capability. Without them oneDNN emulates bfloat16 and it is slower than float32."""
    found = sorted(set(CPU_BF16_FLAGS) & _cpu_flags())
    capability = torch.backends.cpu.get_cpu_capability()
    if found:
        return True, f"this CPU has {', '.join(found)} (torch kernel capability {capability})"
    return False, (f"this CPU has no {' / '.join(CPU_BF16_FLAGS)} feature flag (torch kernel capability "
                   f"{capability}), so bfloat16 would be emulated and slower than float32")


def accepted_precisions(device: torch.device) -> list[str]:
    """The precisions a twin on ``device`` accepts here."""
    if device.type == "cpu":
        return ["float32", "bfloat16"] if cpu_bf16_support()[0] else ["float32"]
    return list(PRECISIONS)


def autocast_dtype(precision: str, device: torch.device):
    """The autocast dtype for a precision name (None for float32, the exact default).

    GPUs (CUDA, MPS) take bfloat16 and float16; CPUs take bfloat16 when they compute it natively
    (:func:`cpu_bf16_support`), and refuse it otherwise with the reason."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is None or device.type != "cpu":
        return dtype
    if dtype is torch.float16:
        raise ValueError("precision 'float16' is offered on GPUs only; on CPU use 'float32', or 'bfloat16' on a CPU "
                         "with AMX or AVX-512-BF16")
    supported, why = cpu_bf16_support()
    if not supported:
        raise ValueError(f"precision 'bfloat16' on CPU needs native bfloat16 arithmetic (AMX or AVX-512-BF16): {why}. "
                         f"Accepted on this machine's CPU: float32 (or bfloat16/float16 on a GPU)")
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
