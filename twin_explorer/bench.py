"""Speed benchmark of the prediction engine: ``python -m twin_explorer.bench`` or ``twin-explorer bench``.

Prints, from one run on this machine: frames/s of the MICrONS configuration (U = 10,000 by default)
through the engine (chunked: stateless stages over all frames at once, only the recurrence frame by
frame) and through a straightforward frame-by-frame loop of the same modules (the reference's
structure), for 1 video and a batch; their ratio; FLOPs per frame (counted by torch); the machine's
measured sgemm peak and the fraction of it reached; and the parity of the two paths. On a CUDA GPU
it adds batch 1/16/64 in float32 (TF32 off) and bfloat16 with bfloat16's deviation from float32.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from .engine.devices import disable_tf32, resolve_device
from .model import Network, NetworkConfig


def sgemm_peak(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Best measured float32 matmul rate, FLOP/s."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def flops_per_frame(net: Network, device: torch.device) -> float:
    """FLOPs of one frame of one video, as counted by torch's FLOP counter (matmuls and convolutions)."""
    x = torch.zeros(1, 1, 144, 256, device=device)
    z = torch.zeros(1, 1, 2, device=device)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    # the fused attention kernel is invisible to the counter; its unfused form has the same FLOPs
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        net.run(x, z, z)
    return float(counter.get_total_flops())


def make_network(units: int, device: torch.device, seed: int = 0) -> Network:
    """The MICrONS configuration with random (but non-degenerate) weights: speed does not depend on values."""
    torch.manual_seed(seed)
    net = Network(NetworkConfig.microns(units))
    with torch.no_grad():
        for p in net.readout.feature.weights:
            p.normal_(0, 0.1)
        net.readout.position.mu.normal_(0, 0.5)
    return net.to(device).eval().freeze()  # as in a Twin: effective weights computed once, for both paths


def run_chunked(net: Network, video, zeros, frames_per_pass: int | None = None):
    """The engine's path: whole chunks through the stateless stages, recurrence frame by frame."""
    t = video.shape[1]
    step = frames_per_pass or t
    state, outs = None, []
    for s in range(0, t, step):
        out, state = net.run(video[:, s:s + step], zeros[:, s:s + step], zeros[:, s:s + step], state)
        outs.append(out)
    return torch.cat(outs, 1)


def run_frame_by_frame(net: Network, video, zeros):
    """The reference's structure: every module called once per frame, state carried."""
    state, outs = None, []
    for s in range(video.shape[1]):
        out, state = net.run(video[:, s:s + 1], zeros[:, s:s + 1], zeros[:, s:s + 1], state)
        outs.append(out)
    return torch.cat(outs, 1)


def timed(fn, device, *args) -> tuple[float, torch.Tensor]:
    _sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = fn(*args)
    _sync(device)
    return time.perf_counter() - t0, out


def frames_per_pass_for(net: Network, n: int, t: int, budget_mb: float) -> int:
    from .engine.twin import estimate_frame_bytes

    per = estimate_frame_bytes(net, net.config.units)
    return max(1, min(t, int(budget_mb * 2**20 // per) // n))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="twin-explorer bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=10, help="frames per video")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--budget-mb", type=float, default=1536, help="activation memory budget of a pass")
    args = parser.parse_args(argv)
    if args.units < 1 or args.frames < 2 or args.batch < 1:
        parser.error("units ≥ 1, frames ≥ 2 and batch ≥ 1 are required")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be ≥ 1")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    disable_tf32()
    net = make_network(args.units, device)
    flops = flops_per_frame(net, device)
    peak = sgemm_peak(device)
    print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"MICrONS network, U = {args.units}: {flops / 1e9:.2f} GFLOP per frame (torch FLOP counter)")
    print(f"measured sgemm peak: {peak / 1e9:.1f} GFLOP/s")
    rng = torch.Generator().manual_seed(0)
    results = {"flops_per_frame": flops, "sgemm_peak": peak}
    for n in sorted({1, args.batch}):
        video = (torch.rand(n, args.frames, 144, 256, generator=rng) * 255).round().to(device)
        zeros = torch.zeros(n, args.frames, 2, device=device)
        fpp = frames_per_pass_for(net, n, args.frames, args.budget_mb)
        with torch.inference_mode():  # warm-up on the very same shapes: oneDNN builds kernels per shape
            run_chunked(net, video, zeros, fpp)
            run_frame_by_frame(net, video, zeros)
        t_chunk, out_chunk = timed(run_chunked, device, net, video, zeros, fpp)
        t_loop, out_loop = timed(run_frame_by_frame, device, net, video, zeros)
        fps_chunk, fps_loop = n * args.frames / t_chunk, n * args.frames / t_loop
        rel = ((out_chunk - out_loop).abs() / out_loop.abs()).max().item()
        frac = fps_chunk * flops / peak
        results[n] = dict(fps_engine=fps_chunk, fps_loop=fps_loop, ratio=fps_chunk / fps_loop, peak_fraction=frac,
                          max_rel_diff=rel)
        print(f"batch {n:3d}: engine {fps_chunk:7.2f} frames/s ({fpp} frames/pass) | frame-by-frame loop "
              f"{fps_loop:7.2f} frames/s | ratio {fps_chunk / fps_loop:5.2f}x | {100 * frac:5.1f}% of sgemm peak | "
              f"engine vs loop max rel diff {rel:.2e}")
    if device.type == "cuda":
        results["gpu"] = gpu_section(net, device, args.frames)
    return results


def gpu_section(net: Network, device: torch.device, frames: int) -> dict:
    out = {}
    for n in (1, 16, 64):
        video = (torch.rand(n, frames, 144, 256, device=device) * 255).round()
        zeros = torch.zeros(n, frames, 2, device=device)
        with torch.inference_mode():
            run_chunked(net, video[:, :2], zeros[:, :2])
        t32, ref = timed(run_chunked, device, net, video, zeros)

        def bf16(*a):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return run_chunked(*a).float()

        with torch.inference_mode():
            bf16(net, video[:, :2], zeros[:, :2])
        t16, low = timed(bf16, device, net, video, zeros)
        dev = ((low - ref).abs() / ref.abs()).flatten()
        out[n] = dict(fps_fp32=n * frames / t32, fps_bf16=n * frames / t16, bf16_max_rel=dev.max().item(),
                      bf16_median_rel=dev.median().item())
        print(f"GPU batch {n:3d}: float32 (TF32 off) {n * frames / t32:8.1f} frames/s | bfloat16 "
              f"{n * frames / t16:8.1f} frames/s | bf16 deviation max {dev.max().item():.2e}, median "
              f"{dev.median().item():.2e} (relative)")
    return out


if __name__ == "__main__":
    main()
