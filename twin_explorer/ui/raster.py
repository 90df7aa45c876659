"""Maps of many neurons that stay responsive: points (hover, tap) up to :data:`MAX_POINTS`, a binned image above.

A Bokeh scatter of 10,000–100,000 glyphs is slow to send and to pan (and each hover scans every glyph); a 2-D
histogram of the same points is a fixed-size image whatever N. The image is binned with numpy (no datashader:
it would add numba and llvmlite, whose first-call compilation costs seconds on a 2-core machine), coloured by
the neurons' count, their mean value, or their circular mean angle. Tapping the image still picks a neuron: the
views look up the neuron nearest to the click (``ExplorerState.focus_nearest``), which needs no glyphs.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np

__all__ = ["MAX_POINTS", "BINS", "binned_map", "neuron_map"]

#: Above this many neurons a map is drawn as a binned image instead of points.
MAX_POINTS = 5000
#: Bins along the longer side of a binned map.
BINS = 160


def _edges(values: np.ndarray, n: int) -> np.ndarray:
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n + 1)


def binned_map(x: np.ndarray, y: np.ndarray, value: np.ndarray | None = None, period: float | None = None,
               bins: int = BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image [ny, nx], x edges, y edges): per bin the neurons' count (``value`` None), their mean ``value``, or
    their circular mean angle in [0, period) (``period`` given, e.g. 360 for directions); NaN in empty bins.
    Rows run from low to high y."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D arrays of one length, got shapes {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    if value is not None:
        value = np.asarray(value, float)
        if value.shape != x.shape:
            raise ValueError(f"value must have one entry per point ({x.shape}), got shape {value.shape}")
        ok &= np.isfinite(value)
    if not ok.any():
        raise ValueError("no point with finite coordinates (and value) to bin")
    x, y = x[ok], y[ok]
    span_x, span_y = np.ptp(x) or 1.0, np.ptp(y) or 1.0
    nx = max(1, int(round(bins * min(1.0, span_x / span_y))))
    ny = max(1, int(round(bins * min(1.0, span_y / span_x))))
    ex, ey = _edges(x, nx), _edges(y, ny)
    count = np.histogram2d(y, x, bins=(ey, ex))[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        if value is None:
            image = np.where(count > 0, count, np.nan)
        elif period is None:
            image = np.histogram2d(y, x, bins=(ey, ex), weights=value[ok])[0] / count
        else:
            angle = np.asarray(value[ok]) * (2 * np.pi / period)
            c = np.histogram2d(y, x, bins=(ey, ex), weights=np.cos(angle))[0]
            s = np.histogram2d(y, x, bins=(ey, ex), weights=np.sin(angle))[0]
            image = np.where(count > 0, np.mod(np.arctan2(s, c) * period / (2 * np.pi), period), np.nan)
    return image, ex, ey


def neuron_map(x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, value: np.ndarray | None = None,
               value_label: str = "neurons", vdims: dict[str, np.ndarray] | None = None, period: float | None = None,
               max_points: int | None = None, **style: Any) -> hv.Element:
    """Points (with ``vdims`` for hover, coloured by ``value``) when there are at most ``max_points``, else a
    :func:`binned_map` image labelled with the neuron count (``max_points`` default: :data:`MAX_POINTS`).
    ``style``: cmap, clim, size, colorbar, clabel."""
    max_points = MAX_POINTS if max_points is None else int(max_points)
    x, y = np.asarray(x, float), np.asarray(y, float)
    cmap, clim = style.pop("cmap", "viridis"), style.pop("clim", None)
    if len(x) <= max_points:
        data = {xlabel: x, ylabel: y, **({value_label: np.asarray(value)} if value is not None else {}),
                **(vdims or {})}
        extra = [k for k in data if k not in (xlabel, ylabel)]
        opts = {"tools": ["hover", "tap"], "size": style.pop("size", 6), **style}
        if value is not None:
            opts.update(color=value_label, cmap=cmap, **({"clim": clim} if clim is not None else {}))
        return hv.Points(data, [xlabel, ylabel], extra).opts(**opts)
    image, ex, ey = binned_map(x, y, value, period)
    bounds = (ex[0], ey[0], ex[-1], ey[-1])
    label = value_label if value is not None else "neurons"
    style.pop("size", None)
    return hv.Image(image[::-1], bounds=bounds, kdims=[xlabel, ylabel], vdims=[label]).opts(
        cmap=cmap, tools=["hover", "tap"], clipping_colors={"NaN": (0, 0, 0, 0)},
        **({"clim": clim} if clim is not None else {}), **style)
