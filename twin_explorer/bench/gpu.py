"""The GPU path at the published size: ``twin-explorer bench gpu`` (needs a CUDA GPU).

Prints, from one run: frames/s at batch 1, 16 and 64 in float32 (TF32 off, exact) and bfloat16 (and float16 when
asked), with the recurrent step replayed as CUDA graphs at the batch buckets and, for float32, without them (plain
kernel launches); the deviation of each reduced precision from float32; and the reference implementation (``fnn``)
on the same GPU and weights, on one video and on the largest batch, when it is importable.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..engine.devices import disable_tf32, resolve_device
from ..engine.twin import Twin
from .engine import make_network, measure_reference
from .flops import network_flops
from .precision import deviation


def _timed_predict(twin: Twin, clips: np.ndarray) -> tuple[float, np.ndarray]:
    twin.predict(clips, use_cache=False)  # warm-up: kernel choice and graph capture for this bucket
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = twin.predict(clips, use_cache=False)
    torch.cuda.synchronize()
    return clips.shape[0] * clips.shape[1] / (time.perf_counter() - t0), out


def run_gpu_bench(units: int = 10_000, frames: int = 30, batches: tuple[int, ...] = (1, 16, 64),
                  precisions: tuple[str, ...] = ("float32", "bfloat16"), device: str = "cuda") -> dict:
    """Measure and print the GPU path (see the module docstring); returns the numbers printed."""
    dev = resolve_device(device)  # raises with the reason when no CUDA GPU is present
    if dev.type != "cuda":
        raise ValueError(f"the GPU benchmark needs a CUDA device, got {dev}; on CPU use `twin-explorer bench engine`")
    disable_tf32()
    net = make_network(units, dev)
    flops = network_flops(net.config)["total"]
    print(f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}, MICrONS network U = {units}, "
          f"{flops / 1e9:.2f} GFLOP per frame")
    rng = np.random.default_rng(0)
    results: dict = {}
    for n in batches:
        clips = rng.integers(0, 256, (n, frames, 144, 256), dtype=np.uint8)
        row: dict = {}
        exact = None
        for precision in precisions:
            fps, out = _timed_predict(Twin(net, device=dev, precision=precision, cache_mb=0), clips)
            row[precision] = {"fps": fps, "tflops": fps * flops / 1e12}
            if exact is None:
                exact = out
            else:
                row[precision].update(deviation(out, exact))
        fps_plain, _ = _timed_predict(Twin(net, device=dev, batch_buckets=False, cache_mb=0), clips)
        row["float32_without_graphs"] = {"fps": fps_plain}
        results[n] = row
        print(f"batch {n:3d}: " + " | ".join(
            f"{p} {r['fps']:8.1f} frames/s ({r['tflops']:.1f} TFLOP/s"
            + (f", max rel {r['max_rel']:.1e}, median {r['median_rel']:.1e})" if "max_rel" in r else ")")
            for p, r in row.items() if p in precisions) + f" | float32 without CUDA graphs {fps_plain:8.1f} frames/s")
    results["reference"] = ref = {}
    for n in sorted({1, max(batches)}):  # the reference runs a batch too (frame by frame, all videos at once)
        clips = rng.integers(0, 256, (n, frames, 144, 256), dtype=np.uint8)
        measured = measure_reference(net, clips if n > 1 else clips[0])
        if isinstance(measured, str):
            print(f"reference implementation (fnn): {measured}; not measured")
            break
        ref[n] = measured["fps"]
        engine = results[n]["float32"]["fps"]
        line = (f"reference implementation (fnn), batch {n:3d}: {ref[n]:8.1f} frames/s | engine float32 at batch "
                f"{n}: {engine / ref[n]:.1f}x it")
        if 1 in ref and n > 1:
            best = max(r["fps"] for p, r in results[n].items() if p in precisions)
            line += f" | best engine precision at batch {n} vs the reference on one video: {best / ref[1]:.1f}x"
        print(line)
    return results
