"""The receptive-field view: on/off STA maps of the focused neuron with the fitted ellipse, in degrees
over the screen, and the population's RF centres over the screen coloured by visual area.

The dot-mapping experiment (``twin_explorer.experiments.receptive_fields``) runs in a worker thread
with progress and Cancel; results are cached per twin and parameters.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import panel as pn
import param

from twin_explorer.engine.contract import TwinLike
from twin_explorer.experiments import plot_receptive_field, receptive_fields
from twin_explorer.monitor import DEFAULT_MONITOR

from .experiment import ExperimentView, job_progress, split_layout
from . import raster
from .reliability import opacity, reliability_lines
from .state import ExplorerState, deferred, plot_pane, twin_truth
from .tasks import Job


class ReceptiveFieldView(ExperimentView):
    """Receptive fields mapped with flashing dots; usable alone: ``ReceptiveFieldView(twin)``, ``.run(wait=True)``."""

    spacing_deg = param.Number(default=10.0, bounds=(3.0, 30.0), step=1.0, label="Dot spacing (°)",
                               doc="Dot grid spacing (degrees).")
    dot_s = param.Number(default=0.2, bounds=(0.1, 1.0), step=0.05, label="Dot duration (s)",
                         doc="Time each dot is shown (s).")
    repeats = param.Integer(default=1, bounds=(1, 5), label="Repeats", doc="Presentations of each dot.")

    kind, label = "receptive_fields", "Receptive fields"

    def __init__(self, twin: TwinLike | None = None, state: ExplorerState | None = None, **params: Any) -> None:
        super().__init__(twin, state, **params)
        self.run_button = pn.widgets.Button(label="Map receptive fields", color="primary", width=180)
        self.run_button.on_click(lambda _e: self.run())
        self.controls = pn.Param(self, parameters=["spacing_deg", "dot_s", "repeats", "scope"],
                                 widgets={p: {"throttled": True} for p in ("spacing_deg", "dot_s")},
                                 show_name=False, width=300)
        self.unit_pane = pn.Column()  # stacked: two maps side by side were clipped at the right edge at 1280 px
        self.centres = plot_pane(None)
        self.summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.hint = pn.pane.Markdown("Press **Map receptive fields** to flash dots over the screen and compute "
                                     "spike-triggered averages.")
        self._tap = hv.streams.Tap(x=None, y=None)
        self._tap.add_subscriber(self._on_tap)
        self.state.param.watch(deferred(self._show_unit), "unit")
        self.state.param.watch(lambda _e: self._load_cached(), "twin")
        self._load_cached()

    def experiment_params(self) -> dict[str, Any]:
        return {"spacing_deg": float(self.spacing_deg), "dot_s": float(self.dot_s), "repeats": int(self.repeats),
                "units": self.scoped_units()}

    def compute(self, twin: TwinLike, params: dict[str, Any], job: Job) -> Any:
        return receptive_fields(twin, **params, batch_size=1, show_progress=False, cancel=job.cancel_event,
                                progress=job_progress(job, "chunk"))

    def clear_result(self) -> None:
        super().clear_result()
        self.unit_pane[:], self.centres.object, self.summary.object = [], None, ""
        self.hint.visible = True

    def show_result(self, ds: Any) -> None:
        if ds.sizes.get("unit", 0) == self.state.twin.n_units:
            self.state.rfs = ds
        self.hint.visible = False
        self.centres.object = self._centre_map(ds)
        self._show_unit()

    def _show_unit(self) -> None:
        ds, unit = self.result, self.state.unit
        if ds is None or unit is None:
            return
        if unit not in ds["unit"].values:
            self.summary.object = f"Neuron {unit} was not mapped; choose *all neurons* or select it and rerun."
            return
        self.unit_pane[:] = [plot_pane(p) for p in split_layout(plot_receptive_field(ds, unit), (380, 260))]
        u = ds.sel(unit=unit, polarity="on_off")
        lines = [f"#### Neuron {unit}", "| | twin (in silico) |", "|---|---|"]
        for label, key in (("centre azimuth (°)", "rf_az"), ("centre elevation (°)", "rf_el"),
                           ("σ major (°)", "rf_sigma_major"), ("σ minor (°)", "rf_sigma_minor"), ("fit R²", "rf_r2"),
                           ("SSI", "ssi")):
            if key in u:
                lines.append(f"| {label} | {float(u[key]):.3g} |")
        truth = twin_truth(self.state.twin)
        if truth is not None and unit in truth.index and "rf_az_deg" in truth.columns:
            lines.append(f"\nGround truth centre: ({truth.loc[unit, 'rf_az_deg']:.1f}°, "
                         f"{truth.loc[unit, 'rf_el_deg']:.1f}°)")
        lines += reliability_lines(self.state.twin, unit)
        self.summary.object = "\n".join(lines)

    def _centre_map(self, ds: Any) -> Any:
        p = ds.sel(polarity="on_off")
        ids = ds["unit"].values
        table = self.state.table
        area = table.loc[ids, "area"].astype(str).to_numpy() if "area" in table.columns else np.full(len(ids), "?")
        az, el = p["rf_az"].values, p["rf_el"].values
        ok = np.isfinite(az) & np.isfinite(el)
        left, right, bottom, top = DEFAULT_MONITOR.extent_deg
        outline = hv.Curve([(left, bottom), (right, bottom), (right, top), (left, top), (left, bottom)],
                           "azimuth (°)", "elevation (°)").opts(color="grey")
        alpha = 0.8 * opacity(self.state.twin, ids[ok])  # neurons below the paper's inclusion thresholds drawn faint
        faint = " (faint: below the paper's inclusion thresholds)" if (alpha < 0.8).any() else ""
        if ok.sum() <= raster.MAX_POINTS:
            pts = hv.Points({"azimuth (°)": az[ok], "elevation (°)": el[ok], "area": area[ok], "unit": ids[ok],
                             "opacity": alpha}, ["azimuth (°)", "elevation (°)"], ["area", "unit", "opacity"]).opts(
                color="area", cmap="Category10", size=6, alpha="opacity", tools=["hover", "tap"],
                legend_position="bottom")
            title = f"RF centres over the screen by area (click a neuron{faint})"
        else:  # tens of thousands of centres: a density image (a click still picks the nearest neuron)
            pts = raster.neuron_map(az[ok], el[ok], "azimuth (°)", "elevation (°)", cmap="Blues", colorbar=True,
                                    clabel="neurons per bin")
            title = f"RF centres over the screen: {int(ok.sum())} neurons, binned (click a neuron)"
        self._tap.source = pts
        self._centres = np.c_[az[ok], el[ok]], ids[ok]
        # the frame's width fixed and the legend below: with data_aspect=1 a fixed width and height grew the figure
        # past a 1280 px window
        return (outline * pts).opts(title=title, frame_width=420, data_aspect=1)

    def _on_tap(self, x: float | None = None, y: float | None = None) -> None:
        if hasattr(self, "_centres"):
            self.state.focus_nearest(*self._centres, x, y)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.Column(self.controls, self.run_button, self.runner, self.summary, width=320),
            pn.Column(self.hint, self.unit_pane, self.centres, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
