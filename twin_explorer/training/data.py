"""Training data: recordings of a synthetic mouse, generated once and cached on disk as .npy files.

A :class:`RecordingCache` holds training clips (shown once) and oracle clips (repeated, held out) of one
mouse. Each clip lives in its own folder of plain ``.npy`` files that are memory-mapped when read, so a
resumed or repeated training run never regenerates them, and a long recording never sits in memory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..paths import cache_dir
from ..store import atomic_path, content_hash, write_text_atomic
from ..synthetic import MODEL_VERSION, SyntheticMouse


@dataclass(frozen=True)
class RecordingSpec:
    """What to record: which mouse, how many clips of what length, which stimulus seed and noise."""

    mouse_seed: int = 0
    n_neurons: int = 1000
    n_clips: int = 60
    duration_s: float = 10.0
    n_oracle: int = 6
    repeats: int = 10
    seed: int = 0
    noise: str = "poisson"

    def __post_init__(self):
        for name in ("mouse_seed", "n_neurons", "n_clips", "n_oracle", "repeats", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.n_neurons < 1 or self.repeats < 1:
            raise ValueError("n_neurons and repeats must be ≥ 1")
        if self.n_clips + self.n_oracle < 1:
            raise ValueError("a recording needs at least one clip (n_clips + n_oracle ≥ 1)")
        if not (float(self.duration_s) * 30 >= 20):
            raise ValueError(f"duration_s must be ≥ 2/3 s (20 frames) per clip, got {self.duration_s!r}")

    def key(self) -> str:
        """16 hex digits naming this recording; another generative model (MODEL_VERSION) is another recording."""
        return content_hash({**asdict(self), "model_version": MODEL_VERSION})[:16]


class RecordingCache:
    """A cached recording of one synthetic mouse (see :class:`RecordingSpec`), clips as memory-mapped arrays.

    ``train`` and ``oracle`` are lists of clip folders; :meth:`clip` returns a dict with ``stimulus`` uint8
    [T,144,256], ``perspectives``/``modulations`` float32 [T,2], ``rate`` float32 [T,U] (noise-free expected
    response) and ``responses`` float32 [R,T,U].
    """

    FIELDS = ("stimulus", "perspectives", "modulations", "rate", "responses")

    def __init__(self, spec: RecordingSpec, directory: str | os.PathLike | None = None, progress: bool = True):
        self.spec = spec
        # ``directory``, else the cache folder's ``recordings`` (see twin_explorer.paths)
        self.folder = cache_dir("recordings", directory) / f"mouse{spec.mouse_seed}-{spec.key()}"
        self._mouse = None
        self._ensure(progress)
        self.train = [self.folder / f"train{i:04d}" for i in range(spec.n_clips)]
        self.oracle = [self.folder / f"oracle{i:04d}" for i in range(spec.n_oracle)]

    @property
    def mouse(self) -> SyntheticMouse:
        if self._mouse is None:
            self._mouse = SyntheticMouse(seed=self.spec.mouse_seed, n_neurons=self.spec.n_neurons)
        return self._mouse

    def _ensure(self, progress: bool) -> None:
        done = self.folder / "complete.json"
        if done.exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        s = self.spec
        counts = {"train": 0, "oracle": 0}
        it = self.mouse.iter_record(n_clips=s.n_clips, duration_s=s.duration_s, repeats=s.repeats,
                                    n_oracle=s.n_oracle, seed=s.seed, noise=s.noise, progress=False)
        total = s.n_clips + s.n_oracle
        for clip in tqdm(it, total=total, desc=f"recording mouse {s.mouse_seed}", disable=not progress):
            name = f"{clip.tier}{counts[clip.tier]:04d}"
            counts[clip.tier] += 1
            target = self.folder / name
            if (target / "responses.npy").exists():  # written by an interrupted earlier run
                continue
            with atomic_path(target) as tmp:  # a clip folder appears whole or not at all
                tmp.mkdir()
                for f in self.FIELDS:
                    np.save(tmp / f"{f}.npy", getattr(clip, f))
        write_text_atomic(done, json.dumps(asdict(s)))

    def clip(self, folder: Path) -> dict[str, np.ndarray]:
        return {f: np.load(folder / f"{f}.npy", mmap_mode="r") for f in self.FIELDS}

    def train_clips(self, minutes: float | None = None) -> list[Path]:
        """The first training clips adding up to ``minutes`` of data (all when None)."""
        if minutes is None:
            return list(self.train)
        n = int(round(minutes * 60 / self.spec.duration_s))
        if n < 1 or n > len(self.train):
            raise ValueError(f"{minutes} minutes needs {n} clips of {self.spec.duration_s} s; this recording "
                             f"has {len(self.train)} training clips ({len(self.train) * self.spec.duration_s / 60:g} min)")
        return list(self.train[:n])

    def mean_response(self, clips: list[Path] | None = None) -> np.ndarray:
        """Per-unit mean response over training clips (the published normalisation divides by it)."""
        clips = self.train if clips is None else clips
        total = sum(np.asarray(self.clip(c)["responses"], dtype=np.float64).sum((0, 1)) for c in clips)
        frames = sum(self.clip(c)["responses"].shape[0] * self.clip(c)["responses"].shape[1] for c in clips)
        return (total / frames).astype(np.float32)

    def oracle_recording(self) -> xr.Dataset:
        """The oracle clips as an ``xarray.Dataset`` in the layout of ``SyntheticMouse.record`` (for metrics)."""
        clips = [self.clip(c) for c in self.oracle]
        if not clips:
            raise ValueError("this recording has no oracle clips (n_oracle = 0)")
        reps = [c["responses"].shape[0] for c in clips]
        trial_clip = np.concatenate([np.full(r, i) for i, r in enumerate(reps)])
        return xr.Dataset(
            {
                "stimulus": (("clip", "frame", "height", "width"), np.stack([c["stimulus"] for c in clips])),
                "perspectives": (("clip", "frame", "eye"), np.stack([c["perspectives"] for c in clips])),
                "modulations": (("clip", "frame", "behaviour"), np.stack([c["modulations"] for c in clips])),
                "rate": (("clip", "frame", "unit"), np.stack([c["rate"] for c in clips])),
                "response": (("trial", "frame", "unit"), np.concatenate([c["responses"] for c in clips])),
            },
            coords={"clip_tier": ("clip", np.array(["oracle"] * len(clips))), "trial_clip": ("trial", trial_clip),
                    "unit": np.arange(clips[0]["rate"].shape[1])},
            attrs={"twin_id": f"synthetic-seed{self.spec.mouse_seed}-n{self.spec.n_neurons}"},
        )
