"""The reference implementation (the optional, MIT-licensed ``fnn`` package) as a benchmark baseline.

Published ``fnn`` snapshots ship the building blocks (``fnn.model``) but not always the MICrONS assembly
(``fnn.microns.build``), so this module composes the published configuration from the blocks itself, with the
sizes of ``shared/spec/fnn-architecture.md``. Its state-dict keys are the published ones, so the engine's weights
load into it strictly. ``fnn`` is not a dependency: everything here reports, rather than raises, when it is missing.
"""

from __future__ import annotations

import numpy as np
import torch

try:  # optional: the reference is only a benchmark baseline, never a dependency
    from fnn.model import (bounds, cores, features, feedforwards, modulations, monitors, networks, perspectives,
                           pixels, positions, readouts, recurrents, reductions, retinas, units)
    IMPORT_ERROR: str | None = None
except Exception as exc:  # ImportError, or a broken install of the optional package
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def available() -> bool:
    """Whether the reference package can be used here."""
    return IMPORT_ERROR is None


def build_reference(n_units: int) -> torch.nn.Module:
    """The reference's MICrONS network for ``n_units`` units (published sizes, spec sections 3-7), in eval mode.

    The values are the reference's own initialisation; load real weights with ``load_state_dict``."""
    if IMPORT_ERROR is not None:
        raise ImportError(f"the reference package fnn is not importable here ({IMPORT_ERROR})")
    if int(n_units) != n_units or n_units < 1:
        raise ValueError(f"n_units must be a positive integer, got {n_units!r}")
    feedforward = feedforwards.InputDense(
        input_spatial=6, input_stride=2, block_channels=[32, 64, 128], block_groups=[1, 2, 4],
        block_layers=[2, 2, 2], block_temporals=[3, 3, 3], block_spatials=[3, 3, 3], block_pools=[2, 2, 1],
        out_channels=128, nonlinear="gelu")
    recurrent = recurrents.CvtLstm(in_channels=256, out_channels=128, hidden_channels=256, common_channels=512,
                                   groups=8, spatial=3)
    perspective = perspectives.MlpMonitorRetina(
        mlp_features=16, mlp_layers=3, mlp_nonlinear="gelu", monitor=monitors.Plane(),
        monitor_pixel=pixels.StaticPower(power=1.7), retina=retinas.Angular(degrees=75),
        retina_pixel=pixels.SigmoidPower(max_power=1, eps=1e-5), height=128, width=192)
    modulation = modulations.MlpLstm(mlp_features=16, mlp_layers=1, mlp_nonlinear="gelu", lstm_features=16)
    readout = readouts.PositionFeature(position=positions.Gaussian(), bound=bounds.Tanh(), feature=features.Vanilla())
    net = networks.Visual(core=cores.FeedforwardRecurrent(feedforward, recurrent), perspective=perspective,
                          modulation=modulation, readout=readout, reduce=reductions.Mean(), unit=units.Poisson())
    net._init(stimuli=1, perspectives=2, modulations=2, units=int(n_units), streams=4)
    return net.eval()


def reference_predict(net: torch.nn.Module, stimuli: np.ndarray, perspectives: np.ndarray | None = None,
                      modulations: np.ndarray | None = None) -> np.ndarray:
    """Responses of the reference network from zero state, frame by frame as the reference runs.

    ``stimuli`` uint8 [T, H, W] (one video: returns [T, U]) or [N, T, H, W] (a batch: returns [N, T, U]);
    ``perspectives`` / ``modulations`` float [T, 2] or [N, T, 2], zeros when omitted."""
    stimuli = np.asarray(stimuli)
    if stimuli.dtype != np.uint8 or stimuli.ndim not in (3, 4):
        raise ValueError(f"stimuli must be uint8 [T, H, W] or [N, T, H, W], got {stimuli.dtype} {stimuli.shape}")
    batched = stimuli.ndim == 4
    frames = stimuli[..., None].swapaxes(0, 1) if batched else stimuli  # T x [N, H, W, 1] or T x [H, W]

    def per_frame(values):
        if values is None:
            return None
        values = np.asarray(values, dtype=np.float32)
        return values.swapaxes(0, 1) if batched else values

    with torch.inference_mode():
        out = np.stack(list(net.generate_response(frames, per_frame(perspectives), per_frame(modulations))))
    return out.swapaxes(0, 1) if batched else out
