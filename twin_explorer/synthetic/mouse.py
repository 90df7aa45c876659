"""The synthetic mouse: a ground-truth population of model neurons that obeys the twin contract.

Each neuron, in order (all in torch, so :meth:`SyntheticMouse.response` is differentiable):

1. **Retina.** Pixels become contrast ``s = (p − 128) / 128`` and are area-averaged ``resolution``× (72×128 by
   default). Eye position (perspectives, standardised) shifts the image on the retina: the effective RF in monitor
   degrees moves by ``eye_shift_deg`` × (perspective x, perspective y) (x → +azimuth, y → +elevation).
2. **Space.** A complex Gabor ``g = env · (e^{i2πf u} − κ)`` on the monitor's degree grid (``u`` across the bars
   along the preferred direction, elliptical Gaussian envelope, ``κ`` removes the DC), scaled so that a full
   contrast grating at the preferred SF gives ``|z| ≈ 1``. ``z(t) = Σ g·s(t)`` is a spatial quadrature pair.
3. **Time / motion energy** (Adelson–Bergen in complex form). A causal temporal filter ``h(τ) = e(τ)·e^{iω₀τ}``
   with a gamma envelope ``e`` (18 frames). ``w = h ⋆ z`` passes motion along the preferred direction at the
   preferred TF, ``v = h̄ ⋆ z`` the opposite direction. With the per-neuron null weight ``b`` (``null_mix``):
   complex path ``sqrt(|w|² + b²|v|²)``, simple path ``2·relu(Re((w + b·v)·e^{−iφ}))``, mixed by ``simple_frac``.
4. **Contrast normalisation.** Divide by ``σ_n + c_loc`` with ``c_loc²`` the local mean of ``s²`` under a Gaussian
   pool (``pool_scale`` × RF size), smoothed in time by the same envelope ``e``.
5. **Output.** ``rate = gain · (baseline + A·(softplus(k(n − θ)) − softplus(−kθ))/k)``: positive, equal to the
   baseline for a grey screen; ``gain = exp(g_pupil·pupil + g_running·running)``. Rates are expected events per
   30 Hz frame, noise free.

The true tuning (:meth:`SyntheticMouse.truth`) is computed from these same filters — see :mod:`.truth`. The filters
and stages are public (:meth:`~SyntheticMouse.filters`, :meth:`~SyntheticMouse.dynamics`,
:meth:`~SyntheticMouse.select_units`, :attr:`~SyntheticMouse.grid_shape`) so the truth and the recordings use the
model's own code.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..engine.contract import TwinMetadata, validate_behaviour, validate_stimuli
from ..monitor import DEFAULT_MONITOR, FRAME_RATE, FRAME_SHAPE, Monitor
from .constants import EYE_SHIFT_DEG, KERNEL_FRAMES, MODEL_VERSION
from .population import sample_population
from .recording import iter_record, record
from .truth import cached_true_tuning

_EPS = 1e-6


def _gamma_envelope(tau0_s: np.ndarray, frames: int, rate: float) -> np.ndarray:
    """Causal gamma (n = 2) envelopes [U, frames], each summing to 1."""
    t = (np.arange(frames) + 0.5) / rate
    env = (t[None] / tau0_s[:, None]) ** 2 * np.exp(-t[None] / tau0_s[:, None])
    return env / env.sum(1, keepdims=True)


class SyntheticMouse:
    """A population of model neurons with known tuning, usable anywhere a twin is.

    Parameters: ``seed`` (another seed is another mouse), ``n_neurons``, ``monitor`` (degrees geometry; frames
    stay 144×256), ``resolution`` (spatial downsampling of the model grid: 1, 2 or 4; SF is capped to what the grid
    resolves, 0.25 cpd at 2), ``device`` (torch device for the filters), ``eye_shift_deg``.
    """

    frame_rate: float = FRAME_RATE
    frame_shape: tuple[int, int] = FRAME_SHAPE

    def __init__(self, seed: int = 0, n_neurons: int = 1000, monitor: Monitor = DEFAULT_MONITOR,
                 resolution: int = 2, device: str | torch.device = "cpu", eye_shift_deg: float = EYE_SHIFT_DEG) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if isinstance(n_neurons, bool) or not isinstance(n_neurons, (int, np.integer)) or not 1 <= n_neurons <= 100_000:
            raise ValueError(f"n_neurons must be an integer in 1…100000, got {n_neurons!r}")
        if not isinstance(monitor, Monitor):
            raise ValueError(f"monitor must be a twin_explorer.monitor.Monitor, got {type(monitor).__name__}")
        if monitor.shape != FRAME_SHAPE:
            raise ValueError(f"monitor has {monitor.shape[0]}×{monitor.shape[1]} pixels; the twin contract needs "
                             f"{FRAME_SHAPE[0]}×{FRAME_SHAPE[1]}. Change the cm/distance, not the pixel count.")
        if resolution not in (1, 2, 4):
            raise ValueError(f"resolution must be 1, 2 or 4 (spatial downsampling factor), got {resolution!r}")
        if not np.isfinite(eye_shift_deg):
            raise ValueError(f"eye_shift_deg must be a finite number of degrees, got {eye_shift_deg!r}")
        self.seed = int(seed)
        self.monitor = monitor
        self.resolution = int(resolution)
        self.eye_shift_deg = float(eye_shift_deg)
        self.device = torch.device(device)
        self.id = f"synthetic-seed{self.seed}-n{int(n_neurons)}" + ("" if resolution == 2 else f"-res{resolution}")

        H, W = FRAME_SHAPE
        f = self.resolution
        self.grid_shape = (H // f, W // f)  # the model grid the retina stage averages pixels onto
        rows, cols = np.meshgrid(f * (np.arange(H // f) + 0.5), f * (np.arange(W // f) + 0.5), indexing="ij")
        az, el = monitor.pixels_to_degrees(cols, rows)
        self._az, self._el = az, el
        spacing = max(np.abs(np.diff(az, axis=1)).max(), np.abs(np.diff(el, axis=0)).max())
        self.max_sf_cpd = float(0.42 / spacing)  # ~0.84 of the Nyquist frequency of the coarsest grid cell

        self.params = sample_population(self.seed, int(n_neurons), monitor, self.max_sf_cpd)
        self.params.index = pd.RangeIndex(len(self.params), name="readout_id")
        self._build_filters()

    # ------------------------------------------------------------------ contract attributes
    @property
    def n_units(self) -> int:
        return len(self.params)

    @cached_property
    def units(self) -> pd.DataFrame:
        """Readout table: session, scan_idx, unit_id, area, layer, cortical position and the ground-truth link."""
        p = self.params
        n = len(p)
        return pd.DataFrame(
            {
                "session": np.full(n, 1 + self.seed),
                "scan_idx": np.ones(n, dtype=int),
                "unit_id": np.arange(1, n + 1),
                "area": p["area"].to_numpy(),
                "layer": p["layer"].to_numpy(),
                "x_um": p["x_um"].to_numpy(),
                "y_um": p["y_um"].to_numpy(),
                "depth_um": p["depth_um"].to_numpy(),
                "neuron_id": self.seed * 1_000_000 + np.arange(n),
            },
            index=pd.RangeIndex(n, name="readout_id"),
        )

    @cached_property
    def metadata(self) -> TwinMetadata:
        """The twin contract's metadata: the mouse is its own ground truth, trained on nothing."""
        return TwinMetadata(kind="synthetic", model_id=self.id, precision="float32", trained_on=None,
                            extra={"seed": self.seed, "n_neurons": self.n_units, "resolution": self.resolution,
                                   "eye_shift_deg": self.eye_shift_deg, "model_version": MODEL_VERSION})

    @cached_property
    def _truth_pair(self) -> tuple[pd.DataFrame, Any]:
        return cached_true_tuning(self)

    def truth(self) -> pd.DataFrame:
        """True tuning of every neuron, indexed like ``units``; definitions in :mod:`twin_explorer.synthetic.truth`."""
        return self._truth_pair[0]

    @property
    def true_direction_tuning(self):
        """xarray.DataArray [unit, direction] of the true mean responses to 16 drifting gratings (see truth)."""
        return self._truth_pair[1]

    def __repr__(self) -> str:
        return f"SyntheticMouse(seed={self.seed}, n_neurons={self.n_units}, resolution={self.resolution})"

    # ------------------------------------------------------------------ filters
    def _build_filters(self) -> None:
        p = self.params
        U = len(p)
        h, w = self.grid_shape
        az = self._az.reshape(-1)[:, None]
        el = self._el.reshape(-1)[:, None]
        th = np.radians(p["pref_dir_deg"].to_numpy())[None]
        dx = az - p["rf_az_deg"].to_numpy()[None]
        dy = el - p["rf_el_deg"].to_numpy()[None]
        across = dx * np.cos(th) + dy * np.sin(th)
        along = -dx * np.sin(th) + dy * np.cos(th)
        sig = p["sigma_deg"].to_numpy()[None]
        env = np.exp(-0.5 * (across / sig) ** 2 - 0.5 * (along / (sig * p["aspect"].to_numpy()[None])) ** 2)
        carrier = np.exp(2j * np.pi * p["sf_cpd"].to_numpy()[None] * across)
        kappa = (env * carrier).sum(0) / env.sum(0)
        g = env * (carrier - kappa[None]) / (env.sum(0)[None] / 2.0)
        spatial = np.empty((h * w, 2 * U), dtype=np.float32)  # columns interleaved: real, imag per unit
        spatial[:, 0::2] = g.real
        spatial[:, 1::2] = g.imag
        # Normalisation pool on the grid pooled 2× further: Gaussian of σ = pool_scale × RF size.
        pa = self._az.reshape(h // 2, 2, w // 2, 2).mean((1, 3)).reshape(-1)[:, None]
        pe = self._el.reshape(h // 2, 2, w // 2, 2).mean((1, 3)).reshape(-1)[:, None]
        rf_size = p["sigma_deg"].to_numpy() * np.sqrt(p["aspect"].to_numpy())
        ps = (p["pool_scale"].to_numpy() * rf_size)[None]
        pool = np.exp(-0.5 * ((pa - p["rf_az_deg"].to_numpy()[None]) ** 2 + (pe - p["rf_el_deg"].to_numpy()[None]) ** 2) / ps**2)
        pool /= pool.sum(0, keepdims=True)

        tf = p["tf_hz"].to_numpy()
        tau0 = np.clip(1.0 / (4.0 * tf), 0.025, 0.06)
        env_t = _gamma_envelope(tau0, KERNEL_FRAMES, self.frame_rate)
        t = np.arange(KERNEL_FRAMES) + 0.5
        omega = 2 * np.pi * tf[:, None] / self.frame_rate
        hr = env_t * np.cos(omega * t)
        hi = env_t * np.sin(omega * t)
        # Grouped conv1d weights (cross-correlation, so time-reversed). Per unit: inputs (zr, zi) -> outputs
        # (w_r, w_i, v_r, v_i) with w = h ⋆ z and v = conj(h) ⋆ z.
        k = np.stack([np.stack([hr, -hi], 1), np.stack([hi, hr], 1), np.stack([hr, hi], 1), np.stack([-hi, hr], 1)], 1)
        k = k.reshape(4 * U, 2, KERNEL_FRAMES)[..., ::-1]

        # Zero the far tails: float32 denormals there would make every matmul ~30× slower on CPU.
        spatial[np.abs(spatial) < 1e-9 * np.abs(spatial).max(0, keepdims=True)] = 0.0
        pool[pool < 1e-9 * pool.max(0, keepdims=True)] = 0.0

        dev = self.device
        as_t = lambda x: torch.tensor(np.ascontiguousarray(x), dtype=torch.float32, device=dev)  # noqa: E731
        self._spatial = as_t(spatial)
        self._pool = as_t(pool)
        self._temporal = as_t(k)
        self._smooth = as_t(env_t[:, None, ::-1])
        self._tau0 = tau0
        phase = np.radians(p["phase_deg"].to_numpy())
        self._unit_params = {
            "cos_phase": as_t(np.cos(phase)),
            "sin_phase": as_t(np.sin(phase)),
            **{name: as_t(p[name].to_numpy()) for name in (
                "null_mix", "simple_frac", "sigma_norm", "threshold", "slope", "amplitude", "baseline",
                "gain_running", "gain_pupil")},
        }

    # ------------------------------------------------------------------ selection helpers
    def select_units(self, units: Any) -> np.ndarray | None:
        """Readout ids (ints), a boolean mask, or None -> index array (None = all units)."""
        if units is None:
            return None
        if hasattr(units, "detach"):
            units = units.detach().cpu().numpy()
        if isinstance(units, (pd.Index, pd.Series)):
            units = units.to_numpy()
        arr = np.atleast_1d(np.asarray(units))
        accepted = f"accepted: None, readout ids in 0…{self.n_units - 1}, or a boolean mask of length {self.n_units}"
        if arr.dtype == bool:
            if arr.shape != (self.n_units,):
                raise ValueError(f"units mask has shape {arr.shape}; {accepted}")
            idx = np.flatnonzero(arr)
        elif np.issubdtype(arr.dtype, np.integer) and arr.ndim == 1:
            idx = arr.astype(np.int64)
        else:
            raise ValueError(f"units has dtype {arr.dtype} and shape {arr.shape}; {accepted}")
        if idx.size == 0:
            raise ValueError(f"units selects no readouts; {accepted}")
        if idx.min() < 0 or idx.max() >= self.n_units:
            raise ValueError(f"units contains readout ids outside 0…{self.n_units - 1}; {accepted}")
        return idx

    def filters(self, sel: np.ndarray | None) -> tuple[torch.Tensor, ...]:
        """(spatial [P, 2u], pool [P/4, u], temporal [4u, 2, K], smooth [u, 1, K], per-unit parameters) of the
        units ``sel`` (an index array from :meth:`select_units`; None = all)."""
        if sel is None:
            return self._spatial, self._pool, self._temporal, self._smooth, self._unit_params
        s = torch.as_tensor(sel, device=self.device)
        cols = torch.stack([2 * s, 2 * s + 1], 1).reshape(-1)
        rows4 = (4 * s[:, None] + torch.arange(4, device=self.device)).reshape(-1)
        up = {k: v[s] for k, v in self._unit_params.items()}
        return self._spatial[:, cols], self._pool[:, s], self._temporal[rows4], self._smooth[s], up

    # ------------------------------------------------------------------ the model
    def _retina(self, video: torch.Tensor, shift_deg: torch.Tensor | None) -> torch.Tensor:
        """[N, T, H, W] pixels (0–255) -> contrast on the model grid [N·T, 1, h, w], eye shift applied."""
        N, T, H, W = video.shape
        s = (video.reshape(N * T, 1, H, W).to(self.device, torch.float32) - 128.0) / 128.0
        if self.resolution > 1:
            s = F.avg_pool2d(s, self.resolution)
        if shift_deg is not None:
            s = F.grid_sample(s, self._shift_grid(shift_deg.reshape(N * T, 2)), mode="bilinear",
                              padding_mode="zeros", align_corners=False)  # off-screen = grey
        return s

    def _shift_grid(self, shift: torch.Tensor) -> torch.Tensor:
        """grid_sample grid [M, h, w, 2]: where on the monitor each retinal grid point looks for a given eye shift."""
        m = self.monitor
        az = torch.deg2rad(torch.as_tensor(self._az, dtype=torch.float32, device=self.device)[None] + shift[:, 0, None, None])
        el = torch.deg2rad(torch.as_tensor(self._el, dtype=torch.float32, device=self.device)[None] + shift[:, 1, None, None])
        x = m.distance_cm * torch.tan(az)
        y = torch.tan(el) * torch.sqrt(x**2 + m.distance_cm**2)
        gx = 2 * x / m.width_cm  # normalised [-1, 1] across the screen (align_corners=False convention)
        gy = -2 * y / m.height_cm
        return torch.stack([gx, gy], -1)

    def _spatial_stage(self, s: torch.Tensor, spatial: torch.Tensor, pool: torch.Tensor, N: int, T: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        a = s.flatten(1) @ spatial  # [N·T, 2u]
        c2 = F.avg_pool2d(s * s, 2).flatten(1) @ pool  # [N·T, u]
        return a.reshape(N, T, -1), c2.reshape(N, T, -1)

    def dynamics(self, a: torch.Tensor, c2: torch.Tensor, gain: torch.Tensor | None, temporal: torch.Tensor,
                  smooth: torch.Tensor, up: dict[str, torch.Tensor], history: tuple[torch.Tensor, torch.Tensor] | None = None
                  ) -> torch.Tensor:
        """Temporal filtering, motion energy, normalisation and output. a [N,T,2u], c2 [N,T,u] -> rates [N,T,u].

        ``history`` holds the K−1 frames of (a, c2) before this chunk (zeros = grey before the stimulus).
        """
        N, T, _ = a.shape
        u = c2.shape[-1]
        pad = KERNEL_FRAMES - 1
        if history is None:
            a_in = F.pad(a.transpose(1, 2), (pad, 0))
            c_in = F.pad(c2.transpose(1, 2), (pad, 0))
        else:
            a_in = torch.cat([history[0].transpose(1, 2), a.transpose(1, 2)], 2)
            c_in = torch.cat([history[1].transpose(1, 2), c2.transpose(1, 2)], 2)
        out = F.conv1d(a_in, temporal, groups=u).reshape(N, u, 4, T)
        c_loc = torch.sqrt(F.conv1d(c_in, smooth, groups=u).clamp_min(0) + _EPS)  # [N, u, T]
        wr, wi, vr, vi = out.unbind(2)
        b = up["null_mix"][:, None]
        energy = torch.sqrt(wr**2 + wi**2 + b**2 * (vr**2 + vi**2) + _EPS)
        lin = (wr + b * vr) * up["cos_phase"][:, None] + (wi + b * vi) * up["sin_phase"][:, None]
        m = up["simple_frac"][:, None]
        drive = (1 - m) * energy + m * 2.0 * F.relu(lin)
        n = drive / (up["sigma_norm"][:, None] + c_loc)
        k = up["slope"][:, None]
        th = up["threshold"][:, None]
        rate = up["baseline"][:, None] + up["amplitude"][:, None] * (F.softplus(k * (n - th)) - F.softplus(-k * th)) / k
        rate = rate.transpose(1, 2)  # [N, T, u]
        if gain is not None:
            rate = rate * gain
        return rate

    def _gain(self, modulations: torch.Tensor | None, up: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if modulations is None:
            return None
        return torch.exp(modulations[..., 0:1] * up["gain_pupil"] + modulations[..., 1:2] * up["gain_running"])

    @staticmethod
    def _is_zero(x: torch.Tensor | None) -> bool:
        return x is None or not bool(torch.any(x != 0))

    # ------------------------------------------------------------------ public API
    def response(self, video: torch.Tensor, perspectives: Any = None, modulations: Any = None, units: Any = None
                 ) -> torch.Tensor:
        """Differentiable rates [N, T, U] for a float video tensor [N, T, 144, 256] in pixel units (0–255)."""
        if not torch.is_tensor(video):
            video = torch.as_tensor(np.asarray(video), dtype=torch.float32)
        if video.ndim == 3:
            video = video[None]
        if video.ndim != 4 or tuple(video.shape[-2:]) != FRAME_SHAPE or video.shape[1] == 0:
            raise ValueError(f"video has shape {tuple(video.shape)}; accepted: a float tensor [N, T, 144, 256] "
                             "(or [T, 144, 256]) in pixel units 0–255")
        N, T = video.shape[:2]
        sel = self.select_units(units)
        persp = self._behaviour_tensor("perspectives", perspectives, N, T)
        mods = self._behaviour_tensor("modulations", modulations, N, T)
        spatial, pool, temporal, smooth, up = self.filters(sel)
        shift = None if self._is_zero(persp) else persp * self.eye_shift_deg
        s = self._retina(video, shift)
        a, c2 = self._spatial_stage(s, spatial, pool, N, T)
        gain = None if self._is_zero(mods) else self._gain(mods, up)
        return self.dynamics(a, c2, gain, temporal, smooth, up)

    def _behaviour_tensor(self, name: str, values: Any, N: int, T: int) -> torch.Tensor | None:
        if values is None:
            return None
        arr = validate_behaviour(name, values, N, T, batched=True)
        return torch.tensor(arr, device=self.device)

    def predict(self, stimuli: np.ndarray, perspectives: np.ndarray | None = None,
                modulations: np.ndarray | None = None, units: Any = None, chunk_frames: int = 300) -> np.ndarray:
        """Noise-free rates: uint8 [T, 144, 256] -> float32 [T, U]; [N, T, 144, 256] -> [N, T, U].

        Long videos are processed ``chunk_frames`` at a time, carrying the temporal filter state across chunks,
        so memory stays bounded and the result equals one pass over the whole video.
        """
        video, batched = validate_stimuli(stimuli, FRAME_SHAPE)
        N, T = video.shape[:2]
        persp = validate_behaviour("perspectives", perspectives, N, T, batched)
        mods = validate_behaviour("modulations", modulations, N, T, batched)
        if int(chunk_frames) < 1:
            raise ValueError(f"chunk_frames must be a positive integer, got {chunk_frames!r}")
        sel = self.select_units(units)
        spatial, pool, temporal, smooth, up = self.filters(sel)
        u = pool.shape[1]
        out = np.empty((N, T, u), dtype=np.float32)
        pad = KERNEL_FRAMES - 1
        nb = max(1, int(chunk_frames) // T)  # short videos are stacked into one batch
        with torch.inference_mode():
            for i0 in range(0, N, nb):
                i1 = min(N, i0 + nb)
                history = None
                for t0 in range(0, T, chunk_frames):
                    t1 = min(T, t0 + chunk_frames)
                    clip = torch.from_numpy(video[i0:i1, t0:t1])
                    p = torch.tensor(persp[i0:i1, t0:t1], device=self.device)
                    m = torch.tensor(mods[i0:i1, t0:t1], device=self.device)
                    s = self._retina(clip, None if self._is_zero(p) else p * self.eye_shift_deg)
                    a, c2 = self._spatial_stage(s, spatial, pool, i1 - i0, t1 - t0)
                    gain = None if self._is_zero(m) else self._gain(m, up)
                    if history is None:
                        history = (a.new_zeros(i1 - i0, pad, a.shape[2]), c2.new_zeros(i1 - i0, pad, u))
                    out[i0:i1, t0:t1] = self.dynamics(a, c2, gain, temporal, smooth, up, history).cpu().numpy()
                    history = (torch.cat([history[0], a], 1)[:, -pad:], torch.cat([history[1], c2], 1)[:, -pad:])
        return out if batched else out[0]

    def record(self, *args: Any, **kwargs: Any):
        """Noisy recordings to natural-like videos; see :func:`twin_explorer.synthetic.recording.record`."""
        return record(self, *args, **kwargs)

    def iter_record(self, *args: Any, **kwargs: Any):
        """Clip-by-clip recordings; see :func:`twin_explorer.synthetic.recording.iter_record`."""
        return iter_record(self, *args, **kwargs)
