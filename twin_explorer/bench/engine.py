"""Speed benchmark of the prediction engine: ``twin-explorer bench engine``.

Prints, from one run on this machine: frames/s of the MICrONS configuration (U = 10,000 by default)
through the engine (chunked: stateless stages over all frames at once, only the recurrence frame by
frame) and through a straightforward frame-by-frame loop of the same modules (the reference's
structure), for 1 video and a batch; their ratio; FLOPs per frame (counted by torch); the machine's
measured sgemm peak and the fraction of it reached; and the parity of the two paths. On a CUDA GPU
it adds batch 1/16/64 in float32 (TF32 off) and bfloat16 with bfloat16's deviation from float32.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..engine.devices import disable_tf32, resolve_device, tune_cpu_allocator
from ..engine.twin import Twin, default_budget_mb
from ..model import Network, NetworkConfig


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
    """The MICrONS configuration with random (but non-degenerate) weights: speed does not depend on values.

    Frozen as in a Twin (effective weights computed once), so both measured paths share that saving."""
    torch.manual_seed(seed)
    net = Network(NetworkConfig.microns(units))
    with torch.no_grad():
        for p in net.readout.feature.weights:
            p.normal_(0, 0.1)
        net.readout.position.mu.normal_(0, 0.5)
    return net.to(device).eval().freeze()


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


def run_engine_bench(units: int = 10_000, frames: int = 10, batch: int = 16, device: str | None = None,
                     threads: int | None = None, budget_mb: float | None = None) -> dict:
    """Measure and print the engine's speed (see the module docstring); returns the numbers printed.

    ``frames`` per video, ``batch`` videos at once (besides 1), ``threads`` CPU threads (default: torch's choice),
    ``budget_mb`` the activation memory budget of a pass (default: the engine's for the device)."""
    if units < 1 or frames < 2 or batch < 1 or (threads is not None and threads < 1):
        raise ValueError(f"units ≥ 1, frames ≥ 2, batch ≥ 1 and threads ≥ 1 are required; got units={units}, "
                         f"frames={frames}, batch={batch}, threads={threads}")
    if threads is not None:
        torch.set_num_threads(threads)
    device = resolve_device(device)
    disable_tf32()
    if device.type == "cpu":
        tune_cpu_allocator()  # as the engine does
    if budget_mb is None:
        budget_mb = default_budget_mb(device)
    net = make_network(units, device)
    flops = flops_per_frame(net, device)
    peak = sgemm_peak(device)
    print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"MICrONS network, U = {units}: {flops / 1e9:.2f} GFLOP per frame (torch FLOP counter)")
    print(f"measured sgemm peak: {peak / 1e9:.1f} GFLOP/s")
    twin = Twin(net, device=device, memory_budget_mb=budget_mb, cache_mb=0)
    rng = np.random.default_rng(0)
    results = {"flops_per_frame": flops, "sgemm_peak": peak}
    for n in sorted({1, batch}):
        clips = rng.integers(0, 256, (n, frames, 144, 256), dtype=np.uint8)
        video = torch.from_numpy(clips).float().to(device)
        zeros = torch.zeros(n, frames, 2, device=device)
        vpp, fpp = twin.chunk_plan(n, frames, net.config.units)

        def engine():
            return torch.from_numpy(twin.predict(clips, use_cache=False)).to(device)

        with torch.inference_mode():  # warm-up on the very same shapes: oneDNN builds kernels per shape
            engine()
            run_frame_by_frame(net, video, zeros)
        t_chunk, out_chunk = timed(engine, device)
        t_loop, out_loop = timed(run_frame_by_frame, device, net, video, zeros)
        fps_chunk, fps_loop = n * frames / t_chunk, n * frames / t_loop
        rel = ((out_chunk - out_loop).abs() / out_loop.abs()).max().item()
        frac = fps_chunk * flops / peak
        results[n] = dict(videos_per_pass=vpp, frames_per_pass=fpp, fps_engine=fps_chunk, fps_loop=fps_loop,
                          ratio=fps_chunk / fps_loop, peak_fraction=frac, max_rel_diff=rel)
        print(f"batch {n:3d}: engine {fps_chunk:7.2f} frames/s ({vpp} videos x ≤{fpp} frames a pass) | "
              f"frame-by-frame loop {fps_loop:7.2f} frames/s | ratio {fps_chunk / fps_loop:5.2f}x | "
              f"{100 * frac:5.1f}% of sgemm peak | engine vs loop max rel diff {rel:.2e}")
    if device.type == "cuda":
        results["gpu"] = gpu_section(net, device, frames)
    return results


def gpu_section(net: Network, device: torch.device, frames: int) -> dict:
    """Batch 1/16/64 through the engine on a GPU in float32 (TF32 off) and bfloat16, with bf16's deviation."""
    out = {}
    rng = np.random.default_rng(1)
    twins = {p: Twin(net, device=device, precision=p, cache_mb=0) for p in ("float32", "bfloat16")}
    for n in (1, 16, 64):
        frames_u8 = rng.integers(0, 256, (n, frames, 144, 256), dtype=np.uint8)
        runs = {}
        for precision, twin in twins.items():
            twin.predict(frames_u8, use_cache=False)  # warm-up
            runs[precision] = timed(lambda: twin.predict(frames_u8, use_cache=False), device)
        (t32, ref), (t16, low) = runs["float32"], runs["bfloat16"]
        dev = (np.abs(low - ref) / np.abs(ref)).ravel()
        out[n] = dict(fps_fp32=n * frames / t32, fps_bf16=n * frames / t16, bf16_max_rel=float(dev.max()),
                      bf16_median_rel=float(np.median(dev)))
        print(f"GPU batch {n:3d}: float32 (TF32 off) {n * frames / t32:8.1f} frames/s | bfloat16 "
              f"{n * frames / t16:8.1f} frames/s | bf16 deviation max {dev.max():.2e}, median "
              f"{np.median(dev):.2e} (relative)")
    return out

