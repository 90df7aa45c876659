"""The designer's response plots: the predicted population response (a neurons × time heatmap; a click on a row
reports that row) and the traces of the focused and selected neurons.

Plain Bokeh models whose data sources are updated in place: a redraw changes no model references, so Bokeh never
re-walks the page's model graph (HoloViews plots cost a walk plus ~50 ms per redraw). They are put together from
Bokeh's model classes rather than ``figure()``: one glyph per renderer and no grid under the heatmap's image (68 models
instead of 74, half of a new session's Bokeh models; 50 instead of 61 ms of CPU to make, median, loaded machine).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import panel as pn
from bokeh import events
from bokeh.core.properties import field
from bokeh.models import (BoxZoomTool, ColorBar, ColumnDataSource, DataRange1d, Grid, GlyphRenderer, HoverTool, Image,
                          Legend, LegendItem, LinearAxis, LinearColorMapper, MultiLine, PanTool, Plot, Range1d,
                          ResetTool, SaveTool, TapTool, Title, Toolbar, WheelZoomTool)
from bokeh.palettes import Category10_10, Viridis256

HEAT_TITLE = "Predicted population response"
_EMPTY_IMAGE = {"image": [np.zeros((1, 1), np.float32)], "x": [0.0], "y": [0.0], "dw": [1.0], "dh": [1.0]}
_NO_TRACES: dict[str, list] = {"xs": [], "ys": [], "unit": [], "label": [], "color": []}


def plain_plot(title: str, x_label: str, y_label: str, height: int, tools: list[Any], x_range: Any, y_range: Any,
               grid: bool, **plot: Any) -> tuple[Plot, LinearAxis]:
    """A plot with a title, two labelled axes, the toolbar above and grid lines if ``grid`` (stretch-width unless
    ``plot`` says otherwise, e.g. ``width=300, sizing_mode="fixed"``); returns it and its y axis."""
    plot = Plot(**{"height": height, "sizing_mode": "stretch_width", "x_range": x_range, "y_range": y_range,
                   "title": Title(text=title), "toolbar": Toolbar(tools=tools, logo=None), "toolbar_location": "above",
                   **plot})
    x_axis, y_axis = LinearAxis(axis_label=x_label), LinearAxis(axis_label=y_label)
    plot.add_layout(x_axis, "below")
    plot.add_layout(y_axis, "left")
    if grid:
        plot.add_layout(Grid(dimension=0, ticker=x_axis.ticker))
        plot.add_layout(Grid(dimension=1, ticker=y_axis.ticker))
    return plot, y_axis


class ResponsePlots:
    """The heatmap (``heatmap``) and traces (``traces``) panes; ``on_row(row)`` gets the heatmap row clicked (row 0
    at the top)."""

    def __init__(self, on_row: Callable[[int], None]) -> None:
        self._on_row = on_row
        self.heat_source = ColumnDataSource(data=dict(_EMPTY_IMAGE))
        self.heat_mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0)
        image = GlyphRenderer(data_source=self.heat_source, glyph=Image(
            image="image", x="x", y="y", dw="dw", dh="dh", color_mapper=self.heat_mapper))
        hover = HoverTool(renderers=[image], tooltips=[("time (s)", "$x{0.00}"), ("neuron (row)", "$y{0}"),
                                                       ("response", "@image{0.000}")])
        self.heat_fig, self._heat_y_axis = plain_plot(HEAT_TITLE, "time (s)", "neuron", 320,
                                                      [TapTool(), ResetTool(), SaveTool(), hover],
                                                      Range1d(0, 1), Range1d(0, 1), grid=False)
        self.heat_fig.renderers.append(image)
        self.heat_bar = ColorBar(color_mapper=self.heat_mapper, title="relative response", width=12)
        self.heat_fig.add_layout(self.heat_bar, "right")
        self.heat_fig.on_event(events.Tap, self.on_tap)

        self.trace_source = ColumnDataSource(data=dict(_NO_TRACES))
        lines = GlyphRenderer(data_source=self.trace_source, glyph=MultiLine(
            xs="xs", ys="ys", line_color="color", line_width=2))
        hover = HoverTool(renderers=[lines], tooltips=[("neuron", "@label"), ("time (s)", "$x{0.00}"),
                                                       ("response", "$y{0.000}")])
        self.trace_fig, _ = plain_plot("Selected neurons", "time (s)", "predicted response", 260,
                                       [PanTool(), WheelZoomTool(), BoxZoomTool(), ResetTool(), SaveTool(), hover],
                                       DataRange1d(), DataRange1d(), grid=True)
        self.trace_fig.renderers.append(lines)
        # one legend entry per distinct label (Bokeh groups a field-valued item by the column's values)
        self.trace_fig.add_layout(Legend(items=[LegendItem(label=field("label"), renderers=[lines])],
                                         location="top_left"), "right")

        self.heatmap = pn.pane.Bokeh(self.heat_fig, sizing_mode="stretch_width")
        self.traces = pn.pane.Bokeh(self.trace_fig, sizing_mode="stretch_width")

    def on_tap(self, event: Any) -> None:
        """A click on the heatmap: report the row under it (the y axis counts rows from the top)."""
        y = getattr(event, "y", None)
        rows = int(self.heat_source.data["dh"][0])
        if y is not None and rows > 0:
            self._on_row(int(np.clip(np.floor(y), 0, rows - 1)))

    def show_heat(self, z: np.ndarray, duration_s: float, y_label: str, normalised: bool) -> None:
        """Draw ``z`` (rows × time, row 0 on top) over ``duration_s`` seconds."""
        n = z.shape[0]
        self.heat_source.data = {"image": [np.ascontiguousarray(z, dtype=np.float32)], "x": [0.0], "y": [0.0],
                                 "dw": [duration_s], "dh": [float(n)]}
        self.heat_mapper.update(low=0.0, high=float(max(np.nanmax(z), 1e-9)) if z.size else 1.0)
        self.heat_fig.x_range.update(start=0.0, end=duration_s)
        self.heat_fig.y_range.update(start=float(n), end=0.0)
        self._heat_y_axis.axis_label = y_label
        self.heat_fig.title.text = HEAT_TITLE + (" (per-neuron max = 1)" if normalised else "")
        self.heat_bar.title = "relative response" if normalised else "response"

    def show_traces(self, t: np.ndarray, units: Sequence[Any], series: Sequence[np.ndarray]) -> None:
        """One line per unit (``series[i]`` over times ``t``), coloured in order."""
        self.trace_source.data = {
            "xs": [t] * len(units), "ys": list(series), "unit": [str(u) for u in units],
            "label": [f"unit {u}" for u in units], "color": [Category10_10[i % 10] for i in range(len(units))]}

    def clear(self) -> None:
        """Show no response."""
        self.heat_source.data = dict(_EMPTY_IMAGE)
        self.trace_source.data = dict(_NO_TRACES)
