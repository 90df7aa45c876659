"""Readout fitting on a frozen core, and the foundation-versus-individual experiment on a new synthetic mouse.

Adapting to a new mouse follows the paper: the core of a trained twin is copied and frozen, and the readout,
perspective and modulation are fitted to the new mouse. Perspective and modulation start from the trained twin's.
The readout starts in seconds from cached core features: each unit's position is searched over the core's grid by
ridge regression of its responses on the local features (which also gives starting feature weights), then
positions, features and biases are refined with the Poisson loss. Finally readout, perspective and modulation
are fine-tuned together end to end (gradients pass through the frozen core) for a few steps.

:func:`adapt_experiment` does this for a second mouse on 2, 5, 10 and 20 minutes of its data and compares it
with twins of the same architecture trained from scratch on the same data.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..model import Network
from .data import RecordingCache, RecordingSpec
from .train import TrainConfig, fold_scale, poisson_loss

CORE_PREFIXES = ("core.",)  # frozen when adapting (as in the published adaptation)
TRANSFER_PREFIXES = ("core.", "perspective.", "modulation.")  # copied from the trained twin; all but the readout


def core_output(net: Network, stimulus: np.ndarray, perspectives: np.ndarray, modulations: np.ndarray,
                chunk: int = 150) -> torch.Tensor:
    """Core output features of one clip, [T, S·C, h, w] (no gradients)."""
    outs, state = [], None
    dev = next(net.parameters()).device
    with torch.no_grad():
        for s in range(0, len(stimulus), chunk):
            v = torch.from_numpy(np.array(stimulus[s:s + chunk]))[None].to(dev)
            p = torch.from_numpy(np.array(perspectives[s:s + chunk]))[None].to(dev)
            m = torch.from_numpy(np.array(modulations[s:s + chunk]))[None].to(dev)
            st = state or None
            retina = net.retina(v, p)
            f, ff = net.core.feedforward(retina, st.feedforward if st else None)
            mu, ms = net.modulation(m, st.modulation if st else None)
            h, rs = net.core.recurrent(f, mu, st.recurrent if st else None)
            from ..model.network import NetworkState

            state = NetworkState(ff, ms, rs)
            outs.append(net.core.recurrent.output(h)[0].transpose(0, 1))  # [t, S·C, h, w]
    return torch.cat(outs)


def cached_features(net: Network, cache: RecordingCache, clips: list[Path], burn_in: int = 10,
                    progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, S·C, h, w], responses [N, U]) over all frames after the burn-in of ``clips``."""
    net.eval()
    X, Y = [], []
    for c in tqdm(clips, desc="core features", disable=not progress):
        d = cache.clip(c)
        X.append(core_output(net, d["stimulus"], d["perspectives"], d["modulations"])[burn_in:])
        Y.append(torch.from_numpy(np.array(d["responses"][0, burn_in:])).to(X[-1].device))
    return torch.cat(X), torch.cat(Y)


def position_search(net: Network, X: torch.Tensor, Y: torch.Tensor, ridge: float = 10.0) -> np.ndarray:
    """Best grid cell per unit by ridge regression of normalised responses on each cell's features; sets the
    readout positions there and the features/biases to the (log-linear) ridge solution. Returns r² per unit."""
    n, C, h, w = X.shape
    S = net.config.streams
    y = Y / Y.mean(0).clamp(min=1e-3)
    yc = y - y.mean(0)
    dev = X.device
    best = torch.full((Y.shape[1],), -float("inf"), device=dev)
    cell = torch.zeros(Y.shape[1], dtype=torch.long, device=dev)
    weights = torch.zeros(Y.shape[1], C, device=dev)
    biases = torch.zeros(Y.shape[1], device=dev)
    eye = torch.eye(C, device=dev)
    for k in range(h * w):
        x = X[:, :, k // w, k % w].double()
        m, sd = x.mean(0), x.std(0) + 1e-6
        xs = (x - m) / sd
        W = torch.linalg.solve(xs.T @ xs + ridge * n / 1000 * eye.double(), xs.T @ yc.double())  # [C, U]
        r2 = (1 - ((yc.double() - xs @ W) ** 2).sum(0) / (yc.double() ** 2).sum(0)).float()
        upd = r2 > best
        best[upd], cell[upd] = r2[upd], k
        Wr = (W / sd[:, None]).float()  # weights on raw features
        weights[upd] = Wr.T[upd]
        biases[upd] = (-(m[:, None].float() * Wr).sum(0))[upd]
    i, j = cell // w, cell % w
    xy = torch.stack([(2 * j + 1) / w - 1, (2 * i + 1) / h - 1], 1).float()
    ro = net.readout
    with torch.no_grad():
        ro.position.mu.copy_(torch.atanh(xy.clamp(-0.95, 0.95)))
        per_stream = weights.view(-1, S, C // S)
        for s in range(S):
            ro.feature.weights[s].copy_(per_stream[:, s].unsqueeze(1) * S)
            ro.biases[s].copy_(biases.view(-1, 1))
        # the log-linear ridge solution overshoots where responses are far from their mean: shrink it to the
        # factor with the lowest Poisson loss
        y_sub, X_sub = y[:: max(1, n // 2000)], X[:: max(1, n // 2000)]
        feats = [w.clone() for w in ro.feature.weights]
        bias = [b.clone() for b in ro.biases]
        losses = {}
        for f in (1.0, 0.5, 0.25, 0.1, 0.0):
            for s in range(S):
                ro.feature.weights[s].copy_(feats[s] * f)
                ro.biases[s].copy_(bias[s] * f)
            losses[f] = float(poisson_loss(ro(X_sub), y_sub))
        f = min(losses, key=losses.get)
        for s in range(S):
            ro.feature.weights[s].copy_(feats[s] * f)
            ro.biases[s].copy_(bias[s] * f)
    return best.cpu().numpy()


def fit_readout(net: Network, X: torch.Tensor, Y: torch.Tensor, epochs: int = 8, batch: int = 512,
                lr: float = 5e-3, seed: int = 0, progress: bool = True) -> list[float]:
    """Poisson fit of readout positions, features and biases on cached core features (responses normalised by
    their mean; call :func:`fold_scale` afterwards). Returns the loss per epoch."""
    scale = Y.mean(0).clamp(min=1e-3)
    y = Y / scale
    ro = net.readout
    params = list(ro.parameters())
    opt = torch.optim.Adam([p for p in params if p is not ro.position.sigma], lr=lr)
    g = torch.Generator().manual_seed(seed)
    losses = []
    steps = epochs * max(1, len(X) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in tqdm(range(epochs), desc="readout fit", disable=not progress):
        order = torch.randperm(len(X), generator=g)
        tot = 0.0
        for b in range(max(1, len(X) // batch)):
            idx = order[b * batch:(b + 1) * batch].to(X.device)
            loss = poisson_loss(ro(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
        losses.append(tot / max(1, len(X) // batch))
    return losses


def transfer_core(source: Network, target: Network, freeze: bool = True) -> None:
    """Copy everything but the readout of ``source`` into ``target``; freeze the core when asked (perspective
    and modulation stay trainable: they start from the source's and are fitted to the new mouse)."""
    src = source.state_dict()
    own = target.state_dict()
    shared = {k: v for k, v in src.items() if k.startswith(TRANSFER_PREFIXES)}
    own.update(shared)
    target.load_state_dict(own)
    if freeze:
        for name, p in target.named_parameters():
            if name.startswith(CORE_PREFIXES):
                p.requires_grad_(False)


def refit_readout(net: Network, cache: RecordingCache, clips: list[Path], epochs: int = 8,
                  progress: bool = True, seed: int = 0) -> dict:
    """Position search + Poisson readout fit on the frozen core of ``net`` (in place, raw-response scale)."""
    X, Y = cached_features(net, cache, clips, progress=progress)
    r2 = position_search(net, X, Y)
    losses = fit_readout(net, X, Y, epochs=epochs, seed=seed, progress=progress)
    fold_scale(net, Y.mean(0).clamp(min=1e-3).cpu().numpy())
    return {"search_r2_median": float(np.median(r2)), "losses": losses}


def _oracle_cc(net: Network, cache: RecordingCache, units: pd.DataFrame) -> pd.DataFrame:
    from ..engine.twin import Twin
    from ..experiments.metrics import twin_performance

    import copy

    twin = Twin(copy.deepcopy(net), units.reset_index(drop=True).rename_axis("readout_id"), id="adapt")
    ds = twin_performance(twin, cache.oracle_recording())
    return ds.to_dataframe()[["cc_abs", "cc_max", "cc_norm"]]


def core_digest(net: Network) -> str:
    """A short sha256 of everything :func:`transfer_core` copies: names a source twin's core in work folders."""
    import hashlib

    h = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        if name.startswith(TRANSFER_PREFIXES):
            h.update(name.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def adaptable_parameters(net: Network) -> list[torch.nn.Parameter]:
    """What adaptation fits: readout, perspective and modulation (everything that is not the frozen core)."""
    return [p for name, p in net.named_parameters() if not name.startswith(CORE_PREFIXES) and p.requires_grad
            and not name.startswith("readout.position.sigma")]


def adapt_experiment(core_net: Network, minutes: tuple[float, ...] = (2, 5, 10, 20), mouse_seed: int = 1,
                     n_neurons: int = 300, scratch_steps: int = 200, finetune_steps: int = 60,
                     cache_dir: str | Path | None = None, work_dir: str | Path | None = None, seed: int = 0,
                     progress: bool = True) -> pd.DataFrame:
    """Accuracy (median CC_abs / CC_norm on held-out oracle clips of mouse ``mouse_seed``) against minutes of its
    data, for the frozen ``core_net`` core with readout, perspective and modulation fitted ("foundation":
    readout fit on cached features, then ``finetune_steps`` end-to-end steps) and for a twin of the same
    architecture trained from scratch for ``scratch_steps`` steps ("individual"). Each row records its fitting
    time in seconds."""
    from .train import init_perspective, init_readout, train

    if not minutes or any(m <= 0 for m in minutes):
        raise ValueError(f"minutes must be positive numbers, got {minutes!r}")
    spec = RecordingSpec(mouse_seed=mouse_seed, n_neurons=n_neurons, n_clips=int(np.ceil(max(minutes) * 6)),
                         n_oracle=4, repeats=10, seed=1)
    cache = RecordingCache(spec, cache_dir, progress)
    units = cache.mouse.units
    cfg = replace(core_net.config, units=n_neurons)
    # checkpoints of the foundation fits belong to one core: a retrained twin must not resume another's
    work = Path(work_dir) if work_dir is not None else cache.folder / f"adapt-work-{core_digest(core_net)}"
    rows = []
    # the foundation core's features over the largest set once; smaller sets are its first clips
    all_clips = cache.train_clips(max(minutes))
    base = Network(cfg)
    transfer_core(core_net, base)
    Xall, Yall = cached_features(base, cache, all_clips, progress=progress)
    per_clip = len(Xall) // len(all_clips)
    for m in minutes:
        clips = cache.train_clips(m)
        n = per_clip * len(clips)
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        net = Network(cfg)
        transfer_core(core_net, net)
        X, Y = Xall[:n], Yall[:n]
        position_search(net, X, Y)
        fit_readout(net, X, Y, seed=seed, progress=False)
        if finetune_steps > 0:  # readout, perspective and modulation together, on mean-normalised responses
            tc = TrainConfig(steps=finetune_steps, batch=4, sample_frames=60, burn_in=10, lr=1e-3, seed=seed,
                             checkpoint_every_s=1e9)
            train(net, cache, tc, work / f"foundation-{m:g}min", clips=clips, parameters=adaptable_parameters(net),
                  progress=progress)
        fold_scale(net, cache.mean_response(clips))
        seconds = time.perf_counter() - t0
        perf = _oracle_cc(net, cache, units)
        rows.append({"minutes": m, "model": "foundation core (frozen) + fitted readout, perspective, modulation",
                     **perf.median().to_dict(), "fit_seconds": round(seconds, 1)})
        # individual twin: everything trained from scratch on the same clips
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        scratch = Network(cfg)
        init_perspective(scratch)
        init_readout(scratch, cache, clips, seed=seed)
        tc = TrainConfig(steps=scratch_steps, batch=4, sample_frames=60, burn_in=10, seed=seed,
                         checkpoint_every_s=1e9)
        train(scratch, cache, tc, work / f"scratch-{m:g}min", clips=clips, progress=progress)
        fold_scale(scratch, cache.mean_response(clips))
        seconds = time.perf_counter() - t0
        perf = _oracle_cc(scratch, cache, units)
        rows.append({"minutes": m, "model": f"individual, from scratch ({scratch_steps} steps)",
                     **perf.median().to_dict(), "fit_seconds": round(seconds, 1)})
    return pd.DataFrame(rows)


def plot_adaptation(table: pd.DataFrame):
    """HoloViews curves of median CC_norm against minutes of data, one per model."""
    import holoviews as hv

    curves = [hv.Curve(g, "minutes", "cc_norm", label=name) * hv.Scatter(g, "minutes", "cc_norm")
              for name, g in table.groupby("model")]
    return hv.Overlay(curves).opts(title="New mouse: accuracy vs minutes of data", xlabel="minutes of data",
                                   ylabel="median CC_norm (held-out)")
