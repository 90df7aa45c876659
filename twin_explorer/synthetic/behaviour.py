"""Behaviour traces for synthetic recordings: eye position with saccades, pupil size and running bouts.

All traces are in standardised units (about zero mean, unit standard deviation over long recordings), like the
z-scored inputs of the MICrONS twin: perspectives = (eye x, eye y), modulations = (pupil, running).
"""

from __future__ import annotations

import numpy as np

# Running: rest/run bouts (mean 8 s / 5 s), 15 ± 5 cm/s while running, smoothed (τ 0.5 s); standardised with the
# stationary mean and standard deviation of that process.
_P_RUN = 5.0 / 13.0
_RUN_MEAN = _P_RUN * 15.0
_RUN_SD = float(np.sqrt(_P_RUN * (15.0**2 + 5.0**2) - _RUN_MEAN**2))


def leaky_integrate(x: np.ndarray, gain: float, decay: float) -> np.ndarray:
    """y[t] = gain·x[t] + decay·y[t−1] along the first axis, from y = 0 (scipy's lfilter([gain], [1, −decay]))."""
    from scipy.signal import lfilter  # start-up time: scipy.signal loads scipy.stats (~1 s); only recordings need it

    return lfilter([gain], [1.0, -decay], x, axis=0)


def _lowpass(x: np.ndarray, tau_frames: float) -> np.ndarray:
    a = np.exp(-1.0 / tau_frames)
    return leaky_integrate(x, 1 - a, a)


def _ou(rng: np.random.Generator, n: int, tau_frames: float, dims: int = 1) -> np.ndarray:
    """Unit-variance Ornstein–Uhlenbeck process started from its stationary distribution."""
    a = np.exp(-1.0 / tau_frames)
    noise = rng.standard_normal((n, dims)) * np.sqrt(1 - a**2)
    noise[0] = rng.standard_normal(dims)
    return leaky_integrate(noise, 1.0, a)


def behaviour_traces(n_frames: int, rng: np.random.Generator, frame_rate: float = 30.0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(perspectives [T, 2], modulations [T, 2]) float32 for one clip."""
    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    T = int(n_frames)
    # Running bouts: two-state Markov chain.
    p_stop, p_start = 1.0 / (5.0 * frame_rate), 1.0 / (8.0 * frame_rate)
    state = np.empty(T, dtype=bool)
    s = rng.random() < _P_RUN
    u = rng.random(T)
    for t in range(T):
        s = (u[t] >= p_stop) if s else (u[t] < p_start)
        state[t] = s
    speed = state * (15.0 + 5.0 * _ou(rng, T, 2.0 * frame_rate)[:, 0])
    speed = np.clip(_lowpass(speed, 0.5 * frame_rate), 0, None)
    running = (speed - _RUN_MEAN) / _RUN_SD
    # Pupil: slow fluctuations plus dilation that follows running with a lag.
    pupil = 0.6 * _lowpass(running, 1.5 * frame_rate) + 0.8 * _ou(rng, T, 3.0 * frame_rate)[:, 0]
    # Eye position: fixations at targets (sd 0.85) joined by fast saccades (~0.3/s, more when running), plus drift.
    rate = (0.3 + 0.3 * state) / frame_rate
    jumps = rng.random(T) < rate
    targets = 0.85 * rng.standard_normal((int(jumps.sum()) + 1, 2))
    fixation = targets[np.cumsum(jumps)]
    eye = _lowpass(fixation, 1.5) + 0.5 * _ou(rng, T, 1.0 * frame_rate, dims=2)
    perspectives = eye.astype(np.float32)
    modulations = np.stack([pupil, running], 1).astype(np.float32)
    return perspectives, modulations
