"""Readout: each unit reads the core output at one learned position with per-stream feature weights (spec 7).

Without autograd (inference) the readout runs as batched matrix products instead of ``grid_sample``: units are
grouped by the core-map cell their position falls in (the 4 pixels their bilinear sample reads), each group's
feature weights (all streams, 1/S folded in) meet that cell's 4 pixel vectors in one small matmul, and the 4
products are then blended with the bilinear weights. That is the same sum in another order (float32 rounding
apart), and it never materialises the sampled features of every unit (20 MB a frame at 10,000 units).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .layers import cached_weight

BLOCK = 32  # units per matmul block (a cell's units fill blocks of this size)


class CellBlocks(NamedTuple):
    """The readout regrouped by core-map cell (see the module docstring)."""

    weights: torch.Tensor  # [B, BLOCK, S·C]: feature weights / S of the units of each block, zero-padded
    corners: torch.Tensor  # [B, 4]: flat core-map pixels of each block's cell (nw, ne, sw, se)
    slots: torch.Tensor  # [U]: each unit's row in the flattened [B·BLOCK] blocks
    bilinear: torch.Tensor  # [U, 4]: each unit's bilinear weights of its cell's 4 pixels
    bias: torch.Tensor  # [U]: the mean of the streams' biases


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
        if reduce and not torch.is_grad_enabled():
            shape = core.shape[-2:]
            blocks = self.cell_blocks(shape) if units is None else self._cell_blocks(shape, units)
            return self._blocked(core, blocks, frames_per_step)
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

    @cached_weight
    def _cached_blocks(self) -> dict:
        return {}

    def cell_blocks(self, shape: tuple[int, int]) -> CellBlocks:
        """:class:`CellBlocks` of all units for a core map of ``shape`` (kept while the network is frozen)."""
        cache = self._cached_blocks()
        key = tuple(shape)
        if key not in cache:
            cache[key] = self._cell_blocks(key, None)
        return cache[key]

    def _cell_blocks(self, shape: tuple[int, int], units: torch.Tensor | None) -> CellBlocks:
        S, C = self.streams, self.channels
        h, w = shape
        with torch.no_grad():
            pos = self.positions(units).float()
            # grid_sample's bilinear, padding "border", align_corners=False: unnormalise, clip, then 4 pixels
            ix = (((pos[:, 0] + 1) * w - 1) / 2).clamp(0, w - 1)
            iy = (((pos[:, 1] + 1) * h - 1) / 2).clamp(0, h - 1)
            x0, y0 = ix.floor(), iy.floor()
            bilinear = torch.stack([(x0 + 1 - ix) * (y0 + 1 - iy), (ix - x0) * (y0 + 1 - iy),
                                    (x0 + 1 - ix) * (iy - y0), (ix - x0) * (iy - y0)], 1)
            cell = y0.long() * w + x0.long()
            order = torch.sort(cell, stable=True).indices
            cells, counts = torch.unique_consecutive(cell[order], return_counts=True)
            blocks_per_cell = (counts + BLOCK - 1) // BLOCK
            first_block = torch.cumsum(blocks_per_cell, 0) - blocks_per_cell
            first_unit = torch.cumsum(counts, 0) - counts
            group = torch.repeat_interleave(torch.arange(len(cells), device=cell.device), counts)
            rank = torch.arange(len(order), device=cell.device) - first_unit[group]
            slots = torch.empty_like(order)
            slots[order] = first_block[group] * BLOCK + rank
            n_blocks = int(blocks_per_cell.sum())
            block_cell = torch.repeat_interleave(cells, blocks_per_cell)
            by, bx = block_cell // w, block_cell % w
            bx1, by1 = (bx + 1).clamp(max=w - 1), (by + 1).clamp(max=h - 1)  # a clipped edge has weight 0 there
            corners = torch.stack([by * w + bx, by * w + bx1, by1 * w + bx, by1 * w + bx1], 1)
            feature = torch.stack(list(self.feature.weights)).squeeze(2)  # [S, U, C]
            bias = torch.stack(list(self.biases)).squeeze(2)  # [S, U]
            if units is not None:
                feature, bias = feature[:, units], bias[:, units]
            weights = feature.new_zeros(n_blocks * BLOCK, S * C)
            weights[slots] = feature.permute(1, 0, 2).reshape(-1, S * C) / S
        return CellBlocks(weights.view(n_blocks, BLOCK, S * C), corners, slots, bilinear, bias.mean(0))

    @staticmethod
    def _blocked(core: torch.Tensor, blocks: CellBlocks, frames_per_step: int | None) -> torch.Tensor:
        """core [F, S·C, H, W] -> log rates [F, U] through the cell blocks (float32, also under autocast)."""
        n_blocks, _, channels = blocks.weights.shape
        if frames_per_step is None:  # the gathered pixel vectors of a step stay near 32 MB
            frames_per_step = max(1, 2**23 // (n_blocks * channels * 4))
        outputs = []
        with torch.autocast(core.device.type, enabled=False):
            for chunk in core.float().split(frames_per_step):
                f = chunk.shape[0]
                pixels = chunk.flatten(2)[:, :, blocks.corners]  # [f, S·C, B, 4]
                pixels = pixels.permute(2, 1, 0, 3).reshape(n_blocks, channels, f * 4)
                products = torch.bmm(blocks.weights, pixels).view(-1, f, 4)[blocks.slots]  # [U, f, 4]
                rho = torch.einsum("ufk,uk->fu", products, blocks.bilinear)
                outputs.append(rho + blocks.bias)
        return torch.cat(outputs)
