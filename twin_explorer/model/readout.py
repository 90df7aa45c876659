"""Readout: each unit reads the core output at one learned position with per-stream feature weights (spec 7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Position(nn.Module):
    def __init__(self, units: int):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(units, 2))
        self.sigma = nn.Parameter(torch.eye(2).repeat(units, 1, 1) * 0.1)  # training only


class Feature(nn.Module):
    def __init__(self, units: int, channels: int, streams: int):
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(torch.zeros(units, 1, channels)) for _ in range(streams)])


class Readout(nn.Module):
    def __init__(self, units: int, channels: int = 128, streams: int = 4):
        super().__init__()
        self.units, self.channels, self.streams = units, channels, streams
        self.position = Position(units)
        self.feature = Feature(units, channels, streams)
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(units, 1)) for _ in range(streams)])

    def positions(self, units: torch.Tensor | None = None) -> torch.Tensor:
        """Readout positions tanh(mu) in (−1, 1)², (x, y), [U, 2]."""
        mu = self.position.mu if units is None else self.position.mu[units]
        return torch.tanh(mu)

    def forward(self, core: torch.Tensor, units: torch.Tensor | None = None, frames_per_step: int | None = None,
                reduce: bool = True) -> torch.Tensor:
        """core [B, S·C, H, W] -> mean over streams of the per-stream readout (log rate), [B, U]
        (or the per-stream readouts [B, S, U] when not ``reduce``).

        Frames go through in groups of ``frames_per_step`` because the sampled features of every unit
        ([B, S·C, U]) are large for 10,000 units; by default a group holds about 16 MB of them.
        """
        S, C = self.streams, self.channels
        grid = self.positions(units).view(1, -1, 1, 2)
        w = torch.stack(list(self.feature.weights)).squeeze(2)  # [S, U, C]
        b = torch.stack(list(self.biases)).squeeze(2)  # [S, U]
        if units is not None:
            w, b = w[:, units], b[:, units]
        w = w.transpose(1, 2).contiguous()  # [S, C, U], laid out like the sampled features
        if frames_per_step is None:
            frames_per_step = max(1, 2**22 // (S * C * w.shape[-1]))
        outputs = []
        for chunk in core.split(frames_per_step):
            phi = F.grid_sample(chunk, grid.expand(chunk.shape[0], -1, -1, -1), mode="bilinear",
                                padding_mode="border", align_corners=False)  # [b, S·C, U, 1]
            rho = (phi.view(chunk.shape[0], S, C, -1) * w).sum(2) + b  # [b, S, U]
            outputs.append(rho.mean(1) if reduce else rho)
        return torch.cat(outputs)
