"""Shared building blocks of the MICrONS network: streams of weight-standardised layers.

Every layer stores one parameter tensor per *stream* under ``weights.{s}``, ``gains.{s}``,
``biases.{s}`` (a :class:`torch.nn.ParameterList` gives exactly these state-dict keys). The
*effective* kernel of all streams, stacked along the output axis, is what the forward passes use;
it depends only on the parameters, so callers compute it once per chunk of frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GELU_GAIN = 1.7015043497085571  # variance-preserving constant of the reference (spec 2.3)
WS_EPS = 1e-5


def conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=(1, 1, 1),
           padding=(0, 0, 0), groups: int = 1) -> torch.Tensor:
    """``F.conv3d``, always through oneDNN for float32 on CPU.

    PyTorch's own dispatch sends a single video's ungrouped 3×3 and 1×1 convolutions of small inputs to its
    reference kernel (``slow_conv3d``): 29 ms instead of 2 ms for the demo twin's first dense-block convolution,
    two fifths of a 1 s preview. Batches of several videos already take the oneDNN path, so results only move
    within float32 rounding. Under CPU autocast (bfloat16) the call goes through ``F.conv3d`` so autocast casts it."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32 \
            and torch.backends.mkldnn.is_available() and not torch.is_autocast_enabled("cpu"):
        return torch.ops.aten.mkldnn_convolution(x, weight, bias, list(_triple(padding)), list(_triple(stride)),
                                                 [1, 1, 1], groups)
    return F.conv3d(x, weight, bias, stride=stride, padding=padding, groups=groups)


def _triple(v) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)


def gelu_gain(x: torch.Tensor) -> torch.Tensor:
    """γ·GELU(x) with the exact (erf) GELU."""
    return F.gelu(x).mul_(GELU_GAIN)


def cached_weight(method):
    """Memoise an effective-weight method while the module is frozen (see :func:`freeze_weights`).

    Effective weights depend only on the parameters; a loaded twin whose parameters never change
    computes them once instead of once per chunk or per streamed frame. They are computed without
    autograd so that they can serve as constants in differentiable passes (MEI optimisation).
    """
    name = method.__name__

    def wrapper(self):
        cache = self.__dict__.get("_weight_cache")
        if cache is None:
            return method(self)
        if name not in cache:  # normal (not inference-mode) tensors, so autograd may use them as constants
            with torch.inference_mode(False), torch.no_grad():
                cache[name] = method(self)
        return cache[name]

    wrapper.__name__, wrapper.__doc__ = name, method.__doc__
    return wrapper


def freeze_weights(module: nn.Module, frozen: bool = True) -> None:
    """Turn effective-weight caching on (parameters must not change afterwards) or off, for all submodules."""
    for m in module.modules():
        m.__dict__["_weight_cache"] = {} if frozen else None


CHANNELS_LAST = torch.channels_last_3d


def memory_layout(x: torch.Tensor) -> torch.memory_format:
    """Channels-last for a 5-D activation stored that way (the CPU feedforward's layout), else the standard one."""
    return CHANNELS_LAST if x.dim() == 5 and x.shape[1] > 1 and x.is_contiguous(memory_format=CHANNELS_LAST) \
        else torch.contiguous_format


def catg(tensors: list[torch.Tensor], groups: int, dim: int = 1) -> torch.Tensor:
    """Group-interleaved concatenation (spec 2.2): chunk g of every operand, then chunk g+1, ...

    Channels-last 5-D operands (see :func:`memory_layout`) are interleaved along their innermost memory axis, so
    the result stays channels-last (the generic path would return a slow, strided layout)."""
    if dim == 1 and all(memory_layout(t) is CHANNELS_LAST for t in tensors):
        return catg([t.movedim(1, -1) for t in tensors], groups, dim=-1).movedim(-1, 1)
    dim = dim % tensors[0].dim()
    views = [t.unflatten(dim, (groups, t.shape[dim] // groups)) for t in tensors]
    return torch.cat(views, dim=dim + 1).flatten(dim, dim + 1)


def _zeros(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.zeros(*shape))


class StreamLayer(nn.Module):
    """A weight-standardised convolution/linear layer replicated over streams (spec 2.4).

    ``out_channels``/``in_channels`` are per stream; ``in_groups`` is the convolution's group count per
    stream; ``out_groups`` only shapes how gains/biases are stored.
    """

    def __init__(self, in_channels: int, out_channels: int, *, streams: int, in_groups: int = 1,
                 out_groups: int = 1, taps: int = 1, kernel: int = 1, stride: int = 1,
                 standardize: bool = True, gain: bool = True, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__()
        if in_channels % in_groups or out_channels % in_groups or out_channels % out_groups:
            raise ValueError("channel counts must be divisible by the group counts")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.streams, self.in_groups, self.out_groups = streams, in_groups, out_groups
        self.taps, self.kernel_size, self.stride = taps, kernel, stride
        self.standardize, self.padding_mode = standardize, padding_mode
        shape = (out_channels, in_channels // in_groups, taps, kernel, kernel)
        fan_in = math.prod(shape[1:])
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(*shape) / math.sqrt(fan_in)) for _ in range(streams)])
        self.gains = nn.ParameterList(
            [nn.Parameter(torch.ones(out_groups, out_channels // out_groups)) for _ in range(streams)]) if gain else None
        self.biases = nn.ParameterList(
            [_zeros(out_groups, out_channels // out_groups) for _ in range(streams)]) if bias else None

    @property
    def padding(self) -> int:
        return (self.kernel_size - self.stride) // 2

    @cached_weight
    def kernel(self) -> torch.Tensor:
        """Effective kernel of all streams, [S·O, I/g_in, taps, k, k]."""
        w = torch.stack(list(self.weights))  # [S, O, I/g, kt, k, k]
        if self.standardize:
            flat = w.flatten(2)
            n = flat.shape[-1]
            mean = flat.mean(dim=-1, keepdim=True)
            var = flat.var(dim=-1, correction=0, keepdim=True)
            scale = torch.rsqrt(var * n + WS_EPS)
            if self.gains is not None:
                scale = scale * torch.stack(list(self.gains)).reshape(self.streams, -1, 1)
            w = ((flat - mean) * scale).view_as(w)
        return w.flatten(0, 1)

    @cached_weight
    def bias(self) -> torch.Tensor | None:
        """Bias of all streams, [S·O], or None."""
        return None if self.biases is None else torch.stack(list(self.biases)).reshape(-1)

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """For 1×1 layers: the kernel as per-stream, per-group matrices [S·g_in, O/g_in, I/g_in] and bias."""
        k = self.kernel().flatten(1)
        return k.view(self.streams * self.in_groups, self.out_channels // self.in_groups, -1), self.bias()


class InterGroupProjection(nn.Module):
    """Maps G groups to G groups, each output group reading only the *other* groups (spec 2.7)."""

    def __init__(self, groups: int, group_in: int, group_out: int, *, streams: int):
        super().__init__()
        self.groups, self.group_in, self.group_out, self.streams = groups, group_in, group_out, streams
        fan_in = (groups - 1) * group_in
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(groups, groups - 1, group_out, group_in)
                                                      / math.sqrt(fan_in)) for _ in range(streams)])
        self.gains = nn.ParameterList([nn.Parameter(torch.ones(groups, group_out)) for _ in range(streams)])
        self.register_buffer("mask", ~torch.eye(groups, dtype=torch.bool).view(groups, groups, 1, 1))
        self.register_buffer("zero", torch.zeros(groups, groups, group_out, group_in))

    @cached_weight
    def dense(self) -> torch.Tensor:
        """Dense kernels E of all streams, [S, G·g_o, G·g_i] (zero diagonal blocks)."""
        G, go, gi = self.groups, self.group_out, self.group_in
        w = torch.stack(list(self.weights))  # [S, G, G-1, go, gi]
        mean = w.mean(dim=(2, 4), keepdim=True)
        var = w.var(dim=(2, 4), correction=0, keepdim=True)
        gains = torch.stack(list(self.gains)).view(self.streams, G, 1, go, 1)
        w = (w - mean) * gains * torch.rsqrt(var * ((G - 1) * gi) + WS_EPS)
        blocks = self.zero.expand(self.streams, G, G, go, gi).clone()
        # off-diagonal blocks in row-major order of (output group, input group), skipping the diagonal
        blocks[:, self.mask.view(G, G)] = w.reshape(self.streams, G * (G - 1), go, gi)
        return blocks.permute(0, 1, 3, 2, 4).reshape(self.streams, G * go, G * gi)


class Linear(StreamLayer):
    """A stream layer with 1×1×1 kernels used on feature vectors [N, S·I]."""

    def __init__(self, in_features: int, out_features: int, *, streams: int, standardize: bool = True,
                 gain: bool = True, bias: bool = True, out_groups: int = 1):
        super().__init__(in_features, out_features, streams=streams, standardize=standardize, gain=gain,
                         bias=bias, out_groups=out_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., S·I] -> [..., S·O]; streams never mix."""
        w = self.kernel().view(self.streams, self.out_channels, self.in_channels)
        xs = x.unflatten(-1, (self.streams, self.in_channels))
        y = torch.einsum("...si,soi->...so", xs, w).flatten(-2)
        b = self.bias()
        return y if b is None else y + b


class MLP(nn.Module):
    """Stack of stream linears; γ·GELU after every layer but (optionally) the last (spec 2.8)."""

    def __init__(self, sizes: list[int], *, streams: int, raw_first: bool, gain_bias: bool = True,
                 final_activation: bool = False):
        super().__init__()
        self.linears = nn.ModuleList()
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            raw = raw_first and i == 0
            self.linears.append(Linear(a, b, streams=streams, standardize=not raw, gain=not raw and gain_bias))
        self.final_activation = final_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.linears) - 1
        for i, layer in enumerate(self.linears):
            x = layer(x)
            if i < last or self.final_activation:
                x = gelu_gain(x)
        return x
