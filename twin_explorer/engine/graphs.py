"""The GPU path's fixed shapes: batch buckets and the per-frame recurrent step captured as CUDA graphs.

On a GPU one frame of the CvT-LSTM is a few dozen small kernels; launching them costs more than running them
at small batches. Capturing the step once per shape as a CUDA graph and replaying it removes that launch cost,
but a graph is tied to its tensor shapes, so batches are padded up to a few bucket sizes (:data:`BUCKETS`): the
padding rows repeat the last video and are dropped afterwards (videos never mix, so real rows are unchanged).
The padding logic runs on any device; graph capture only on CUDA (elsewhere the plain step runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def bucket_for(n: int) -> int:
    """The smallest bucket holding ``n`` videos (passes are at most :data:`BUCKETS`[-1] videos)."""
    if n < 1 or n > BUCKETS[-1]:
        raise ValueError(f"a pass holds 1..{BUCKETS[-1]} videos, got {n}")
    return next(b for b in BUCKETS if b >= n)


def pad_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` [n, ...] padded to [size, ...] with copies of its last row (real rows first, unchanged)."""
    n = x.shape[0]
    if size < n:
        raise ValueError(f"cannot pad a batch of {n} down to {size}")
    return x if size == n else torch.cat([x, x[-1:].expand(size - n, *x.shape[1:])])


@dataclass
class _Captured:
    graph: "torch.cuda.CUDAGraph"
    x: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    h_out: torch.Tensor
    c_out: torch.Tensor


class GraphedSteps:
    """A drop-in for ``CvtLstm.step`` that replays one CUDA graph per (input shape, dtype, autocast) on CUDA in
    inference, and calls the plain step otherwise (CPU, MPS, autograd). Set it as the module's ``stepper``."""

    def __init__(self, recurrent: torch.nn.Module):
        self.recurrent = recurrent
        self.graphs: dict[tuple, _Captured] = {}

    def __call__(self, x_in: torch.Tensor, state, w: dict, shape: tuple[int, int]):
        if x_in.device.type != "cuda" or torch.is_grad_enabled():
            return self.recurrent.step(x_in, state, w, shape)
        autocast = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
        key = (tuple(x_in.shape), x_in.dtype, shape, autocast)
        captured = self.graphs.get(key)
        if captured is None:
            captured = self.graphs[key] = self._capture(x_in, w, shape, autocast)
        if state is None:  # zero state: the inter-group term is exactly 0, as in the plain step's first frame
            captured.h.zero_()
            captured.c.zero_()
        else:
            captured.h.copy_(state[0])
            captured.c.copy_(state[1])
        captured.x.copy_(x_in)
        captured.graph.replay()
        return captured.h_out.clone(), captured.c_out.clone()  # the next replay overwrites the static outputs

    def _capture(self, x_in: torch.Tensor, w: dict, shape: tuple[int, int], autocast) -> _Captured:
        n, groups, _, p = x_in.shape
        hidden = self.recurrent.hidden // self.recurrent.groups
        x = x_in.clone()
        h = torch.zeros(n, groups, hidden, p, device=x.device, dtype=torch.float32)
        c = torch.zeros_like(h)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the capture (cuBLAS/cuDNN workspaces, lazy init)
            for _ in range(2):
                self.recurrent.step(x, (h, c), w, shape)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # autocast's weight-cast cache must not hold tensors made inside a capture
        with torch.autocast("cuda", dtype=autocast or torch.float16, enabled=autocast is not None,
                            cache_enabled=False), torch.cuda.graph(graph):
            h_out, c_out = self.recurrent.step(x, (h, c), w, shape)
        return _Captured(graph, x, h, c, h_out, c_out)
