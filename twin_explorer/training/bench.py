"""Interaction timings of the demo twin: ``twin-explorer bench demo``.

Measures, on this machine: loading the twin (``load_twin()``), a 1 s preview prediction (30 frames, all units),
and a 16-direction tuning experiment over all units (2 s of stimulus per direction) through
``experiments.direction_tuning``. Each timing is the best of ``repeats`` runs (prediction cache cleared).
Also one optimiser step of the demo recipe (:class:`~.train.TrainConfig` defaults, the demo architecture) on
random data, and the minutes all its steps take on this machine: the recipe's CPU cost, whatever trained the
shipped weights.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..experiments.tuning import direction_tuning
from ..model import Network
from ..twins.demo import load_demo_twin
from .ship import write_model_card
from .readout import poisson_loss
from .train import TrainConfig, demo_network_config


def bench_demo(directory: str | Path | None = None, repeats: int = 3, threads: int | None = None) -> dict[str, float]:
    """Seconds for: load, 1 s preview, 16-direction tuning over all units (best of ``repeats``)."""
    if threads is not None:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    twin = load_demo_twin(directory)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    preview = rng.integers(0, 256, (30, 144, 256), dtype=np.uint8)
    best_preview = best_tuning = float("inf")
    for _ in range(repeats):
        twin.cache.clear()
        t0 = time.perf_counter()
        twin.predict(preview)
        best_preview = min(best_preview, time.perf_counter() - t0)
    for _ in range(repeats):
        twin.cache.clear()
        t0 = time.perf_counter()
        direction_tuning(twin, directions=16, sf_cpd=0.04, tf_hz=2.0, duration_s=2.0, show_progress=False)
        best_tuning = min(best_tuning, time.perf_counter() - t0)
    step_s = train_step_seconds(twin.n_units, repeats)
    return {"units": twin.n_units, "threads": torch.get_num_threads(), "load_s": load_s,
            "preview_1s_s": best_preview, "tuning_16dir_all_units_s": best_tuning, "train_step_s": step_s,
            "train_recipe_cpu_min": step_s * TrainConfig().steps / 60}


def train_step_seconds(units: int, repeats: int = 3) -> float:
    """Median seconds of one training step of the demo recipe (forward, Poisson loss, backward, AdamW) on random
    data of the recipe's batch shape."""
    cfg = TrainConfig()
    torch.manual_seed(0)
    net = Network(demo_network_config(units))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    video = torch.randint(0, 256, (cfg.batch, cfg.sample_frames, 144, 256), dtype=torch.uint8, generator=g)
    behaviour = torch.randn(cfg.batch, cfg.sample_frames, 2, generator=g)
    y = torch.poisson(torch.ones(cfg.batch, cfg.sample_frames, units), generator=g)
    times = []
    for _ in range(repeats + 1):  # the first step warms up the allocator
        t0 = time.perf_counter()
        log_rate, _ = net.run(video, behaviour, behaviour, log=True)
        loss = poisson_loss(log_rate[:, cfg.burn_in:], y[:, cfg.burn_in:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def format_demo_bench(r: dict[str, float]) -> str:
    """The timings of :func:`bench_demo` as lines of text, each with its target."""
    return "\n".join([
        f"demo twin: {r['units']} units, {r['threads']} torch threads",
        f"  load_twin()                                  {r['load_s'] * 1000:8.0f} ms   (target < 2000 ms)",
        f"  1 s preview (30 frames)                      {r['preview_1s_s'] * 1000:8.0f} ms   (target < 100 ms)",
        f"  16-direction tuning, all units, 2 s each     {r['tuning_16dir_all_units_s'] * 1000:8.0f} ms   "
        "(target < 1000 ms)",
        f"  one training step of the recipe              {r['train_step_s'] * 1000:8.0f} ms   "
        f"-> {r['train_recipe_cpu_min']:.0f} min for the recipe (target ≤ 90 min)"])


def write_demo_bench(folder: str | Path, r: dict[str, float], machine: str) -> Path:
    """Store the timings as ``bench.json`` in the twin folder and refresh its model card; returns the file."""
    folder = Path(folder)
    path = folder / "bench.json"
    path.write_text(json.dumps({**r, "machine": machine}, indent=1))
    if (folder / "MODEL_CARD.md").exists():
        write_model_card(folder)
    return path
