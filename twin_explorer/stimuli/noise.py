"""Parametric noise movies of the MICrONS protocol: `Monet2` (directional pink noise) and `Trippy` (phase movies).

Monet2 follows the published recipe (see shared/research/paper-facts.md), adapted to 30 Hz and the 144×256
frame, drawn in screen pixels like the original:

1. i.i.d. Gaussian noise on a pattern grid ``(H, W) / pattern_upsample`` for ``T + K − 1`` frames;
2. temporal filter with a (half-)Hamming kernel of half-width ``round(fps / temp_bandwidth · 2)`` frames
   (full Hamming: ``round(fps / temp_bandwidth)``), normalised to unit energy;
3. pink spatial spectrum: amplitude ∝ 1/f^``pink_exponent`` (default 1; our reading of "pink noise", the
   recipe's step list does not spell it out; 0 gives white noise on the pattern grid), floored at one cycle
   per pattern width;
   then ``pattern_upsample``× (default 3×) spatial upsampling, done in the Fourier domain (zero padding), which keeps
   the pattern periodic so phase-shift motion has no seams;
4. directions on a seeded random permutation of ``k·360/n_dirs`` — directly in the v2 convention
   (0° = rightward, CCW) rather than the pipeline's clock convention;
5. epoch i: onset ``((i + 0.5) − ori_fraction/2)·duration/n_dirs``, length ``ori_fraction·duration/n_dirs``;
6. during an epoch a Fourier orientation mask — a Hann window over component angle of width π/ori_coherence
   centred on the motion direction (stripes perpendicular to the motion), mixed with weight ``ori_mix``.
   Adaptation: the masked spectrum is rescaled to keep RMS contrast constant across epochs;
7. phase-shift motion by ``pattern_width·speed/fps`` pattern pixels per frame during epochs. The displacement
   accumulates (no jump back at the end of an epoch);
8. remove each frame's mean, normalise the movie to unit SD, scale so that ±``scale`` SD spans the range — ``m = z / (2·scale)`` — and map to uint8
   as ``(m + 0.5)·255`` (mean 127.5, clipped).

Trippy: a low-resolution random phase movie on ``ynodes × xnodes`` nodes, smoothed in time with a Hanning
kernel, plus a drift ``t·temp_freq``; upscaled with Gaussian interpolation; frame = ``cos(2π·phase)·127.5 + 128``.
The random phase is scaled so the local spatial frequency (|∇phase| in cycles/degree) has its 95th percentile
at ``sf_cpd`` (the original's "approximate maximum").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import param
from scipy import fft as sp_fft

from ..monitor import FRAME_RATE
from .base import Stimulus, duration_param, to_uint8


def _temporal_kernel(kind: str, bandwidth_hz: float) -> np.ndarray:
    if kind == "half-hamming":
        semi = max(1, int(round(FRAME_RATE / bandwidth_hz * 2)))
        k = np.hamming(2 * semi + 1)[semi:]
    else:
        semi = max(1, int(round(FRAME_RATE / bandwidth_hz)))
        k = np.hamming(2 * semi + 1)
    return (k / np.sqrt(np.sum(k**2))).astype(np.float32)


def _filter_time(noise: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid-mode convolution along axis 0: [T + K − 1, ...] -> [T, ...]."""
    K = len(kernel)
    T = noise.shape[0] - K + 1
    out = np.zeros((T, *noise.shape[1:]), dtype=np.float32)
    for j, w in enumerate(kernel[::-1]):
        out += w * noise[j : j + T]
    return out


class Monet2(Stimulus):
    """Directional pink noise with epochs of coherent, oriented motion (one epoch per direction)."""

    duration_s = duration_param(30.0)
    n_dirs = param.Integer(default=16, bounds=(1, 72), doc="Number of motion directions (one epoch each).")
    ori_coherence = param.Number(default=1.5, bounds=(1, 20), doc="Orientation bandwidth = π/ori_coherence (1 = unoriented).")
    ori_fraction = param.Number(default=0.4, bounds=(0, 1), inclusive_bounds=(False, True), doc="Fraction of each direction slot with oriented motion.")
    ori_mix = param.Number(default=1.0, bounds=(0, 1), doc="Weight of the orientation mask (0 = none).")
    speed = param.Number(default=0.25, bounds=(0, 5), doc="Motion speed in display widths per second.")
    temp_kernel = param.Selector(default="half-hamming", objects=["half-hamming", "hamming"], doc="Temporal filter.")
    temp_bandwidth_hz = param.Number(default=4.0, bounds=(0.1, 15), doc="Temporal bandwidth, Hz.")
    pattern_upsample = param.Integer(default=3, bounds=(1, 16), doc="Spatial upsampling from the noise grid.")
    pink_exponent = param.Number(default=1.0, bounds=(0, 3), doc="Spatial amplitude spectrum ∝ 1/f^exponent (0 = white).")
    scale = param.Number(default=2.5, bounds=(0.5, 10), doc="Half the grey range spans this many noise SDs.")

    def pattern_shape(self) -> tuple[int, int]:
        H, W = self.frame_shape
        return max(2, round(H / self.pattern_upsample)), max(2, round(W / self.pattern_upsample))

    def directions(self) -> np.ndarray:
        """Direction of each epoch in degrees (v2: 0 = rightward, CCW), in presentation order."""
        return self._rng(1).permutation(self.n_dirs) * 360.0 / self.n_dirs

    def _epoch_rows(self) -> list[dict[str, Any]]:
        slot = self.duration / self.n_dirs
        rows = []
        for i, d in enumerate(self.directions()):
            on = ((i + 0.5) - self.ori_fraction / 2) * slot
            a, b = int(round(on * FRAME_RATE)), int(round((on + slot * self.ori_fraction) * FRAME_RATE))
            rows.append({"onset_frame": a, "offset_frame": max(b, a + 1), "direction": float(d),
                         "orientation": float((d + 90) % 180), "speed": float(self.speed)})
        return rows

    def _render(self) -> np.ndarray:
        T = self.n_frames
        H, W = self.frame_shape
        h, w = self.pattern_shape()
        kernel = _temporal_kernel(self.temp_kernel, self.temp_bandwidth_hz)
        noise = self._rng(2).standard_normal((T + len(kernel) - 1, h, w), dtype=np.float32)
        spec = sp_fft.rfft2(_filter_time(noise, kernel))  # [T, h, w//2+1], complex64

        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        comp_angle = np.arctan2(-fy, fx)  # component wave-vector angle with elevation up
        dc = (fx == 0) & (fy == 0)
        if self.pink_exponent > 0:
            spec *= (np.maximum(np.hypot(fx, fy), 1.0 / w) ** -self.pink_exponent).astype(np.float32)

        # per-frame mask id and cumulative displacement (pattern px, x right / y down)
        epochs = self._epoch_rows()
        dirs = self.directions()
        which = np.full(T, -1)
        step = np.zeros((T, 2))
        v = w * self.speed / FRAME_RATE
        for i, r in enumerate(epochs):
            which[r["onset_frame"] : r["offset_frame"]] = i
            th = np.radians(dirs[i])
            step[r["onset_frame"] : r["offset_frame"]] = v * np.array([np.cos(th), -np.sin(th)])
        disp = np.cumsum(step, axis=0) - step  # frame k shows displacement accumulated before it

        width = np.pi / self.ori_coherence
        masks = []
        for d in dirs:
            delta = np.mod(comp_angle - np.radians(d) + np.pi / 2, np.pi) - np.pi / 2
            hann = np.where(np.abs(delta) < width / 2, np.cos(np.pi * delta / width) ** 2, 0.0)
            m = (1 - self.ori_mix) + self.ori_mix * hann
            m[dc] = 1.0
            m /= np.sqrt(np.mean(m[~dc] ** 2))  # keep RMS contrast constant
            masks.append(m.astype(np.float32))

        moving = np.flatnonzero(np.any(disp != 0, axis=1))
        arg = (-2 * np.pi) * (fx[None] * disp[moving, 0, None, None] + fy[None] * disp[moving, 1, None, None])
        spec[moving] *= (np.cos(arg) + 1j * np.sin(arg)).astype(np.complex64)
        for i, m in enumerate(masks):
            spec[which == i] *= m

        # zero mean per frame; the movie's SD is that of the pattern-grid movie (zero padding keeps amplitudes)
        spec[:, 0, 0] = 0
        sd = float(sp_fft.irfft2(spec, s=(h, w)).std())
        # zero-pad the spectrum to the frame size (drops Nyquist rows/cols), chunk by chunk straight to uint8
        npos, nneg, ncol = (h - 1) // 2 + 1, (h - 1) // 2, (w - 1) // 2 + 1
        gain = np.float32((H * W) / (h * w))
        out = np.empty((T, H, W), dtype=np.uint8)
        big = np.zeros((min(T, 128), H, W // 2 + 1), dtype=np.complex64)
        for s in range(0, T, 128):
            e = min(T, s + 128)
            big[: e - s, :npos, :ncol] = spec[s:e, :npos, :ncol] * gain
            big[: e - s, H - nneg :, :ncol] = spec[s:e, h - nneg :, :ncol] * gain
            chunk = sp_fft.irfft2(big[: e - s], s=(H, W))
            chunk *= 255.0 / (2 * self.scale * max(sd, 1e-12))
            chunk += 127.5
            out[s:e] = to_uint8(chunk)
        return out


class Trippy(Stimulus):
    """Smooth random phase movie: ``cos(2π·phase)`` with a random, slowly changing phase map drifting at
    ``temp_freq_hz``."""

    duration_s = duration_param(15.0)
    xnodes = param.Integer(default=12, bounds=(2, 64), doc="Horizontal nodes of the random phase map.")
    ynodes = param.Integer(default=6, bounds=(2, 64), doc="Vertical nodes of the random phase map.")
    temp_freq_hz = param.Number(default=4.0, bounds=(0, 15), doc="Phase drift rate, cycles/second.")
    temp_kernel_s = param.Number(default=1.0, bounds=(1 / 15, 10), doc="Length of the Hanning kernel smoothing the phase in time.")
    sf_cpd = param.Number(default=0.1, bounds=(0, 1), inclusive_bounds=(False, True), doc="Approximate maximum local spatial frequency, cycles/degree.")

    @staticmethod
    def _gauss_interp(n_out: int, n_nodes: int) -> np.ndarray:
        """Row-normalised Gaussian interpolation weights [n_out, n_nodes], nodes spanning the frame."""
        pos = np.arange(n_out) + 0.5
        nodes = np.linspace(0, n_out, n_nodes)
        sigma = n_out / (n_nodes - 1) / 2
        w = np.exp(-0.5 * ((pos[:, None] - nodes[None]) / sigma) ** 2)
        return (w / w.sum(1, keepdims=True)).astype(np.float32)

    def phase(self) -> np.ndarray:
        """Phase movie in cycles, float32 [T, H, W]."""
        T = self.n_frames
        H, W = self.frame_shape
        K = max(3, int(round(self.temp_kernel_s * FRAME_RATE)) | 1)
        kernel = np.hanning(K + 2)[1:-1]
        kernel = (kernel / np.sqrt(np.sum(kernel**2))).astype(np.float32)
        nodes = _filter_time(self._rng(1).standard_normal((T + K - 1, self.ynodes, self.xnodes), dtype=np.float32), kernel)
        ay, ax = self._gauss_interp(H, self.ynodes), self._gauss_interp(W, self.xnodes)
        P = np.einsum("hy,tyx,wx->thw", ay, nodes, ax, optimize=True).astype(np.float32)
        # scale so the local spatial frequency reaches sf_cpd (95th percentile over a subset of frames)
        az, el = self.monitor.degree_grid
        sub = P[:: max(1, T // 20)]
        gx = np.diff(sub, axis=2)[:, :-1] / np.diff(az, axis=1)[:-1]
        gy = np.diff(sub, axis=1)[:, :, :-1] / np.diff(el, axis=0)[:, :-1]
        p95 = float(np.percentile(np.hypot(gx, gy), 95))
        P *= self.sf_cpd / max(p95, 1e-12)
        P += (self.temp_freq_hz * np.arange(T, dtype=np.float32) / FRAME_RATE)[:, None, None]
        return P

    def _render(self) -> np.ndarray:
        x = np.cos(2 * np.pi * self.phase())
        x *= 127.5
        x += 128.0
        return to_uint8(x)

    def _epoch_rows(self) -> list[dict[str, Any]]:
        return [{"onset_frame": 0, "offset_frame": self.n_frames, "tf": float(self.temp_freq_hz), "sf": float(self.sf_cpd)}]
