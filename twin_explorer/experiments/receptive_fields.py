"""Spatial receptive fields: flashing-dot / sparse-noise STA maps in degrees, 2-D Gaussian fits, the spatial
selectivity index.

STA (the pipeline's density-normalised form): for every epoch k with spatial mask m_k (the epoch's mean signed
contrast (frame − 128)/127, block-averaged into ``bin``×``bin`` pixel bins) and latency-shifted window response
r_k, STA = Σ_k m_k·r_k / Σ_k m_k, separately for ``on`` (m = max(contrast, 0)), ``off`` (m = max(−contrast, 0))
and ``on_off`` (m = |contrast|). Masks come from the rendered frames themselves, so any stimulus with epochs
(Gaussian dots, sparse noise) works. Maps carry the azimuth/elevation (degrees, elevation up) of every bin.

SSI (pipeline): the map minus its median, rectified, is treated as a 2-D distribution on a grid whose larger
side spans 0–1; SSI = −log det(Cov). Larger means more compact.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..engine.contract import TwinLike
from ..monitor import DEFAULT_MONITOR, GREY, Monitor
from ..stimuli.dots import FWHM_TO_SIGMA, GaussianDots
from ..stimuli.sequence import pad_with_grey
from .checks import check_positive, resolve_units, twin_frame_rate, twin_monitor, unit_coords
from .fitting import best_of_starts
from .provenance import provenance
from .runner import BURN_IN_FRAMES, DEFAULT_LATENCY_S, ProgressCallback, run_conditions

__all__ = ["receptive_fields", "dot_stimulus", "sta_maps", "gaussian2d", "fit_gaussian_2d", "fit_gaussian_2d_many", "spatial_selectivity_index",
           "POLARITIES"]

POLARITIES = ("on", "off", "on_off")


# --- stimulus ------------------------------------------------------------------------------------------------

def dot_stimulus(spacing_deg: float = 5.0, dot_sigma_deg: float | None = None, dot_s: float = 0.2,
                 gap_s: float = 0.1, repeats: int = 1, seed: int = 0, monitor: Monitor = DEFAULT_MONITOR,
                 margin_deg: float = 4.0) -> Any:
    """The default RF-mapping stimulus: ``twin_explorer.stimuli.GaussianDots`` (on and off Gaussian dots of σ
    ``dot_sigma_deg``, default spacing/2.5, on a grid covering the screen, seeded random order)."""
    spacing_deg = check_positive("spacing_deg", spacing_deg)
    sigma = spacing_deg / 2.5 if dot_sigma_deg is None else check_positive("dot_sigma_deg", dot_sigma_deg)
    if int(repeats) < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    return _library_dots(spacing_deg, sigma, dot_s, gap_s, repeats, seed, monitor, margin_deg)


def _library_dots(spacing: float, sigma: float, dot_s: float, gap_s: float, repeats: int, seed: int,
                  monitor: Monitor, margin_deg: float) -> GaussianDots:
    left, right, bottom, top = monitor.extent_deg
    half_az = np.floor((right - margin_deg) / spacing) * spacing
    half_el = np.floor((top - margin_deg - 8) / spacing) * spacing  # the screen's corners curve in (degrees)
    stim = GaussianDots(az_range=(-half_az, half_az), el_range=(-half_el, half_el), spacing_deg=float(spacing),
                        size_deg=float(sigma / FWHM_TO_SIGMA), dot_s=float(dot_s), isi_s=float(gap_s),
                        repeats=int(repeats), seed=int(seed), monitor=monitor)
    return stim


# --- STA -----------------------------------------------------------------------------------------------------

def _bin_frames(x: np.ndarray, b: int) -> np.ndarray:
    H, W = x.shape[-2:]
    h, w = H // b, W // b
    return x[..., :h * b, :w * b].reshape(*x.shape[:-2], h, b, w, b).mean(axis=(-3, -1))


def epoch_masks(frames: np.ndarray, epochs: pd.DataFrame, bin_px: int = 4) -> np.ndarray:
    """Signed contrast masks [E, h, w] (mean over each epoch's frames of (frame − 128)/127, binned)."""
    out = []
    for on, off in zip(epochs["onset_frame"].astype(int), epochs["offset_frame"].astype(int)):
        c = (frames[on:off].astype(np.float32) - GREY) / 127.0
        out.append(_bin_frames(c.mean(0), bin_px))
    return np.stack(out)


def sta_maps(masks: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """STA [U, 3, h, w] for (on, off, on_off) from signed masks [E, h, w] and responses [E, U]."""
    E, h, w = masks.shape
    m = masks.reshape(E, -1).astype(np.float64)
    r = np.asarray(responses, dtype=np.float64)
    out = np.empty((r.shape[1], 3, h * w))
    for i, mm in enumerate((np.clip(m, 0, None), np.clip(-m, 0, None), np.abs(m))):
        den = mm.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, i] = (mm.T @ r).T / np.where(den > 1e-3 * max(den.max(), 1e-12), den, np.nan)
    return out.reshape(r.shape[1], 3, h, w)


# --- fits ----------------------------------------------------------------------------------------------------

def gaussian2d(az: np.ndarray, el: np.ndarray, az0: float, el0: float, sigma_major: float, sigma_minor: float,
               angle_deg: float, amplitude: float, offset: float) -> np.ndarray:
    """Elliptical Gaussian in degrees; ``angle_deg`` is the major axis, counter-clockwise from the azimuth axis."""
    t = np.radians(angle_deg)
    dx, dy = az - az0, el - el0
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    return offset + amplitude * np.exp(-0.5 * (u**2 / sigma_major**2 + v**2 / sigma_minor**2))


_G_KEYS = ("az", "el", "sigma_major", "sigma_minor", "angle", "amplitude", "offset", "r2")


def _g2_model(aa: np.ndarray, ee: np.ndarray):
    def model(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a0, e0, s1, s2, t, amp, off = (p[:, i:i + 1] for i in range(7))
        c, s = np.cos(t), np.sin(t)
        dx, dy = aa[None] - a0, ee[None] - e0
        u = dx * c + dy * s
        v = -dx * s + dy * c
        g = np.exp(-0.5 * (u**2 / s1**2 + v**2 / s2**2))
        ag = amp * g
        J = np.stack([ag * (u * c / s1**2 - v * s / s2**2),
                      ag * (u * s / s1**2 + v * c / s2**2),
                      ag * u**2 / s1**3, ag * v**2 / s2**3,
                      ag * (-u * v / s1**2 + u * v / s2**2), g, np.ones_like(g)], -1)
        return off + ag, J
    return model


def fit_gaussian_2d_many(maps: np.ndarray, az: np.ndarray, el: np.ndarray, chunk: int = 128) -> dict[str, np.ndarray]:
    """2-D Gaussian fits of many RF maps [U, h, w] on one degree grid at once (batched Levenberg–Marquardt from the
    peak, two starting angles). Returns arrays keyed az, el, sigma_major ≥ sigma_minor, angle (deg in [0, 180),
    major axis counter-clockwise from azimuth), amplitude, offset, r2. NaN bins are ignored."""
    Z = np.asarray(maps, dtype=float).reshape(len(maps), -1)
    aa, ee = np.asarray(az, dtype=float).ravel(), np.asarray(el, dtype=float).ravel()
    U = len(Z)
    out = {k: np.full(U, np.nan) for k in _G_KEYS}
    finite = np.isfinite(Z)
    ok = (finite.sum(1) >= 8) & (np.nan_to_num(np.nanmax(np.where(finite, Z, -np.inf), 1) -
                                               np.nanmin(np.where(finite, Z, np.inf), 1)) > 0)
    lo = [aa.min() - 10, ee.min() - 10, 0.3, 0.3, -np.inf, 0, -np.inf]
    hi = [aa.max() + 10, ee.max() + 10, 120, 120, np.inf, np.inf, np.inf]
    model = _g2_model(aa, ee)
    idx_all = np.flatnonzero(ok)
    for c0 in range(0, idx_all.size, chunk):
        idx = idx_all[c0:c0 + chunk]
        z = Z[idx]
        base = np.nanmedian(z, axis=1)
        w = np.clip(np.nan_to_num(z - base[:, None], nan=0.0), 0, None)
        k = np.argmax(np.where(np.isfinite(z), z, -np.inf), axis=1)
        peak = w[np.arange(len(idx)), k]
        near = w > 0.5 * peak[:, None]
        d2 = (aa[None] - aa[k][:, None]) ** 2 + (ee[None] - ee[k][:, None]) ** 2
        s0 = np.clip(np.sqrt((near * w * d2).sum(1) / np.maximum((near * w).sum(1), 1e-12) / 2 + 1), 1.0, 40.0)
        span = np.maximum(peak, 1e-12)
        # fit the map scaled by its peak height so one LM damping suits every unit; two starting angles
        starts = [np.c_[aa[k], ee[k], 1.2 * s0, 0.8 * s0, np.full(len(idx), ang), np.ones(len(idx)), base / span]
                  for ang in (0.0, np.pi / 4)]
        best_p, best_c = best_of_starts(model, z / span[:, None], starts, lo, hi)
        a0, e0, s1, s2, t, amp, off = best_p.T
        swap = s2 > s1
        s1, s2 = np.where(swap, s2, s1), np.where(swap, s1, s2)
        t = np.where(swap, t + np.pi / 2, t)
        zs = z / span[:, None]
        ss_tot = np.nansum((zs - np.nanmean(zs, 1, keepdims=True)) ** 2, 1)
        vals = {"az": a0, "el": e0, "sigma_major": s1, "sigma_minor": s2, "angle": np.mod(np.degrees(t), 180),
                "amplitude": amp * span, "offset": off * span, "r2": 1 - best_c / np.where(ss_tot > 0, ss_tot, np.nan)}
        for key, v in vals.items():
            out[key][idx] = v
    return out


def fit_gaussian_2d(rf: np.ndarray, az: np.ndarray, el: np.ndarray) -> dict[str, float]:
    """2-D Gaussian fit of one RF map on its degree grid (see :func:`fit_gaussian_2d_many`): centre az/el,
    sigma_major ≥ sigma_minor (deg), angle of the major axis in [0, 180) (deg, counter-clockwise from azimuth),
    amplitude, offset and r2."""
    z = np.asarray(rf, dtype=float)
    if z.shape != np.shape(az) or z.shape != np.shape(el):
        raise ValueError(f"rf map {z.shape} and its az/el grids {np.shape(az)}, {np.shape(el)} must match")
    return {k: float(v[0]) for k, v in fit_gaussian_2d_many(z[None], az, el).items()}


def spatial_selectivity_index(rf: np.ndarray) -> float:
    """SSI = −log det(Cov) of the rectified, median-subtracted map as a 2-D distribution (larger side spans 0–1)."""
    z = np.asarray(rf, dtype=float)
    w = np.clip(np.nan_to_num(z - np.nanmedian(z), nan=0.0), 0, None)
    if w.sum() <= 0:
        return np.nan
    h, wd = z.shape
    scale = max(h, wd) - 1
    yy, xx = np.mgrid[0:h, 0:wd] / scale
    p = w / w.sum()
    mx, my = (p * xx).sum(), (p * yy).sum()
    cxx = (p * (xx - mx) ** 2).sum()
    cyy = (p * (yy - my) ** 2).sum()
    cxy = (p * (xx - mx) * (yy - my)).sum()
    det = cxx * cyy - cxy**2
    return float(-np.log(det)) if det > 0 else np.nan


# --- the experiment ------------------------------------------------------------------------------------------

def _stimulus_masks(stimulus: Any, mon: Monitor, bin_px: int) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """(frames, epochs, signed contrast masks [E, h, w]) of an RF-mapping stimulus, checked."""
    if not (hasattr(stimulus, "render") and hasattr(stimulus, "epochs")):
        raise ValueError("stimulus must have render() and epochs (a twin_explorer.stimuli object)")
    frames, epochs = np.asarray(stimulus.render()), stimulus.epochs
    if frames.ndim != 3 or frames.shape[1:] != mon.shape:
        raise ValueError(f"stimulus frames have shape {frames.shape}; expected [T, {mon.height_px}, {mon.width_px}]")
    for col in ("onset_frame", "offset_frame"):
        if col not in epochs:
            raise ValueError(f"stimulus epochs lack the {col!r} column")
    if hasattr(stimulus, "masks") and "polarity" in epochs and mon.height_px % bin_px == 0 \
            and mon.width_px % bin_px == 0:
        # exact element profiles (peak 1) signed by polarity, as shown before uint8 rounding
        pol = np.asarray(epochs["polarity"].map(lambda p: {"on": 1, "off": -1}.get(p, p)), dtype=float)
        return frames, epochs, stimulus.masks(downsample=int(bin_px)) * pol[:, None, None]
    return frames, epochs, epoch_masks(frames, epochs, int(bin_px))


def _epoch_responses(twin: TwinLike, frames: np.ndarray, epochs: pd.DataFrame, ids: np.ndarray, latency_s: float,
                     chunk_s: float, batch_size: int | None, progress: ProgressCallback | None, show_progress: bool,
                     cancel: threading.Event | None) -> np.ndarray:
    """Latency-shifted window mean of every epoch [E, U]. The sequence is cut at epoch starts into ~``chunk_s``
    pieces, each a condition video: grey burn-in + its frames + latency tail; the pieces run as one batch."""
    fr = twin_frame_rate(twin)
    lat_f = int(np.ceil(latency_s * fr))
    lat_round = int(round(latency_s * fr))
    pre = BURN_IN_FRAMES
    starts = epochs["onset_frame"].to_numpy(int)
    ends = epochs["offset_frame"].to_numpy(int)
    piece_len = max(int(chunk_s * fr), 1)
    bounds = [0]
    for k, s in enumerate(starts):
        if s - starts[bounds[-1]] >= piece_len:
            bounds.append(k)
    bounds.append(len(starts))
    pieces = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    seg = [(starts[a], (starts[b] if b < len(starts) else len(frames))) for a, b in pieces]
    T = pre + max(e - s for s, e in seg) + lat_f + 1

    def video(i: int) -> np.ndarray:
        s, e = seg[i]
        body = frames[s:min(e + lat_f + 1, len(frames))]
        return pad_with_grey(body, pre, T - pre - len(body))

    def reduce(i: int, r: np.ndarray) -> np.ndarray:
        a, b = pieces[i]
        vals = np.full((len(starts), r.shape[-1]), np.nan, dtype=np.float32)
        for k in range(a, b):
            w0 = pre + starts[k] - seg[i][0] + lat_round
            w1 = pre + ends[k] - seg[i][0] + lat_round
            vals[k] = r[w0:max(w1, w0 + 1)].mean(0)
        return vals

    per_piece = run_conditions(twin, video, len(seg), ids, batch_size=batch_size, progress=progress,
                               desc="receptive fields", show_progress=show_progress, reduce=reduce, cancel=cancel)
    return np.nanmean(per_piece, axis=0) if len(seg) > 1 else per_piece[0]  # each epoch is in one piece


def _fit_all(sta: np.ndarray, az: np.ndarray, el: np.ndarray, fits: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Gaussian fits [U, 3] per polarity (NaN for polarities not in ``fits``)."""
    out = {k: np.full((len(sta), 3), np.nan) for k in _G_KEYS}
    for pi, pol in enumerate(POLARITIES):
        if pol in fits:
            g = fit_gaussian_2d_many(sta[:, pi], az, el)
            for k in _G_KEYS:
                out[k][:, pi] = g[k]
    return out


def _rf_dataset(twin: TwinLike, ids: np.ndarray, sta: np.ndarray, epoch_resp: np.ndarray, epochs: pd.DataFrame,
                mon: Monitor, bin_px: int, fits: tuple[str, ...]) -> xr.Dataset:
    h, w = sta.shape[2:]
    A, E = mon.pixels_to_degrees(*np.meshgrid((np.arange(w) + 0.5) * bin_px, (np.arange(h) + 0.5) * bin_px))
    fit_vals = _fit_all(sta, A, E, fits)
    ssi = np.array([[spatial_selectivity_index(sta[u, p]) for p in range(3)] for u in range(len(ids))])
    coords = unit_coords(twin, ids)
    coords.update(polarity=("polarity", list(POLARITIES)), y=("y", np.arange(h)), x=("x", np.arange(w)),
                  az=(("y", "x"), A, {"units": "deg", "long_name": "azimuth (right +)"}),
                  el=(("y", "x"), E, {"units": "deg", "long_name": "elevation (up +)"}),
                  epoch=("epoch", np.arange(len(epochs))))
    data: dict[str, Any] = {
        "sta": (("unit", "polarity", "y", "x"), sta.astype(np.float32), {"long_name": "Σ mask·response / Σ mask"}),
        "ssi": (("unit", "polarity"), ssi),
        "epoch_response": (("epoch", "unit"), epoch_resp.astype(np.float32)),
    }
    for k in _G_KEYS:
        data[{"az": "rf_az", "el": "rf_el"}.get(k, f"rf_{k}")] = (("unit", "polarity"), fit_vals[k])
    for c in ("x", "y", "polarity"):
        if c in epochs:
            coords[f"epoch_{c}"] = ("epoch", np.asarray(epochs[c]))
    ds = xr.Dataset(data, coords=coords)
    for k in ("rf_az", "rf_el", "rf_sigma_major", "rf_sigma_minor", "rf_angle"):
        ds[k].attrs["units"] = "deg"
    return ds


def receptive_fields(twin: TwinLike, units: Any = None, *, spacing_deg: float = 5.0,
                     dot_sigma_deg: float | None = None, dot_s: float = 0.2, gap_s: float = 0.1, repeats: int = 1,
                     stimulus: Any = None, latency_s: float = DEFAULT_LATENCY_S, bin_px: int = 4,
                     fit: str | tuple[str, ...] = "on_off", chunk_s: float = 20.0, monitor: Monitor | None = None,
                     batch_size: int | None = None, progress: ProgressCallback | None = None,
                     show_progress: bool = True, seed: int = 0, cancel: threading.Event | None = None) -> xr.Dataset:
    """Spatial RFs by STA of flashing dots (default) or any stimulus object with ``render()`` and ``epochs``
    (e.g. ``twin_explorer.stimuli.SparseNoise``). The sequence is cut at epoch boundaries into ~``chunk_s`` pieces,
    each prefixed by a grey burn-in, and the pieces run as one batch. Returns a Dataset with ``sta`` (unit,
    polarity, y, x) and 2-D ``az``/``el`` coordinates (degrees), per-polarity Gaussian fits ``rf_*`` for the
    polarities in ``fit`` (NaN elsewhere) and ``ssi``; ``epoch_response`` (epoch, unit) keeps the raw numbers.
    """
    mon = twin_monitor(twin, monitor)
    latency_s = check_positive("latency_s", latency_s, allow_zero=True)
    if int(bin_px) < 1:
        raise ValueError(f"bin_px must be a positive integer, got {bin_px}")
    fits = (fit,) if isinstance(fit, str) else tuple(fit)
    bad = [f for f in fits if f not in POLARITIES]
    if bad:
        raise ValueError(f"fit polarities must be among {POLARITIES}, got {bad}")
    ids = resolve_units(twin, units)
    if stimulus is None:
        stimulus = dot_stimulus(spacing_deg, dot_sigma_deg, dot_s, gap_s, repeats, seed, mon)
        stim_params = dict(kind="GaussianDots", spacing_deg=spacing_deg, dot_sigma_deg=dot_sigma_deg, dot_s=dot_s,
                           gap_s=gap_s, repeats=repeats)
    else:
        stim_params = dict(kind=type(stimulus).__name__)
    frames, epochs, masks = _stimulus_masks(stimulus, mon, int(bin_px))
    epoch_resp = _epoch_responses(twin, frames, epochs, ids, latency_s, chunk_s, batch_size, progress,
                                  show_progress, cancel)
    sta = sta_maps(masks, epoch_resp)  # [U, 3, h, w]
    ds = _rf_dataset(twin, ids, sta, epoch_resp, epochs, mon, int(bin_px), fits)
    ds.attrs.update(provenance(twin, "receptive_fields", dict(stim_params, latency_s=latency_s, bin_px=int(bin_px),
                                                              fit=list(fits), chunk_s=chunk_s),
                               seed=seed, monitor=mon, stimulus=stimulus))
    return ds
