"""Plots of experiment results (HoloViews with the Bokeh backend, imported and registered once, at the first plot:
loading them costs seconds that runs without plots, such as batch workers, should not pay): direction tuning, SF/TF/contrast/size tuning, receptive
fields, MEIs and prediction performance, each from the result Dataset alone."""

from __future__ import annotations

from typing import Any

import functools

import numpy as np
import xarray as xr

from ..monitor import DEFAULT_MONITOR
from .fitting import naka_rushton
from .receptive_fields import POLARITIES
from .tuning import bivonmises

__all__ = ["hv_bokeh", "plot_direction_tuning", "plot_tuning_population", "plot_value_tuning", "plot_value_population",
           "plot_receptive_field", "plot_rf_centres", "plot_mei", "plot_performance", "angle_cmap",
           "angle_colorscale", "angle_colour"]

@functools.cache
def angle_cmap() -> tuple[str, ...]:
    """The one colour map for angles (directions, orientations) in every plot, Bokeh and Plotly alike: colorcet's
    cyclic CET_C6 (0° and 360° get the same colour), as hex colours (a Bokeh palette)."""
    import colorcet  # here, not at the top: it loads matplotlib (~1.5 s), which runs without plots should not pay

    return tuple(colorcet.CET_C6)


def angle_colorscale() -> list[list[Any]]:
    """:func:`angle_cmap` as a Plotly colour scale."""
    cmap = angle_cmap()
    return [[i / (len(cmap) - 1), c] for i, c in enumerate(cmap)]

#: Readers' names of the per-unit indices the population plots show.
INDEX_LABELS = {"gosi": "global OSI", "gdsi": "global DSI", "osi": "OSI", "dsi": "DSI",
                "pref_dir": "preferred direction (°)"}


def angle_colour(angle_deg: float, period: float = 360.0) -> str:
    """The colour of an angle on :func:`angle_cmap` (``period`` 180 for orientations)."""
    cmap = angle_cmap()
    return cmap[int(round((float(angle_deg) % period) / period * len(cmap))) % len(cmap)]


@functools.cache
def hv_bokeh() -> Any:
    """holoviews with the bokeh backend registered (once per process), so bokeh options can be applied."""
    import holoviews as hv  # here, not at the top: see the module docstring (a batch worker never plots)
    import holoviews.plotting.bokeh  # noqa: F401  (registers the backend; see the module docstring for why here)

    if hv.Store.current_backend != "bokeh" and not hv.Store.renderers.get(hv.Store.current_backend):
        hv.Store.set_current_backend("bokeh")
    return hv


def _unit_sel(ds: xr.Dataset, unit: int) -> xr.Dataset:
    if int(unit) not in set(ds["unit"].values.tolist()):
        raise ValueError(f"unit {unit} is not in this Dataset (readout ids {ds['unit'].values[:10].tolist()}…)")
    return ds.sel(unit=int(unit))


def plot_direction_tuning(ds: xr.Dataset, unit: int, polar: bool = True) -> Any:
    """Tuning curve of one unit with its bi-von-Mises fit: polar (default) or linear, plus response traces."""
    hv = hv_bokeh()
    u = _unit_sel(ds, unit)
    d = ds["direction"].values
    y = u["tuning"].values
    fine = np.linspace(0, 360, 361)
    fit = bivonmises(np.radians(fine), np.radians(float(u["fit_mu"])), float(u["fit_kappa"]), float(u["fit_phi"]),
                     float(u["fit_amplitude"]), float(u["fit_baseline"]))
    title = (f"unit {unit}: pref {float(u['pref_dir']):.0f}°, OSI {float(u['osi']):.2f}, DSI {float(u['dsi']):.2f}, "
             f"gOSI {float(u['gosi']):.2f}, gDSI {float(u['gdsi']):.2f}")
    if polar:
        def xy(a, r):
            return np.c_[r * np.cos(np.radians(a)), r * np.sin(np.radians(a))]
        dd = np.r_[d, d[:1]]
        yy = np.r_[y, y[:1]]
        rmax = float(np.nanmax(np.r_[yy, fit])) * 1.1  # the fit is NaN in provisional (streamed) results
        ring = hv.Curve(xy(fine, np.full_like(fine, rmax / 2)), "x", "y").opts(color="lightgrey", line_dash="dotted")
        pts = hv.Scatter(xy(dd, yy), "x", "y").opts(size=6, color="black")
        curve = hv.Curve(xy(dd, yy), "x", "y", label="measured").opts(color="black")
        fitc = hv.Curve(xy(fine, fit), "x", "y", label="bi-von-Mises").opts(color="crimson")
        pref = hv.Curve(xy([float(u["pref_dir"])] * 2, np.array([0, rmax])), "x", "y").opts(color="crimson",
                                                                                          line_dash="dashed")
        main = (ring * curve * pts * fitc * pref).opts(
            title=title, width=420, height=420, xlim=(-rmax, rmax), ylim=(-rmax, rmax), xlabel="rightward",
            ylabel="upward", data_aspect=1, fontsize={"title": 9})
    else:
        main = (hv.Curve((d, y), "direction (°)", "response", label="measured").opts(color="black")
                * hv.Scatter((d, y), "direction (°)", "response").opts(size=6, color="black")
                * hv.Curve((fine, fit), "direction (°)", "response", label="bi-von-Mises").opts(color="crimson")
                ).opts(title=title, width=520, height=320, fontsize={"title": 9})
    if "response" not in ds:
        return main
    traces = hv.NdOverlay({float(a): hv.Curve((ds["time"].values, u["response"].sel(direction=a).values),
                                              "time (s)", "response").opts(line_width=1, color=angle_colour(a))
                           for a in d}, kdims="direction").opts(width=420, height=260, show_legend=False,
                                                                title="responses by direction (colour: direction)")
    return (main + traces).cols(2)


#: (index, value range, bins) of each population histogram of a direction tuning, in order (notebooks and the app)
TUNING_HISTOGRAMS: tuple[tuple[str, tuple[float, float], int], ...] = (
    ("gosi", (0.0, 1.0), 20), ("gdsi", (0.0, 1.0), 20), ("osi", (-0.2, 1.0), 24), ("dsi", (-0.2, 1.0), 24),
    ("pref_dir", (0.0, 360.0), 24))


def index_histogram(ds: xr.Dataset, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(counts, bin edges) of the finite values of the tuning index ``key`` (one of :data:`TUNING_HISTOGRAMS`)."""
    value_range, bins = next((r, n) for k, r, n in TUNING_HISTOGRAMS if k == key)
    v = np.asarray(ds[key].values, float)
    return np.histogram(v[np.isfinite(v)], bins=bins, range=value_range)


def plot_tuning_population(ds: xr.Dataset) -> Any:
    """Population histograms of gOSI, gDSI, OSI, DSI and the preferred direction."""
    hv = hv_bokeh()
    panels = []
    for k, _range, _bins in TUNING_HISTOGRAMS:
        freq, edges = index_histogram(ds, k)
        panels.append(hv.Histogram((edges, freq), kdims=[INDEX_LABELS[k]], vdims=["neurons"]).opts(
            width=260, height=200, title=INDEX_LABELS[k]))
    return hv.Layout(panels).cols(3)

_DIMS = ("sf", "tf", "contrast", "diameter", "outer_diameter")


def _value_dim(ds: xr.Dataset) -> str:
    for d in _DIMS:
        if d in ds.dims:
            return d
    raise ValueError(f"not an SF/TF/contrast/size tuning Dataset (dims {list(ds.dims)})")


def plot_value_tuning(ds: xr.Dataset, unit: int) -> Any:
    """One unit's SF / TF / contrast / size tuning curve (log x axis except size) with its fit and grey level."""
    hv = hv_bokeh()
    dim = _value_dim(ds)
    if int(unit) not in set(ds["unit"].values.tolist()):
        raise ValueError(f"unit {unit} is not in this Dataset")
    u = ds.sel(unit=int(unit))
    x = ds[dim].values
    y = u["tuning"].values
    label = {"sf": "spatial frequency (cycles/°)", "tf": "temporal frequency (Hz)", "contrast": "contrast",
             "diameter": "aperture diameter (°)", "outer_diameter": "surround outer diameter (°)"}[dim]
    layers = [hv.Curve((x, y), label, "response", label="measured").opts(color="black"),
              hv.Scatter((x, y), label, "response").opts(color="black", size=6),
              hv.HLine(float(u["baseline"])).opts(color="grey", line_dash="dotted")]
    fine = np.geomspace(x.min(), x.max(), 200)
    title = f"unit {unit}"
    if dim in ("sf", "tf") and np.isfinite(float(u[f"pref_{dim}"])):
        p = float(u[f"pref_{dim}"])
        fit = float(u[f"{dim}_baseline"]) + float(u[f"{dim}_amplitude"]) * np.exp(
            -((np.log2(fine) - np.log2(p)) ** 2) / (2 * float(u[f"{dim}_sigma_oct"]) ** 2))
        layers.append(hv.Curve((fine, fit), label, "response", label="log-Gaussian").opts(color="crimson"))
        title += f": preferred {p:.3g}"
    elif dim == "contrast" and np.isfinite(float(u["c50"])):
        fit = naka_rushton(fine, float(u["r0"]), float(u["rmax"]), float(u["c50"]), float(u["n"]))
        layers.append(hv.Curve((fine, fit), label, "response", label="Naka–Rushton").opts(color="crimson"))
        title += f": c50 {float(u['c50']):.2f}, n {float(u['n']):.1f}"
    elif dim == "diameter":
        title += f": preferred {float(u['pref_size']):.0f}°, SI {float(u['si']):.2f}"
    elif dim == "outer_diameter":
        title += f": surround SI {float(u['surround_si']):.2f}"
    return hv.Overlay(layers).opts(title=title, width=460, height=300, logx=dim in ("sf", "tf", "contrast"))


def plot_value_population(ds: xr.Dataset) -> Any:
    """Population histogram of the experiment's main per-unit number (pref SF/TF, c50 or SI)."""
    hv = hv_bokeh()
    dim = _value_dim(ds)
    key = {"sf": "pref_sf", "tf": "pref_tf", "contrast": "c50", "diameter": "si", "outer_diameter": "surround_si"}[dim]
    v = ds[key].values
    v = v[np.isfinite(v)]
    if dim in ("sf", "tf"):
        v = np.log2(v)
        key = f"log2 {key}"
    freq, edges = np.histogram(v, bins=20)
    return hv.Histogram((edges, freq), kdims=[key], vdims=["units"]).opts(width=360, height=240, title=key)

def _ellipse(az0: float, el0: float, s1: float, s2: float, ang: float, k: float = 2.0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 100)
    a = np.radians(ang)
    u, v = k * s1 * np.cos(t), k * s2 * np.sin(t)
    return np.c_[az0 + u * np.cos(a) - v * np.sin(a), el0 + u * np.sin(a) + v * np.cos(a)]


def plot_receptive_field(ds: xr.Dataset, unit: int, polarities: tuple[str, ...] = POLARITIES) -> Any:
    """STA heatmaps in degrees (one per polarity) with the fitted 2-σ ellipse and centre."""
    hv = hv_bokeh()
    if int(unit) not in set(ds["unit"].values.tolist()):
        raise ValueError(f"unit {unit} is not in this Dataset")
    u = ds.sel(unit=int(unit))
    panels = []
    for pol in polarities:
        if pol not in POLARITIES:
            raise ValueError(f"polarity must be among {POLARITIES}, got {pol!r}")
        p = u.sel(polarity=pol)
        mesh = hv.QuadMesh((ds["az"].values, ds["el"].values, p["sta"].values), ["azimuth (°)", "elevation (°)"],
                           "STA").opts(cmap="RdBu_r" if pol != "on_off" else "viridis", colorbar=True,
                                       width=380, height=260, title=f"unit {unit}: {pol}", tools=["hover"])
        layer = mesh
        if np.isfinite(float(p["rf_az"])):
            ell = _ellipse(float(p["rf_az"]), float(p["rf_el"]), float(p["rf_sigma_major"]),
                           float(p["rf_sigma_minor"]), float(p["rf_angle"]))
            layer = (mesh * hv.Curve(ell, "azimuth (°)", "elevation (°)").opts(color="white", line_width=2)
                     * hv.Scatter([(float(p["rf_az"]), float(p["rf_el"]))], "azimuth (°)", "elevation (°)")
                     .opts(color="white", marker="x", size=10))
        panels.append(layer)
    return hv.Layout(panels).cols(3)


def plot_rf_centres(ds: xr.Dataset, polarity: str = "on_off") -> Any:
    """Fitted RF centres of all units on the monitor, with the screen outline."""
    hv = hv_bokeh()
    p = ds.sel(polarity=polarity)
    az, el = p["rf_az"].values, p["rf_el"].values
    left, right, bottom, top = DEFAULT_MONITOR.extent_deg
    outline = hv.Curve([(left, bottom), (right, bottom), (right, top), (left, top), (left, bottom)],
                       "azimuth (°)", "elevation (°)").opts(color="grey")
    pts = hv.Scatter((az, el), "azimuth (°)", "elevation (°)").opts(size=4, alpha=0.6)
    return (outline * pts).opts(title=f"RF centres ({polarity})", width=500, height=320)

def plot_mei(ds: xr.Dataset, unit: int | None = None, variant: int = 0, frame: int | None = None):
    """HoloViews layout: the MEI in degrees (grey, 0–255) next to its activation over optimisation steps.
    ``unit`` is a readout id (default: the first); video MEIs show ``frame`` (default: most contrast energy)."""
    hv = hv_bokeh()
    if "mei" not in ds or "activation" not in ds:
        raise ValueError("dataset lacks 'mei'/'activation'; pass the output of twin_explorer.experiments.mei.mei()")
    units = ds["unit"].values
    unit = int(units[0]) if unit is None else int(unit)
    if unit not in units:
        raise ValueError(f"unit {unit} is not in this dataset; it holds units {units[:10].tolist()}")
    if not 0 <= variant < ds.sizes["variant"]:
        raise ValueError(f"variant must be in 0…{ds.sizes['variant'] - 1}, got {variant}")
    img = ds["mei"].sel(unit=unit).isel(variant=variant).values.astype(np.float32)
    if img.ndim == 3:
        if frame is None:
            frame = int(np.argmax(((img - 128.0) ** 2).sum(axis=(1, 2))))
        img = img[frame]
    az, el = ds["az"].values, ds["el"].values
    title = f"MEI unit {unit}" + (f" #{variant}" if ds.sizes["variant"] > 1 else "") + (
        f", frame {frame}" if frame is not None else "")
    mesh = hv.QuadMesh((az, el, img), kdims=["azimuth (°)", "elevation (°)"], vdims=["grey level"]).opts(
        cmap="gray", clim=(0, 255), width=480, height=300, colorbar=True, title=title, tools=["hover"],
        data_aspect=1)
    trace = ds["activation"].sel(unit=unit).isel(variant=variant)
    curve = hv.Curve((trace["step"].values, trace.values), "step", "activation").opts(
        width=300, height=300, title="objective during optimisation")
    control = float(ds["control_activation"].sel(unit=unit))
    ref = hv.HLine(control).opts(color="grey", line_dash="dashed")
    return (mesh + curve * ref).cols(2)


def plot_performance(ds: xr.Dataset) -> Any:
    """HoloViews layout: histogram of CC_norm and scatter of CC_abs against CC_max (with the y = x bound)."""
    hv = hv_bokeh()
    for name in ("cc_abs", "cc_max", "cc_norm"):
        if name not in ds:
            raise ValueError(f"dataset lacks {name!r}; pass the output of performance()")
    norm = ds["cc_norm"].values
    norm = norm[np.isfinite(norm)]
    edges = np.linspace(0, max(1.1, float(norm.max()) if norm.size else 1.1), 31)
    counts, edges = np.histogram(norm, bins=edges)
    hist = hv.Histogram((edges, counts), kdims=["cc_norm"], vdims=["units"]).opts(
        title=f"CC_norm (median {np.median(norm):.2f})" if norm.size else "CC_norm", width=350, height=300)
    pts = hv.Scatter((ds["cc_max"].values, ds["cc_abs"].values, ds["unit"].values),
                     kdims=["cc_max"], vdims=["cc_abs", "unit"]).opts(
        size=4, alpha=0.6, tools=["hover"], width=350, height=300, title="CC_abs vs CC_max",
        xlim=(0, 1.02), ylim=(min(0.0, float(np.nanmin(ds["cc_abs"].values, initial=0.0))), 1.02))
    bound = hv.Curve(([0, 1], [0, 1]), "cc_max", "cc_abs").opts(color="grey", line_dash="dashed")
    return (hist + pts * bound).cols(2)
