"""Perspective module: from a monitor frame and the eye position to the image on the retina (spec 3).

An MLP turns the eye position into Euler angles; the rotated retina rays hit the (learned) monitor
plane; the monitor image, after its gamma, is resampled there; a learned power curve follows.
Stateless, so it runs on all frames of a chunk at once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MLP

MAX_ECCENTRICITY_DEG = 75.0


def rotation(angles: torch.Tensor) -> torch.Tensor:
    """Rz(θz)·Ry(θy)·Rx(θx) for angles [..., 3] = (θx, θy, θz) in radians -> [..., 3, 3]."""
    cx, cy, cz = torch.cos(angles).unbind(-1)
    sx, sy, sz = torch.sin(angles).unbind(-1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).unflatten(-1, (3, 3))
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).unflatten(-1, (3, 3))
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).unflatten(-1, (3, 3))
    return (rz @ ry) @ rx


def retina_grid(height: int, width: int, degrees: float = MAX_ECCENTRICITY_DEG) -> torch.Tensor:
    """Unit ray of every retina pixel for an equidistant angular projection (spec 3.2), [H, W, 3]."""
    u = torch.linspace(-1, 1, width)
    v = torch.linspace(-1, 1, height)
    x = u * (width - 1) / width
    y = (v * height / width) * (width - 1) / width
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    ecc = (torch.sqrt(xx**2 + yy**2) * (degrees * math.pi / 180)).clamp(0, math.pi / 2)
    azi = torch.atan2(yy, xx)
    return torch.stack([torch.sin(ecc) * torch.cos(azi), torch.sin(ecc) * torch.sin(azi), torch.cos(ecc)], -1)


class Monitor(nn.Module):
    """A plane at ``center`` with axes = columns of rot(``angle``); ``*_std`` only matter in training."""

    def __init__(self):
        super().__init__()
        self.center = nn.Parameter(torch.tensor([0.0, 0.0, 0.5]))
        self.angle = nn.Parameter(torch.zeros(3))
        self.center_std = nn.Parameter(torch.zeros(3))
        self.angle_std = nn.Parameter(torch.zeros(3))

    def project(self, rays: torch.Tensor) -> torch.Tensor:
        """Monitor-plane coordinates [..., 2] where rays [..., 3] hit the plane (isotropic units)."""
        m = rotation(self.angle)
        axis_x, axis_y, normal = m[:, 0], m[:, 1], m[:, 2]
        c = self.center
        t = (normal @ c) / (rays @ normal).clamp(min=1e-5)
        d = t.unsqueeze(-1) * rays - c
        return torch.stack([d @ axis_x, d @ axis_y], -1)


class MonitorPixel(nn.Module):
    """Monitor gamma: x^power·scale + offset, fixed buffers."""

    def __init__(self, power: float = 1.7):
        super().__init__()
        self.register_buffer("power", torch.tensor(power))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("offset", torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.pow(self.power) * self.scale + self.offset

    def lookup(self, pixels: torch.Tensor) -> torch.Tensor:
        """The gamma of 8-bit pixel values by table lookup: equal to ``forward(pixels / 255)``, without a pow over
        every pixel of every frame (the most expensive elementwise step of a small twin)."""
        levels = torch.arange(256, dtype=self.power.dtype, device=self.power.device) / 255.0
        return torch.take(self(levels), pixels.long())  # a flat gather: 3× faster than advanced indexing on CPU


class Retina(nn.Module):
    def __init__(self, height: int, width: int, degrees: float = MAX_ECCENTRICITY_DEG):
        super().__init__()
        self.register_buffer("grid", retina_grid(height, width, degrees))


class RetinaPixel(nn.Module):
    """Learned retina power curve: (x + 1e-5)^(σ(logit)) · scale + offset."""

    def __init__(self):
        super().__init__()
        self.logit = nn.Parameter(torch.zeros(1))
        self.scale = nn.Parameter(torch.ones(1))
        self.offset = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1e-5).pow(torch.sigmoid(self.logit) * 1.0) * self.scale + self.offset


class Perspective(nn.Module):
    def __init__(self, retina_shape: tuple[int, int] = (128, 192), features: int = 16, layers: int = 3,
                 degrees: float = MAX_ECCENTRICITY_DEG):
        super().__init__()
        if not 0 < degrees <= 90:
            raise ValueError(f"retina degrees must be in (0, 90] (eccentricity of the retina's side edges), "
                             f"got {degrees!r}")
        self.retina_shape = tuple(retina_shape)
        self.monitor = Monitor()
        self.monitor_pixel = MonitorPixel()
        self.retina = Retina(*retina_shape, degrees=degrees)
        self.retina_pixel = RetinaPixel()
        self.mlp = MLP([2] + [features] * layers + [3], streams=1, raw_first=True)

    def angles(self, perspective: torch.Tensor) -> torch.Tensor:
        """Euler angles (θx, θy, θz) of the eye for perspective [B, 2] -> [B, 3]."""
        return self.mlp(perspective)

    def distinct_grids(self, perspective: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Monitor coordinates of every retina pixel for each distinct eye position in perspective [B, 2]:
        (grids [P, H', W', 2], index [B] of the grid each row uses).

        In-silico experiments hold the eye still, and projecting every retina ray for every frame was a tenth
        of a 16-direction tuning run."""
        unique, inverse = torch.unique(perspective, dim=0, return_inverse=True)
        rot = rotation(self.angles(unique))  # [P, 3, 3]
        rays = torch.einsum("bij,hwj->bhwi", rot, self.retina.grid)
        return self.monitor.project(rays), inverse

    def monitor_grid(self, perspective: torch.Tensor) -> torch.Tensor:
        """Monitor coordinates of every retina pixel, [B, H', W', 2]."""
        grids, inverse = self.distinct_grids(perspective)
        return grids[inverse]

    def forward(self, stimulus: torch.Tensor, perspective: torch.Tensor, gamma_applied: bool = False) -> torch.Tensor:
        """stimulus [B, 1, Hs, Ws] in [0, 1], perspective [B, 2] -> retina image [B, 1, H', W'].

        ``gamma_applied``: the stimulus is already monitor luminance (see :meth:`MonitorPixel.lookup`)."""
        hs, ws = stimulus.shape[-2:]
        ho, wo = self.retina_shape
        g, inverse = self.distinct_grids(perspective)
        s = ws / (ws - 1)
        gx = ((g[..., 0] * s) * (wo - 1)) / wo
        gy = ((((g[..., 1] * ws) / hs) * s) * (ho - 1)) / ho
        grids = torch.stack([gx, gy], -1)  # [P, H', W', 2]
        image = stimulus if gamma_applied else self.monitor_pixel(stimulus)
        if image.shape[0] != len(inverse):
            image = image.expand(len(inverse), -1, -1, -1)
        if len(grids) == 1 and len(inverse) > 1 and image.shape[1] == 1:
            # one eye position for all frames (every in-silico experiment): sample the frames as the channels of
            # one image, so the sampling weights are computed once instead of once per frame (same arithmetic)
            retina = F.grid_sample(image.transpose(0, 1), grids, mode="bilinear", padding_mode="zeros",
                                   align_corners=False).transpose(0, 1)
        else:
            retina = F.grid_sample(image, grids[inverse], mode="bilinear", padding_mode="zeros", align_corners=False)
        return self.retina_pixel(retina)
