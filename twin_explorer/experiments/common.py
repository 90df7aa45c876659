"""Shared machinery for in-silico experiments: unit selection, batched twin calls, response windows, provenance.

Every experiment in :mod:`twin_explorer.experiments` builds a list of condition videos, runs them through
any object obeying the twin contract with :func:`run_conditions` (stacked into ``[N, T, 144, 256]`` batches,
chunked to bound memory, with a tqdm bar and an optional ``progress(done, total)`` callback), averages each
condition's response in a latency-shifted window with :func:`window_mean`, and stamps the resulting
``xarray.Dataset`` with :func:`provenance`.

Response window convention (documented once, used everywhere): a condition whose stimulus is on screen over
``[onset, offset)`` seconds is summarised by the mean response over ``[onset + latency, offset + latency)``,
i.e. the window is shifted by the response latency (default 100 ms). Condition videos start with a grey
pre-blank at least ``BURN_IN_FRAMES`` long so the recurrent network's start-up transient never falls in a
window, and end with a grey post-blank at least ``latency`` long so the shifted window stays inside the video.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..monitor import DEFAULT_MONITOR, FRAME_RATE, Monitor

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` (condition videos) after every batch."""

BURN_IN_FRAMES = 10  # published burn-in of the foundation model's exported responses
DEFAULT_LATENCY_S = 0.1
GREY = 128
MAX_FRAMES_PER_CALL = 2400  # bounds memory: 2400 × 144 × 256 uint8 ≈ 88 MB per call plus the twin's own work


def twin_frame_rate(twin: Any) -> float:
    return float(getattr(twin, "frame_rate", FRAME_RATE))


def twin_monitor(twin: Any, monitor: Monitor | None = None) -> Monitor:
    """The monitor an experiment should draw on: explicit argument, else the twin's own, else the default."""
    if monitor is not None:
        if not isinstance(monitor, Monitor):
            raise ValueError(f"monitor must be a twin_explorer.monitor.Monitor, got {type(monitor).__name__}")
        return monitor
    own = getattr(twin, "monitor", None)
    return own if isinstance(own, Monitor) else DEFAULT_MONITOR


def resolve_units(twin: Any, units: Any = None) -> np.ndarray:
    """Readout ids selected by ``units`` (None = all; a sequence of readout ids; or a boolean mask).

    Returns the readout ids as an int64 array, in the order the twin will return them.
    """
    index = np.asarray(getattr(twin, "units").index)
    n = int(getattr(twin, "n_units", len(index)))
    if units is None:
        return index.astype(np.int64)
    arr = np.asarray(units)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"a boolean units mask must have length n_units={n}, got shape {arr.shape}")
        return index[arr].astype(np.int64)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"units must be None, a 1-D sequence of integer readout ids or a boolean mask; got {units!r}")
    if arr.size == 0:
        raise ValueError("units is empty; pass None for all units or at least one readout id")
    missing = np.setdiff1d(arr, index)
    if missing.size:
        raise ValueError(f"unknown readout ids {missing[:10].tolist()}; valid ids are the twin's units.index "
                         f"(0…{n - 1} for a contiguous twin)")
    return arr.astype(np.int64)


def check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite number, got {value!r}")
    return v


def check_values(name: str, values: Any, *, positive: bool = False, lo: float | None = None,
                 hi: float | None = None, min_len: int = 1) -> np.ndarray:
    """A 1-D float array of condition values, validated (finite, in range, long enough)."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1 or arr.size < min_len:
        raise ValueError(f"{name} must be a 1-D list of at least {min_len} numbers, got {values!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers, got {values!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must all be > 0, got {values!r}")
    if lo is not None and np.any(arr < lo):
        raise ValueError(f"{name} must all be ≥ {lo}, got {values!r}")
    if hi is not None and np.any(arr > hi):
        raise ValueError(f"{name} must all be ≤ {hi}, got {values!r}")
    return arr


@dataclass(frozen=True)
class Timing:
    """Frame layout of a condition video: grey pre-blank, stimulus, grey post-blank (all in frames)."""

    pre: int
    stim: int
    post: int
    frame_rate: float

    @property
    def total(self) -> int:
        return self.pre + self.stim + self.post

    @classmethod
    def make(cls, duration_s: float, latency_s: float, frame_rate: float, pre_s: float = 0.5,
             post_s: float | None = None) -> "Timing":
        duration_s = check_positive("duration_s", duration_s)
        latency_s = check_positive("latency_s", latency_s, allow_zero=True)
        pre_s = check_positive("pre_s", pre_s, allow_zero=True)
        pre = max(int(round(pre_s * frame_rate)), BURN_IN_FRAMES)
        stim = int(round(duration_s * frame_rate))
        if stim < 1:
            raise ValueError(f"duration_s={duration_s} is shorter than one frame at {frame_rate} Hz")
        lat = int(np.ceil(latency_s * frame_rate - 1e-9))
        post = lat if post_s is None else max(lat, int(round(check_positive("post_s", post_s, True) * frame_rate)))
        return cls(pre, stim, post, float(frame_rate))

    def window(self, latency_s: float, onset_frame: int = 0, offset_frame: int | None = None) -> tuple[int, int]:
        """[start, stop) frames of the latency-shifted response window of a stimulus epoch (frames
        counted from the stimulus start)."""
        offset_frame = self.stim if offset_frame is None else offset_frame
        lat = int(round(latency_s * self.frame_rate))
        return self.pre + onset_frame + lat, self.pre + offset_frame + lat

    def pad(self, frames: np.ndarray) -> np.ndarray:
        """Surround stimulus frames [T, H, W] with the grey pre- and post-blank."""
        if frames.shape[0] != self.stim:
            raise ValueError(f"expected {self.stim} stimulus frames, got {frames.shape[0]}")
        out = np.full((self.total,) + frames.shape[1:], GREY, dtype=np.uint8)
        out[self.pre:self.pre + self.stim] = frames
        return out


def window_mean(responses: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Mean over time of responses [..., T, U] in frames [start, stop) -> [..., U]."""
    T = responses.shape[-2]
    if not (0 <= start < stop <= T):
        raise ValueError(f"response window [{start}, {stop}) frames is outside the {T}-frame video")
    return responses[..., start:stop, :].mean(axis=-2)


def epoch_window_means(responses: np.ndarray, onsets_s: Sequence[float], offsets_s: Sequence[float],
                       latency_s: float, frame_rate: float, frame_offset: int = 0) -> np.ndarray:
    """Latency-shifted window means of many epochs of one response trace [T, U] -> [E, U]."""
    out = np.empty((len(onsets_s), responses.shape[-1]), dtype=np.float64)
    for k, (on, off) in enumerate(zip(onsets_s, offsets_s)):
        start = frame_offset + int(round((on + latency_s) * frame_rate))
        stop = frame_offset + int(round((off + latency_s) * frame_rate))
        out[k] = window_mean(responses, start, max(stop, start + 1))
    return out


def run_conditions(twin: Any, videos: Sequence[np.ndarray] | Callable[[int], np.ndarray], n: int | None = None,
                   units: np.ndarray | None = None, *, batch_size: int | None = None,
                   max_frames_per_call: int = MAX_FRAMES_PER_CALL, progress: ProgressCallback | None = None,
                   desc: str = "conditions", show_progress: bool = True,
                   reduce: Callable[[int, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Run N condition videos (each uint8 [T, H, W], all the same T) through ``twin.predict`` in batches.

    ``videos`` is a sequence or a callable ``i -> video`` (rendered lazily so memory stays bounded). Each call
    stacks up to ``batch_size`` videos (default: as many as fit in ``max_frames_per_call`` frames) into one
    [B, T, H, W] batch. Returns float32 [N, T, U], or, if ``reduce(i, response[T, U])`` is given, the stacked
    reductions (lets long experiments keep only window means).
    """
    from tqdm.auto import tqdm

    if isinstance(progress, bool):  # progress=True/False means "show a bar or not", not a callback
        show_progress, progress = progress, None
    if callable(videos) and not isinstance(videos, np.ndarray):
        if n is None:
            raise ValueError("n (number of conditions) is required when videos is a callable")
        get = videos
    else:
        n = len(videos) if n is None else n
        get = videos.__getitem__
    if n < 1:
        raise ValueError("an experiment needs at least one condition video")
    first = np.asarray(get(0))
    T = first.shape[0]
    if batch_size is None:
        batch_size = max(1, max_frames_per_call // max(T, 1))
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    unit_arg = None if units is None else np.asarray(units)
    out: list[np.ndarray] = []
    with tqdm(total=n, desc=desc, disable=not show_progress, leave=False) as bar:
        for b0 in range(0, n, batch_size):
            idx = range(b0, min(n, b0 + batch_size))
            batch = np.stack([first if i == 0 else np.asarray(get(i)) for i in idx])
            if batch.shape[1] != T:
                raise ValueError("all condition videos of one experiment must have the same length")
            resp = np.asarray(twin.predict(batch, units=unit_arg), dtype=np.float32)
            if resp.ndim != 3 or resp.shape[:2] != batch.shape[:2]:
                raise ValueError(f"twin.predict returned shape {resp.shape} for a batch of shape {batch.shape}; "
                                 "the twin contract requires [N, T, U]")
            if reduce is not None:
                out.extend(np.asarray(reduce(i, r)) for i, r in zip(idx, resp))
            else:
                out.append(resp)
            bar.update(len(idx))
            if progress is not None:
                progress(idx.stop, n)
    return np.stack(out) if reduce is not None else np.concatenate(out, axis=0)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Monitor):
        return value.to_dict()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def provenance(twin: Any, experiment: str, params: dict[str, Any], seed: int | None = None,
               monitor: Monitor | None = None, stimulus: Any = None) -> dict[str, Any]:
    """netCDF-safe attrs for an experiment's Dataset: twin id, experiment name, its parameters (JSON), seed,
    monitor, stimulus provenance (``params_dict()`` of a stimulus object when given), package version, time."""
    from .. import __version__

    attrs: dict[str, Any] = {
        "experiment": experiment,
        "twin_id": str(getattr(twin, "id", type(twin).__name__)),
        "params": json.dumps(_jsonable(params), sort_keys=True),
        "seed": -1 if seed is None else int(seed),
        "twin_explorer_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "frame_rate": twin_frame_rate(twin),
    }
    if monitor is not None:
        attrs["monitor"] = json.dumps(monitor.to_dict(), sort_keys=True)
    if stimulus is not None:
        pd_fn = getattr(stimulus, "params_dict", None)
        attrs["stimulus"] = json.dumps(_jsonable(pd_fn() if callable(pd_fn) else stimulus), sort_keys=True,
                                       default=repr)
    return attrs


def params_of(ds: Any) -> dict[str, Any]:
    """The experiment parameters stored in a Dataset's provenance attrs."""
    return json.loads(ds.attrs.get("params", "{}"))


def unit_coords(twin: Any, readout_ids: np.ndarray) -> dict[str, Any]:
    """Coordinates for the ``unit`` dimension: readout id plus session/scan_idx/unit_id when the twin has them."""
    coords: dict[str, Any] = {"unit": ("unit", np.asarray(readout_ids, dtype=np.int64))}
    table = getattr(twin, "units", None)
    if table is not None:
        for col in ("session", "scan_idx", "unit_id"):
            if col in getattr(table, "columns", ()):
                coords[col] = ("unit", np.asarray(table.loc[readout_ids, col]))
    return coords


def iter_chunks(seq: Iterable[Any], size: int) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for x in seq:
        chunk.append(x)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- stimulus rendering --------------------------------------------------------------------------------------

def grating_frames(direction_deg: float, sf_cpd: float, tf_hz: float, duration_s: float, *,
                   contrast: float = 1.0, phase_deg: float = 0.0,
                   aperture: tuple[float, float, float] | None = None, frame_rate: float = FRAME_RATE,
                   monitor: Monitor = DEFAULT_MONITOR) -> np.ndarray:
    """A drifting sine grating uint8 [T, H, W] from the stimulus library's ``DriftingGrating`` (v2 direction
    convention: 0° = rightward, counter-clockwise), optionally inside a circular aperture (centre az, centre el,
    diameter, degrees). Invalid values raise the library's ValueError."""
    from ..stimuli.gratings import DriftingGrating

    try:
        stim = DriftingGrating(direction_deg=float(direction_deg) % 360, sf_cpd=float(sf_cpd), tf_hz=float(tf_hz),
                               contrast=float(contrast), phase_deg=float(phase_deg) % 360,
                               duration_s=float(duration_s), monitor=monitor,
                               aperture=None if aperture is None else tuple(float(a) for a in aperture))
    except ValueError:
        raise
    except Exception as exc:  # param raises its own errors for out-of-bounds values
        raise ValueError(f"invalid grating parameters: {exc}") from exc
    frames = np.asarray(stim.render())
    n = int(round(duration_s * frame_rate))
    return frames[:n]


def hv_bokeh() -> Any:
    """holoviews with the bokeh renderer loaded (no notebook output), so options can be applied anywhere."""
    import holoviews as hv

    if "bokeh" not in hv.Store.renderers:
        import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh backend)
    if hv.Store.current_backend != "bokeh" and "bokeh" in hv.Store.renderers and not hv.Store.renderers.get(
            hv.Store.current_backend):
        hv.Store.set_current_backend("bokeh")
    return hv


def batched_lm(model: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], y: np.ndarray, p0: np.ndarray,
               lo: Sequence[float], hi: Sequence[float], n_iter: int = 60, weights: np.ndarray | None = None,
               rtol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg–Marquardt for many independent small least-squares fits at once, with box bounds by clipping.

    ``model(p [U, K]) -> (f [U, M], J [U, M, K])``; ``y`` [U, M] targets (NaN entries ignored); ``p0`` [U, K].
    Returns (p [U, K], sse [U]). Vectorised over units, so a population fits in one go instead of U scipy calls.
    A unit stops iterating once an accepted step lowers its cost by less than ``rtol`` (relative) or its damping
    reaches the ceiling; most units converge in a few steps, so the rest iterate on a shrinking set.
    """
    lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    y = np.asarray(y, dtype=float)
    w_all = np.isfinite(y).astype(float) if weights is None else np.asarray(weights, dtype=float) * np.isfinite(y)
    y_all = np.nan_to_num(y)
    p = np.clip(np.asarray(p0, dtype=float), lo_a, hi_a)
    f, J = model(p)
    r = (f - y_all) * w_all
    cost = (r**2).sum(1)
    lam = np.full(len(p), 1e-2)
    eye = np.eye(p.shape[1])
    active = np.arange(len(p))
    for _ in range(int(n_iter)):
        if active.size == 0:
            break
        pa, Ja, ra, w, y0 = p[active], J[active], r[active], w_all[active], y_all[active]
        Jw = Ja * w[..., None]
        Jt = Jw.transpose(0, 2, 1)
        JtJ = Jt @ Jw  # batched matmul: numpy's einsum does not use BLAS here and was a quarter of a fit
        g = (Jt @ ra[..., None])[..., 0]
        A = JtJ + lam[active, None, None] * (JtJ * eye + 1e-12 * eye)
        try:
            step = -np.linalg.solve(A, g[..., None])[..., 0]
        except np.linalg.LinAlgError:  # some unit's system is singular: pseudo-inverse for all
            step = -np.einsum("ukl,ul->uk", np.linalg.pinv(A), g)
        step = np.nan_to_num(step)
        p_new = np.clip(pa + step, lo_a, hi_a)
        f_new, J_new = model(p_new)
        r_new = (f_new - y0) * w
        cost_new = (r_new**2).sum(1)
        old = cost[active]
        better = np.isfinite(cost_new) & (cost_new < old)
        p[active] = np.where(better[:, None], p_new, pa)
        J[active] = np.where(better[:, None, None], J_new, Ja)
        r[active] = np.where(better[:, None], r_new, ra)
        cost[active] = np.where(better, cost_new, old)
        lam[active] = np.where(better, lam[active] / 3, lam[active] * 4).clip(1e-9, 1e9)
        done = (better & (old - cost_new <= rtol * old)) | (lam[active] >= 1e9) | (cost[active] == 0)
        active = active[~done]
    return p, cost
