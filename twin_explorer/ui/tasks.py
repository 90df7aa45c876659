"""Off-UI-thread work for the explorer: a per-twin result cache bounded in bytes and a cancellable background task.

Long computations (tuning curves over all neurons, receptive fields, MEIs) run in a worker thread
while the view shows a progress bar and a Cancel button; results are cached per twin and parameters
and shared by all sessions of the process (twins are deterministic, so results are too).
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

import panel as pn
import param

from twin_explorer.engine.contract import TwinLike
from twin_explorer.experiments.runner import Cancelled
from twin_explorer.store import BytesLRU, content_hash

__all__ = ["Cancelled", "ResultCache", "RESULTS", "Job", "TaskRunner", "in_session", "RESULTS_MAX_BYTES"]

RESULTS_MAX_BYTES = 512 * 2**20  # all sessions' cached results together (Datasets, videos, images)


class ResultCache:
    """A thread-safe LRU cache keyed by (twin id, kind, parameters), bounded by the bytes of its values."""

    def __init__(self, max_bytes: int = RESULTS_MAX_BYTES) -> None:
        self._lru = BytesLRU(max_bytes)
        self.max_bytes = self._lru.max_bytes

    @staticmethod
    def key(twin: TwinLike, kind: str, params: Any) -> tuple[str, str, str]:
        return (str(getattr(twin, "id", id(twin))), kind, content_hash(params))

    def get(self, twin: TwinLike, kind: str, params: Any) -> Any:
        return self._lru.get(self.key(twin, kind, params))

    def put(self, twin: TwinLike, kind: str, params: Any, value: Any) -> None:
        self._lru.put(self.key(twin, kind, params), value)

    def get_or_compute(self, twin: TwinLike, kind: str, params: Any, fn: Callable[[], Any]) -> Any:
        return self._lru.get_or_compute(self.key(twin, kind, params), fn)

    def __len__(self) -> int:
        return len(self._lru)

    def clear(self) -> None:
        self._lru.clear()


#: Process-wide cache shared by every session and notebook view.
RESULTS = ResultCache()


def in_session(doc: Any, fn: Callable[[], None]) -> None:
    """Run ``fn`` on ``doc``'s server session (next tick, document lock held, ``pn.state.curdoc`` set), so that
    models it creates from a worker thread get the session's resource URLs; without a server session, now."""
    if doc is None or getattr(doc, "session_context", None) is None:
        fn()
        return
    from panel.io.state import set_curdoc

    def callback() -> None:
        with set_curdoc(doc):
            fn()

    doc.add_next_tick_callback(callback)  # the one thread-safe Document method


class Job:
    """Handle given to a task function: report progress, check for cancellation, update the UI."""

    def __init__(self, runner: "TaskRunner", doc: Any = None) -> None:
        self._runner = runner
        self._cancel = threading.Event()
        self._doc = doc

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the user pressed Cancel; experiments given it stop between batches."""
        return self._cancel

    def ui(self, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` in the browser session that started the task (or now, in a notebook)."""
        in_session(self._doc, lambda: fn(*args))

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop."""
        if self._cancel.is_set():
            raise Cancelled()

    def update(self, fraction: float, message: str = "") -> None:
        self.check()
        self._runner._report(fraction, message)


class TaskRunner(pn.viewable.Viewer):
    """Runs one function at a time in a worker thread, with a progress bar and a Cancel button."""

    running = param.Boolean(default=False, doc="True while a task runs.")
    message = param.String(default="", doc="Last progress or status message.")
    error = param.String(default="", doc="Traceback of the last failed task, if any.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._job: Job | None = None
        self._thread: threading.Thread | None = None
        self.progress = pn.indicators.Progress(value=0, max=1000, width=220, visible=False, bar_color="primary")
        self.cancel_button = pn.widgets.Button(label="Cancel", color="warning", visible=False, width=90)
        self.cancel_button.on_click(lambda _event: self.cancel())
        self.status = pn.pane.Markdown("", styles={"font-size": "0.9em"}, margin=(5, 10))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(self.progress, self.cancel_button, self.status, sizing_mode="stretch_width")

    def _report(self, fraction: float, message: str) -> None:
        self.progress.value = int(max(0.0, min(1.0, float(fraction))) * 1000)
        if message:
            self.message = message
            self.status.object = message

    def run(self, fn: Callable[[Job], Any], on_done: Callable[[Any], None] | None = None,
            label: str = "Working") -> bool:
        """Start ``fn(job)`` in a worker thread; ``on_done(result)`` runs when it finishes (not if cancelled).

        Returns False (and starts nothing) while another task is still running.
        """
        if self.running:
            self.status.object = "Busy: cancel the running computation first."
            return False
        doc = pn.state.curdoc
        job = Job(self, doc)
        self._job = job
        self.running, self.error = True, ""
        self.progress.value, self.progress.visible, self.cancel_button.visible = 0, True, True
        self.status.object = f"{label}…"
        t0 = time.perf_counter()

        def work() -> None:
            try:
                result = fn(job)
                job.check()
                if on_done is not None:
                    in_session(doc, lambda: on_done(result))
                self.message = f"{label}: done in {time.perf_counter() - t0:.1f} s"
            except Cancelled:
                self.message = f"{label}: cancelled"
            except Exception as exc:  # shown to the user instead of killing the session
                self.error = traceback.format_exc()
                self.message = f"{label} failed: {exc}"
            finally:
                self.status.object = self.message
                self.progress.visible = self.cancel_button.visible = False
                self.running = False

        self._thread = threading.Thread(target=work, name=f"twin-explorer-{label}", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._job._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running task ends (for notebooks and tests); True if it ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True
