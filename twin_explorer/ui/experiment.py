"""What the population-experiment views (tuning, receptive fields) share: scope, caching and the background run.

A subclass names its experiment (``kind``), says which parameters define a result (``experiment_params``),
how to compute it (``compute``) and how to show it (``show_result``); this base class runs it in a worker
thread with progress and Cancel, and serves repeated requests from the per-twin result cache.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import panel as pn
import param

from .state import ExplorerState
from .tasks import RESULTS, Job, TaskRunner

ALL, SELECTED = "all neurons", "selected neurons"


def split_layout(obj: Any, size: tuple[int, int] | None = None) -> list[Any]:
    """The panels of a HoloViews Layout as separate elements, each its own Bokeh figure (``size`` fixes
    width and height: a Layout's shared sizing collapses inside Panel's flexible layouts)."""
    items = list(obj) if isinstance(obj, hv.Layout) else [obj]
    if size is not None:
        items = [o.opts(width=size[0], height=size[1], responsive=False, clone=True) for o in items]
    return items


class ExperimentView(pn.viewable.Viewer):
    """Base of a view that measures something over the twin's neurons in the background."""

    scope = param.Selector(default=ALL, objects=[ALL, SELECTED], doc="Which neurons to measure.")
    result = param.Parameter(default=None, doc="The last result Dataset.")

    #: Cache key of the experiment and the label of its progress messages (set by subclasses).
    kind: str = ""
    label: str = ""

    def __init__(self, twin: Any = None, state: ExplorerState | None = None, **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
        super().__init__(**params)
        self.runner = TaskRunner()

    # ---- to implement ----------------------------------------------------------------------------------
    def experiment_params(self) -> dict[str, Any]:
        """JSON-able parameters that fully define a result (the cache key), including ``units``."""
        raise NotImplementedError

    def compute(self, twin: Any, params: dict[str, Any], job: Job) -> Any:
        """Run the experiment (in the worker thread); report progress through ``job.update``."""
        raise NotImplementedError

    def show_result(self, ds: Any) -> None:
        """Draw a finished result."""
        raise NotImplementedError

    def clear_result(self) -> None:
        """Forget the shown result (the twin changed and nothing is cached for it)."""
        self.result = None

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
        elif self.result is not None and self.result.attrs.get("twin_id") != str(getattr(self.state.twin, "id", "")):
            self.clear_result()

    def _set_result(self, ds: Any) -> None:
        self.result = ds
        self.show_result(ds)

    def run(self, wait: bool = False) -> bool:
        """Measure in the background (cached per twin and parameters); ``wait=True`` blocks until done."""
        params = self.experiment_params()
        twin = self.state.twin
        hit = RESULTS.get(twin, self.kind, params)
        if hit is not None:
            self._set_result(hit)
            return True

        def work(job: Job) -> Any:
            ds = self.compute(twin, params, job)
            RESULTS.put(twin, self.kind, params, ds)
            return ds

        def done(ds: Any) -> None:
            if twin is self.state.twin:  # the user may have switched twins meanwhile
                self._set_result(ds)

        started = self.runner.run(work, on_done=done, label=self.label)
        if started and wait:
            self.runner.wait()
            if self.runner.error:
                raise RuntimeError(self.runner.error)
        return started
