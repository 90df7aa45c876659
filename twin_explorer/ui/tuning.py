"""The tuning view: direction tuning of the focused neuron (polar and linear, with fit and indices),
population histograms, and the preferred-direction map over cortical position.

The population experiment (``twin_explorer.experiments.direction_tuning``) runs in a worker thread
with progress and Cancel; results are cached per twin and parameters. Provisional results stream in as the
directions are measured (:mod:`.streaming`), at one SF/TF or at each neuron's preferred SF/TF (then the neurons of
one SF/TF pair after another appear with the first directions, before the rest of the directions fill in).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.io.document import hold

from twin_explorer.engine.contract import TwinLike
from twin_explorer.experiments import direction_tuning, monet2_direction_tuning, preferred_sf_tf, tuning_from_sf_tf

from .experiment import ALL, ExperimentView, job_progress, split_layout
from .reliability import opacity, reliability_lines
from .state import ExplorerState, deferred, twin_truth
from .streaming import time_left
from .tasks import Job
from .tuning_plots import DirectionMap, PopulationHistograms, UnitPlots

__all__ = ["TuningView", "split_layout"]

FIXED, PREFERRED = "fixed (below)", "each neuron's preferred"
GRATINGS, MONET2 = "drifting gratings", "directional pink noise (Monet2)"
MONET2_TRIALS = 2  # Monet2 movies (other noise, other direction order) averaged in the view
HINT = "Press **Measure tuning** to run drifting gratings through the twin."
TUNING_BATCH = 4  # condition videos per predict call in the view (progress granularity vs shared work)


def _direction_progress(job: Job, n_dirs: int, offset: float, share: float):
    """Progress in the user's terms: "k of n directions" of the one SF/TF, or directions × SF/TF pairs (one set
    of gratings per distinct preferred pair) rather than a bare count of condition videos; with the time left."""
    t0 = time.perf_counter()

    def report(done: int, total: int) -> None:
        pairs = max(1, total // max(n_dirs, 1))
        message = (f"{done} of {n_dirs} directions" if pairs == 1 else
                   f"{done} of {total} grating videos ({n_dirs} directions × {pairs} distinct preferred SF/TF pairs)")
        job.update(offset + share * done / max(total, 1), message + time_left(time.perf_counter() - t0, done, total))
    return report


class TuningView(ExperimentView):
    """Direction tuning of the twin's neurons; usable alone: ``TuningView(twin)``, then ``.run(wait=True)``."""

    stimulus = param.Selector(default=GRATINGS, objects=[GRATINGS, MONET2], label="Stimulus",
                              doc="Drifting gratings, or directional pink noise (Monet2: one epoch of coherent, "
                                  "oriented motion per direction), the paper's two tuning protocols.")
    directions = param.Selector(default=12, objects=[8, 12, 16, 24], label="Directions",
                                doc="Number of motion directions.")
    sf_tf = param.Selector(default=FIXED, objects=[FIXED, PREFERRED], label="Spatial / temporal frequency",
                           doc="One SF/TF for every neuron, or each neuron's own preferred SF/TF (from the ground "
                               "truth where the twin has one, else measured; rounded to octaves). Slower: one set "
                               "of gratings per distinct SF/TF pair.")
    sf_cpd = param.Number(default=0.04, bounds=(0.005, 0.3), step=0.005, label="Spatial frequency (cycles/°)",
                          doc="Spatial frequency (cycles/degree).")
    tf_hz = param.Number(default=2.0, bounds=(0.5, 8.0), step=0.5, label="Temporal frequency (Hz)",
                         doc="Temporal frequency (Hz).")
    duration_s = param.Number(default=1.0, bounds=(0.5, 4.0), step=0.5, label="Duration per direction (s)",
                              doc="Time per direction (s): the grating's duration, or the Monet2 direction slot "
                                  "(coherent motion fills half of it).")
    contrast = param.Number(default=1.0, bounds=(0.05, 1.0), step=0.05, label="Contrast (0–1)",
                            doc="Grating contrast.")

    kind, label = "direction_tuning", "Direction tuning"

    def __init__(self, twin: TwinLike | None = None, state: ExplorerState | None = None, **params: Any) -> None:
        super().__init__(twin, state, **params)
        self.run_button = pn.widgets.Button(label="Measure tuning", color="primary", width=160)
        self.run_button.on_click(lambda _e: self.run())
        self.controls = pn.Param(self, parameters=["stimulus", "directions", "sf_tf", "sf_cpd", "tf_hz", "duration_s", "contrast",
                                                   "scope"], sort=False,
                                 widgets={p: {"throttled": True} for p in ("sf_cpd", "tf_hz", "duration_s", "contrast")},
                                 show_name=False, width=300)
        # stacked and two columns: wider rows of fixed-size plots were clipped at the right edge at 1280-1400 px
        # Bokeh plots made once and redrawn in place (see .tuning_plots: a draw of fresh HoloViews panes held the
        # server's event loop ~2 s, every session's page waiting). They are on the page, hidden, from the start: the
        # browser builds them when the tab opens, not all at once when the first result arrives.
        self.unit_plots, self.histograms = UnitPlots(), PopulationHistograms()
        self.direction_map = DirectionMap(self._on_map_tap)
        polar, traces, linear = self.unit_plots.panes
        self.unit_pane = pn.Column(polar, traces)
        self.linear_pane = pn.Row(linear)
        self.indices = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.population = pn.GridBox(*self.histograms.panes, ncols=2)
        self.map_pane = self.direction_map.pane
        self.map_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        # The result's plots shown in one step: each ``visible`` change makes the browser lay the whole page out
        # again (0.3-0.5 s of its main thread on 2 cores); five panes shown one by one made a first result take
        # ~2 s longer to appear than the drawing itself. The hint goes by its text (no layout change).
        self.results = pn.Column(self.unit_pane, self.linear_pane, self.map_note, self.map_pane, self.population,
                                 visible=False, sizing_mode="stretch_width")
        self.hint = pn.pane.Markdown(HINT)
        # Preferred directions measured so far on this twin (latest wins), for the cortical map.
        self._measured = pd.DataFrame(columns=["pref_dir", "gdsi"], dtype=float)
        self.state.param.watch(deferred(self._show_unit), "unit")
        self.state.param.watch(lambda _e: self._on_twin(), "twin")
        self._on_sf_tf()
        self._load_cached()

    @param.depends("sf_tf", "stimulus", watch=True)
    def _on_sf_tf(self) -> None:
        """The fixed SF/TF sliders do nothing when each neuron's preferred SF/TF is used, and the grating controls
        nothing for Monet2 noise: disable them."""
        noise = self.stimulus == MONET2
        for name in ("sf_cpd", "tf_hz"):
            self.controls._widgets[name].disabled = self.sf_tf == PREFERRED or noise
        for name in ("sf_tf", "contrast"):
            self.controls._widgets[name].disabled = noise

    def run(self, wait: bool = False) -> bool:
        """Measure in the background (see :meth:`ExperimentView.run`); the "press Measure" hint goes at once."""
        with hold():  # one message to the page with the runner's bar and message
            self.hint.object = ""
            return super().run(wait)

    # ---- computation -------------------------------------------------------------------------------
    def experiment_params(self) -> dict[str, Any]:
        if self.stimulus == MONET2:
            return {"stimulus": "monet2", "directions": int(self.directions), "slot_s": float(self.duration_s),
                    "trials": MONET2_TRIALS, "units": self.scoped_units()}
        per_unit = self.sf_tf == PREFERRED
        return {"directions": int(self.directions), "sf_cpd": None if per_unit else float(self.sf_cpd),
                "tf_hz": None if per_unit else float(self.tf_hz), "sf_tf": "preferred" if per_unit else "fixed",
                "duration_s": float(self.duration_s), "contrast": float(self.contrast), "units": self.scoped_units()}

    def compute(self, twin: TwinLike, params: dict[str, Any], job: Job) -> Any:
        if params.get("stimulus") == "monet2":
            kw = {k: v for k, v in params.items() if k != "stimulus"}
            return monet2_direction_tuning(twin, **kw, batch_size=1, show_progress=False, cancel=job.cancel_event,
                                           progress=job_progress(job, "Monet2 movie"))
        kw = {k: v for k, v in params.items() if k != "sf_tf"}
        offset, share, source = 0.0, 1.0, "fixed"
        shown = {"directions": 0}  # directions of the SF × TF probe's provisional result shown (measured SF/TF)
        if params["sf_tf"] == "preferred":  # each neuron's preference: the truth where known, else measured
            kw["sf_cpd"], kw["tf_hz"], source = preferred_sf_tf(
                twin, params["units"], truth=twin_truth(twin), batch_size=TUNING_BATCH,
                progress=job_progress(job, "SF × TF probe videos", 0.0, 0.5), cancel=job.cancel_event,
                partial=self._probe_sink(job, twin, shown))
            if source == "measured":
                offset, share = 0.5, 0.5
        # four directions per batch: progress still moves in steps, and the batch shares its grey pre-blank
        # (one direction per batch made a 16-direction run 3× slower: 3.3 s instead of 1.1 s on 2 cores)
        ds = direction_tuning(twin, **kw, batch_size=TUNING_BATCH, show_progress=False, cancel=job.cancel_event,
                              progress=_direction_progress(job, params["directions"], offset, share),
                              partial=self._sink(job, source, shown))
        ds.attrs["sf_tf_source"] = source
        return ds

    def _sink(self, job: Job, source: str, shown: dict[str, int]) -> Any:
        """The stream's ``partial`` callback, labelling provisional results with where their SF/TF came from. After
        the SF × TF probe's result was shown (all neurons, its directions), a provisional result of fewer directions
        or fewer neurons is not: the picture only ever fills in."""
        sink = self.stream.sink(job)

        def deliver(part: Any) -> None:
            if shown["directions"] and (part.attrs["units_done"] < part.attrs["units_total"]
                                        or part.attrs["directions_done"] < shown["directions"]):
                return
            part.attrs["sf_tf_source"] = source
            sink(part)
        return deliver

    def _probe_sink(self, job: Job, twin: TwinLike, shown: dict[str, int]) -> Any:
        """The SF × TF probe's ``partial`` callback (measured preferred SF/TF): from two directions on, each
        neuron's tuning over the probe's directions at its best SF/TF pair so far is drawn as a provisional result
        (a real twin has no ground-truth SF/TF, and the probe is half of the run)."""
        sink = self.stream.sink(job)

        def deliver(grid: Any) -> None:
            if grid.sizes["direction"] < 2:
                return
            part = tuning_from_sf_tf(twin, grid)
            part.attrs["sf_tf_source"] = "measured"
            shown["directions"] = part.attrs["directions_done"]
            sink(part)
        return deliver

    def _on_twin(self) -> None:
        self._measured = self._measured.iloc[0:0]
        self._load_cached()

    def clear_result(self) -> None:
        super().clear_result()
        self.results.visible = False
        self.direction_map.clear()
        self.indices.object, self.map_note.object = "", ""
        self.hint.object = HINT

    def show_result(self, ds: Any) -> None:
        if ds.sizes.get("unit", 0) == self.state.twin.n_units:
            self.state.tuning = ds  # the neuron table gains the twin's tuning columns
        self._draw(ds)

    def show_provisional(self, ds: Any) -> None:
        self._draw(ds)

    def _draw(self, ds: Any) -> None:
        """Draw a result, or a provisional one (``ds.attrs['partial']``: the directions measured so far)."""
        self.shown = ds
        new = pd.DataFrame({"pref_dir": ds["pref_dir"].values, "gdsi": ds["gdsi"].values},
                           index=pd.Index(ds["unit"].values, name="unit"))
        measured = pd.concat([self._measured.drop(new.index, errors="ignore"), new]).sort_index()
        if not ds.attrs.get("partial"):  # provisional preferred directions are never kept
            self._measured = measured
        self.hint.object = ""
        self.histograms.show(ds)
        self._direction_map(measured, self._partial_note(ds))
        self._show_unit()
        self.results.visible = True

    @staticmethod
    def _partial_note(ds: Any) -> str:
        if not ds.attrs.get("partial"):
            return ""
        if ds.attrs.get("sf_tf_pairs"):
            return (f"**Provisional, from the SF × TF probe: {ds.attrs['directions_done']} of "
                    f"{ds.attrs['directions_total']} directions at each neuron's best of {ds.attrs['sf_tf_pairs']} "
                    "SF/TF pairs so far**; preferred directions are vector sums. The tuning at each neuron's "
                    "preferred SF/TF follows.")
        units = ds.attrs.get("units_done", 0), ds.attrs.get("units_total", 0)
        of_units = f" for {units[0]} of {units[1]} neurons" if units[0] < units[1] else ""
        return (f"**Provisional: {ds.attrs['directions_done']} of {ds.attrs['directions_total']} directions "
                f"measured{of_units}**; preferred directions are vector sums (the bi-von-Mises fit comes with the "
                "last direction)." + (" The other neurons, at other preferred SF/TF, follow." if of_units else ""))

    # ---- plots -------------------------------------------------------------------------------------
    def _show_unit(self) -> None:
        ds, unit = self.shown, self.state.unit
        if ds is None or unit is None:
            return
        if unit not in ds["unit"].values:
            self.indices.object = (f"{self._partial_note(ds)}\n\nNeuron {unit} is not measured yet." if
                                   ds.attrs.get("partial") else
                                   f"Neuron {unit} was not measured; choose *all neurons* or select it and rerun.")
            return
        self.unit_plots.show(ds, unit)
        self.indices.object = "\n\n".join(filter(None, [self._partial_note(ds), self._indices_table(ds, unit)]))

    def _indices_table(self, ds: Any, unit: int) -> str:
        u = ds.sel(unit=unit)
        rows = [("preferred direction (°)", "pref_dir", "pref_dir_deg"), ("preferred orientation (°)", "pref_ori",
                "pref_ori_deg"), ("OSI", "osi", "osi"), ("DSI", "dsi", "dsi"), ("gOSI", "gosi", "gosi"),
                ("gDSI", "gdsi", "gdsi"), ("fit R²", "fit_r2", None)]
        truth = twin_truth(self.state.twin)
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
        if ds.attrs.get("experiment") == "monet2_direction_tuning":
            lines.append(f"\nMeasured with directional pink noise (Monet2), {ds.sizes['trial']} movies of "
                         f"{ds.sizes['direction']} motion epochs; the ground truth is defined with gratings at the "
                         "neuron's own SF/TF.")
            return "\n".join(lines + reliability_lines(self.state.twin, unit, float(u["gosi"])))
        sf = float(u["sf_cpd"]) if "sf_cpd" in u else float(self.sf_cpd)
        tf = float(u["tf_hz"]) if "tf_hz" in u else float(self.tf_hz)
        source = {"truth": " (its true preference, rounded to an octave)",
                  "measured": " (its measured preference, rounded to an octave)"}.get(ds.attrs.get("sf_tf_source"), "")
        lines.append(f"\nMeasured with gratings at **{sf:.3g} cycles/°, {tf:.3g} Hz**{source}.")
        if has_truth and {"sf_cpd", "tf_hz"} <= set(truth.columns):
            tsf, ttf = float(truth.loc[unit, "sf_cpd"]), float(truth.loc[unit, "tf_hz"])
            lines.append(f"The ground truth is defined at the neuron's own preferred SF/TF: **{tsf:.3g} cycles/°, "
                         f"{ttf:.3g} Hz**.")
            if abs(np.log2(sf / tsf)) > 0.75 or abs(np.log2(max(tf, 0.1) / ttf)) > 1.0:
                lines.append("⚠ These gratings are far from the neuron's preferred SF/TF, so its measured indices "
                             "can be much lower than the truth: set *SF / TF* to *each neuron's preferred* and "
                             "measure again.")
        lines += reliability_lines(self.state.twin, unit, float(u["gosi"]) if "gosi" in u else None)
        return "\n".join(lines)

    def _direction_map(self, measured: pd.DataFrame, partial_note: str = "") -> bool:
        """Redraw the preferred-direction map with every neuron measured so far (``measured``); False when there is
        nothing to map (no cortical positions, or nothing measured)."""
        table = self.state.table
        if not {"x_um", "y_um"} <= set(table.columns) or not len(measured):
            self.map_note.object = partial_note
            self.direction_map.clear()
            return False
        measured = measured[measured.index.isin(table.index)]
        ids = measured.index.to_numpy()
        xy = table.loc[ids, ["x_um", "y_um"]].to_numpy(float)
        rest = table.loc[~table.index.isin(ids), ["x_um", "y_um"]].to_numpy(float)
        n, total = len(ids), len(table)
        note = partial_note or (
            "" if n == total else f"{n} of {total} neurons measured so far (grey: not yet). Set *Scope* to "
                                  f"*{ALL}* and press **Measure tuning** to fill the map.")
        alpha = opacity(self.state.twin, ids)  # neurons below the paper's inclusion thresholds drawn faint
        self._map_ids = xy, ids
        binned = self.direction_map.show(xy, measured["pref_dir"].to_numpy(), measured["gdsi"].to_numpy(), ids,
                                         alpha, rest, total)
        if not binned and (alpha < 1).any():
            note += "\n\nFaint: neurons below the paper's inclusion thresholds (cc_max > 0.4, cc_abs > 0.2)."
        if binned:  # the title has no room for it
            note += (" " if note else "") + \
                f"{n} neurons binned on the map: colour = circular mean of the preferred directions per bin."
        self.map_note.object = note
        return True

    def _on_map_tap(self, x: float | None = None, y: float | None = None) -> None:
        if hasattr(self, "_map_ids"):
            self.state.focus_nearest(*self._map_ids, x, y)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.Column(self.controls, self.run_button, self.runner, self.indices, width=320),
            pn.Column(self.hint, self.results, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
