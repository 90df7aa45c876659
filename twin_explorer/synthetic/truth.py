"""The true tuning of a synthetic mouse, computed from each neuron's own filters (never with the experiments).

How: for every neuron and direction we present, inside this module, a full-screen drifting sine grating at the
neuron's preferred SF and TF (contrast 127/128, i.e. grey 128 ± 127, drawn as a plane wave on the monitor's
full-resolution degree grid exactly like a stimulus would be), and run it through the neuron's real stages.
Because the spatial stage is linear, the grating's projection onto the filters is computed once per direction
from its cosine and sine images; the temporal filters, motion energy, contrast normalisation and output
nonlinearity are then run by the model's own code on ``KERNEL_FRAMES`` + 90 frames, starting from grey. The
response to a direction is the mean rate over the last 90 frames (3 s), i.e. after the 0.6 s onset transient,
at zero eye position and average behaviour. It includes the baseline rate (it is what the twin outputs).
An experiment averaging 2 s gratings sees the same numbers up to its onset transient and uint8 rounding.

Indices (r: mean response; θ: direction, v2 convention 0° = rightward motion, counter-clockwise):

* ``gosi = |Σ r e^{2iθ}| / Σ r`` and ``gdsi = |Σ r e^{iθ}| / Σ r`` over 16 directions 0, 22.5, …, 337.5°;
* ``pref_dir_deg``: the Gabor's preferred direction (the peak of the true curve by symmetry); ``pref_ori_deg`` =
  pref_dir mod 180 (0° = vertical bars);
* ``osi = (R_pref − R_orth) / (R_pref + R_orth)`` with R_pref = mean of r(pref), r(pref + 180°) and R_orth = mean
  of r(pref ± 90°) (the published definition); ``dsi = 1 − r(null) / r(pref)`` (published, null = pref + 180°);
  ``dsi_allen = (r(pref) − r(null)) / (r(pref) + r(null))`` (Allen Brain Observatory definition).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr

from ..paths import cache_dir
from ..store import atomic_path, content_hash
from .constants import KERNEL_FRAMES

if TYPE_CHECKING:
    from .mouse import SyntheticMouse

N_DIRECTIONS = 16
STEADY_FRAMES = 90
GRATING_CONTRAST = 127.0 / 128.0


def _grating_projections(mouse: SyntheticMouse, directions_deg: np.ndarray, chunk: int = 8
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Projections of cos/sin plane waves onto each neuron's filters.

    directions_deg [U, D]. Returns A [U, D, 2 (cos, sin image), 2 (real, imag filter)] and
    Q [U, D, 3] (cos², cos·sin, sin² images pooled under the normalisation pool).
    """
    p = mouse.params
    U, D = directions_deg.shape
    az, el = (torch.as_tensor(g, dtype=torch.float32) for g in mouse.monitor.degree_grid)
    f = mouse.resolution
    spatial, pool = (x.cpu() for x in mouse.filters(None)[:2])
    A = np.empty((U, D, 2, 2))
    Q = np.empty((U, D, 3))
    sf = torch.tensor(p["sf_cpd"].to_numpy(), dtype=torch.float32)
    with torch.inference_mode():
        for i0 in range(0, U, chunk):
            i1 = min(U, i0 + chunk)
            n = i1 - i0
            th = torch.as_tensor(np.radians(directions_deg[i0:i1]), dtype=torch.float32)
            k = 2 * np.pi * sf[i0:i1, None]
            kx, ky = (k * torch.cos(th))[..., None, None], (k * torch.sin(th))[..., None, None]
            phase = (kx * az + ky * el).reshape(n * D, 1, *az.shape)
            # The model's area averaging of the cosine and sine images.
            pc, ps = torch.cos(phase), torch.sin(phase)
            if f > 1:
                pc, ps = F.avg_pool2d(pc, f), F.avg_pool2d(ps, f)
            g = spatial[:, 2 * i0:2 * i1].reshape(-1, n, 2).permute(1, 0, 2)  # [n, P, (re, im)]
            A[i0:i1, :, 0] = torch.bmm(pc.reshape(n, D, -1), g).numpy()
            A[i0:i1, :, 1] = torch.bmm(ps.reshape(n, D, -1), g).numpy()
            terms = torch.cat([F.avg_pool2d(pc * pc, 2), F.avg_pool2d(pc * ps, 2), F.avg_pool2d(ps * ps, 2)], 1)
            Q[i0:i1] = torch.bmm(terms.reshape(n, D * 3, -1), pool[:, i0:i1].T[:, :, None]).reshape(n, D, 3).numpy()
    return A, Q


def _responses_from_projections(mouse: SyntheticMouse, A: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Run the grating's linear projections through the model's dynamics; mean steady-state rate [U, D]."""
    U, D = A.shape[:2]
    T = KERNEL_FRAMES + STEADY_FRAMES
    t = np.arange(T)
    psi = 2 * np.pi * mouse.params["tf_hz"].to_numpy()[None, :] * t[:, None] / mouse.frame_rate  # [T, U]
    cos, sin = np.cos(psi)[None], np.sin(psi)[None]  # [1, T, U]
    C = GRATING_CONTRAST
    # s(x, t) = C·cos(k·x − ψ_t) = C·(cos ψ_t·cos(k·x) + sin ψ_t·sin(k·x)): moves along +k.
    a = np.empty((D, T, 2 * U))
    for r in range(2):  # real / imaginary filter
        a[:, :, r::2] = C * (cos * A[:, :, 0, r].T[:, None] + sin * A[:, :, 1, r].T[:, None])
    c2 = C**2 * (cos**2 * Q[:, :, 0].T[:, None] + 2 * cos * sin * Q[:, :, 1].T[:, None]
                 + sin**2 * Q[:, :, 2].T[:, None])
    dev = mouse.device
    with torch.inference_mode():
        _, _, temporal, smooth, up = mouse.filters(None)
        rate = mouse.dynamics(torch.as_tensor(a, dtype=torch.float32, device=dev),
                               torch.as_tensor(c2, dtype=torch.float32, device=dev), None, temporal, smooth, up)
    return rate[:, -STEADY_FRAMES:].mean(1).cpu().numpy().T.astype(np.float64)


def steady_state_responses(mouse: SyntheticMouse, directions_deg: np.ndarray) -> np.ndarray:
    """Mean steady-state rate [U, D] of each neuron to full-screen drifting gratings at its preferred SF/TF.

    Opposite directions share their spatial projections (k → −k flips the sine image), so only directions
    mod 180° are projected.
    """
    directions_deg = np.asarray(directions_deg, dtype=float) % 360
    base = directions_deg % 180
    flip = directions_deg >= 180
    A, Q = _grating_projections(mouse, base)
    A[:, :, 1][flip] *= -1
    Q[:, :, 1][flip] *= -1
    return _responses_from_projections(mouse, A, Q)


def global_indices(r: np.ndarray, directions_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gOSI, gDSI) of tuning curves r [..., D] sampled at directions_deg [D]."""
    th = np.radians(directions_deg)
    total = r.sum(-1)
    gosi = np.abs((r * np.exp(2j * th)).sum(-1)) / total
    gdsi = np.abs((r * np.exp(1j * th)).sum(-1)) / total
    return gosi, gdsi


def true_tuning(mouse: SyntheticMouse) -> tuple[pd.DataFrame, xr.DataArray]:
    """The truth table (indexed like ``mouse.units``) and the true 16-direction tuning curves."""
    p = mouse.params
    U = len(p)
    grid = np.arange(N_DIRECTIONS) * 360.0 / N_DIRECTIONS
    pref = p["pref_dir_deg"].to_numpy()
    extra = (pref[:, None] + np.array([0.0, 180.0, 90.0, 270.0])[None]) % 360
    dirs = np.concatenate([np.broadcast_to(grid, (U, N_DIRECTIONS)), extra], 1)
    r = steady_state_responses(mouse, dirs)
    curve = r[:, :N_DIRECTIONS]
    gosi, gdsi = global_indices(curve, grid)
    r_pref, r_null, r_orth = r[:, N_DIRECTIONS], r[:, N_DIRECTIONS + 1], r[:, N_DIRECTIONS + 2:].mean(1)
    r_ori = (r_pref + r_null) / 2
    rf_sigma = p["sigma_deg"].to_numpy() * np.sqrt(p["aspect"].to_numpy())
    truth = pd.DataFrame(
        {
            "pref_dir_deg": pref % 360,
            "pref_ori_deg": pref % 180,
            "osi": (r_ori - r_orth) / (r_ori + r_orth),
            "dsi": 1 - r_null / r_pref,
            "dsi_allen": (r_pref - r_null) / (r_pref + r_null),
            "gosi": gosi,
            "gdsi": gdsi,
            "rf_az_deg": p["rf_az_deg"].to_numpy(),
            "rf_el_deg": p["rf_el_deg"].to_numpy(),
            "rf_sigma_deg": rf_sigma,  # geometric mean of the envelope σ across and along the bars
            "rf_sigma_across_deg": p["sigma_deg"].to_numpy(),
            "rf_sigma_along_deg": p["sigma_deg"].to_numpy() * p["aspect"].to_numpy(),
            "sf_cpd": p["sf_cpd"].to_numpy(),
            "tf_hz": p["tf_hz"].to_numpy(),
            "simple_frac": p["simple_frac"].to_numpy(),
            "is_simple": p["simple_frac"].to_numpy() > 0.5,
            "null_mix": p["null_mix"].to_numpy(),
            "area": p["area"].to_numpy(),
            "layer": p["layer"].to_numpy(),
            "x_um": p["x_um"].to_numpy(),
            "y_um": p["y_um"].to_numpy(),
            "depth_um": p["depth_um"].to_numpy(),
            "baseline_rate": p["baseline"].to_numpy(),
            "pref_rate": r_pref,
            "gain_running": p["gain_running"].to_numpy(),
            "gain_pupil": p["gain_pupil"].to_numpy(),
        },
        index=mouse.units.index,
    )
    curves = xr.DataArray(
        curve.astype(np.float32), dims=("unit", "direction"),
        coords={"unit": mouse.units.index.to_numpy(), "direction": grid},
        name="true_response",
        attrs={"units": "expected events per frame", "twin_id": mouse.id,
               "description": "mean steady-state rate to full-screen drifting gratings at each neuron's SF/TF"},
    )
    return truth, curves


TRUTH_VERSION = 2  # bump whenever the model or the truth computation changes: invalidates cached truth files
CACHE_MIN_UNITS = 200  # small populations are quicker to recompute than to cache


def _cache_path(mouse: SyntheticMouse) -> Path:
    """The truth file of a mouse: named by a hash of every generative parameter and of how the truth is computed."""
    p = mouse.params
    key = content_hash(np.ascontiguousarray(p.select_dtypes("number").to_numpy(np.float64)),
                       list(p["area"].astype(str) + p["layer"].astype(str)),
                       [mouse.monitor.to_dict(), mouse.resolution, KERNEL_FRAMES, STEADY_FRAMES, N_DIRECTIONS,
                        GRATING_CONTRAST, TRUTH_VERSION])
    return cache_dir("synthetic") / f"truth-{mouse.id}-{key[:16]}.nc"


def cached_true_tuning(mouse: SyntheticMouse) -> tuple[pd.DataFrame, xr.DataArray]:
    """:func:`true_tuning`, stored on disk (netCDF, keyed by a hash of every generative parameter) for large mice."""
    if mouse.n_units < CACHE_MIN_UNITS:
        return true_tuning(mouse)
    path = _cache_path(mouse)
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
        truth = ds.drop_dims("direction").to_dataframe()
        truth.index = mouse.units.index
        truth["is_simple"] = truth["is_simple"].astype(bool)
        curves = ds["true_response"].rename({"readout_id": "unit"})
        curves = curves.assign_coords(unit=mouse.units.index.to_numpy())
        return truth, curves
    except (OSError, ValueError, KeyError):
        pass  # not cached yet, or unreadable: recompute
    truth, curves = true_tuning(mouse)
    try:
        ds = xr.Dataset.from_dataframe(truth.assign(is_simple=truth["is_simple"].astype(np.int8)))
        ds["true_response"] = curves.rename({"unit": "readout_id"})
        with atomic_path(path) as tmp:  # concurrent processes never read half a file
            ds.to_netcdf(tmp, engine="h5netcdf")
    except OSError:
        pass  # a read-only cache is not an error; the truth is still returned
    return truth, curves
