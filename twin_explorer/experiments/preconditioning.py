"""Gradient preconditioners and the norm/range projection of MEI optimisation (:mod:`.mei`), in torch."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

PROJECTION_ITERS = 5  # rescale/clamp alternations; the clamp comes last so 0–255 always holds


def _gaussian_kernel(sigma: float, torch_mod: Any, device: Any) -> Any:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch_mod.arange(-radius, radius + 1, dtype=torch_mod.float32, device=device)
    k = torch_mod.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur(g: Any, sigma: float, sigma_t: float, video: bool) -> Any:
    """Separable Gaussian blur of [N, (T,) H, W] over space (and time for videos), reflect-padded."""
    def along(x: Any, dim: int, s: float) -> Any:
        if s <= 0 or x.shape[dim] < 2:
            return x
        k = _gaussian_kernel(s, torch, x.device)
        r = min((k.numel() - 1) // 2, x.shape[dim] - 1)
        k = k[(k.numel() - 1) // 2 - r:(k.numel() - 1) // 2 + r + 1]
        k = k / k.sum()
        moved = x.movedim(dim, -1)
        shape = moved.shape
        flat = moved.reshape(-1, 1, shape[-1])
        flat = F.conv1d(F.pad(flat, (r, r), mode="reflect"), k.view(1, 1, -1))
        return flat.reshape(shape).movedim(-1, dim)

    out = along(along(g, -1, sigma), -2, sigma)
    if video:
        out = along(out, -3, sigma_t)
    return out


def fourier_filter(shape: tuple[int, int], decay: float, torch_mod: Any, device: Any) -> Any:
    """rfft2 gain 1/f^(2·decay) (f in cycles/pixel, floored at the lowest non-zero frequency), max gain 1."""
    H, W = shape
    fy = torch_mod.fft.fftfreq(H, device=device).abs()[:, None]
    fx = torch_mod.fft.rfftfreq(W, device=device)[None, :]
    f = torch_mod.sqrt(fx**2 + fy**2).clamp(min=1.0 / max(H, W))
    gain = f ** (-2 * decay)
    return (gain / gain.max()).to(torch_mod.float32)


def project(dev: Any, target_norm: float | None) -> Any:
    """Rescale each stimulus's deviation from grey to ``target_norm`` and clamp pixels to 0–255 (clamp last)."""
    lead = dev.shape[0]
    for _ in range(PROJECTION_ITERS if target_norm is not None else 1):
        if target_norm is not None:
            n = dev.reshape(lead, -1).norm(dim=1).clamp(min=1e-6)
            dev = dev * (target_norm / n).view(lead, *([1] * (dev.ndim - 1)))
        dev = torch.clamp(dev, -128.0, 127.0)
    return dev
