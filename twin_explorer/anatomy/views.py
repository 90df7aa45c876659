"""Plots of the anatomy: soma map, side view with layer bands, 3-D skeleton with synapses, like-to-like curves.

Plain functions returning HoloViews objects (bokeh backend) or, for 3-D morphology, a plotly Figure; the UI
wraps them in Panel components. Direction-like colours use a cyclic colour map.
"""

from __future__ import annotations

from typing import Any

import colorcet
import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  registers the bokeh plotting options without a notebook extension
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from .coords import DepthFrame
from .swc import COMPARTMENTS, Skeleton

COMPARTMENT_COLORS = {0: "#999999", 1: "#000000", 2: "#1f77b4", 3: "#d62728", 4: "#ff7f0e"}
#: One cyclic colour map for angles everywhere, the same as experiments.plotting.angle_cmap(): colorcet's CET_C6, as a
#: Bokeh palette and as the equivalent Plotly colour scale.
CYCLIC_CMAP: list[str] = list(colorcet.CET_C6)
CYCLIC_PLOTLY: list[list[Any]] = [[i / (len(CYCLIC_CMAP) - 1), c] for i, c in enumerate(CYCLIC_CMAP)]


def _is_cyclic(column: str) -> bool:
    c = column.lower()
    return "dir" in c or "ori" in c


def soma_map(neurons: pd.DataFrame, color: str = "pref_dir", view: str = "top", size: float = 6,
             title: str | None = None) -> hv.Points:
    """Somata coloured by ``color`` (numeric: continuous map, cyclic for directions/orientations; text:
    categories). view 'top' = x against z (µm), 'side' = x against depth (pia at the top)."""
    if view not in ("top", "side"):
        raise ValueError(f"view must be 'top' or 'side', got {view!r}")
    ydim = "z_um" if view == "top" else "depth_um"
    for c in ("x_um", ydim, color):
        if c not in neurons.columns:
            raise ValueError(f"neurons table has no column {c!r}; columns: {list(neurons.columns)}")
    df = neurons.reset_index()
    df = df[df["x_um"].notna() & df[ydim].notna()]
    hover = [c for c in ("readout_id", "nucleus_id", "cell_type", "area", "layer", "match") if c in df.columns]
    vdims = [color] + [c for c in hover if c != color]
    pts = hv.Points(df, kdims=["x_um", ydim], vdims=vdims)
    numeric = pd.api.types.is_numeric_dtype(df[color])
    if numeric:
        cmap = CYCLIC_CMAP if _is_cyclic(color) else "viridis"
        opts: dict[str, Any] = dict(color=color, cmap=cmap, colorbar=True)
        if _is_cyclic(color):
            opts["clim"] = (0, 180 if "ori" in color.lower() else 360)
    else:
        opts = dict(color=color, cmap="Category10", legend_position="right")
    return pts.opts(size=size, tools=["hover", "tap"], width=520, height=420, invert_yaxis=view == "side",
                    xlabel="x (µm)", ylabel="z (µm)" if view == "top" else "depth below pia (µm)",
                    title=title or f"somata coloured by {color}", **opts)


def layer_bands(frame: DepthFrame, x_range: tuple[float, float]) -> hv.Overlay:
    """Alternating shaded bands for the layers with their names at the left edge."""
    items: list[hv.Element] = []
    for k, (name, top, bottom) in enumerate(frame.layers):
        items.append(hv.HSpan(top, bottom).opts(color="#000000", alpha=0.05 if k % 2 == 0 else 0.0, line_alpha=0))
        items.append(hv.HLine(top).opts(color="#888888", line_dash="dotted", line_width=1))
        items.append(hv.Text(x_range[0], (top + min(bottom, top + 400)) / 2, name, halign="left").opts(
            text_font_size="9pt", text_color="#555555"))
    return hv.Overlay(items)


def _synapse_points(synapses: pd.DataFrame, frame: DepthFrame, color: str) -> pd.DataFrame:
    xyz = frame.from_nm(synapses[["x_nm", "y_nm", "z_nm"]].to_numpy(float))
    df = synapses.assign(x_um=xyz[:, 0], depth_um=xyz[:, 1], z_um=xyz[:, 2])
    if color not in df.columns:
        df[color] = np.nan
    return df


def side_view(skeleton: Skeleton, frame: DepthFrame, synapses: pd.DataFrame | None = None,
              color: str = "pref_dir", title: str | None = None) -> hv.Overlay:
    """x against depth of one neuron (pia at the top) over layer bands; compartments in colour; synapses
    (``Anatomy.synapses`` joined with partner properties) coloured by ``color`` when given."""
    aligned = frame.from_nm(skeleton.xyz_nm)
    x, depth = aligned[:, 0], aligned[:, 1]
    pad = 60.0
    xr_ = (float(x.min() - pad), float(x.max() + pad))
    layers = [(n, t, b) for n, t, b in frame.layers if b > depth.min() - pad and t < depth.max() + pad]
    overlay = layer_bands(DepthFrame(frame.pia_point_um, frame.tilt_deg, tuple(layers) or frame.layers), xr_)
    e = skeleton.edges
    for comp in sorted(set(skeleton.compartment[e[:, 0]].tolist())):
        ee = e[skeleton.compartment[e[:, 0]] == comp]
        seg = pd.DataFrame({"x0": x[ee[:, 1]], "d0": depth[ee[:, 1]], "x1": x[ee[:, 0]], "d1": depth[ee[:, 0]]})
        overlay *= hv.Segments(seg, kdims=["x0", "d0", "x1", "d1"], label=COMPARTMENTS.get(comp, str(comp))).opts(
            color=COMPARTMENT_COLORS.get(comp, "#999999"), line_width=1.2)
    r = skeleton.root
    overlay *= hv.Points([(x[r], depth[r])], kdims=["x_um", "depth_um"], label="soma").opts(
        color="black", size=12, marker="triangle")
    if synapses is not None and len(synapses):
        df = _synapse_points(synapses, frame, color)
        vd = [color] + [c for c in ("direction", "partner_root_id", "readout_id") if c in df.columns]
        overlay *= hv.Points(df, kdims=["x_um", "depth_um"], vdims=vd, label="synapses").opts(
            color=color, cmap=CYCLIC_CMAP if _is_cyclic(color) else "viridis", size=4, colorbar=True,
            clim=(0, 360) if "dir" in color.lower() else (np.nan, np.nan), tools=["hover"],
            nonselection_alpha=0.2)
    return overlay.opts(width=480, height=560, invert_yaxis=True, xlabel="x (µm)", ylabel="depth below pia (µm)",
                        legend_position="bottom_right",
                        title=title or f"{skeleton.meta.get('cell_type', 'neuron')} {skeleton.meta.get('nucleus_id', '')}")


def skeleton_3d(skeleton: Skeleton, frame: DepthFrame | None = None, synapses: pd.DataFrame | None = None,
                color: str = "pref_dir", title: str | None = None) -> go.Figure:
    """A plotly 3-D view: one line trace per compartment (NaN-separated segments), the soma, and synapses as
    markers coloured by ``color`` (cyclic scale for directions; grey where unknown). Axes in µm; with a depth
    frame they are pia-aligned and depth points down."""
    def to_plot(nm: np.ndarray) -> np.ndarray:
        return frame.from_nm(nm) if frame is not None else nm / 1000.0

    fig = go.Figure()
    for comp in sorted(set(skeleton.compartment.tolist()) - {1}):
        seg = skeleton.segments(comp)
        if not len(seg):
            continue
        p = to_plot(seg)
        fig.add_trace(go.Scatter3d(x=p[:, 0], y=p[:, 2], z=p[:, 1], mode="lines", name=COMPARTMENTS.get(comp),
                                   line=dict(color=COMPARTMENT_COLORS.get(comp, "#999"), width=3),
                                   hoverinfo="name", connectgaps=False))
    s = to_plot(skeleton.xyz_nm[[skeleton.root]])
    fig.add_trace(go.Scatter3d(x=s[:, 0], y=s[:, 2], z=s[:, 1], mode="markers", name="soma",
                               marker=dict(size=8, color="black")))
    if synapses is not None and len(synapses):
        p = to_plot(synapses[["x_nm", "y_nm", "z_nm"]].to_numpy(float))
        val = synapses[color].to_numpy(float) if color in synapses.columns else np.full(len(p), np.nan)
        known = np.isfinite(val)
        text = [f"{d} partner {r}" for d, r in zip(synapses.get("direction", [""] * len(p)),
                                                   synapses.get("partner_root_id", [""] * len(p)))]
        text = np.asarray(text, dtype=object)
        if (~known).any():
            fig.add_trace(go.Scatter3d(x=p[~known, 0], y=p[~known, 2], z=p[~known, 1], mode="markers",
                                       name="synapses (partner untuned/unknown)", text=text[~known],
                                       marker=dict(size=2, color="#bbbbbb")))
        if known.any():
            cyclic = _is_cyclic(color)
            fig.add_trace(go.Scatter3d(
                x=p[known, 0], y=p[known, 2], z=p[known, 1], mode="markers", name=f"synapses ({color})",
                text=text[known], marker=dict(size=4, color=val[known], colorscale=CYCLIC_PLOTLY if cyclic else "Viridis",
                                              cmin=0 if cyclic else None, cmax=(180 if "ori" in color.lower() else 360)
                                              if cyclic else None, colorbar=dict(title=color))))
    z_title = "depth below pia (µm)" if frame is not None else "EM y (µm)"
    fig.update_layout(title=title or f"{skeleton.meta.get('cell_type', 'neuron')} {skeleton.meta.get('nucleus_id', '')}",
                      scene=dict(xaxis_title="x (µm)", yaxis_title="z (µm)", zaxis_title=z_title,
                                 zaxis=dict(autorange="reversed"), aspectmode="data"),
                      legend=dict(itemsizing="constant"), margin=dict(l=0, r=0, t=40, b=0))
    return fig


def plot_like_to_like(ds: xr.Dataset) -> hv.Layout:
    """Connection probability and mean synapse count per similarity bin, with CIs and the test results."""
    x = ds["bin_center"].values
    name = ds.attrs.get("similarity", "similarity")

    def panel(var: str, label: str) -> hv.Overlay:
        y, lo, hi = ds[var].values, ds[f"{var}_lo"].values, ds[f"{var}_hi"].values
        err = hv.ErrorBars((x, y, y - lo, hi - y), kdims=[name], vdims=[label, "neg", "pos"])
        curve = hv.Curve((x, y), name, label).opts(color="#1f77b4")
        return (curve * hv.Scatter((x, y), name, label).opts(size=7, color="#1f77b4") * err).opts(
            width=380, height=300)

    a = panel("p_connect", "connection probability").opts(
        title=f"logistic slope {ds.attrs['logistic_slope']:.2f} ± {ds.attrs['logistic_slope_se']:.2f}, "
              f"perm. p = {ds.attrs['p_value_connection']:.3g}")
    b = panel("mean_synapses", "synapses per pair").opts(title=f"perm. p = {ds.attrs['p_value_synapses']:.3g}")
    return (a + b).opts(shared_axes=False)


def plot_like_to_like_fit(result: Any) -> hv.Layout:
    """A :class:`~twin_explorer.anatomy.like_to_like.LikeToLikeResult`: synapses per mm of co-travel per similarity
    bin (exact Poisson CI), and each model term's effect as a rate ratio per SD with its confidence interval."""
    b, name = result.bins, result.similarity
    x, y = b["bin_center"].to_numpy(), b["density"].to_numpy()
    err = hv.ErrorBars((x, y, y - b["density_lo"].to_numpy(), b["density_hi"].to_numpy() - y),
                       kdims=[name], vdims=["synapses per mm co-travel", "neg", "pos"])
    curve = hv.Curve((x, y), name, "synapses per mm co-travel").opts(color="#1f77b4")
    density = (curve * hv.Scatter((x, y), name, "synapses per mm co-travel").opts(size=7, color="#1f77b4")
               * err).opts(width=380, height=300, title=f"{result.n_pre} axons ({result.axons}), {result.n_pairs} pairs")
    c = result.coefficients
    terms = list(c.index)
    rr, lo, hi = c["rate_ratio_per_sd"].to_numpy(), c["rr_ci_low"].to_numpy(), c["rr_ci_high"].to_numpy()
    pct = int(round(100 * result.confidence))
    forest = (hv.HLine(1.0).opts(color="#999999", line_dash="dashed")
              * hv.ErrorBars((terms, rr, rr - lo, hi - rr), kdims=["term"], vdims=["rate ratio per SD", "neg", "pos"])
              * hv.Scatter((terms, rr), "term", "rate ratio per SD").opts(size=8, color="#d62728")).opts(
        width=380, height=300,
        title=f"{name}: ×{c.loc[name, 'rate_ratio_per_sd']:.2f} per SD ({pct}% CI), p = {c.loc[name, 'p_value']:.2g}")
    return (density + forest).opts(shared_axes=False)
