"""Speed benchmark of the prediction engine: ``twin-explorer bench engine``.

Prints, from one run on this machine: frames/s of the MICrONS configuration (U = 10,000 by default)
through the engine (chunked: stateless stages over all frames at once, only the recurrence frame by
frame) and through a straightforward frame-by-frame loop of the same modules, for batches of 1, 4 and
N videos; the batch's gain over one video at a time; FLOPs per frame (counted from the architecture,
:mod:`.flops`); the machine's measured sgemm peak and the fraction of it reached; and, on every batch,
the reference implementation (``fnn``, assembled by :mod:`.reference`) on the same weights and videos
when it is importable, with the engine/reference ratio and their parity. The GPU path has its own
benchmark (:mod:`.gpu`).
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
from . import reference
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


def measure_reference(net: Network, clips: np.ndarray) -> dict | str:
    """Frames/s and responses of the reference implementation (``fnn``) on the same weights and videos, or why it
    was not measured. ``clips`` uint8 [T, H, W] (one video) or [N, T, H, W] (a batch, which the reference runs as
    one batch frame by frame). The published state dict's keys are the reference's own (spec section 10)."""
    if not reference.available():
        return f"not importable here ({reference.IMPORT_ERROR})"
    ref = reference.build_reference(net.config.units)
    ref.load_state_dict({k: v.detach().cpu() for k, v in net.state_dict().items()})
    device = next(net.parameters()).device
    ref.to(device)
    reference.reference_predict(ref, clips[..., :2, :, :])  # warm-up on the same batch shape
    _sync(device)
    t0 = time.perf_counter()
    out = reference.reference_predict(ref, clips)
    _sync(device)
    frames = clips.shape[0] * clips.shape[1] if clips.ndim == 4 else clips.shape[0]
    return {"fps": frames / (time.perf_counter() - t0), "responses": out}


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
                     threads: int | None = None, budget_mb: float | None = None,
                     reference_impl: bool = True) -> dict:
    """Measure and print the engine's speed (see the module docstring); returns the numbers printed.

    ``frames`` per video; batches of 1, 4 and ``batch`` videos; ``threads`` CPU threads (default: torch's choice);
    ``budget_mb`` the activation memory budget of a pass (default: the engine's for the device);
    ``reference_impl``: also time the reference implementation on every batch when it is importable."""
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
    results: dict = {"flops_per_frame": flops, "sgemm_peak": peak}
    for n in sorted({1, min(4, batch), batch}):
        clips = rng.integers(0, 256, (n, frames, 144, 256), dtype=np.uint8)
        results[n] = row = _measure_batch(net, twin, clips, flops, peak)
        if reference_impl:
            ref = measure_reference(net, clips)
            if isinstance(ref, str):
                row["reference"] = ref
            else:
                row["fps_reference"] = ref["fps"]
                row["engine_vs_reference"] = row["fps_engine"] / ref["fps"]
                row["reference_max_rel_diff"] = float(np.max(np.abs(row.pop("out") - ref["responses"])
                                                             / np.abs(ref["responses"])))
        row.pop("out", None)
        _print_batch(n, row)
    if batch > 1:
        results["batch_gain"] = gain = results[batch]["fps_engine"] / results[1]["fps_engine"]
        print(f"batch {batch} vs one video at a time (engine): {gain:.2f}x frames/s")
    if reference_impl and "reference" in results[1]:
        print(f"reference implementation (fnn): {results[1]['reference']}; not measured")
    results["load"] = _load()
    print("load during the run (1/5/15 min):", " ".join(f"{x:.1f}" for x in results["load"]))
    return results


def _measure_batch(net: Network, twin: Twin, clips: np.ndarray, flops: float, peak: float) -> dict:
    """Engine and frame-by-frame loop on one batch of videos: frames/s, share of the peak, parity."""
    device = twin.device
    n, frames = clips.shape[:2]
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
    return dict(videos_per_pass=vpp, frames_per_pass=fpp, fps_engine=fps_chunk, fps_loop=fps_loop,
                ratio=fps_chunk / fps_loop, peak_fraction=fps_chunk * flops / peak,
                max_rel_diff=((out_chunk - out_loop).abs() / out_loop.abs()).max().item(),
                out=out_chunk.cpu().numpy())


def _print_batch(n: int, row: dict) -> None:
    line = (f"batch {n:3d}: engine {row['fps_engine']:7.2f} frames/s ({row['videos_per_pass']} videos x "
            f"≤{row['frames_per_pass']} frames a pass), {100 * row['peak_fraction']:5.1f}% of sgemm peak | "
            f"frame-by-frame loop {row['fps_loop']:7.2f} frames/s (engine {row['ratio']:5.2f}x) | "
            f"engine vs loop max rel diff {row['max_rel_diff']:.1e}")
    if "fps_reference" in row:
        line += (f" | reference (fnn) {row['fps_reference']:7.2f} frames/s, engine {row['engine_vs_reference']:5.2f}x "
                 f"it, max rel diff {row['reference_max_rel_diff']:.1e}")
    print(line, flush=True)


def _load() -> tuple[float, ...]:
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return ()
