"""Feedforward core: input projections and dense blocks with causal 3-tap temporal convolutions (spec 5).

Runs on a whole chunk of frames at once in [N, C, T, H, W] layout: a causal temporal convolution over
a chunk equals the reference's frame-by-frame FIFO when the chunk is prefixed with the last two
inputs of the previous chunk (zeros after a reset), which is the state carried between chunks.

On CPU the activations are kept channels-last (``torch.channels_last_3d``): with the demo twin's few
channels per group, oneDNN's convolutions, 1×1 projections and pooling are 2–10× faster in that layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CHANNELS_LAST, StreamLayer, catg, conv3d, gelu_gain, memory_layout


def pointwise(layer: StreamLayer, x: torch.Tensor) -> torch.Tensor:
    """A 1×1 stream layer on [N, S·I, T, H, W]."""
    return conv3d(x, layer.kernel(), layer.bias(), groups=layer.streams * layer.in_groups)


def temporal_conv(layer: StreamLayer, x: torch.Tensor, history: torch.Tensor | None):
    """Causal k_t-tap conv with zero spatial padding; returns (output, new history of k_t-1 frames)."""
    taps = layer.taps
    if history is None:
        history = x.new_zeros(x.shape[:2] + (taps - 1,) + x.shape[3:]).contiguous(memory_format=memory_layout(x))
    full = cat_frames(history, x)
    p = layer.padding
    y = conv3d(full, layer.kernel(), layer.bias(), padding=(0, p, p), groups=layer.streams * layer.in_groups)
    tail = full[:, :, -(taps - 1):]
    if full.shape[2] <= 2 * (taps - 1):  # a short pass: the view pins little, and the next pass copies it anyway
        return y, tail
    # a compact copy in x's layout: a strided view would pin the whole chunk and fall out of channels-last
    return y, tail.contiguous(memory_format=memory_layout(x))


def cat_frames(history: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``torch.cat([history, x], 2)`` in x's memory layout. For channels-last operands the result is allocated and
    filled slice by slice: torch.cat takes a strided path there that was measured 2-4x slower than two copies."""
    layout = memory_layout(x)
    if layout is not CHANNELS_LAST:
        return torch.cat([history, x], 2)
    t = history.shape[2]
    full = torch.empty(x.shape[:2] + (t + x.shape[2],) + x.shape[3:], dtype=x.dtype, device=x.device,
                       memory_format=layout)
    full[:, :, :t].copy_(history)
    full[:, :, t:].copy_(x)
    return full


def avg_pool_hw(x: torch.Tensor, k: int) -> torch.Tensor:
    """k×k average pooling of H, W in [N, C, T, H, W], keeping x's memory layout.

    Both branches pool a 4-D view without copying: [N, C·T, H, W] for the standard layout, and the channels-last
    [N·T, C, H, W] for channels-last (avg_pool3d is several times slower than avg_pool2d on CPU)."""
    n, c, t, h, w = x.shape
    if memory_layout(x) is CHANNELS_LAST:
        pooled = F.avg_pool2d(x.transpose(1, 2).reshape(n * t, c, h, w), k)
        return pooled.view(n, t, c, h // k, w // k).transpose(1, 2)
    return F.avg_pool2d(x.reshape(n, c * t, h, w), k).view(n, c, t, h // k, w // k)


class DenseBlock(nn.Module):
    def __init__(self, channels: int, groups: int, *, streams: int, pool: int, taps: int = 3, kernel: int = 3):
        super().__init__()
        self.streams, self.groups, self.pool = streams, groups, pool
        conv = dict(streams=streams, in_groups=groups, out_groups=groups, taps=taps, kernel=kernel)
        self.convs = nn.ModuleList([StreamLayer(channels, channels, **conv) for _ in range(2)])
        self.skips = nn.ModuleDict({"1": StreamLayer(channels, channels, streams=streams, in_groups=groups,
                                                     out_groups=groups, bias=False)})

    def forward(self, a0: torch.Tensor, state: list | None):
        state = state or [None, None]
        y0 = gelu_gain(a0)
        a1, h0 = temporal_conv(self.convs[0], y0, state[0])
        y1 = gelu_gain(a1)
        a2, h1 = temporal_conv(self.convs[1], y1, state[1])
        a2 = a2 + pointwise(self.skips["1"], y0)
        parts = [a0, a1, a2]
        if self.pool > 1:  # pooling is per channel, so pooling the parts before concatenating them is the same
            parts = [avg_pool_hw(a, self.pool) for a in parts]  # arithmetic on a quarter of the copying
        # one three-operand catg equals the reference's two successive two-operand ones
        return catg(parts, self.streams * self.groups), [h0, h1]


class Feedforward(nn.Module):
    def __init__(self, streams: int = 4, channels=(32, 64, 128), groups=(1, 2, 4), pools=(2, 2, 1),
                 input_kernel: int = 6, input_stride: int = 2, out_channels: int = 128):
        super().__init__()
        self.streams = streams
        self.inputs = nn.ModuleList()
        self.blocks = nn.ModuleList()
        previous = 1
        for i, (c, g, p) in enumerate(zip(channels, groups, pools)):
            if i == 0:
                layer = StreamLayer(previous, c, streams=streams, kernel=input_kernel, stride=input_stride,
                                    standardize=False, gain=False, padding_mode="replicate")
            else:
                layer = StreamLayer(previous, c, streams=streams, out_groups=g)
            self.inputs.append(layer)
            self.blocks.append(DenseBlock(c, g, streams=streams, pool=p))
            previous = 3 * c
        self.out = StreamLayer(previous, out_channels, streams=streams)

    def forward(self, retina: torch.Tensor, state: list | None = None):
        """retina [N, 1, T, H, W] (shared by all streams) -> (F [N, S·C_out, T, h, w], state)."""
        state = state or [None] * len(self.blocks)
        first = self.inputs[0]
        p = first.padding
        x = F.pad(retina, (p, p, p, p, 0, 0), mode="replicate")
        # every stream sees the same one-channel image, so one ungrouped conv serves all streams
        x = conv3d(x, first.kernel(), first.bias(), stride=(1, first.stride, first.stride))
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=CHANNELS_LAST)
        new_state = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = pointwise(self.inputs[i], x)
            x, s = block(x, state[i])
            new_state.append(s)
        return pointwise(self.out, x).contiguous(), new_state
