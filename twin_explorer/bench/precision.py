"""Reduced precision against float32, measured: ``twin-explorer bench precision``.

For every precision this machine accepts on the device (float32 always; bfloat16 on GPUs and on CPUs with
AMX / AVX-512-BF16; float16 on GPUs) it prints, from one run: frames/s of a natural video through the engine,
the deviation of its responses from float32 (max and median relative error over the video, 300 frames by
default), the seconds an all-unit 16-direction drifting-grating tuning takes (1 s gratings; on a GPU also a second,
warm run: the first one captures the CUDA graphs and picks the kernels), and the change of each unit's preferred
direction and gOSI in that tuning.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..engine.devices import accepted_precisions, cpu_bf16_support, resolve_device
from ..engine.twin import Twin
from ..experiments.tuning import direction_tuning
from ..stimuli.natural import make_natural_video
from .engine import make_network


def circular_difference(a: np.ndarray, b: np.ndarray, period: float = 360.0) -> np.ndarray:
    """|a − b| on a circle of ``period`` degrees (0 … period/2)."""
    d = np.mod(np.asarray(a, float) - np.asarray(b, float), period)
    return np.minimum(d, period - d)


def deviation(low: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Max and median relative error of responses ``low`` against ``exact``."""
    rel = np.abs(low - exact) / np.maximum(np.abs(exact), 1e-12)
    return {"max_rel": float(rel.max()), "median_rel": float(np.median(rel))}


def tuning_change(low, exact) -> dict[str, float]:
    """Change of preferred direction (degrees, circular) and gOSI between two direction-tuning Datasets."""
    dpref = circular_difference(low["pref_dir"].values, exact["pref_dir"].values)
    dgosi = np.abs(low["gosi"].values - exact["gosi"].values)
    ok = np.isfinite(dpref)
    return {"median_dpref_deg": float(np.median(dpref[ok])), "max_dpref_deg": float(dpref[ok].max()),
            "median_dgosi": float(np.nanmedian(dgosi)), "max_dgosi": float(np.nanmax(dgosi))}


def run_precision_bench(units: int = 10_000, frames: int = 300, directions: int = 16, duration_s: float = 1.0,
                        device: str | None = None, threads: int | None = None) -> dict:
    """Measure and print every accepted precision against float32 (see the module docstring)."""
    if units < 1 or frames < 2 or directions < 4:
        raise ValueError(f"units ≥ 1, frames ≥ 2 and directions ≥ 4 are required; got {units}, {frames}, "
                         f"{directions}")
    if threads is not None:
        torch.set_num_threads(threads)
    device = resolve_device(device)
    precisions = accepted_precisions(device)
    print(f"device {device}, threads {torch.get_num_threads()}, MICrONS network U = {units}")
    if device.type == "cpu":
        print(f"bfloat16 on this CPU: {'accepted' if cpu_bf16_support()[0] else 'refused'} ({cpu_bf16_support()[1]})")
    net = make_network(units, device)
    video = make_natural_video(frames, seed=0)
    results: dict = {}
    exact = exact_tuning = None
    for precision in precisions:
        twin = Twin(net, id="bench", device=device, precision=precision, cache_mb=0)
        twin.predict(video[:8], use_cache=False)  # warm-up: kernels are built per shape and dtype
        t0 = time.perf_counter()
        responses = twin.predict(video, use_cache=False)
        fps = frames / (time.perf_counter() - t0)
        row = {"fps": fps, "provenance_precision": twin.metadata.precision}
        for run in ("tuning_s", "tuning_warm_s") if device.type != "cpu" else ("tuning_s",):
            t0 = time.perf_counter()
            tuning = direction_tuning(twin, directions=directions, duration_s=duration_s, keep_traces=False,
                                      show_progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            row[run] = time.perf_counter() - t0
        timing = f"{directions}-direction tuning of all {units} units " + (
            f"{row['tuning_s']:.2f} s (warm: {row['tuning_warm_s']:.2f} s)" if "tuning_warm_s" in row
            else f"{row['tuning_s']:.1f} s")
        if exact is None:
            exact, exact_tuning = responses, tuning
            print(f"{precision:9s}: {fps:7.2f} frames/s (reference for the deviations) | {timing}")
        else:
            row.update(deviation(responses, exact), **tuning_change(tuning, exact_tuning))
            print(f"{precision:9s}: {fps:7.2f} frames/s ({fps / results['float32']['fps']:.2f}x float32) | responses "
                  f"over {frames} natural frames: max rel {row['max_rel']:.2e}, median rel {row['median_rel']:.2e} | "
                  f"{directions}-direction tuning: |Δ pref dir| median {row['median_dpref_deg']:.2f}°, max "
                  f"{row['max_dpref_deg']:.1f}°; |Δ gOSI| median {row['median_dgosi']:.4f}, "
                  f"max {row['max_dgosi']:.3f} | {timing}")
        results[precision] = row
    return results
