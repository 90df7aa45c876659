"""Training a twin of the MICrONS architecture on a cached synthetic-mouse recording.

Recipe (the published one where it fits a 2-core CPU): responses divided by their per-unit training mean,
Poisson loss ``exp(r) − y·r`` on log rates after a burn-in, random samples of ``sample_frames`` frames,
AdamW with linear warm-up and a cosine decay, gradient-norm clipping. Before the first step the eye looks at the
monitor centre (:func:`.readout.init_perspective`) and the readout is fitted to the initial core's features
(:func:`.readout.init_readout`: position search by ridge regression, then a Poisson fit), so that gradients reach the
core through a readout that already uses the stimulus.
Checkpoints (model, optimiser, scheduler, sampler and torch RNG state) are written every few minutes and at the
end; a run restarted with the same folder resumes from the last one and ends with identical weights.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model import Network, NetworkConfig
from ..twins.demo import save_network
from .data import RecordingCache, RecordingSpec
from .readout import fold_scale, init_perspective, init_readout, poisson_loss


def demo_network_config(units: int) -> NetworkConfig:
    """The demo twin's architecture: the MICrONS family sized for interactive use on a laptop CPU."""
    # The retina spans ±50° azimuth (±33° elevation), not the published ±75°: the synthetic neurons' receptive
    # fields lie within about ±40°, and the same 64×96 pixels then sample them 1.5× more finely (a GPU sweep over
    # 75°/60°/50° lowered the training loss monotonically at equal steps on identical batches).
    return NetworkConfig(units=units, streams=1, retina_shape=(64, 96), retina_degrees=50.0,
                         perspective_features=8, perspective_layers=2,
                         modulation_features=8, ff_channels=(8, 16, 32), ff_groups=(1, 2, 4), ff_pools=(2, 2, 1),
                         ff_out=32, rec_input=32, rec_hidden=32, rec_common=64, rec_groups=2, rec_out=32)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1600
    batch: int = 8
    sample_frames: int = 70
    burn_in: int = 10
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05  # fraction of steps
    final_lr_fraction: float = 0.05
    clip_norm: float = 5.0
    seed: int = 0
    checkpoint_every_s: float = 180.0
    threads: int = 2

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps and batch must be ≥ 1, got steps={self.steps}, batch={self.batch}")
        if not 0 <= self.burn_in < self.sample_frames:
            raise ValueError(f"burn_in ({self.burn_in}) must be ≥ 0 and < sample_frames ({self.sample_frames})")
        if not (self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    warm = max(1, int(cfg.warmup * cfg.steps))
    if step < warm:
        return (step + 1) / warm
    p = (step - warm) / max(1, cfg.steps - warm)
    return cfg.final_lr_fraction + (1 - cfg.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * p))


# --------------------------------------------------------------------------- the loop
class GracefulStop:
    """While training: SIGINT (Ctrl-C) or SIGTERM (``timeout``, a batch scheduler) asks the loop to stop after the
    step under way; the loop checkpoints and raises KeyboardInterrupt, so a rerun resumes from that very step. A
    second signal stops at once. Signal handlers can only be set in the main thread; elsewhere nothing changes."""

    def __enter__(self) -> "GracefulStop":
        self.requested = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._request)
        return self

    def _request(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def check(self, save: Callable[[], None]) -> None:
        """Between steps: when a stop was asked for, checkpoint and raise KeyboardInterrupt."""
        if self.requested:
            save()
            raise KeyboardInterrupt("training stopped on request; the checkpoint is saved, rerun to resume")


class Sampler:
    """Random (clip, start) samples from training clips; its state is a numpy Generator (checkpointed)."""

    def __init__(self, cache: RecordingCache, clips: list[Path], cfg: TrainConfig, scale: np.ndarray):
        self.cache, self.clips, self.cfg = cache, clips, cfg
        self.scale = torch.as_tensor(1.0 / np.maximum(scale, 1e-3), dtype=torch.float32)
        self.rng = np.random.default_rng(cfg.seed)
        self.lengths = [cache.clip(c)["stimulus"].shape[0] for c in clips]

    def batch(self):
        T = self.cfg.sample_frames
        vids, pers, mods, ys = [], [], [], []
        for _ in range(self.cfg.batch):
            i = int(self.rng.integers(len(self.clips)))
            L = self.lengths[i]
            if L < T:
                raise ValueError(f"clip {self.clips[i].name} has {L} frames < sample_frames={T}")
            s = int(self.rng.integers(0, L - T + 1))
            d = self.cache.clip(self.clips[i])
            vids.append(np.asarray(d["stimulus"][s:s + T]))
            pers.append(np.asarray(d["perspectives"][s:s + T]))
            mods.append(np.asarray(d["modulations"][s:s + T]))
            ys.append(np.asarray(d["responses"][0, s:s + T]))
        video = torch.from_numpy(np.stack(vids))  # uint8: the network's gamma lookup is exact and faster
        y = torch.from_numpy(np.stack(ys)) * self.scale
        return video, torch.from_numpy(np.stack(pers)), torch.from_numpy(np.stack(mods)), y


def optimisation_step(net: Network, batch: Sequence[torch.Tensor], opt: torch.optim.Optimizer,
                      sched: torch.optim.lr_scheduler.LRScheduler, params: Iterable[torch.nn.Parameter],
                      cfg: TrainConfig) -> float:
    """One step of the Poisson loss on ``batch`` = (video, perspective, modulation, responses), the first
    ``cfg.burn_in`` frames left out (the recurrent state is still settling); gradients clipped. Returns the loss."""
    video, per, mod, y = batch
    log_rate, _ = net.run(video, per, mod, log=True)
    loss = poisson_loss(log_rate[:, cfg.burn_in:], y[:, cfg.burn_in:])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
    opt.step()
    sched.step()
    return float(loss.detach())


def train(net: Network, cache: RecordingCache, cfg: TrainConfig, out_dir: str | Path, clips: list[Path] | None = None,
          parameters: Iterable[torch.nn.Parameter] | None = None, scale: np.ndarray | None = None,
          progress: bool = True, log: Callable[[str], None] | None = None, stop_after: int | None = None) -> dict:
    """Train ``net`` in place on ``clips`` (default: all training clips); resume from ``out_dir/checkpoint.pt``.

    ``parameters`` restricts what is optimised (e.g. the readout when adapting a frozen core); ``scale`` is
    the per-unit normalisation (default: training-mean response); ``stop_after`` ends this session after that
    many steps (checkpointed; a later call resumes). Returns the history (loss per step, etc.).
    """
    torch.set_num_threads(cfg.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clips = cache.train_clips() if clips is None else clips
    scale = cache.mean_response(clips) if scale is None else scale
    params = [p for p in (net.parameters() if parameters is None else parameters) if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires a gradient")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    sampler = Sampler(cache, clips, cfg, scale)
    device = next(net.parameters()).device  # batches follow the network (CUDA when it was moved there)
    torch.manual_seed(cfg.seed)
    history = {"loss": [], "seconds": 0.0, "config": asdict(cfg)}
    step = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True, map_location="cpu")  # plain tensors and numbers: no code
        if state["config"] != asdict(cfg):
            raise ValueError(f"{ckpt} was written with another training configuration; use a fresh folder "
                             f"(saved: {state['config']}, now: {asdict(cfg)})")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sampler.rng.bit_generator.state = state["sampler"]
        torch.set_rng_state(state["torch_rng"])
        history = state["history"]
        step = state["step"]

    def save() -> None:
        tmp = out / "checkpoint.pt.tmp"
        torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "sampler": sampler.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "history": history, "step": step, "config": asdict(cfg)}, tmp)
        tmp.replace(ckpt)

    net.train()
    last_save = time.time()
    bar = tqdm(total=cfg.steps, initial=step, desc="training", disable=not progress)
    t0 = time.time() - history["seconds"]
    end = cfg.steps if stop_after is None else min(cfg.steps, step + int(stop_after))
    with GracefulStop() as stop:
        while step < end:
            loss = optimisation_step(net, [t.to(device) for t in sampler.batch()], opt, sched, params, cfg)
            step += 1
            history["loss"].append(loss)
            history["seconds"] = time.time() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(history['loss'][-20:]):.4f}")
            if log is not None and step % 10 == 0:
                log(f"step {step}/{cfg.steps} loss(avg20) {np.mean(history['loss'][-20:]):.4f} "
                    f"t {history['seconds']:.0f}s")
            if time.time() - last_save > cfg.checkpoint_every_s or step == end:
                save()
                last_save = time.time()
            stop.check(save)
    bar.close()
    net.eval()
    (out / "history.json").write_text(json.dumps(history))
    return history


def train_twin(spec: RecordingSpec, cfg: TrainConfig, out_dir: str | Path, net_config: NetworkConfig | None = None,
               cache_dir: str | Path | None = None, work_dir: str | Path | None = None, progress: bool = True,
               log: Callable[[str], None] | None = None, twin_id: str = "demo",
               device: str | torch.device = "cpu") -> Network:
    """Record (or reuse) the synthetic mouse of ``spec``, train a twin on its training clips and save it to
    ``out_dir`` (safetensors + config.json + units.csv). Checkpoints go to ``work_dir`` (default
    ``out_dir/../<out_dir name>-work``) so an interrupted run resumes. ``device``: where to train (recorded in
    the metadata as ``trained_on_device``; the model card reports it)."""
    out = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out.parent / f"{out.name}-work"
    cache = RecordingCache(spec, cache_dir, progress)
    torch.manual_seed(cfg.seed)
    net = Network(net_config or demo_network_config(spec.n_neurons)).to(device)
    clips = cache.train_clips()
    init_info = {}
    if not (work / "checkpoint.pt").exists():  # a resumed run takes everything from its checkpoint
        init_perspective(net)
        init_info = init_readout(net, cache, clips, seed=cfg.seed, progress=progress)
    history = train(net, cache, cfg, work, clips=clips, progress=progress, log=log)
    net = net.cpu()
    fold_scale(net, cache.mean_response(clips))
    metadata = {"id": twin_id, "trained_on": asdict(spec), "training": asdict(cfg), "steps_done": cfg.steps,
                "training_seconds": round(history["seconds"], 1),
                "final_loss_avg20": float(np.mean(history["loss"][-20:])),
                "first_loss_avg20": float(np.mean(history["loss"][:20])), "trained_on_device": str(device),
                **({"readout_init": {"search_r2_median": init_info["search_r2_median"]}} if init_info else {})}
    save_network(net, out, cache.mouse.units, metadata)
    (out / "history.json").write_text(json.dumps({"loss": history["loss"], "seconds": history["seconds"]}))
    return net
