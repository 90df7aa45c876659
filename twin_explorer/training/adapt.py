"""Adapting a trained core to a new mouse, and the foundation-versus-individual experiment on a new synthetic mouse.

Adapting to a new mouse follows the paper: the core of a trained twin is copied and frozen, and the readout,
perspective and modulation are fitted to the new mouse. Perspective and modulation start from the trained twin's.
The readout starts in seconds from cached core features: each unit's position is searched over the core's grid by
ridge regression of its responses on the local features (which also gives starting feature weights), then
positions, features and biases are refined with the Poisson loss. Finally readout, perspective and modulation
are fine-tuned together end to end (gradients pass through the frozen core) for a few steps.

:func:`adapt_experiment` does this for a second mouse on 2, 5, 10 and 20 minutes of its data and compares it
with twins of the same architecture trained from scratch on the same data. The readout fitting itself lives in
:mod:`.readout`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..engine.twin import Twin
from ..experiments.metrics import twin_performance
from ..model import Network
from ..store import content_hash
from .data import RecordingCache, RecordingSpec
from .readout import cached_features, fit_readout, fold_scale, init_perspective, init_readout, position_search
from .train import TrainConfig, train

CORE_PREFIXES = ("core.",)  # frozen when adapting (as in the published adaptation)
TRANSFER_PREFIXES = ("core.", "perspective.", "modulation.")  # copied from the trained twin; all but the readout


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


def _oracle_cc(net: Network, cache: RecordingCache, units: pd.DataFrame) -> pd.DataFrame:
    twin = Twin(copy.deepcopy(net), units.reset_index(drop=True).rename_axis("readout_id"), id="adapt")
    ds = twin_performance(twin, cache.oracle_recording())
    return ds.to_dataframe()[["cc_abs", "cc_max", "cc_norm"]]


def core_digest(net: Network) -> str:
    """A short content hash of everything :func:`transfer_core` copies: names a source twin's core in work folders."""
    parts = []
    for name, value in sorted(net.state_dict().items()):
        if name.startswith(TRANSFER_PREFIXES):
            parts += [name, value.detach().cpu().contiguous().numpy()]
    return content_hash(*parts)[:12]


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
    import holoviews as hv  # start-up time: plotting loads bokeh, only for the figure

    curves = [hv.Curve(g, "minutes", "cc_norm", label=name) * hv.Scatter(g, "minutes", "cc_norm")
              for name, g in table.groupby("model")]
    return hv.Overlay(curves).opts(title="New mouse: accuracy vs minutes of data", xlabel="minutes of data",
                                   ylabel="median CC_norm (held-out)")
