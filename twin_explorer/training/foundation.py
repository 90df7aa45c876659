"""A foundation core as the paper trains one: one core shared by several synthetic mice, natural video only, then
frozen, with the demo mouse's readout fitted on it.

Recipe. ``n_mice`` synthetic mice with seeds ``first_seed, first_seed + 1, …`` (other neurons, areas, RF positions,
behaviour; never the demo mouse nor the adaptation experiment's mouse, so both stay mice the core never saw) are
recorded on natural-like clips only (:class:`.data.RecordingCache`, whose videos are
:func:`~twin_explorer.stimuli.natural.make_natural_video`: no gratings, dots or noise, which the out-of-domain claim
needs). Each mouse gets its own perspective, modulation and readout around one shared ``core``; training steps take
the mice in turn (step k trains mouse k mod n), so the compute per step is the same whatever the number of mice.
The loss, normalisation and schedule are :mod:`.train`'s. Checkpoints hold every network, the optimiser, the
scheduler, each mouse's sampler and the torch RNG, so an interrupted run resumes to identical weights.

Then the core is frozen and the demo mouse's readout, perspective and modulation are fitted on it as in
:func:`.adapt.adapt_experiment` (readout on cached core features, then a few end-to-end steps), and the twin is scored
on the demo mouse's held-out oracle clips (CC_abs / CC_max / CC_norm) and, optionally, its tuning against the truth
(:func:`.report.tuning_vs_truth`, on all and on included neurons). :func:`foundation_curve` repeats this for several
numbers of mice: fidelity against the number of mice.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..experiments.metrics import twin_performance
from ..model import Network, NetworkConfig
from ..twins.demo import load_demo_twin, save_network
from .adapt import adaptable_parameters, transfer_core
from .data import RecordingCache, RecordingSpec
from .readout import (cached_features, fit_readout, fold_scale, init_perspective, init_readout,
                      position_search)
from .report import tuning_vs_truth
from .train import (GracefulStop, Sampler, TrainConfig, demo_network_config, lr_factor, optimisation_step,
                    train)

DEMO_MOUSE_SEED = 0  # the demo twin's mouse
ADAPT_MOUSE_SEED = 1  # the adaptation experiment's new mouse (adapt_experiment's default)
HELD_OUT_SEEDS = (DEMO_MOUSE_SEED, ADAPT_MOUSE_SEED)


@dataclass(frozen=True)
class FoundationSpec:
    """What the foundation core is trained on and which mouse its readout is then fitted to.

    ``n_mice`` training mice with seeds from ``first_seed``, ``n_neurons`` each, ``minutes`` of natural clips of
    ``clip_s`` seconds per mouse; the demo mouse ``demo_seed`` (``demo_neurons``) contributes ``demo_minutes`` to its
    readout fit and ``demo_oracle`` repeated clips to the held-out scores."""

    n_mice: int = 4
    minutes: float = 30.0
    n_neurons: int = 500
    clip_s: float = 10.0
    first_seed: int = 100
    demo_seed: int = DEMO_MOUSE_SEED
    demo_neurons: int = 1000
    demo_minutes: float = 10.0
    demo_oracle: int = 6

    def __post_init__(self) -> None:
        if isinstance(self.n_mice, bool) or not isinstance(self.n_mice, int) or not 1 <= self.n_mice <= 64:
            raise ValueError(f"n_mice must be an integer in 1…64, got {self.n_mice!r}")
        for name in ("minutes", "demo_minutes", "clip_s"):
            if not (float(getattr(self, name)) > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if self.demo_oracle < 1:
            raise ValueError(f"demo_oracle must be ≥ 1 (the held-out clips), got {self.demo_oracle}")
        seen = sorted(set(self.mouse_seeds()) & {*HELD_OUT_SEEDS, self.demo_seed})
        if seen:
            raise ValueError(f"training mice {self.mouse_seeds()} include held-out mouse seed(s) {seen} (the demo "
                             f"mouse and the adaptation mouse must be mice the core never saw); choose first_seed so "
                             f"that the seeds avoid {sorted({*HELD_OUT_SEEDS, self.demo_seed})}")

    def mouse_seeds(self) -> list[int]:
        """Seeds of the training mice."""
        return [int(self.first_seed) + i for i in range(int(self.n_mice))]

    def _clips(self, minutes: float) -> int:
        return max(1, int(math.ceil(float(minutes) * 60 / float(self.clip_s) - 1e-9)))

    def recording(self, mouse_seed: int) -> RecordingSpec:
        """A training mouse's natural-video recording (its own stimulus seed: each mouse saw other clips)."""
        return RecordingSpec(mouse_seed=mouse_seed, n_neurons=self.n_neurons, n_clips=self._clips(self.minutes),
                             duration_s=self.clip_s, n_oracle=0, repeats=1, seed=1000 + mouse_seed)

    def demo_recording(self) -> RecordingSpec:
        """The demo mouse's recording: readout-fitting clips plus repeated oracle clips (held out)."""
        return RecordingSpec(mouse_seed=self.demo_seed, n_neurons=self.demo_neurons,
                             n_clips=self._clips(self.demo_minutes), duration_s=self.clip_s,
                             n_oracle=self.demo_oracle, repeats=10, seed=0)


def mouse_networks(spec: FoundationSpec, net_config: Callable[[int], NetworkConfig], seed: int) -> torch.nn.ModuleDict:
    """One network per training mouse, all holding the same ``core`` module (its parameters are shared)."""
    torch.manual_seed(seed)
    nets = torch.nn.ModuleDict({f"mouse{s}": Network(net_config(spec.n_neurons)) for s in spec.mouse_seeds()})
    first = next(iter(nets.values()))
    for net in nets.values():
        net.core = first.core
    return nets


def train_core(spec: FoundationSpec, cfg: TrainConfig, work_dir: str | Path,
               net_config: Callable[[int], NetworkConfig] = demo_network_config, cache_dir: str | Path | None = None,
               progress: bool = True, stop_after: int | None = None,
               device: str | torch.device = "cpu") -> tuple[torch.nn.ModuleDict, dict]:
    """Train the shared core (and each mouse's readout, perspective, modulation) for ``cfg.steps`` steps on
    ``device``, resuming from ``work_dir/checkpoint.pt`` (written on any device, resumed on any);
    ``stop_after`` ends this session after that many steps (checkpointed). Returns the networks, on the CPU, and
    the history (``history['step']`` says how far it got; ``history['steps_on_device']`` where the steps ran).
    A finished checkpoint is read back without the training mice's recordings (a core trained on a GPU machine
    is finished on another)."""
    torch.set_num_threads(cfg.threads)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    nets = mouse_networks(spec, net_config, cfg.seed)
    ckpt = work / "checkpoint.pt"
    saved_config = {"train": asdict(cfg), "foundation": asdict(spec)}
    state = torch.load(ckpt, weights_only=True, map_location="cpu") if ckpt.exists() else None  # tensors, no code
    if state is not None and state["config"] != saved_config:
        raise ValueError(f"{ckpt} was written for another foundation run; use a fresh work folder "
                         f"(saved: {state['config']}, now: {saved_config})")
    if state is not None and state["history"]["step"] >= cfg.steps:
        nets.load_state_dict(state["model"])
        return nets.eval(), state["history"]
    caches = [RecordingCache(spec.recording(s), cache_dir, progress) for s in spec.mouse_seeds()]
    nets.to(device)
    if state is None:  # a resumed run takes everything from its checkpoint
        for net, cache in zip(nets.values(), caches):
            init_perspective(net)
            init_readout(net, cache, cache.train_clips(), seed=cfg.seed)
    params = [p for p in nets.parameters() if p.requires_grad]  # the shared core counted once
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    samplers = [Sampler(c, c.train_clips(), replace(cfg, seed=cfg.seed + i), c.mean_response())
                for i, c in enumerate(caches)]
    torch.manual_seed(cfg.seed)
    history: dict[str, Any] = {"loss": [], "mouse": [], "seconds": 0.0, "step": 0, "steps_on_device": {}}
    if state is not None:
        nets.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        for s, rng_state in zip(samplers, state["samplers"]):
            s.rng.bit_generator.state = rng_state
        torch.set_rng_state(state["torch_rng"])
        history = state["history"]

    def save() -> None:
        tmp = work / "checkpoint.pt.tmp"
        torch.save({"model": {k: v.cpu() for k, v in nets.state_dict().items()}, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "samplers": [s.rng.bit_generator.state for s in samplers], "torch_rng": torch.get_rng_state(),
                    "history": history, "config": saved_config}, tmp)
        tmp.replace(ckpt)

    nets.train()
    networks = list(nets.values())
    on_device = history.setdefault("steps_on_device", {})  # absent from checkpoints of older runs
    end = cfg.steps if stop_after is None else min(cfg.steps, history["step"] + int(stop_after))
    t0, last_save = time.time() - history["seconds"], time.time()
    with tqdm(total=cfg.steps, initial=history["step"], desc="foundation core", disable=not progress) as bar, \
            GracefulStop() as stop:
        while history["step"] < end:
            k = history["step"] % len(networks)  # the mice in turn
            batch = [t.to(device) for t in samplers[k].batch()]
            loss = optimisation_step(networks[k], batch, opt, sched, params, cfg)
            history["step"] += 1
            on_device[str(device)] = on_device.get(str(device), 0) + 1
            history["loss"].append(loss)
            history["mouse"].append(spec.mouse_seeds()[k])
            history["seconds"] = time.time() - t0
            bar.update(1)
            if time.time() - last_save > cfg.checkpoint_every_s or history["step"] == end:
                save()
                last_save = time.time()
            stop.check(save)
    return nets.cpu().eval(), history


def fit_demo_readout(core_net: Network, spec: FoundationSpec, work_dir: str | Path,
                     net_config: Callable[[int], NetworkConfig] = demo_network_config, finetune_steps: int = 60,
                     cache_dir: str | Path | None = None, seed: int = 0,
                     progress: bool = True) -> tuple[Network, RecordingCache]:
    """The demo mouse's network on the frozen core of ``core_net``: readout fitted on cached core features, then
    ``finetune_steps`` end-to-end steps of readout, perspective and modulation (the core stays frozen)."""
    cache = RecordingCache(spec.demo_recording(), cache_dir, progress)
    clips = cache.train_clips()
    torch.manual_seed(seed)
    net = Network(net_config(spec.demo_neurons))
    transfer_core(core_net, net)  # copies core, perspective and modulation; freezes the core
    X, Y = cached_features(net, cache, clips, progress=progress)
    position_search(net, X, Y)
    fit_readout(net, X, Y, seed=seed, progress=False)
    if finetune_steps > 0:
        tc = TrainConfig(steps=finetune_steps, batch=4, sample_frames=60, burn_in=10, lr=1e-3, seed=seed,
                         checkpoint_every_s=1e9)
        train(net, cache, tc, Path(work_dir) / "demo-readout", clips=clips, parameters=adaptable_parameters(net),
              progress=progress)
    fold_scale(net, cache.mean_response(clips))
    return net, cache


def train_foundation(spec: FoundationSpec, cfg: TrainConfig, out_dir: str | Path, work_dir: str | Path | None = None,
                     net_config: Callable[[int], NetworkConfig] = demo_network_config, finetune_steps: int = 60,
                     tuning: bool = True, cache_dir: str | Path | None = None, progress: bool = True,
                     stop_after: int | None = None, device: str | torch.device = "cpu",
                     core_only: bool = False) -> dict | None:
    """Train the shared core on ``device``, freeze it, fit the demo mouse on it (on the CPU), save the twin to
    ``out_dir`` and score it (``foundation.json`` there). Resumable: rerun with the same folders. Returns the
    scores, or None when ``stop_after`` ended the session before the last step or ``core_only`` asked for the core
    alone (its checkpoint in the work folder; a later call, on any machine, fits and scores the demo mouse)."""
    out = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out.parent / f"{out.name}-work"
    nets, history = train_core(spec, cfg, work, net_config, cache_dir, progress, stop_after, device)
    if history["step"] < cfg.steps or core_only:
        return None
    core_net = next(iter(nets.values()))
    t0 = time.perf_counter()
    net, cache = fit_demo_readout(core_net, spec, work, net_config, finetune_steps, cache_dir, cfg.seed, progress)
    meta = {"id": f"foundation-{spec.n_mice}mice", "trained_on": asdict(spec.demo_recording()),
            "foundation": {**asdict(spec), "core_mouse_seeds": spec.mouse_seeds(), "training": asdict(cfg),
                           "core_seconds": round(history["seconds"], 1),
                           "core_steps_on_device": history.get("steps_on_device", {}),
                           "final_loss_avg20": float(np.mean(history["loss"][-20:]))}}
    units = cache.mouse.units
    save_network(net, out, units, meta)
    twin = load_demo_twin(out)
    per_unit = twin_performance(twin, cache.oracle_recording()).to_dataframe()[["cc_abs", "cc_max", "cc_norm"]]
    save_network(net, out, units.join(per_unit.set_axis(units.index)), meta)  # the twin ships its reliability
    result: dict[str, Any] = {"n_mice": spec.n_mice, "minutes_per_mouse": float(spec.minutes),
                              "core_mouse_seeds": spec.mouse_seeds(), "demo_seed": spec.demo_seed,
                              "steps": cfg.steps, "core_seconds": round(history["seconds"], 1),
                              "core_device": ", ".join(history.get("steps_on_device", {})) or "cpu",
                              "readout_seconds": round(time.perf_counter() - t0, 1),
                              **{k: float(np.nanmedian(per_unit[k])) for k in per_unit}}
    if tuning:
        rep = tuning_vs_truth(load_demo_twin(out), cache.mouse, progress=progress, reliability=per_unit)
        for _, row in pd.concat([rep.table, rep.extra]).iterrows():
            result[row["metric"]] = float(row["value"])
            result[row["metric"] + " (included)"] = float(row.get("value_included", np.nan))
    (out / "foundation.json").write_text(json.dumps(result, indent=2, default=float))
    return result


def foundation_curve(mice: Sequence[int], spec: FoundationSpec, cfg: TrainConfig, out_dir: str | Path,
                     steps_per_mouse: int | None = None, **kwargs: Any) -> pd.DataFrame:
    """Fidelity against the number of training mice: :func:`train_foundation` for each count in ``mice`` (into
    ``out_dir/mice<N>``; counts already finished are read back), rows written to ``foundation_curve.csv``.
    With ``core_only=True`` every count's core is trained and nothing else (an empty table). ``steps_per_mouse``
    replaces ``cfg.steps`` by ``steps_per_mouse × n`` for the count n (at equal steps, more mice means fewer steps
    per mouse: measured on the H200 curve, CC_norm then fell from 0.794 with 1 mouse to 0.755 with 8)."""
    if steps_per_mouse is not None and (isinstance(steps_per_mouse, bool) or int(steps_per_mouse) != steps_per_mouse
                                        or steps_per_mouse < 1):
        raise ValueError(f"steps_per_mouse must be a positive whole number, got {steps_per_mouse!r}")
    if not mice or any(isinstance(n, bool) or int(n) != n or n < 1 for n in mice):
        raise ValueError(f"mice must be positive whole numbers, got {list(mice)!r}")
    out = Path(out_dir)
    rows = []
    for n in mice:
        folder = out / f"mice{int(n)}"
        done = folder / "foundation.json"
        count_cfg = cfg if steps_per_mouse is None else replace(cfg, steps=int(steps_per_mouse) * int(n))
        row = (json.loads(done.read_text()) if done.exists()
               else train_foundation(replace(spec, n_mice=int(n)), count_cfg, folder, **kwargs))
        if row is None and kwargs.get("core_only"):
            continue
        if row is None:  # stopped early (stop_after): the rest waits for the next call
            break
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "foundation_curve.csv", index=False)
    return table
