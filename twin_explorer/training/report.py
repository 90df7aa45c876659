"""The demo twin's accuracy report: held-out natural clips, out-of-domain stimulus families, tuning and RFs.

* Natural clips: CC_abs / CC_max / CC_norm of the twin on the repeated (oracle) clips of the training
  recording, which the twin never saw.
* Out of domain (the paper's generalisation claim, in silico): the synthetic mouse is "recorded" (Poisson
  noise, 10 repeats) on drifting gratings, flashed Gaussian dots, random-dot kinematograms, Monet-like noise and
  Trippy-like phase movies, and the twin, trained only on natural-like clips, is scored on them the same way.
* Tuning and RFs: the ground-truth validation protocol of ``experiments.validate`` run on the twin, scored
  against the synthetic mouse's true tuning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from .. import stimuli as S
from ..engine.contract import TwinLike
from ..experiments.metrics import plot_performance, twin_performance
from ..experiments.validate import ValidationReport, plot_validation, validate
from ..monitor import Monitor
from ..synthetic import SyntheticMouse
from .data import RecordingCache


def _fit_length(video: np.ndarray, n_frames: int) -> np.ndarray:
    if len(video) >= n_frames:
        return video[:n_frames]
    reps = int(np.ceil(n_frames / len(video)))
    return np.concatenate([video] * reps)[:n_frames]


def family_video_fns() -> dict[str, Callable[[int, int, Monitor], np.ndarray]]:
    """``video_fn(n_frames, seed, monitor)`` for each out-of-domain family (parameters vary with the seed)."""
    def gratings(n, seed, monitor):
        rng = np.random.default_rng(seed)
        return _fit_length(S.DirectionSeries(seed=seed, monitor=monitor, directions=8, sf_cpd=float(rng.choice([0.04, 0.08])),
                                             tf_hz=float(rng.choice([1.0, 2.0, 4.0])), duration_s=1.0, gap_s=0.25).render(), n)

    def dots(n, seed, monitor):
        return _fit_length(S.GaussianDots(seed=seed, monitor=monitor, spacing_deg=15.0, size_deg=10.0, dot_s=0.3,
                                          isi_s=0.2).render(), n)

    def rdk(n, seed, monitor):
        rng = np.random.default_rng(seed)
        parts, per = [], 30
        for k in range(int(np.ceil(n / per))):
            parts.append(S.RandomDotKinematogram(seed=(seed * 100 + k) % 2**31, monitor=monitor, duration_s=per / 30,
                                                 direction_deg=float(rng.uniform(0, 360)), density=0.03).render())
        return _fit_length(np.concatenate(parts), n)

    def monet(n, seed, monitor):
        return _fit_length(S.Monet2(seed=seed, monitor=monitor, duration_s=n / 30).render(), n)

    def trippy(n, seed, monitor):
        return _fit_length(S.Trippy(seed=seed, monitor=monitor, duration_s=n / 30).render(), n)

    return {"gratings": gratings, "gaussian dots": dots, "random-dot motion": rdk, "Monet-like noise": monet,
            "Trippy-like": trippy}


def natural_accuracy(twin: TwinLike, recording: xr.Dataset) -> xr.Dataset:
    """Per-unit CC_abs / CC_max / CC_norm on the oracle clips of a recording."""
    return twin_performance(twin, recording)


def family_accuracy(twin: TwinLike, mouse: SyntheticMouse, families: list[str] | None = None, duration_s: float = 8.0,
                    n_oracle: int = 2, repeats: int = 10, seed: int = 7, progress: bool = True) -> pd.DataFrame:
    """Median CC_abs / CC_max / CC_norm of ``twin`` against ``mouse`` recorded on each stimulus family."""
    fns = family_video_fns()
    families = list(fns) if families is None else families
    unknown = set(families) - set(fns)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}; accepted: {list(fns)}")
    rows = []
    for name in tqdm(families, desc="stimulus families", disable=not progress):
        rec = mouse.record(n_clips=0, n_oracle=n_oracle, repeats=repeats, duration_s=duration_s, seed=seed,
                           video_fn=fns[name], progress=False)
        perf = natural_accuracy(twin, rec)
        rows.append({"stimulus": name, **{k: float(np.nanmedian(perf[k].values)) for k in ("cc_abs", "cc_max", "cc_norm")},
                     "frames": int(n_oracle * rec.sizes["frame"])})
    return pd.DataFrame(rows)


class _TwinWithTruth:
    """A twin whose ``truth()`` is a given mouse's, for ``experiments.validate``."""

    def __init__(self, twin: TwinLike, truth: pd.DataFrame):
        self._twin, self._truth = twin, truth

    def truth(self) -> pd.DataFrame:
        return self._truth

    def __getattr__(self, name: str) -> Any:
        return getattr(self._twin, name)


def tuning_vs_truth(twin: TwinLike, mouse: SyntheticMouse, seed: int = 0, progress: bool = True,
                    reliability: pd.DataFrame | None = None) -> ValidationReport:
    """The ground-truth validation protocol (RF dots, SF×TF, direction tuning) on the twin, scored against the
    mouse's truth, on all neurons and on those passing the paper's inclusion thresholds (judged by
    ``reliability``: per-unit cc_abs/cc_max/cc_norm; default the twin's units table). Returns the
    ``ValidationReport`` (its ``table`` holds the headline metrics)."""
    return validate(mouse=_TwinWithTruth(twin, mouse.truth()), seed=seed, quick=True, show_progress=progress,
                    reliability=reliability)


def full_report(twin: TwinLike, cache: RecordingCache, out_dir: str | Path, progress: bool = True, tuning: bool = True) -> dict:
    """Run every part of the report, write ``report.json``, per-unit CSV and HTML plots into ``out_dir``."""
    import holoviews as hv  # start-up time: plotting loads bokeh, only for the report's figures

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mouse = cache.mouse
    perf = natural_accuracy(twin, cache.oracle_recording())
    per_unit = perf.to_dataframe()[["cc_abs", "cc_max", "cc_norm"]]
    result: dict[str, Any] = {
        "natural": {k: float(np.nanmedian(per_unit[k])) for k in per_unit},
        "natural_mean": {k: float(np.nanmean(per_unit[k])) for k in per_unit},
        "natural_units": int(len(per_unit)), "natural_oracle_clips": int(perf.attrs["n_oracle_clips"]),
    }
    per_unit.to_csv(out / "performance_units.csv")
    # a small, exactly reproducible held-out check (one oracle clip) that the tests rerun against the shipped twin
    check = {"seed": 0, "repeats": 10, "duration_s": float(cache.spec.duration_s)}
    one = mouse.record(n_clips=0, n_oracle=1, progress=False, **check)
    p1 = natural_accuracy(twin, one)
    result["heldout_check"] = {**check, "cc_norm_median": float(np.nanmedian(p1["cc_norm"].values)),
                               "cc_abs_median": float(np.nanmedian(p1["cc_abs"].values))}
    hv.extension("bokeh", logo=False)
    hv.save(plot_performance(perf), out / "performance.html", resources="cdn")
    fam = family_accuracy(twin, mouse, progress=progress)
    result["families"] = fam.to_dict(orient="records")
    if tuning:
        rep = tuning_vs_truth(twin, mouse, progress=progress, reliability=per_unit)  # this report's held-out CCs
        result["tuning_vs_truth"] = rep.table.to_dict(orient="records")
        result["tuning_vs_truth_extra"] = rep.extra.to_dict(orient="records")
        rep.neurons.to_csv(out / "tuning_vs_truth_neurons.csv", index=False)
        try:
            hv.save(plot_validation(rep), out / "tuning_vs_truth.html", resources="cdn")
        except Exception as exc:  # a plot must never lose the numbers
            result["tuning_plot_error"] = repr(exc)
    (out / "report.json").write_text(json.dumps(result, indent=2, default=float))
    return result
