"""Recurrent core: the CvT-LSTM, a convolutional LSTM whose gates see grouped self-attention (spec 6).

Everything that does not depend on the recurrent state (the projections of the feedforward output
and of the modulation) is computed for the whole chunk first; only the state-dependent part runs
frame by frame. Inside the loop tensors are [N, S·G, C, P] (stream-major groups, channels, positions)
so that every grouped 1×1 layer is one batched matmul and the attention needs no transposes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import InterGroupProjection, StreamLayer, cached_weight, conv3d


class CvtLstm(nn.Module):
    def __init__(self, streams: int = 4, in_features: int = 128, modulation_features: int = 16,
                 input_size: int = 256, hidden: int = 256, common: int = 512, groups: int = 8,
                 kernel: int = 3, out_features: int = 128):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden", hidden), ("common", common)):
            if value % groups:
                raise ValueError(f"{name}={value} must be divisible by groups={groups}")
        self.streams, self.groups = streams, groups
        self.input_size, self.hidden, self.common = input_size, hidden, common
        g = groups
        self.conv = StreamLayer(input_size + hidden, common, streams=streams, in_groups=g, kernel=kernel,
                                gain=False, bias=False)
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(g, common // g)) for _ in range(streams)])
        self.proj_x = nn.ModuleList([
            InterGroupProjection(g, hidden // g, input_size // g, streams=streams),
            StreamLayer(in_features, input_size, streams=streams, out_groups=g),
            StreamLayer(modulation_features, input_size, streams=streams, out_groups=g, bias=False),
        ])
        for name in ("q", "k", "v"):
            setattr(self, f"proj_{name}", StreamLayer(common, common, streams=streams, in_groups=g,
                                                      gain=False, bias=False))
        for name in ("i", "f", "g", "o"):
            setattr(self, f"proj_{name}", StreamLayer(2 * common, hidden, streams=streams, in_groups=g,
                                                      out_groups=g))
        self.out = StreamLayer(hidden, out_features, streams=streams)
        # what runs one frame: ``step`` itself unless the engine installs a replacement with the same signature
        # (CUDA-graph replay, twin_explorer.engine.graphs); it must give the same numbers
        self.stepper = None

    @cached_weight
    def weights(self) -> dict[str, torch.Tensor]:
        """Effective weights in the loop's layout, computed once per chunk."""
        S, G = self.streams, self.groups
        qkv = torch.cat([self.proj_q.matrices()[0], self.proj_k.matrices()[0], self.proj_v.matrices()[0]], 1)
        gates = [getattr(self, f"proj_{n}").matrices() for n in "ifgo"]
        return {
            "intergroup": self.proj_x[0].dense(),  # [S, input, hidden]
            "conv": self.conv.kernel().squeeze(2),  # [S·common, (input+hidden)/G, k, k]
            "qkv_t": qkv.transpose(1, 2).contiguous(),  # [S·G, c, 3·c]
            "scales_t": torch.stack(list(self.scales)).view(S * G, 1, -1),
            "gates": torch.cat([w for w, _ in gates], 1),  # [S·G, 4·h, 2·c]
            "gate_bias": torch.cat([b.view(S * G, -1) for _, b in gates], 1).unsqueeze(-1),
        }

    def inputs(self, features: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        """P_F(F) + P_μ(μ) for a chunk: features [N, S·C, T, H, W], modulation [N, T, S·M] -> [T, N, S·G, c, P]."""
        S, G = self.streams, self.groups
        n, _, t, h, w = features.shape
        pf, bf = self.proj_x[1].matrices()  # [S, I, C]
        pf = torch.einsum("soc,nsctp->tnsop", pf, features.view(n, S, -1, t, h * w)) + bf.view(S, -1, 1)
        pm, _ = self.proj_x[2].matrices()
        pm = torch.einsum("soc,ntsc->tnso", pm, modulation.view(n, t, S, -1)).unsqueeze(-1)
        return (pf + pm).reshape(t, n, S * G, self.input_size // G, h * w)

    def step(self, x_in: torch.Tensor, state, w: dict, shape: tuple[int, int]):
        """One frame. x_in [N, S·G, i, P] = P_F + P_μ; state (h, c) [N, S·G, h, P] or None -> (h, c)."""
        S, G = self.streams, self.groups
        n, _, _, p = x_in.shape
        if state is None:
            # the state stays float32 under autocast: the cell memory sums over hundreds of frames
            h = c = x_in.new_zeros(n, S * G, self.hidden // G, p, dtype=torch.float32)
            x = torch.tanh(x_in)
        else:
            h, c = state
            ig = torch.matmul(w["intergroup"], h.reshape(n, S, self.hidden, p))
            x = torch.tanh(ig.view_as(x_in) + x_in)
        xh = torch.cat([x, h], 2)  # per group [x_g, h_g]
        z = F.conv2d(xh.view(n, -1, *shape), w["conv"], padding=self.conv.padding, groups=S * G)
        z = z.view(n, S * G, -1, p)
        # attention in position-major layout [.., P, c], where torch's fused (flash) kernel applies
        qkv = torch.matmul(z.transpose(2, 3), w["qkv_t"])
        q, k, v = qkv.split(qkv.shape[-1] // 3, -1)
        q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True) * w["scales_t"]
        k = k / torch.linalg.vector_norm(k, dim=-1, keepdim=True)
        # softmax over keys of (scaled, normalised) q·k, no 1/sqrt(d): scale=1
        att = F.scaled_dot_product_attention(q, k, v.contiguous(), scale=1.0).transpose(2, 3)
        gates = torch.matmul(w["gates"], torch.cat([z, att], 2)) + w["gate_bias"]
        i, f, g, o = gates.chunk(4, 2)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def forward(self, features: torch.Tensor, modulation: torch.Tensor, state=None):
        """features [N, S·C, T, H, W], modulation [N, T, S·M] -> (hidden states [N, S·H, T, H, W], state)."""
        n, _, t, hh, ww = features.shape
        w = self.weights()
        x_in = self.inputs(features, modulation)
        hs = []
        step = self.stepper or self.step
        for i in range(t):
            state = step(x_in[i], state, w, (hh, ww))
            hs.append(state[0])
        hidden = torch.stack(hs, 3).view(n, -1, t, hh, ww)  # [N, S·H, T, H, W]
        return hidden, state

    def output(self, hidden: torch.Tensor) -> torch.Tensor:
        """Out(h): [N, S·H, T, H, W] -> [N, S·out, T, H, W]."""
        return conv3d(hidden, self.out.kernel(), self.out.bias(), groups=self.streams)
