"""Modulation module: pupil and running -> a per-stream behavioural state through an MLP and an LSTM (spec 4)."""

from __future__ import annotations

import torch
from torch import nn

from .layers import MLP, Linear, cached_weight


class StreamLSTMCell(nn.Module):
    """LSTM cell per stream; the input of each gate is catg_S([x, h]) (spec 2.9). Gate order i, f, g, o."""

    def __init__(self, in_features: int, hidden: int, *, streams: int):
        super().__init__()
        self.streams, self.in_features, self.hidden = streams, in_features, hidden
        for gate in "ifgo":
            setattr(self, f"proj_{gate}", Linear(in_features + hidden, hidden, streams=streams))

    @cached_weight
    def gate_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All four gates stacked: weight [S, 4·H, I+H] and bias [S, 4·H]."""
        S, H = self.streams, self.hidden
        layers = [self.proj_i, self.proj_f, self.proj_g, self.proj_o]
        w = torch.cat([l.kernel().view(S, H, -1) for l in layers], 1)
        b = torch.cat([l.bias().view(S, H) for l in layers], 1)
        return w, b

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None,
                weights: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x [N, S·I]; state (h, c) each [N, S·H] or None (zeros). Returns (h, c)."""
        S, H = self.streams, self.hidden
        w, b = weights if weights is not None else self.gate_weights()
        xs = x.view(x.shape[0], S, -1)
        if state is None:
            h = c = xs.new_zeros(x.shape[0], S, H)
        else:
            h, c = (t.view(x.shape[0], S, H) for t in state)
        z = torch.cat([xs, h], -1)  # per stream [x_s, h_s]
        gates = torch.einsum("nsi,soi->nso", z, w) + b
        i, f, g, o = gates.split(H, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h.flatten(1), c.flatten(1)


class Modulation(nn.Module):
    def __init__(self, streams: int = 4, features: int = 16, inputs: int = 2):
        super().__init__()
        self.streams, self.features, self.inputs = streams, features, inputs
        self.mlp = MLP([inputs, features], streams=streams, raw_first=True, final_activation=True)
        self.lstm = StreamLSTMCell(features, features, streams=streams)

    def forward(self, modulation: torch.Tensor, state=None):
        """modulation [N, T, 2] -> (μ [N, T, S·F], state (h, c)). Runs the LSTM frame by frame."""
        n, t = modulation.shape[:2]
        x = self.mlp(modulation.repeat(1, 1, self.streams))  # [N, T, S·F]; same 2 numbers to every stream
        weights = self.lstm.gate_weights()
        outputs = []
        for i in range(t):
            state = self.lstm(x[:, i], state, weights)
            outputs.append(state[0])
        return torch.stack(outputs, 1), state
