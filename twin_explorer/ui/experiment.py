"""Experiment views: the shared base (scope, cache, background run with progress and Cancel) and the generic view
that runs any registered experiment spec (:mod:`twin_explorer.experiments.spec`).

A subclass of :class:`ExperimentView` names its experiment (``kind``), says which parameters define a result
(``experiment_params``), how to compute it (``compute``) and how to show it (``show_result``); the base class runs
it in a worker thread with progress and Cancel, and serves repeated requests from the per-twin result cache. A
view whose experiment streams passes ``self.stream.sink(job)`` as its ``partial`` callback and draws provisional
results in ``show_provisional`` (:mod:`.streaming`); a run that ends without a result puts the last result back.
:class:`SpecView` is such a view for every registered spec: its parameter widgets come from the spec.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import panel as pn
import param

from twin_explorer.engine.contract import TwinLike
from twin_explorer.experiments import REGISTRY, get_experiment
from twin_explorer.experiments.streaming import provisional_note

from .controls import human_label
from .state import ExplorerState, deferred, plot_pane
from .streaming import ProvisionalStream, paced_progress
from .tasks import RESULTS, Job, TaskRunner

ALL, SELECTED = "all neurons", "selected neurons"
SPEC_BATCH = 8  # condition videos per predict call in the generic view: a provisional result every few seconds


def split_layout(obj: Any, size: tuple[int, int] | None = None) -> list[Any]:
    """The panels of a HoloViews Layout as separate elements, each its own Bokeh figure (``size`` fixes
    width and height: a Layout's shared sizing collapses inside Panel's flexible layouts)."""
    items = list(obj) if isinstance(obj, hv.Layout) else [obj]
    if size is not None:
        items = [o.opts(width=size[0], height=size[1], responsive=False, clone=True) for o in items]
    return items


def job_progress(job: Job, what: str = "condition", offset: float = 0.0, share: float = 1.0):
    """A runner ``progress(done, total)`` callback reporting to ``job`` (its share of the bar from ``offset``)."""
    return lambda done, total: job.update(offset + share * done / max(total, 1), f"{what} {done}/{total}")


class ExperimentView(pn.viewable.Viewer):
    """Base of a view that measures something over the twin's neurons in the background."""

    scope = param.Selector(default=ALL, objects=[ALL, SELECTED], label="Neurons", doc="Which neurons to measure.")
    result = param.Parameter(default=None, doc="The last result.")

    #: Cache key of the experiment and the label of its progress messages (set by subclasses).
    kind: str = ""
    label: str = ""

    def __init__(self, twin: TwinLike | None = None, state: ExplorerState | None = None, **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
        super().__init__(**params)
        self.runner = TaskRunner()
        self.stream = ProvisionalStream(self._show_provisional)
        self.shown: Any = None  # the Dataset on screen: the result, or a provisional one while measuring

    # ---- to implement ----------------------------------------------------------------------------------
    def experiment_params(self) -> dict[str, Any]:
        """JSON-able parameters that fully define a result (the cache key), including ``units``."""
        raise NotImplementedError

    def compute(self, twin: TwinLike, params: dict[str, Any], job: Job) -> Any:
        """Run the experiment (in the worker thread); report progress through ``job.update``."""
        raise NotImplementedError

    def show_result(self, ds: Any) -> None:
        """Draw a finished result."""
        raise NotImplementedError

    def show_provisional(self, ds: Any) -> None:
        """Draw a provisional result (``ds.attrs['partial']``) while the experiment runs (views that stream)."""
        raise NotImplementedError

    def clear_result(self) -> None:
        """Forget the shown result (the twin changed and nothing is cached for it)."""
        self.stream.stop()
        self.result = self.shown = None

    # ---- shared ----------------------------------------------------------------------------------------
    def scoped_units(self) -> list[int] | None:
        """None for all neurons, else the focused and selected neurons' readout_ids."""
        if self.scope == SELECTED:
            return sorted(set(self.state.focus_units) | set(self.state.selection))
        return None

    def _load_cached(self) -> None:
        hit = RESULTS.get(self.state.twin, self.kind, self.experiment_params())
        if hit is not None:
            self._set_result(hit)
        elif self.result is not None and getattr(self.result, "attrs", {}).get("twin_id") != str(
                getattr(self.state.twin, "id", "")):
            self.clear_result()

    def _set_result(self, ds: Any) -> None:
        self.stream.stop()  # provisional results still on their way are dropped
        self.result = self.shown = ds
        self.show_result(ds)

    def _show_provisional(self, ds: Any) -> None:
        self.shown = ds
        self.show_provisional(ds)

    def _abandon(self) -> None:
        """The run ended without a result (cancelled, failed): the last result goes back on screen, if a provisional
        one had replaced it."""
        self.stream.stop()
        if self.shown is not None and self.shown is not self.result:
            if self.result is not None:
                self._set_result(self.result)
            else:
                self.clear_result()

    def run(self, wait: bool = False) -> bool:
        """Measure in the background (cached per twin and parameters); ``wait=True`` blocks until done."""
        params = self.experiment_params()
        twin = self.state.twin
        if not self.runner.running:  # (a busy runner refuses the run; its own provisional results keep coming)
            self.stream.start()
        hit = RESULTS.get(twin, self.kind, params)
        if hit is not None:
            self._set_result(hit)
            return True

        def work(job: Job) -> Any:  # once for all sessions asking the same at the same time
            return RESULTS.compute_once(twin, self.kind, params, lambda: self.compute(twin, params, job), job=job)

        def done(ds: Any) -> None:
            if twin is self.state.twin:  # the user may have switched twins meanwhile
                self._set_result(ds)

        started = self.runner.run(work, on_done=done, label=self.label, on_abort=self._abandon)
        if started and wait:
            self.runner.wait()
            if self.runner.error:
                raise RuntimeError(self.runner.error)
        return started


class SpecView(ExperimentView):
    """Any registered experiment: choose it, edit its parameters (from the spec), run it on all or the selected
    neurons, see its summary, the focused neuron's plot and the population plot. ``SpecView(twin,
    experiment="surround_suppression")``, then ``.run(wait=True)``."""

    experiment = param.Selector(default="direction_tuning", objects=sorted(REGISTRY), doc="Registered experiment.")

    label = "Experiment"

    def __init__(self, twin: TwinLike | None = None, state: ExplorerState | None = None, **params: Any) -> None:
        super().__init__(twin, state, **params)
        self.param_widgets: dict[str, pn.widgets.LiteralInput] = {}
        self.param_box = pn.Column(width=300)
        self.run_button = pn.widgets.Button(label="Run experiment", color="primary", width=160)
        self.run_button.on_click(lambda _e: self.run())
        self.summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        # stacked, not side by side: fixed-size plots in a row were clipped at the right edge below ~1500 px
        self.unit_pane = pn.Column()
        self.population_pane = pn.GridBox(ncols=2)
        self._build_widgets()
        self.param.watch(lambda _e: self._build_widgets(), "experiment")
        self.state.param.watch(deferred(self._show_unit), "unit")
        self.state.param.watch(lambda _e: self._load_cached(), "twin")

    @property
    def kind(self) -> str:  # one cache kind per experiment
        return f"spec:{self.experiment}"

    def _build_widgets(self) -> None:
        spec = get_experiment(self.experiment)
        self.param_widgets = {k: pn.widgets.LiteralInput(label=human_label(k), value=v, width=280)
                              for k, v in spec.defaults().items()}
        self.param_box[:] = [pn.pane.Markdown(spec.description), *self.param_widgets.values()]
        self.label = spec.name.replace("_", " ")
        self.clear_result()

    def experiment_params(self) -> dict[str, Any]:
        return {"experiment": self.experiment, **{k: w.value for k, w in self.param_widgets.items()},
                "units": self.scoped_units()}

    def compute(self, twin: TwinLike, params: dict[str, Any], job: Job) -> Any:
        kw = {k: v for k, v in params.items() if k not in ("experiment", "units")}
        spec = get_experiment(params["experiment"])
        if spec.streams:  # smaller batches than a batch run's, so provisional results come every few seconds
            kw.update(partial=self.stream.sink(job), batch_size=SPEC_BATCH)
        what = "condition videos" if spec.kind == "conditions" else "steps"
        return spec(twin, units=params["units"], progress=paced_progress(job, what), cancel=job.cancel_event, **kw)

    def clear_result(self) -> None:
        super().clear_result()
        if hasattr(self, "summary"):
            self.summary.object, self.unit_pane[:], self.population_pane[:] = "", [], []

    def show_result(self, ds: Any) -> None:
        spec = self._spec_of(ds)
        note = provisional_note(ds)
        self.summary.object = (f"**{note[0].upper() + note[1:]}** (the rest are still being measured; the numbers "
                               "change as they come)\n\n" if note else "") + f"**{spec.name}**: {spec.summary(ds)}"
        if spec.population_plot is not None:
            self.population_pane[:] = [plot_pane(p) for p in split_layout(spec.population_plot(ds))]
        self._show_unit()

    show_provisional = show_result  # a provisional result has the final one's variables, and the label says so

    def _spec_of(self, ds: Any) -> Any:
        return get_experiment(ds.attrs.get("experiment", self.experiment))

    def _show_unit(self) -> None:
        ds, unit = self.shown, self.state.unit
        if ds is None or unit is None or unit not in ds["unit"].values:
            return
        spec = self._spec_of(ds)
        if spec.plot is not None:
            self.unit_pane[:] = [plot_pane(p) for p in split_layout(spec.plot(ds, unit))]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.Column(pn.Param(self, parameters=["experiment", "scope"], show_name=False, width=300),
                      self.param_box, self.run_button, self.runner, width=320),
            pn.Column(self.summary, self.unit_pane, self.population_pane, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
