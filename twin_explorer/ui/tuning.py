"""The tuning view: direction tuning of the focused neuron (polar and linear, with fit and indices),
population histograms, and the preferred-direction map over cortical position.

The population experiment (``twin_explorer.experiments.direction_tuning``) runs in a worker thread
with progress and Cancel; results are cached per twin and parameters.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import panel as pn
import param

from twin_explorer.experiments import direction_tuning, plot_direction_tuning, plot_tuning_population

from .state import ExplorerState
from .tasks import RESULTS, Job, TaskRunner


def split_layout(obj: Any, size: tuple[int, int] | None = None) -> list[Any]:
    """The panels of a HoloViews Layout as separate elements, each its own Bokeh figure (``size`` fixes
    width and height: a Layout's shared sizing collapses inside Panel's flexible layouts)."""
    items = list(obj) if isinstance(obj, hv.Layout) else [obj]
    if size is not None:
        items = [o.opts(width=size[0], height=size[1], responsive=False, clone=True) for o in items]
    return items


class TuningView(pn.viewable.Viewer):
    """Direction tuning of the twin's neurons; usable alone: ``TuningView(twin)``, then ``.run(wait=True)``."""

    directions = param.Selector(default=12, objects=[8, 12, 16, 24], doc="Number of drifting-grating directions.")
    sf_cpd = param.Number(default=0.04, bounds=(0.005, 0.3), step=0.005, doc="Spatial frequency (cycles/degree).")
    tf_hz = param.Number(default=2.0, bounds=(0.5, 8.0), step=0.5, doc="Temporal frequency (Hz).")
    duration_s = param.Number(default=1.0, bounds=(0.5, 4.0), step=0.5, doc="Grating duration per direction (s).")
    contrast = param.Number(default=1.0, bounds=(0.05, 1.0), step=0.05, doc="Grating contrast.")
    scope = param.Selector(default="all neurons", objects=["all neurons", "selected neurons"],
                           doc="Which neurons to measure.")
    result = param.Parameter(default=None, doc="The last direction-tuning Dataset.")

    def __init__(self, twin: Any = None, state: ExplorerState | None = None, **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
        super().__init__(**params)
        self.runner = TaskRunner()
        self.run_button = pn.widgets.Button(label="Measure tuning", color="primary", width=160)
        self.run_button.on_click(lambda _e: self.run())
        self.controls = pn.Param(self, parameters=["directions", "sf_cpd", "tf_hz", "duration_s", "contrast", "scope"],
                                 widgets={p: {"throttled": True} for p in ("sf_cpd", "tf_hz", "duration_s", "contrast")},
                                 show_name=False, width=300)
        self.unit_pane = pn.Row()
        self.linear_pane = pn.Row()
        self.indices = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.population = pn.GridBox(ncols=3)
        self.map_pane = pn.pane.HoloViews(None)
        self.hint = pn.pane.Markdown("Press **Measure tuning** to run drifting gratings through the twin.")
        self._tap = hv.streams.Tap(x=None, y=None)
        self._tap.add_subscriber(self._on_map_tap)
        self.state.param.watch(lambda _e: self._show_unit(), "unit")
        self.state.param.watch(lambda _e: self._load_cached(), "twin")
        self._load_cached()

    # ---- computation -------------------------------------------------------------------------------
    def experiment_params(self) -> dict[str, Any]:
        units = None
        if self.scope == "selected neurons":
            units = sorted(set(self.state.focus_units) | set(self.state.selection))
        return {"directions": int(self.directions), "sf_cpd": float(self.sf_cpd), "tf_hz": float(self.tf_hz),
                "duration_s": float(self.duration_s), "contrast": float(self.contrast), "units": units}

    def _load_cached(self) -> None:
        hit = RESULTS.get(self.state.twin, "direction_tuning", self.experiment_params())
        if hit is not None:
            self._set_result(hit)

    def run(self, wait: bool = False) -> bool:
        """Measure direction tuning in the background (cached); ``wait=True`` blocks until done."""
        params = self.experiment_params()
        twin = self.state.twin
        hit = RESULTS.get(twin, "direction_tuning", params)
        if hit is not None:
            self._set_result(hit)
            return True

        def work(job: Job) -> Any:
            ds = direction_tuning(twin, **params, batch_size=1, show_progress=False,
                                  progress=lambda done, total: job.update(done / total,
                                                                          f"direction {done}/{total}"))
            RESULTS.put(twin, "direction_tuning", params, ds)
            return ds

        started = self.runner.run(work, on_done=self._set_result, label="Direction tuning")
        if started and wait:
            self.runner.wait()
            if self.runner.error:
                raise RuntimeError(self.runner.error)
        return started

    def _set_result(self, ds: Any) -> None:
        self.result = ds
        if ds.sizes.get("unit", 0) == self.state.twin.n_units:
            self.state.tuning = ds  # the neuron table gains the twin's tuning columns
        self.hint.visible = False
        self.population[:] = [pn.pane.HoloViews(p) for p in split_layout(plot_tuning_population(ds), (300, 240))]
        self.map_pane.object = self._direction_map(ds)
        self._show_unit()

    # ---- plots -------------------------------------------------------------------------------------
    def _show_unit(self) -> None:
        ds, unit = self.result, self.state.unit
        if ds is None or unit is None:
            return
        if unit not in ds["unit"].values:
            self.indices.object = f"Neuron {unit} was not measured; choose *all neurons* or select it and rerun."
            return
        self.unit_pane[:] = [pn.pane.HoloViews(p) for p in split_layout(plot_direction_tuning(ds, unit, polar=True))]
        self.linear_pane[:] = [pn.pane.HoloViews(split_layout(plot_direction_tuning(ds, unit, polar=False))[0])]
        u = ds.sel(unit=unit)
        rows = [("preferred direction (°)", "pref_dir", "pref_dir_deg"), ("preferred orientation (°)", "pref_ori",
                "pref_ori_deg"), ("OSI", "osi", "osi"), ("DSI", "dsi", "dsi"), ("gOSI", "gosi", "gosi"),
                ("gDSI", "gdsi", "gdsi"), ("fit R²", "fit_r2", None)]
        truth = getattr(self.state.twin, "truth", None)
        has_truth = truth is not None and unit in truth.index
        lines = [f"#### Neuron {unit}", "| index | twin (in silico) |" + (" ground truth |" if has_truth else ""),
                 "|---|---|" + ("---|" if has_truth else "")]
        for label, key, tkey in rows:
            if key not in u:
                continue
            line = f"| {label} | {float(u[key]):.3g} |"
            if has_truth:
                line += f" {float(truth.loc[unit, tkey]):.3g} |" if tkey and tkey in truth.columns else " |"
            lines.append(line)
        self.indices.object = "\n".join(lines)

    def _direction_map(self, ds: Any) -> Any:
        table = self.state.table
        if not {"x_um", "y_um"} <= set(table.columns):
            return None
        ids = ds["unit"].values
        df = table.loc[ids, ["x_um", "y_um"]].assign(pref_dir=ds["pref_dir"].values,
                                                       gdsi=ds["gdsi"].values, unit=ids)
        pts = hv.Points(df, ["x_um", "y_um"], ["pref_dir", "gdsi", "unit"]).opts(
            color="pref_dir", cmap="colorwheel", clim=(0, 360), size=6, colorbar=True, tools=["hover", "tap"],
            width=460, height=420, data_aspect=1, title="Preferred direction over cortex (click a neuron)",
            xlabel="x (µm)", ylabel="y (µm)", clabel="preferred direction (°)")
        self._tap.source = pts
        self._map_ids = df[["x_um", "y_um"]].to_numpy(), ids
        return pts

    def _on_map_tap(self, x: float | None = None, y: float | None = None) -> None:
        if x is None or y is None or not hasattr(self, "_map_ids"):
            return
        xy, ids = self._map_ids
        self.state.unit = int(ids[np.argmin(np.hypot(xy[:, 0] - x, xy[:, 1] - y))])

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.Column(self.controls, self.run_button, self.runner, self.indices, width=320),
            pn.Column(self.hint, self.unit_pane, self.linear_pane,
                      self.map_pane, self.population, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
