"""Most exciting inputs (MEIs): image or video stimuli that maximise a unit's predicted response.

Projected, preconditioned gradient ascent through the twin's differentiable ``response`` (twin contract):

* **Stimulus.** ``kind='image'``: one static frame shown for ``n_frames`` frames; the objective is the unit's mean
  response after ``burn_in`` frames (the recurrent network's start-up transient). ``kind='video'``: all
  ``n_frames`` frames are free; same objective.
* **Constraint.** The deviation from mean grey 128 has a fixed L2 ``norm`` or, equivalently, a fixed RMS
  ``contrast`` (grey levels per pixel, ``norm = contrast · sqrt(n_pixels)``, video: all frames jointly); pixels are
  clamped to 0–255 (rescale/clamp alternated a few times, clamp last, so the range is always respected).
* **Step.** x ← project(x + lr · d / rms(d)), lr in grey levels per pixel per step, decaying linearly from
  ``lr`` to ``lr_end``; d is the preconditioned gradient:
  ``precondition='blur'``: the gradient blurred by a Gaussian of ``blur_sigma`` pixels decaying to ``blur_sigma_end``
  (video: plus ``blur_sigma_t`` frames in time); ``'fourier'``: the stimulus parameterised in a 2-D Fourier basis
  with amplitude scaling 1/f^``fourier_decay``; with plain gradient steps and re-projection after each step this is
  exactly the pixel gradient filtered by 1/f^(2·decay), which is how it is computed; ``None``: raw gradient.
  Preconditioning acts as a smoothness prior: the fixed point is the optimum seen through the filter.
* **Diverse MEIs.** ``diverse=K`` (K ≥ 2) optimises K stimuli per unit from different random starts with a penalty
  ``diversity_weight · |mean activation| · mean pairwise cosine similarity`` of their deviations from grey.
* **Determinism.** The start of unit u's MEI k is drawn from ``numpy.random.default_rng([seed, u])`` so a unit's
  MEI does not depend on which other units share its batch (the batch runner may chunk units arbitrarily).

:func:`mei_steps` is a generator of :class:`MEIState` (for a UI showing the optimisation evolve);
:func:`mei` runs it to the end and returns an ``xarray.Dataset``; :func:`plot_mei` draws it in degrees.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from ..engine.contract import TwinLike
from ..monitor import DEFAULT_MONITOR, GREY, Monitor
from .checks import check_choice, check_count, check_positive, resolve_units, twin_monitor, unit_coords
from .preconditioning import blur, fourier_filter, project
from .provenance import provenance
from .runner import BURN_IN_FRAMES, Cancelled

__all__ = ["MEIState", "mei_steps", "mei", "mei_structure"]

_KINDS = ("image", "video")
_PRECONDITIONS = ("blur", "fourier", None)


@dataclass(frozen=True)
class MEIState:
    """One snapshot of the optimisation.

    ``stimulus``: float32 pixel values 0–255, image [U, K, H, W] or video [U, K, T, H, W] (U units, K MEIs each).
    ``activation``: [U, K] the objective (mean response after burn-in) of this stimulus.
    ``loss``: [U] the minimised loss (−activation + diversity penalty). ``activation_history`` [S, U, K] and
    ``loss_history`` [S, U] hold every step so far. ``done`` is True for the last state.
    """

    step: int
    n_steps: int
    units: np.ndarray
    kind: str
    stimulus: np.ndarray
    activation: np.ndarray
    loss: np.ndarray
    activation_history: np.ndarray
    loss_history: np.ndarray
    lr: float
    done: bool

    def image(self, unit_index: int = 0, k: int = 0, frame: int | None = None) -> np.ndarray:
        """uint8 [H, W] frame to display (video: ``frame``, default the frame with most contrast energy)."""
        x = self.stimulus[unit_index, k]
        if x.ndim == 3:
            if frame is None:
                frame = int(np.argmax(((x - 128.0) ** 2).sum(axis=(1, 2))))
            x = x[frame]
        return _to_uint8(x)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _positive(name: str, value: Any, allow_zero: bool = False, integer: bool = False) -> float:
    return check_count(name, value, allow_zero) if integer else check_positive(name, value, allow_zero)


def _default_frames(kind: str, burn_in: int) -> int:
    """Frames per optimised video: burn-in plus 10 counted frames (image) or 20 (video)."""
    return int(burn_in) + (10 if kind == "image" else 20)


def _seeded_starts(units: np.ndarray, k: int, shape: tuple[int, ...], seed: int, scale: float) -> np.ndarray:
    """Independent Gaussian starts [U·K, *shape] drawn per (seed, unit) so results don't depend on batching."""
    out = np.empty((len(units) * k,) + shape, dtype=np.float32)
    for i, u in enumerate(units):
        rng = np.random.default_rng([int(seed), int(u)])
        out[i * k:(i + 1) * k] = rng.normal(0.0, scale, size=(k,) + shape)
    return out


def _target_norm(norm: float | None, contrast: float | None, n_pix: int) -> float | None:
    """L2 norm of the deviation from grey: ``norm``, else ``contrast`` · sqrt(pixels), else None (clamp only)."""
    if norm is not None:
        target = _positive("norm", norm)
    elif contrast is not None:
        target = _positive("contrast", contrast) * math.sqrt(n_pix)
    else:
        return None
    if target > 128 * math.sqrt(n_pix):
        raise ValueError(f"the requested norm {target:.0f} cannot be reached inside 0–255 "
                         f"(maximum ≈ {128 * math.sqrt(n_pix):.0f}, i.e. RMS contrast 128)")
    return target


def _pairwise_cos(dev: torch.Tensor, U: int, K: int) -> torch.Tensor:
    """[U] mean pairwise cosine similarity within each unit's K stimuli (0 without diversity)."""
    if K < 2:
        return torch.zeros(U, device=dev.device)
    v = dev.reshape(U, K, -1)
    v = v / v.norm(dim=2, keepdim=True).clamp(min=1e-6)
    sim = v @ v.transpose(1, 2)
    off = sim.sum(dim=(1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(dim=1)
    return off / (K * (K - 1))


def _activation(twin: TwinLike, video: torch.Tensor, ids: np.ndarray, K: int, burn_in: int,
                perspectives: np.ndarray | None, modulations: np.ndarray | None) -> torch.Tensor:
    """[U, K] objective: each stimulus's own unit's mean response after burn-in (differentiable)."""
    N, T, U = video.shape[0], video.shape[1], len(ids)
    r = twin.response(video, perspectives=perspectives, modulations=modulations, units=ids.tolist())
    if r.ndim != 3 or r.shape[0] != N or r.shape[1] != T or r.shape[2] != U:
        raise ValueError(f"twin.response returned shape {tuple(r.shape)} for {N} videos of {T} "
                         f"frames and {U} units; the twin contract requires [N, T, U]")
    col = torch.arange(N, device=r.device) // K  # which selected unit each stimulus serves
    return r[torch.arange(N, device=r.device), burn_in:, col].mean(dim=1).view(U, K)


def mei_steps(twin: TwinLike, unit: int | Sequence[int] | None = None, *, units: Any = None,
              kind: Literal["image", "video"] = "image", n_frames: int | None = None, burn_in: int = BURN_IN_FRAMES,
              steps: int = 200, lr: float = 4.0, lr_end: float | None = None, norm: float | None = None,
              contrast: float | None = 20.0, precondition: Literal["blur", "fourier"] | None = "blur",
              blur_sigma: float = 2.0, blur_sigma_end: float = 0.5, blur_sigma_t: float = 1.0,
              fourier_decay: float = 0.5, diverse: int = 0, diversity_weight: float = 0.5, seed: int = 0,
              every: int = 10, perspectives: np.ndarray | None = None, modulations: np.ndarray | None = None,
              progress: bool = True, cancel: threading.Event | None = None) -> Iterator[MEIState]:
    """Generate the MEI optimisation of one or several units, yielding an :class:`MEIState` every ``every`` steps
    (and always the first and the last). See the module docstring for the method and its parameters.

    ``unit`` (a readout id, or several) or ``units`` (same forms as elsewhere: readout ids or a boolean mask)
    choose the units; all are optimised in one batch, each for its own objective. ``norm`` (L2 of the deviation
    from grey) overrides ``contrast`` (RMS grey levels); both None leaves only the 0–255 clamp. ``cancel`` (an
    Event) stops the optimisation between steps with :class:`~.runner.Cancelled`.
    """
    if unit is not None and units is not None:
        raise ValueError("pass either unit= or units=, not both")
    if unit is None and units is None:
        raise ValueError("choose the unit(s) to optimise: unit=<readout id> or units=[readout ids]")
    ids = resolve_units(twin, unit if unit is not None else units)
    check_choice("kind", kind, _KINDS)
    check_choice("precondition", precondition, _PRECONDITIONS)
    burn_in = _positive("burn_in", burn_in, allow_zero=True, integer=True)
    n_frames = _positive("n_frames", _default_frames(kind, burn_in) if n_frames is None else n_frames, integer=True)
    if n_frames <= burn_in:
        raise ValueError(f"n_frames={n_frames} must exceed burn_in={burn_in} so some frames count in the objective")
    steps = _positive("steps", steps, allow_zero=True, integer=True)
    every = _positive("every", every, integer=True)
    lr = _positive("lr", lr)
    lr_end = lr / 16 if lr_end is None else _positive("lr_end", lr_end)
    blur_sigma, blur_sigma_end, blur_sigma_t, fourier_decay, diversity_weight = (
        _positive(name, value, allow_zero=True) for name, value in (
            ("blur_sigma", blur_sigma), ("blur_sigma_end", blur_sigma_end), ("blur_sigma_t", blur_sigma_t),
            ("fourier_decay", fourier_decay), ("diversity_weight", diversity_weight)))
    diverse = _positive("diverse", diverse, allow_zero=True, integer=True)
    K = max(1, diverse)

    H, W = tuple(getattr(twin, "frame_shape", DEFAULT_MONITOR.shape))
    shape = (H, W) if kind == "image" else (n_frames, H, W)
    n_pix = int(np.prod(shape))
    target = _target_norm(norm, contrast, n_pix)

    device = getattr(twin, "device", None) or torch.device("cpu")
    U, N = len(ids), len(ids) * K
    start_scale = (target / math.sqrt(n_pix)) if target is not None else 10.0
    x = torch.as_tensor(_seeded_starts(ids, K, shape, seed, start_scale), device=device)
    with torch.no_grad():
        x = project(x, target)
    fourier = fourier_filter((H, W), fourier_decay, torch, device) if precondition == "fourier" else None
    act_hist: list[np.ndarray] = []
    loss_hist: list[np.ndarray] = []

    bar = tqdm(total=steps, desc=f"MEI ({kind}, {U} unit{'s' if U > 1 else ''})", disable=not progress, leave=False)
    try:
        for step in range(steps + 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"MEI optimisation cancelled at step {step}/{steps}")
            frac = step / max(steps, 1)
            cur_lr = lr + (lr_end - lr) * frac
            x = x.detach().requires_grad_(True)
            video = (x[:, None].expand(N, n_frames, H, W) if kind == "image" else x) + float(GREY)
            act_u = _activation(twin, video, ids, K, burn_in, perspectives, modulations)
            penalty = diversity_weight * act_u.detach().abs().mean(dim=1) * _pairwise_cos(x, U, K)
            loss_u = -act_u.mean(dim=1) + penalty
            act_np = act_u.detach().cpu().numpy().astype(np.float64)
            loss_np = loss_u.detach().cpu().numpy().astype(np.float64)
            act_hist.append(act_np)
            loss_hist.append(loss_np)
            done = step == steps
            if step % every == 0 or done:
                yield MEIState(step=step, n_steps=steps, units=ids, kind=kind,
                               stimulus=(x.detach() + 128.0).cpu().numpy().reshape((U, K) + shape),
                               activation=act_np, loss=loss_np, activation_history=np.stack(act_hist),
                               loss_history=np.stack(loss_hist), lr=cur_lr, done=done)
            if done:
                break
            (grad,) = torch.autograd.grad(loss_u.sum(), x)
            with torch.no_grad():
                if precondition == "blur":
                    d = blur(-grad, blur_sigma + (blur_sigma_end - blur_sigma) * frac, blur_sigma_t, kind == "video")
                elif precondition == "fourier":
                    d = torch.fft.irfft2(torch.fft.rfft2(-grad) * fourier, s=(H, W))
                else:
                    d = -grad
                rms = d.reshape(N, -1).pow(2).mean(dim=1).sqrt().clamp(min=1e-12)
                x = project(x + cur_lr * d / rms.view(N, *([1] * len(shape))), target)
            bar.update(1)
    finally:
        bar.close()


def mei_structure(stimulus: np.ndarray, monitor: Monitor = DEFAULT_MONITOR) -> dict[str, float]:
    """Where and how an MEI is structured: contrast-energy-weighted centre (az, el in degrees, energy per square
    degree), dominant
    orientation (degrees, 0 = vertical bars, counter-clockwise, from the doubled-angle power-weighted mean of the
    spectrum), spatial frequency (cycles/degree, spectral peak) and RMS contrast. ``stimulus`` is [H, W] or
    [T, H, W] in pixel units (video: energies summed over frames)."""
    x = np.asarray(stimulus, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != monitor.shape:
        raise ValueError(f"stimulus must be [H, W] or [T, H, W] with frames {monitor.shape}, got shape {x.shape}")
    dev = x - 128.0
    energy = (dev**2).sum(0)
    total = energy.sum()
    az, el = monitor.degree_grid
    if total <= 0:
        nan = float("nan")
        return {"center_az": nan, "center_el": nan, "ori_deg": nan, "sf_cpd": nan, "rms_contrast": 0.0}
    # weight by each pixel's solid angle so the centre is that of the energy per square degree (peripheral pixels
    # of a flat screen cover fewer degrees; unweighted centroids drift outwards)
    daz = np.gradient(az, axis=1)
    del_ = np.gradient(el, axis=0)
    w_energy = energy * np.abs(daz * del_)
    caz = float((w_energy * az).sum() / w_energy.sum())
    cel = float((w_energy * el).sum() / w_energy.sum())
    H, W = monitor.shape
    pad = (2 * H, 2 * W)  # zero-padding refines the frequency grid for the peak
    power = (np.abs(np.fft.fft2(dev, s=pad)) ** 2).sum(0)
    power[0, 0] = 0.0
    ky = np.fft.fftfreq(pad[0])[:, None] * np.ones((1, pad[1]))
    kx = np.fft.fftfreq(pad[1])[None, :] * np.ones((pad[0], 1))
    ang = np.arctan2(-ky, kx)  # rows grow downwards, elevation upwards
    w = power**2  # emphasise the dominant component over the envelope's low frequencies
    ori = float(np.degrees(0.5 * np.angle((w * np.exp(2j * ang)).sum())) % 180.0)
    peak = np.unravel_index(np.argmax(power), power.shape)
    # wave vector in cycles/pixel -> cycles/degree through the local Jacobian d(col, row)/d(az, el) at the centre
    ca0, ra0 = monitor.degrees_to_pixels(caz - 0.5, cel)
    ca1, ra1 = monitor.degrees_to_pixels(caz + 0.5, cel)
    ce0, re0 = monitor.degrees_to_pixels(caz, cel - 0.5)
    ce1, re1 = monitor.degrees_to_pixels(caz, cel + 0.5)
    k_az = kx[peak] * float(ca1 - ca0) + ky[peak] * float(ra1 - ra0)
    k_el = kx[peak] * float(ce1 - ce0) + ky[peak] * float(re1 - re0)
    return {"center_az": caz, "center_el": cel, "ori_deg": ori, "sf_cpd": float(np.hypot(k_az, k_el)),
            "rms_contrast": float(np.sqrt((dev**2).mean()))}


MEI_OPTIONS = frozenset({"lr", "lr_end", "norm", "contrast", "precondition", "blur_sigma", "blur_sigma_end",
                         "blur_sigma_t", "fourier_decay", "diversity_weight", "every"})


def _optimise(twin: TwinLike, ids: np.ndarray, units_per_batch: int, steps: int, progress: bool | Callable[[int, int], None],
              cancel: threading.Event | None, **kw: Any) -> list[MEIState]:
    """The final :class:`MEIState` of every batch of ``units_per_batch`` units; ``progress(done, total)`` counts
    optimisation steps over all batches."""
    finals: list[MEIState] = []
    n_batches = math.ceil(len(ids) / units_per_batch)
    for bi, b0 in enumerate(range(0, len(ids), units_per_batch)):
        state = None
        for state in mei_steps(twin, units=ids[b0:b0 + units_per_batch], steps=steps, cancel=cancel,
                               progress=progress is True, **kw):
            if callable(progress):
                progress(bi * steps + state.step, n_batches * steps)
        assert state is not None and state.done
        finals.append(state)
    return finals


def _final_responses(twin: TwinLike, ids: np.ndarray, stim: np.ndarray, kind: str, T: int, burn: int, seed: int,
                     perspectives: np.ndarray | None, modulations: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 MEIs, responses [U, K, T] to them via predict, control activation [U] to seeded white noise of the
    same norm)."""
    meis = _to_uint8(stim)
    U, K = meis.shape[:2]
    videos = meis.reshape(U * K, *meis.shape[2:])
    if kind == "image":
        videos = np.repeat(videos[:, None], T, axis=1)

    # responses to the final (rounded) MEIs and to a white-noise control of the same norm, via predict
    resp = np.empty((U, K, T), dtype=np.float32)
    control = np.empty(U, dtype=np.float64)
    target_norm = float(np.sqrt(((stim - 128.0) ** 2).reshape(U, K, -1).sum(-1)).mean())
    for i, u in enumerate(ids):
        r = np.asarray(twin.predict(videos[i * K:(i + 1) * K], perspectives=perspectives, modulations=modulations,
                                    units=[int(u)]))
        resp[i] = r[:, :, 0]
        noise = np.random.default_rng([int(seed), int(u), 1]).normal(0.0, 1.0, size=meis.shape[2:])
        with torch.no_grad():
            cdev = project(torch.as_tensor(noise[None] * 30.0, dtype=torch.float32), target_norm)[0].numpy()
        cvid = _to_uint8(cdev + 128.0)
        if kind == "image":
            cvid = np.repeat(cvid[None], T, axis=0)
        rc = np.asarray(twin.predict(cvid, perspectives=perspectives, modulations=modulations, units=[int(u)]))
        control[i] = float(rc[burn:, 0].mean())

    return meis, resp, control


def mei(twin: TwinLike, unit: int | Sequence[int] | None = None, *, units: Any = None,
        kind: Literal["image", "video"] = "image", n_frames: int | None = None, burn_in: int = BURN_IN_FRAMES,
        steps: int = 200, seed: int = 0, diverse: int = 0, units_per_batch: int = 8,
        monitor: Monitor | None = None, perspectives: np.ndarray | None = None,
        modulations: np.ndarray | None = None, progress: bool | Callable[[int, int], None] = True,
        cancel: threading.Event | None = None, **options: Any) -> xr.Dataset:
    """Optimise the MEI of each unit and return a Dataset (dims unit, variant, [frame,] y, x, step, time);
    ``variant`` indexes the ``diverse`` MEIs of a unit (size 1 without diversity).

    Variables: ``mei`` uint8 pixel values (coords ``az``/``el`` [y, x] in degrees from the monitor),
    ``activation`` (unit, variant, step) the objective during optimisation, ``loss`` (unit, step), ``response``
    (unit, variant, time) the twin's ``predict`` on the final uint8 MEI, ``mei_activation`` its mean after burn-in,
    ``control_activation`` (unit) the same for a seeded white-noise stimulus with the same constraint,
    ``center_az``/``center_el``/``ori_deg``/``sf_cpd``/``rms_contrast`` (unit, variant) from :func:`mei_structure`.
    Units are optimised ``units_per_batch`` at a time; ``options`` go to :func:`mei_steps` (lr, norm, contrast,
    precondition, blur_sigma, fourier_decay, diversity_weight, ...). ``units=`` makes it usable by the batch
    runner. ``progress``: True for a bar, or ``progress(done_steps, total_steps)``; ``cancel`` as in
    :func:`mei_steps`.
    """
    if unit is not None and units is not None:
        raise ValueError("pass either unit= or units=, not both")
    if unit is None and units is None:
        raise ValueError("choose the unit(s): unit=<readout id> or units=[readout ids]")
    ids = resolve_units(twin, unit if unit is not None else units)
    units_per_batch = _positive("units_per_batch", units_per_batch, integer=True)
    unknown = set(options) - MEI_OPTIONS
    if unknown:
        raise ValueError(f"unknown MEI option(s) {sorted(unknown)}; see mei_steps for the accepted ones")
    monitor = twin_monitor(twin, monitor)
    if monitor.shape != tuple(getattr(twin, "frame_shape", monitor.shape)):
        raise ValueError(f"monitor is {monitor.shape} pixels but the twin's frames are {twin.frame_shape}")
    options.setdefault("every", max(1, steps))  # mei() keeps only the final state; history is in every state
    finals = _optimise(twin, ids, units_per_batch, steps, progress, cancel, kind=kind, n_frames=n_frames,
                       burn_in=burn_in, seed=seed, diverse=diverse, perspectives=perspectives,
                       modulations=modulations, **options)
    stim = np.concatenate([s.stimulus for s in finals])  # [U, K, (T,) H, W]
    burn = int(burn_in)
    T = _default_frames(kind, burn) if n_frames is None else int(n_frames)
    meis, resp, control = _final_responses(twin, ids, stim, kind, T, burn, seed, perspectives, modulations)
    U, K = meis.shape[:2]
    struct = [[mei_structure(meis[i, k], monitor) for k in range(K)] for i in range(U)]
    spatial = ("y", "x") if kind == "image" else ("frame", "y", "x")
    az, el = monitor.degree_grid
    coords: dict[str, Any] = unit_coords(twin, ids)
    coords.update(variant=np.arange(K), step=np.arange(finals[0].activation_history.shape[0]), time=np.arange(T),
                  az=(("y", "x"), az.astype(np.float32)), el=(("y", "x"), el.astype(np.float32)))
    if kind == "video":
        coords["frame"] = np.arange(meis.shape[2])
    data = {
        "mei": (("unit", "variant") + spatial, meis),
        "activation": (("unit", "variant", "step"), np.concatenate([s.activation_history for s in finals], axis=1)
                       .transpose(1, 2, 0)),
        "loss": (("unit", "step"), np.concatenate([s.loss_history for s in finals], axis=1).T),
        "response": (("unit", "variant", "time"), resp),
        "mei_activation": (("unit", "variant"), resp[:, :, burn:].mean(-1).astype(np.float64)),
        "control_activation": (("unit",), control),
    }
    for key in ("center_az", "center_el", "ori_deg", "sf_cpd", "rms_contrast"):
        data[key] = (("unit", "variant"), np.array([[s[key] for s in row] for row in struct]))
    ds = xr.Dataset(data, coords=coords)
    ds["mei"].attrs.update(long_name="most exciting input", units="grey level (0–255)")
    ds["activation"].attrs["long_name"] = "mean response after burn-in during optimisation"
    ds["response"].attrs["long_name"] = "twin.predict on the final uint8 MEI"
    ds["control_activation"].attrs["long_name"] = "mean response to white noise with the MEI's norm"
    ds["ori_deg"].attrs["long_name"] = "dominant orientation (0 = vertical bars, counter-clockwise)"
    params = dict(kind=kind, n_frames=T, burn_in=burn, steps=int(steps), diverse=int(diverse), **options)
    params.pop("every", None)
    ds.attrs.update(provenance(twin, "mei", params, seed=seed, monitor=monitor))
    return ds


