"""Speed benchmark of the prediction engine: ``twin-explorer bench engine``.

Prints, from one run on this machine: frames/s of the MICrONS configuration (U = 10,000 by default)
through the engine (chunked: stateless stages over all frames at once, only the recurrence frame by
frame) and through a straightforward frame-by-frame loop of the same modules (the reference's
structure), for 1 video and a batch; their ratio and the batch's gain over one video at a time; FLOPs
per frame (counted from the architecture, :mod:`.flops`); the machine's measured sgemm peak and the
fraction of it reached; the parity of the two paths; and the reference implementation (``fnn``) on the
same weights and videos when it is importable. The GPU path has its own benchmark (:mod:`.gpu`).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from ..engine.devices import disable_tf32, resolve_device, tune_cpu_allocator
from ..engine.twin import Twin
from ..model import Network, NetworkConfig
from ..twins.fullsize import randomize
from .flops import network_flops


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


def reference_fps(net: Network, clip: np.ndarray) -> float | str:
    """Frames/s of the reference implementation (``fnn``) on the same weights and one video, or why it was not
    measured. The published state dict's keys are the reference's own (spec section 10)."""
    try:
        from fnn.microns.build import network as build_reference  # optional: the reference is not a dependency
    except Exception as exc:  # ImportError, or a broken install of the optional package
        return f"not importable here ({type(exc).__name__}: {exc})"
    reference = build_reference(net.config.units)
    reference.load_state_dict({k: v.cpu() for k, v in net.state_dict().items()})
    reference.to(next(net.parameters()).device).eval()
    reference.predict(clip[:2])  # warm-up
    t0 = time.perf_counter()
    reference.predict(clip)
    return clip.shape[0] / (time.perf_counter() - t0)


def make_network(units: int, device: torch.device, seed: int = 0) -> Network:
    """The MICrONS configuration with the full-size bundle maker's random weights: speed does not depend on values.

    Frozen as in a Twin (effective weights computed once), so both measured paths share that saving."""
    torch.manual_seed(seed)
    net = Network(NetworkConfig.microns(units))
    randomize(net, torch.Generator().manual_seed(seed))
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
    net = make_network(units, device)
    parts = network_flops(net.config)
    flops = parts["total"]
    peak = sgemm_peak(device)
    print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"MICrONS network, U = {units}: {flops / 1e9:.2f} GFLOP per frame, counted from the architecture ("
          + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in parts.items() if k != "total") + ")")
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
    if 1 in results and batch in results and batch > 1:
        gain = results[batch]["fps_engine"] / results[1]["fps_engine"]
        results["batch_gain"] = gain
        print(f"batch {batch} vs one video at a time (engine): {gain:.2f}x frames/s")
    clip = rng.integers(0, 256, (frames, 144, 256), dtype=np.uint8)
    ref = reference_fps(net, clip)
    results["reference_fps"] = ref
    if isinstance(ref, str):
        print(f"reference implementation (fnn): {ref}; not measured")
    else:
        print(f"reference implementation (fnn), 1 video, same weights: {ref:.2f} frames/s | engine batch 1 is "
              f"{results[1]['fps_engine'] / ref:.2f}x it")
    print("load during the run (1/5/15 min):", " ".join(f"{x:.1f}" for x in _load()))
    return results


def _load() -> tuple[float, ...]:
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return ()
