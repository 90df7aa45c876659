"""Surround suppression: a drifting grating in a fixed centre patch, plus a grating annulus of growing outer
diameter around it (iso-oriented, or turned by ``surround_offset_deg``; its own contrast).

Each condition is (outer diameter × direction); an outer diameter equal to the centre's is the centre alone.
A unit's curve is read at its preferred direction (:mod:`.grid`). ``surround_si`` = (R_centre − R_largest) /
(R_centre − R_grey): 0 when the surround does nothing, 1 when it silences the centre response, negative when it
facilitates. Centre the patch on the units' receptive fields (e.g. ``rf_az``/``rf_el`` from
:func:`~.receptive_fields.receptive_fields`); units far from it see mostly the annulus.

This module is the worked example of adding an experiment (see the package docstring).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import xarray as xr

from ..engine.contract import TwinLike
from ..monitor import Monitor
from ..stimuli.base import aperture_mask
from .checks import check_point, check_positive, check_values, twin_frame_rate, twin_monitor
from .grid import GratingGrid, grating_frames, run_grid
from .plotting import plot_value_population, plot_value_tuning
from .provenance import provenance
from .runner import DEFAULT_LATENCY_S, ProgressCallback
from .spec import ExperimentSpec, median_summary, register
from .streaming import PartialCallback
from .tuning import directions_from

__all__ = ["surround_suppression"]


def centre_surround_frames(direction_deg: float, outer_deg: float, *, center_deg: np.ndarray, center_diameter_deg: float,
                           sf_cpd: float, tf_hz: float, duration_s: float, contrast: float, surround_contrast: float,
                           surround_offset_deg: float, frame_rate: float, monitor: Monitor) -> np.ndarray:
    """uint8 [T, H, W]: the centre grating inside ``center_diameter_deg``, the surround grating (direction +
    ``surround_offset_deg``, ``surround_contrast``) from there out to ``outer_deg``, grey beyond."""
    az, el = float(center_deg[0]), float(center_deg[1])
    centre = grating_frames(direction_deg, sf_cpd, tf_hz, duration_s, contrast=contrast, frame_rate=frame_rate,
                            monitor=monitor, aperture=(az, el, center_diameter_deg))
    if outer_deg <= center_diameter_deg:
        return centre
    surround = grating_frames(direction_deg + surround_offset_deg, sf_cpd, tf_hz, duration_s,
                              contrast=surround_contrast, frame_rate=frame_rate, monitor=monitor,
                              aperture=(az, el, outer_deg))
    inside = aperture_mask(monitor, az, el, center_diameter_deg, 0.0) >= 0.5  # hard edge: no overlap, no gap
    return np.where(inside[None], centre, surround)


def _suppression(ds: xr.Dataset, curve: np.ndarray) -> xr.Dataset:
    """``center_response`` and ``surround_si`` from the curves [U, outer diameters] (the first is the centre alone)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        si = (curve[:, 0] - curve[:, -1]) / (curve[:, 0] - ds["baseline"].values)
    ds["center_response"] = (("unit",), curve[:, 0], {"long_name": "response to the centre grating alone"})
    ds["surround_si"] = (("unit",), si, {"long_name": "surround suppression index (R_c − R_largest)/(R_c − R_grey)"})
    return ds


def surround_suppression(twin: TwinLike, center_deg: tuple[float, float] = (0.0, 0.0),
                         center_diameter_deg: float = 20.0, outer_diameters_deg: Any = (20, 30, 45, 60, 90),
                         directions: int | Any = 8, sf_cpd: float = 0.04, tf_hz: float = 2.0,
                         duration_s: float = 1.0, contrast: float = 1.0, surround_contrast: float = 1.0,
                         surround_offset_deg: float = 0.0, units: Any = None, *, latency_s: float = DEFAULT_LATENCY_S,
                         pre_s: float = 0.5, monitor: Monitor | None = None, batch_size: int | None = None,
                         progress: ProgressCallback | None = None, show_progress: bool = True, seed: int = 0,
                         cancel: threading.Event | None = None, partial: PartialCallback | None = None) -> xr.Dataset:
    """Centre grating plus surround annuli (see the module docstring). Returns ``response`` (unit, outer_diameter,
    direction), ``tuning`` (unit, outer_diameter) at the preferred direction, ``baseline`` (grey),
    ``surround_si`` and ``center_response`` per unit."""
    cen = check_point("center_deg", center_deg)
    cd = check_positive("center_diameter_deg", center_diameter_deg)
    outer = np.unique(np.r_[cd, check_values("outer_diameters_deg", outer_diameters_deg, lo=cd)])
    if outer.size < 2:  # the centre alone (outer = centre diameter) is the reference; something must exceed it
        raise ValueError(f"outer_diameters_deg must include a diameter larger than center_diameter_deg={cd}")
    for name, c in (("contrast", contrast), ("surround_contrast", surround_contrast)):
        if not 0 <= check_positive(name, c, allow_zero=True) <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {c}")
    dirs = directions_from(directions)
    mon = twin_monitor(twin, monitor)
    look = dict(center_deg=cen, center_diameter_deg=cd, sf_cpd=check_positive("sf_cpd", sf_cpd),
                tf_hz=check_positive("tf_hz", tf_hz, allow_zero=True), duration_s=duration_s, contrast=contrast,
                surround_contrast=surround_contrast, surround_offset_deg=float(surround_offset_deg))
    grid = GratingGrid("outer_diameter", outer, dirs, lambda v, d: centre_surround_frames(
        d, v, frame_rate=twin_frame_rate(twin), monitor=mon, **look), "surround suppression", {"units": "deg"})
    ds, _ = run_grid(twin, grid, duration_s=duration_s, latency_s=latency_s, pre_s=pre_s, units=units,
                     batch_size=batch_size, progress=progress, show_progress=show_progress, cancel=cancel,
                     analyse=_suppression, partial=partial)
    ds.attrs.update(provenance(twin, "surround_suppression", dict(look, outer_diameters_deg=outer, directions=dirs,
                                                                  latency_s=latency_s, pre_s=pre_s),
                               seed=seed, monitor=mon))
    return ds


SPEC = register(ExperimentSpec(
    "surround_suppression", surround_suppression,
    "Centre grating with a surround annulus of growing size: how much the surround suppresses.",
    median_summary("surround_si"), plot_value_tuning, plot_value_population, streams=True))
