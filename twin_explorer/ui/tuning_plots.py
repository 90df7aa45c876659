"""The tuning view's plots as plain Bokeh models made once per view and redrawn by replacing their data.

A tuning result used to be drawn as nine fresh HoloViews panes (polar, linear and per-direction response plots of the
focused neuron, five population histograms, the preferred-direction map): about 2 s of the server's event loop per
draw on 2 cores, for every provisional result of a streaming run and for every session showing it, while every
other session's page waited (three classroom tunings finished computing in 5 s and were shown after 15-23 s). Here a
draw only replaces the data of existing sources and a few titles and ranges, so no model is made and Bokeh never
re-walks the page's model graph.

* :class:`UnitPlots`: the focused neuron's tuning curve, polar and linear, with the bi-von-Mises fit, and its
  responses to each direction (when the result holds them);
* :class:`PopulationHistograms`: gOSI, gDSI, OSI, DSI and preferred-direction histograms;
* :class:`DirectionMap`: preferred direction over cortex, points (hover, click to focus) up to
  :data:`~.raster.MAX_POINTS` neurons, a binned circular-mean image above, the unmeasured neurons grey.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import panel as pn
from bokeh import events
from bokeh.models import (BoxZoomTool, ColorBar, ColumnDataSource, DataRange1d, GlyphRenderer, HoverTool, Image,
                          Legend, LegendItem, Line, LinearColorMapper, MultiLine, PanTool, Quad, Range1d, ResetTool,
                          SaveTool, Scatter, TapTool, WheelZoomTool)

from twin_explorer.experiments.fitting import bivonmises
from twin_explorer.experiments.plotting import (INDEX_LABELS, TUNING_HISTOGRAMS, angle_cmap, angle_colour,
                                                index_histogram)

from . import raster
from .response_plots import plain_plot

__all__ = ["UnitPlots", "PopulationHistograms", "DirectionMap"]
_FINE = np.linspace(0.0, 360.0, 361)


def _renderer(source: ColumnDataSource, glyph: Any, **kw: Any) -> GlyphRenderer:
    return GlyphRenderer(data_source=source, glyph=glyph, **kw)


def _legend(measured: GlyphRenderer, fit: GlyphRenderer) -> Legend:
    return Legend(items=[LegendItem(label="measured", renderers=[measured]),
                         LegendItem(label="bi-von-Mises", renderers=[fit])], orientation="horizontal",
                  border_line_alpha=0)


def _polar(angle_deg: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    a = np.radians(np.asarray(angle_deg, float))
    r = np.asarray(r, float)
    return {"x": r * np.cos(a), "y": r * np.sin(a)}


class UnitPlots:
    """One neuron's direction tuning: ``polar`` and ``linear`` curves with the fit, ``traces`` its responses by
    direction (hidden when a result holds no responses). ``panes`` are the three Panel panes."""

    def __init__(self) -> None:
        tools = lambda: [PanTool(), WheelZoomTool(), ResetTool(), SaveTool()]  # noqa: E731 (one set per plot)
        self.polar_ring, self.polar_data = ColumnDataSource({"x": [], "y": []}), ColumnDataSource({"x": [], "y": []})
        self.polar_fit, self.polar_pref = ColumnDataSource({"x": [], "y": []}), ColumnDataSource({"x": [], "y": []})
        self.polar, _ = plain_plot("", "rightward", "upward", 450, tools(), Range1d(-1, 1), Range1d(-1, 1),
                                   grid=True, width=420, sizing_mode="fixed", match_aspect=True)
        self.polar.title.text_font_size = "9pt"
        measured = _renderer(self.polar_data, Line(x="x", y="y", line_color="black", line_width=2))
        fit = _renderer(self.polar_fit, Line(x="x", y="y", line_color="crimson", line_width=2))
        self.polar.renderers += [
            _renderer(self.polar_ring, Line(x="x", y="y", line_color="lightgrey", line_dash="dotted")), measured,
            _renderer(self.polar_data, Scatter(x="x", y="y", size=6, fill_color="black", line_color="black")), fit,
            _renderer(self.polar_pref, Line(x="x", y="y", line_color="crimson", line_dash="dashed"))]
        self.polar.add_layout(_legend(measured, fit), "below")  # inside, it covered the curve

        self.linear_data = ColumnDataSource({"direction": [], "response": []})
        self.linear_fit = ColumnDataSource({"direction": [], "response": []})
        self.linear, _ = plain_plot("", "direction (°)", "response", 340, tools(), Range1d(0, 360), DataRange1d(),
                                    grid=True, width=520, sizing_mode="fixed")
        self.linear.title.text_font_size = "9pt"
        measured = _renderer(self.linear_data, Line(x="direction", y="response", line_color="black", line_width=2))
        fit = _renderer(self.linear_fit, Line(x="direction", y="response", line_color="crimson", line_width=2))
        self.linear.renderers += [measured, _renderer(self.linear_data, Scatter(
            x="direction", y="response", size=6, fill_color="black", line_color="black")), fit]
        self.linear.add_layout(_legend(measured, fit), "below")

        self.trace_source = ColumnDataSource({"xs": [], "ys": [], "color": [], "direction": []})
        lines = _renderer(self.trace_source, MultiLine(xs="xs", ys="ys", line_color="color", line_width=1))
        hover = HoverTool(renderers=[lines], tooltips=[("direction (°)", "@direction{0}"), ("time (s)", "$x{0.00}"),
                                                       ("response", "$y{0.000}")])
        self.traces, _ = plain_plot("responses by direction (colour: direction)", "time (s)", "response", 260,
                                    [*tools(), hover], DataRange1d(), DataRange1d(), grid=True, width=420,
                                    sizing_mode="fixed")
        self.traces.renderers.append(lines)
        # shown and hidden through a Column: setting ``visible`` on a Bokeh pane of a served page makes Panel copy
        # the model's stylesheets back into the pane, which refuses them (TypeError, the draw lost)
        # (shown from the start, as a grating tuning's result has responses: a ``visible`` change costs the browser
        # a layout of the whole page)
        self.panes = [pn.pane.Bokeh(self.polar), pn.Column(pn.pane.Bokeh(self.traces)), pn.pane.Bokeh(self.linear)]

    def show(self, ds: Any, unit: int) -> None:
        """Draw neuron ``unit`` of the tuning result ``ds`` (the fit is NaN in provisional results: no fit line)."""
        u = ds.sel(unit=int(unit))
        d = np.asarray(ds["direction"].values, float)
        y = np.asarray(u["tuning"].values, float)
        params = [float(u[f"fit_{k}"]) for k in ("mu", "kappa", "phi", "amplitude", "baseline")]
        fit = bivonmises(np.radians(_FINE), np.radians(params[0]), *params[1:])
        title = (f"unit {unit}: pref {float(u['pref_dir']):.0f}°, OSI {float(u['osi']):.2f}, DSI "
                 f"{float(u['dsi']):.2f}, gOSI {float(u['gosi']):.2f}, gDSI {float(u['gdsi']):.2f}")
        closed_d, closed_y = np.r_[d, d[:1]], np.r_[y, y[:1]]
        finite = np.r_[closed_y, fit][np.isfinite(np.r_[closed_y, fit])]
        rmax = float(np.max(np.abs(finite))) * 1.1 if finite.size and np.max(np.abs(finite)) > 0 else 1.0
        self.polar_ring.data = _polar(_FINE, np.full_like(_FINE, rmax / 2))
        self.polar_data.data = _polar(closed_d, closed_y)
        self.polar_fit.data = _polar(_FINE, fit)
        self.polar_pref.data = _polar([float(u["pref_dir"])] * 2, [0.0, rmax])
        self.polar.x_range.update(start=-rmax, end=rmax)
        self.polar.y_range.update(start=-rmax, end=rmax)
        self.polar.title.text = title
        self.linear_data.data = {"direction": d, "response": y}
        self.linear_fit.data = {"direction": _FINE, "response": fit}
        self.linear.title.text = title
        has_traces = "response" in ds
        if has_traces:
            t = np.asarray(ds["time"].values, float)
            r = np.asarray(u["response"].transpose("direction", ...).values, float)
            self.trace_source.data = {"xs": [t] * len(d), "ys": list(r), "color": [angle_colour(a) for a in d],
                                      "direction": d}
        self.panes[1].visible = has_traces


class PopulationHistograms:
    """Histograms of the population's tuning indices, one fixed-size plot each (``panes``)."""

    def __init__(self, size: tuple[int, int] = (300, 240)) -> None:
        self.sources: dict[str, ColumnDataSource] = {}
        self.plots: dict[str, Any] = {}
        for key, (lo, hi), _bins in TUNING_HISTOGRAMS:
            source = ColumnDataSource({"left": [], "right": [], "top": []})
            hover = HoverTool(tooltips=[(INDEX_LABELS[key], "@left{0.00} – @right{0.00}"), ("neurons", "@top")])
            plot, _ = plain_plot(INDEX_LABELS[key], INDEX_LABELS[key], "neurons", size[1],
                                 [PanTool(), WheelZoomTool(), ResetTool(), SaveTool(), hover], Range1d(lo, hi),
                                 DataRange1d(start=0), grid=True, width=size[0], sizing_mode="fixed")
            plot.renderers.append(_renderer(source, Quad(left="left", right="right", top="top", bottom=0,
                                                         fill_color="#30a2da", line_color="white")))
            self.sources[key], self.plots[key] = source, plot
        self.panes = [pn.pane.Bokeh(p) for p in self.plots.values()]

    def show(self, ds: Any) -> None:
        """Count ``ds``'s finite values of each index into its bins."""
        for key in self.sources:
            counts, edges = index_histogram(ds, key)
            self.sources[key].data = {"left": edges[:-1], "right": edges[1:], "top": counts}


class DirectionMap:
    """Preferred direction over cortical position: the measured neurons coloured by direction on the cyclic map
    (faint below the inclusion thresholds), the others grey; a binned image above :data:`~.raster.MAX_POINTS`
    measured neurons. A click calls ``on_click(x, y)`` (the view focuses the nearest neuron)."""

    def __init__(self, on_click: Callable[[float, float], None], width: int = 460, height: int = 420) -> None:
        self._on_click = on_click
        self.mapper = LinearColorMapper(palette=list(angle_cmap()), low=0.0, high=360.0, nan_color=(0, 0, 0, 0))
        self.others = ColumnDataSource({"x_um": [], "y_um": []})
        self.points = ColumnDataSource({"x_um": [], "y_um": [], "pref_dir": [], "gdsi": [], "unit": [],
                                        "opacity": []})
        self.image = ColumnDataSource({"image": [], "x": [], "y": [], "dw": [], "dh": []})
        background = _renderer(self.others, Scatter(x="x_um", y="y_um", size=4, fill_color="lightgrey",
                                                    line_color=None, fill_alpha=0.6))
        self.point_glyph = Scatter(x="x_um", y="y_um", size=6, line_color=None, fill_alpha="opacity",
                                   fill_color={"field": "pref_dir", "transform": self.mapper})
        measured = _renderer(self.points, self.point_glyph)
        self.binned = _renderer(self.image, Image(image="image", x="x", y="y", dw="dw", dh="dh",
                                                  color_mapper=self.mapper), visible=False)
        tips = [("neuron", "@unit"), ("preferred direction (°)", "@pref_dir{0}"), ("gDSI", "@gdsi{0.00}")]
        hover = HoverTool(renderers=[measured], tooltips=tips)
        self.plot, _ = plain_plot("Preferred direction over cortex", "x (µm)", "y (µm)", height,
                                  [TapTool(), PanTool(), WheelZoomTool(), BoxZoomTool(), ResetTool(), SaveTool(),
                                   hover], DataRange1d(), DataRange1d(), grid=True, width=width, sizing_mode="fixed",
                                  match_aspect=True)
        self.plot.renderers += [background, self.binned, measured]
        self.plot.add_layout(ColorBar(color_mapper=self.mapper, title="preferred direction (°)", width=12), "right")
        self.plot.on_event(events.Tap, self._tap)
        # a Column: see UnitPlots.panes; shown until cleared (it lives inside the view's hidden results column)
        self.pane = pn.Column(pn.pane.Bokeh(self.plot))

    def _tap(self, event: Any) -> None:
        if getattr(event, "x", None) is not None and getattr(event, "y", None) is not None:
            self._on_click(float(event.x), float(event.y))

    def show(self, xy: np.ndarray, pref_dir: np.ndarray, gdsi: np.ndarray, ids: Sequence[int], alpha: np.ndarray,
             others: np.ndarray, total: int) -> bool:
        """Draw the measured neurons at ``xy`` [n, 2] and the unmeasured ones at ``others`` [m, 2]; True when
        binned (more than :data:`~.raster.MAX_POINTS` measured)."""
        n = len(ids)
        self.others.data = {"x_um": others[:, 0], "y_um": others[:, 1]}
        binned = n > raster.MAX_POINTS
        if binned:
            image, ex, ey = raster.binned_map(xy[:, 0], xy[:, 1], np.asarray(pref_dir, float), period=360.0)
            self.image.data = {"image": [image.astype(np.float32)], "x": [ex[0]], "y": [ey[0]],
                               "dw": [ex[-1] - ex[0]], "dh": [ey[-1] - ey[0]]}
            self.points.data = {k: [] for k in self.points.data}
        else:
            self.points.data = {"x_um": xy[:, 0], "y_um": xy[:, 1], "pref_dir": np.asarray(pref_dir, float),
                                "gdsi": np.asarray(gdsi, float), "unit": np.asarray(ids), "opacity": alpha}
            self.point_glyph.size = 6 if n > 50 else 9
        self.binned.visible = binned
        self.plot.title.text = (f"Preferred direction over cortex ({n}/{total}{', binned' if binned else ''}; "
                                "click a neuron)")
        self.pane.visible = True
        return binned

    def clear(self) -> None:
        self.pane.visible = False
