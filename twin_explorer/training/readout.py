"""Fitting a readout to a core: the Poisson loss, core features of recorded clips, a grid search of readout
positions by ridge regression, a Poisson fit of positions, features and biases, and the starting point of training.

Shared by training from scratch (:mod:`.train`: the readout starts fitted to the initial core) and adaptation to a
new mouse (:mod:`.adapt`: the readout is fitted on a frozen, transferred core).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model import Network, NetworkState
from .data import RecordingCache


def poisson_loss(log_rate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Poisson negative log-likelihood (without the log y! term) for log rates."""
    return (torch.exp(log_rate) - target * log_rate).mean()


def init_perspective(net: Network) -> None:
    """Start with the eye looking at the monitor centre whatever the eye position: the perspective MLP's last
    layer gets zero gains and biases (its weights are standardised, so only the gains can silence it). A random
    MLP otherwise turns the recorded pupil positions into rotations that leave half the retina off the screen,
    and the core never sees the stimulus well enough to learn from it."""
    last = net.perspective.mlp.linears[-1]
    with torch.no_grad():
        for g in last.gains:
            g.zero_()
        for b in last.biases:
            b.zero_()


def init_readout(net: Network, cache: RecordingCache, clips: list[Path], seed: int = 0, search_clips: int = 30,
                 epochs: int = 4, progress: bool = False) -> dict:
    """Readout from the (initial) core's features, so that end-to-end training starts from a readout that
    already uses the stimulus: features of ``search_clips`` clips are cached, each unit's position is searched
    over the core grid by ridge regression and its features and bias are then fitted with the Poisson loss
    (on mean-normalised responses, the scale :func:`train` uses). Returns the search r² median and fit losses."""
    X, Y = cached_features(net, cache, clips[: min(len(clips), search_clips)], progress=progress)
    r2 = position_search(net, X, Y)
    losses = fit_readout(net, X, Y, epochs=epochs, seed=seed, progress=progress)
    return {"search_r2_median": float(np.median(r2)), "readout_fit_losses": losses}


def fold_scale(net: Network, mean: np.ndarray) -> None:
    """Turn a network trained on mean-normalised responses into one predicting raw responses
    (adds log(mean) to every stream's readout bias: the output is the exp of the stream-mean log rate)."""
    with torch.no_grad():
        shift = torch.log(torch.as_tensor(np.maximum(mean, 1e-6), dtype=torch.float32)).view(-1, 1)
        for b in net.readout.biases:
            b.add_(shift.to(b.device))  # the network may be on a GPU (a readout refit after CUDA training)


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


def refit_readout(net: Network, cache: RecordingCache, clips: list[Path], epochs: int = 8,
                  progress: bool = True, seed: int = 0) -> dict:
    """Position search + Poisson readout fit on the frozen core of ``net`` (in place, raw-response scale)."""
    X, Y = cached_features(net, cache, clips, progress=progress)
    r2 = position_search(net, X, Y)
    losses = fit_readout(net, X, Y, epochs=epochs, seed=seed, progress=progress)
    fold_scale(net, Y.mean(0).clamp(min=1e-3).cpu().numpy())
    return {"search_r2_median": float(np.median(r2)), "losses": losses}
