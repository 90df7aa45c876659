"""Noisy recordings from a synthetic mouse: natural-like clips, behaviour, noise-free rates and noisy responses.

Layout follows the MICrONS scans: ``n_clips`` training clips shown once, plus ``n_oracle`` oracle clips shown
``repeats`` times each (same stimulus and behaviour, fresh noise) for CC_max / CC_norm. Stimuli depend only on
``seed`` (the same clips for every mouse, like the oracle clips shared across scans); behaviour and noise also
depend on the mouse.

Noise models: ``"poisson"`` — spike counts per frame, ``response ~ Poisson(rate)``; ``"calcium"`` — Poisson
spikes convolved with a decaying exponential (τ = 0.5 s, amplitude 1 per spike) plus Gaussian noise (sd 0.2).
``rate`` is always the expected value of ``response`` (for calcium: the rate convolved with the same kernel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .. import __version__
from .behaviour import behaviour_traces, leaky_integrate

if TYPE_CHECKING:
    from .mouse import SyntheticMouse

NOISE_MODELS = ("poisson", "calcium")
CALCIUM_TAU_S = 0.5
CALCIUM_NOISE_SD = 0.2

VideoFn = Callable[..., np.ndarray]


@dataclass
class RecordedClip:
    """One clip of a recording. ``responses`` has one row per repeat (1 for training clips)."""

    clip: int
    tier: str  # "train" or "oracle"
    stimulus_seed: int
    stimulus: np.ndarray  # uint8 [T, 144, 256]
    perspectives: np.ndarray  # float32 [T, 2] (eye x, eye y), standardised
    modulations: np.ndarray  # float32 [T, 2] (pupil, running), standardised
    rate: np.ndarray  # float32 [T, U], expected response
    responses: np.ndarray  # float32 [R, T, U]


def _seed(*keys: int) -> int:
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def _check(mouse: SyntheticMouse, n_clips: Any, duration_s: Any, repeats: Any, n_oracle: Any, seed: Any,
           noise: Any) -> int:
    def count(name: str, value: Any, lo: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"{name} must be an integer ≥ {lo}, got {value!r}")

    count("n_clips", n_clips, 0)
    count("n_oracle", n_oracle, 0)
    count("repeats", repeats, 1)
    count("seed", seed, 0)
    if n_clips + n_oracle == 0:
        raise ValueError("n_clips and n_oracle are both 0: nothing to record; ask for at least one clip")
    try:
        frames = int(round(float(duration_s) * mouse.frame_rate))
    except (TypeError, ValueError):
        raise ValueError(f"duration_s must be a number of seconds, got {duration_s!r}") from None
    if not np.isfinite(float(duration_s)) or frames < 1:
        raise ValueError(f"duration_s must be at least one frame (1/30 s) long, got {duration_s!r}")
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
    return frames


def _default_video_fn() -> VideoFn:
    from ..stimuli.natural import make_natural_video  # start-up time: loading a mouse must not load the renderer

    return make_natural_video


def _noisy(rate: np.ndarray, rng: np.random.Generator, noise: str, frame_rate: float) -> np.ndarray:
    spikes = rng.poisson(rate).astype(np.float32)
    if noise == "poisson":
        return spikes
    decay = np.exp(-1.0 / (CALCIUM_TAU_S * frame_rate))
    trace = leaky_integrate(spikes, 1.0, decay)
    return (trace + CALCIUM_NOISE_SD * rng.standard_normal(trace.shape)).astype(np.float32)


def iter_record(mouse: SyntheticMouse, n_clips: int = 10, duration_s: float = 10.0, repeats: int = 10,
                n_oracle: int = 6, seed: int = 0, noise: str = "poisson", units: Any = None,
                video_fn: VideoFn | None = None, progress: bool = True) -> Iterator[RecordedClip]:
    """Yield the recording clip by clip (training clips first, then oracle clips), holding one clip in memory.

    ``video_fn(n_frames, seed, monitor) -> uint8 [T, 144, 256]`` makes each clip; default
    :func:`twin_explorer.stimuli.natural.make_natural_video`. ``units`` restricts the recorded neurons.
    """
    frames = _check(mouse, n_clips, duration_s, repeats, n_oracle, seed, noise)
    sel = mouse.select_units(units)
    video_fn = video_fn or _default_video_fn()
    plan = [(i, "train", 0) for i in range(n_clips)] + [(j, "oracle", 1) for j in range(n_oracle)]
    decay = np.exp(-1.0 / (CALCIUM_TAU_S * mouse.frame_rate))
    for clip, (k, tier, tier_key) in enumerate(tqdm(plan, desc=f"recording {mouse.id}", disable=not progress)):
        stim_seed = _seed(seed, tier_key, k) % (2**31)
        stimulus = np.asarray(video_fn(frames, stim_seed, mouse.monitor))
        if stimulus.dtype != np.uint8 or stimulus.shape != (frames, *mouse.frame_shape):
            raise ValueError(f"video_fn returned {stimulus.dtype} {stimulus.shape}; expected uint8 "
                             f"{(frames, *mouse.frame_shape)}")
        rng = np.random.default_rng(np.random.SeedSequence([seed, mouse.seed, tier_key, k]))
        perspectives, modulations = behaviour_traces(frames, rng, mouse.frame_rate)
        rate = mouse.predict(stimulus, perspectives, modulations, units=sel)
        n_rep = repeats if tier == "oracle" else 1
        responses = np.stack([_noisy(rate, rng, noise, mouse.frame_rate) for _ in range(n_rep)])
        expected = rate if noise == "poisson" else leaky_integrate(rate, 1.0, decay).astype(np.float32)
        yield RecordedClip(clip, tier, stim_seed, stimulus, perspectives, modulations, expected, responses)


def record(mouse: SyntheticMouse, n_clips: int = 10, duration_s: float = 10.0, repeats: int = 10,
           n_oracle: int = 6, seed: int = 0, noise: str = "poisson", units: Any = None,
           video_fn: VideoFn | None = None, progress: bool = True) -> xr.Dataset:
    """A whole recording as one xarray.Dataset (see :func:`iter_record` for streaming long ones).

    Variables: ``stimulus`` (clip, frame, height, width) uint8; ``perspectives`` (clip, frame, eye) and
    ``modulations`` (clip, frame, behaviour) float32; ``rate`` (clip, frame, unit) expected response;
    ``response`` (trial, frame, unit) noisy. Each trial points to its clip (``trial_clip``) and repeat
    (``trial_repeat``); ``clip_tier`` / ``trial_tier`` are "train" or "oracle". Stimuli are stored once per clip.
    """
    clips = list(iter_record(mouse, n_clips, duration_s, repeats, n_oracle, seed, noise, units, video_fn, progress))
    unit_ids = mouse.units.index.to_numpy() if units is None else mouse.units.index.to_numpy()[mouse.select_units(units)]
    trial_clip = np.concatenate([np.full(len(c.responses), c.clip) for c in clips])
    trial_repeat = np.concatenate([np.arange(len(c.responses)) for c in clips])
    frames = clips[0].stimulus.shape[0]
    return xr.Dataset(
        {
            "stimulus": (("clip", "frame", "height", "width"), np.stack([c.stimulus for c in clips])),
            "perspectives": (("clip", "frame", "eye"), np.stack([c.perspectives for c in clips])),
            "modulations": (("clip", "frame", "behaviour"), np.stack([c.modulations for c in clips])),
            "rate": (("clip", "frame", "unit"), np.stack([c.rate for c in clips])),
            "response": (("trial", "frame", "unit"), np.concatenate([c.responses for c in clips])),
        },
        coords={
            "clip": np.arange(len(clips)),
            "clip_tier": ("clip", np.array([c.tier for c in clips])),
            "clip_seed": ("clip", np.array([c.stimulus_seed for c in clips])),
            "trial": np.arange(len(trial_clip)),
            "trial_clip": ("trial", trial_clip),
            "trial_repeat": ("trial", trial_repeat),
            "trial_tier": ("trial", np.array([clips[i].tier for i in trial_clip])),
            "frame": np.arange(frames),
            "time": ("frame", np.arange(frames) / mouse.frame_rate),
            "unit": unit_ids,
            "eye": ["x", "y"],
            "behaviour": ["pupil", "running"],
        },
        attrs={
            "twin_id": mouse.id,
            "mouse_seed": mouse.seed,
            "seed": int(seed),
            "noise": noise,
            "frame_rate": mouse.frame_rate,
            "duration_s": frames / mouse.frame_rate,
            "n_clips": int(n_clips),
            "n_oracle": int(n_oracle),
            "repeats": int(repeats),
            "response_units": "spike counts per frame" if noise == "poisson" else "calcium-like dF (a.u.)",
            "twin_explorer_version": __version__,
        },
    )
