"""Off-event-loop work for the explorer: a worker pool shared by every session, a per-twin result cache bounded in
bytes that answers identical requests once, and a cancellable background task with progress.

Rendering, prediction and experiments run in :data:`INTERACTIVE` (designer redraws) or :data:`EXPERIMENTS` (tuning,
receptive fields, MEIs), two :class:`FairPool` s whose workers serve the sessions in turn, so one busy session never
holds up the others; the server's event loop only moves finished data to the pages (:func:`in_session`). Results are
cached per twin and parameters and shared by all sessions of the process (twins are deterministic, so results are
too); a request equal to one still being computed, from any session, waits for that computation instead of
repeating it (:meth:`ResultCache.compute_once`).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import OrderedDict, deque
from concurrent.futures import Future
from typing import Any, Callable, Hashable

import panel as pn
import param
from panel.io.document import hold

from twin_explorer.engine.contract import TwinLike
from twin_explorer.experiments.runner import Cancelled
from twin_explorer.store import BytesLRU, content_hash

__all__ = ["Cancelled", "ResultCache", "RESULTS", "Job", "TaskRunner", "in_session", "RESULTS_MAX_BYTES", "FairPool",
           "INTERACTIVE", "EXPERIMENTS", "session_key", "release_session"]

RESULTS_MAX_BYTES = 512 * 2**20  # all sessions' cached results together (Datasets, videos, images)
_CORES = os.cpu_count() or 2


class FairPool:
    """Worker threads shared by all sessions: each session has its own queue and the workers take the sessions'
    requests in turn (round robin), so a session with many requests cannot starve one with a single request.

    ``submit(session, fn, coalesce=tag)`` replaces a still-queued request of the same session and tag (a slider
    dragged on: only its last value matters); the replaced request's future is cancelled."""

    def __init__(self, workers: int, name: str) -> None:
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {workers}")
        self.workers, self.name = int(workers), name
        self._queues: OrderedDict[Hashable, deque] = OrderedDict()  # sessions with queued work, in turn order
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.active = 0  # requests running now

    def submit(self, session: Hashable, fn: Callable[[], Any], coalesce: Hashable | None = None) -> Future:
        future: Future = Future()
        with self._cv:
            queue = self._queues.setdefault(session, deque())
            if coalesce is not None:
                for item in [it for it in queue if it[2] == coalesce]:
                    queue.remove(item)
                    item[1].cancel()
            queue.append((fn, future, coalesce))
            if len(self._threads) < self.workers:  # started on demand
                thread = threading.Thread(target=self._work, name=f"twin-explorer-{self.name}-{len(self._threads)}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
            self._cv.notify()
        return future

    def _next(self) -> tuple[Callable[[], Any], Future]:
        with self._cv:
            while not any(self._queues.values()):
                self._cv.wait()
            session, queue = next((k, q) for k, q in self._queues.items() if q)
            fn, future, _tag = queue.popleft()
            del self._queues[session]
            if queue:  # the session goes to the back of the line
                self._queues[session] = queue
            self.active += 1
            return fn, future

    def _work(self) -> None:
        while True:
            fn, future = self._next()
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:  # handed to whoever waits on the future
                        future.set_exception(exc)
            finally:
                with self._cv:
                    self.active -= 1
                del fn, future  # an idle worker must not keep the last session's objects alive

    def pending(self, session: Hashable | None = None) -> int:
        """Queued (not yet started) requests, of one session or of all."""
        with self._cv:
            if session is not None:
                return len(self._queues.get(session, ()))
            return sum(len(q) for q in self._queues.values())

    def drop(self, session: Hashable) -> int:
        """Cancel a session's queued requests (it closed); returns how many."""
        with self._cv:
            queue = self._queues.pop(session, deque())
        for _fn, future, _tag in queue:
            future.cancel()
        return len(queue)


#: Designer redraws (render + predict + preview), short and frequent.
INTERACTIVE = FairPool(max(2, _CORES), "interactive")
#: Experiments (tuning, receptive fields, MEI, specs), long; requests waiting on an identical computation hold a
#: worker, hence a few more workers than cores.
EXPERIMENTS = FairPool(max(4, _CORES + 2), "experiments")


def session_key(doc: Any = None) -> Hashable:
    """The key a session's requests are queued under: its server session id, else the document (notebooks)."""
    doc = doc if doc is not None else pn.state.curdoc
    context = getattr(doc, "session_context", None)
    return getattr(context, "id", None) or id(doc)


def release_session(key: Hashable) -> int:
    """Drop a closed session's queued requests in every pool; returns how many were dropped."""
    return INTERACTIVE.drop(key) + EXPERIMENTS.drop(key)


class _Flight:
    """A computation in progress that identical requests wait for (and whose progress they show)."""

    def __init__(self) -> None:
        self.future: Future = Future()
        self.progress: tuple[float, str] = (0.0, "")


class ResultCache:
    """A thread-safe LRU cache keyed by (twin id, kind, parameters), bounded by the bytes of its values."""

    def __init__(self, max_bytes: int = RESULTS_MAX_BYTES) -> None:
        self._lru = BytesLRU(max_bytes)
        self.max_bytes = self._lru.max_bytes
        self._flights: dict[Any, _Flight] = {}
        self._flights_lock = threading.Lock()

    @staticmethod
    def key(twin: TwinLike, kind: str, params: Any) -> tuple[str, str, str]:
        return (str(getattr(twin, "id", id(twin))), kind, content_hash(params))

    def get(self, twin: TwinLike, kind: str, params: Any) -> Any:
        return self._lru.get(self.key(twin, kind, params))

    def put(self, twin: TwinLike, kind: str, params: Any, value: Any) -> None:
        self._lru.put(self.key(twin, kind, params), value)

    def get_or_compute(self, twin: TwinLike, kind: str, params: Any, fn: Callable[[], Any]) -> Any:
        return self.compute_once(twin, kind, params, fn)

    def compute_once(self, twin: TwinLike, kind: str, params: Any, fn: Callable[[], Any],
                     job: "Job | None" = None) -> Any:
        """The cached result, else ``fn()`` computed once however many sessions ask at the same time: a request
        equal to one in progress waits for it (showing its progress on ``job``) instead of computing again. If
        the computing request is cancelled, a waiting one that was not computes itself."""
        key = self.key(twin, kind, params)
        while True:
            hit = self._lru.get(key)
            if hit is not None:
                return hit
            with self._flights_lock:
                flight = self._flights.get(key)
                leader = flight is None
                if leader:
                    flight = self._flights[key] = _Flight()
            if leader:
                return self._lead(key, flight, fn, job)
            try:
                return self._follow(flight, job)
            except Cancelled:
                if job is not None:
                    job.check()  # this request was cancelled too; otherwise compute it ourselves

    def _lead(self, key: Any, flight: _Flight, fn: Callable[[], Any], job: "Job | None") -> Any:
        if job is not None:
            job._flight = flight
        try:
            value = fn()
            self._lru.put(key, value)
            flight.future.set_result(value)
            return value
        except BaseException as exc:
            flight.future.set_exception(exc)
            raise
        finally:
            if job is not None:
                job._flight = None
            with self._flights_lock:
                self._flights.pop(key, None)

    @staticmethod
    def _follow(flight: _Flight, job: "Job | None") -> Any:
        while True:
            try:
                return flight.future.result(timeout=0.25)
            except TimeoutError:
                if job is not None:
                    fraction, message = flight.progress
                    job.update(fraction, message + " (computing for several sessions)" if message else "")

    @property
    def in_flight(self) -> int:
        """Computations in progress (each answering every identical request)."""
        with self._flights_lock:
            return len(self._flights)

    def __len__(self) -> int:
        return len(self._lru)

    def clear(self) -> None:
        self._lru.clear()


#: Process-wide cache shared by every session and notebook view.
RESULTS = ResultCache()


def in_session(doc: Any, fn: Callable[[], None], freeze: bool = False) -> None:
    """Run ``fn`` on ``doc``'s server session (next tick, document lock held, ``pn.state.curdoc`` set), so that
    models it creates from a worker thread get the session's resource URLs; without a server session, now.

    Everything ``fn`` changes reaches the page as one message: sent one change at a time, a tuning result's dozens
    of changes made the browser lay the whole page out again for each (a third of a second each on 2 cores).
    ``freeze``: ``fn`` may add models (a result drawn as new plots), so the document walks its model graph once at
    the end instead of after each (the walk always visits every model: not for a progress message)."""
    if doc is None or getattr(doc, "session_context", None) is None:
        fn()
        return
    from panel.io.state import set_curdoc

    def callback() -> None:
        with set_curdoc(doc), hold(doc, freeze=freeze):
            fn()

    doc.add_next_tick_callback(callback)  # the one thread-safe Document method


class Job:
    """Handle given to a task function: report progress, check for cancellation, update the UI."""

    def __init__(self, runner: "TaskRunner", doc: Any = None) -> None:
        self._runner = runner
        self._cancel = threading.Event()
        self._doc = doc
        self._flight: _Flight | None = None  # set while this job computes for every identical request

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the user pressed Cancel; experiments given it stop between batches."""
        return self._cancel

    def ui(self, fn: Callable[..., None], *args: Any, freeze: bool = False) -> None:
        """Call ``fn(*args)`` in the browser session that started the task (or now, in a notebook); ``freeze`` as
        in :func:`in_session`."""
        in_session(self._doc, lambda: fn(*args), freeze=freeze)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop."""
        if self._cancel.is_set():
            raise Cancelled()

    def update(self, fraction: float, message: str = "") -> None:
        self.check()
        if self._flight is not None:
            self._flight.progress = (float(fraction), message)
        self._runner._report(fraction, message)


class TaskRunner(pn.viewable.Viewer):
    """Runs one function at a time in a worker thread, with a progress bar and a Cancel button.

    The worker's progress reaches the page through the session's next tick, the bar and its message in one message,
    and reports that arrive faster than the session takes them are merged (only the newest is shown): each change
    sent on its own made the browser lay the page out again (a third of a second each on a busy 2-core machine)."""

    running = param.Boolean(default=False, doc="True while a task runs.")
    message = param.String(default="", doc="Last progress or status message.")
    error = param.String(default="", doc="Traceback of the last failed task, if any.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._job: Job | None = None
        self._future: Future | None = None
        self._doc: Any = None  # the session of the running task (None in a notebook or test: shown at once)
        self._report_lock = threading.Lock()
        self._latest_report: tuple[float, str] | None = None  # newest progress not yet on the page
        self.progress = pn.indicators.Progress(value=0, max=1000, width=220, bar_color="primary")
        self.cancel_button = pn.widgets.Button(label="Cancel", color="warning", width=90)
        self.cancel_button.on_click(lambda _event: self.cancel())
        # the bar and the button shown and hidden together: each ``visible`` change makes the browser lay the whole
        # page out again (0.3-0.5 s of its main thread on 2 cores), two per run more than one
        self.busy = pn.Row(self.progress, self.cancel_button, visible=False)
        self.status = pn.pane.Markdown("", styles={"font-size": "0.9em"}, margin=(5, 10))

    def __panel__(self) -> pn.viewable.Viewable:
        # the message below the bar: beside it, "4 of 16 directions · about 40 s left" was cut off in a 320 px column
        return pn.Column(self.busy, self.status, sizing_mode="stretch_width")

    def _report(self, fraction: float, message: str) -> None:
        with self._report_lock:
            scheduled = self._latest_report is not None
            self._latest_report = (fraction, message)
        if not scheduled:
            in_session(self._doc, self._show_report)

    def _show_report(self) -> None:
        with self._report_lock:
            report, self._latest_report = self._latest_report, None
        if report is None:
            return
        fraction, message = report
        self.progress.value = int(max(0.0, min(1.0, float(fraction))) * 1000)
        if message:
            self.message = message
            self.status.object = message

    def run(self, fn: Callable[[Job], Any], on_done: Callable[[Any], None] | None = None,
            label: str = "Working", on_abort: Callable[[], None] | None = None) -> bool:
        """Queue ``fn(job)`` in the shared :data:`EXPERIMENTS` pool (this session's turn among all sessions');
        ``on_done(result)`` runs in the session when it finishes (not if cancelled), ``on_abort()`` when it started
        but ended without a result (cancelled or failed).

        Returns False (and starts nothing) while another task of this runner is still running.
        """
        if self.running:
            self.status.object = "Busy: cancel the running computation first."
            return False
        doc = pn.state.curdoc
        job = Job(self, doc)
        self._job, self._doc = job, doc
        with self._report_lock:
            self._latest_report = None
        with hold():  # the page gets the bar, the Cancel button and the message in one message
            self.running, self.error = True, ""
            self.progress.value, self.busy.visible = 0, True
            self.status.object = f"{label}: queued…" if EXPERIMENTS.active >= EXPERIMENTS.workers else f"{label}…"
        t0 = time.perf_counter()

        def work() -> None:
            outcome = ""
            try:
                job.check()
                result = fn(job)
                job.check()
                if on_done is not None:
                    in_session(doc, lambda: on_done(result), freeze=True)
                outcome = f"{label}: done in {time.perf_counter() - t0:.1f} s"
            except Cancelled:
                outcome = f"{label}: cancelled"
                if on_abort is not None:
                    in_session(doc, on_abort, freeze=True)
            except Exception as exc:  # shown to the user instead of killing the session
                self.error = traceback.format_exc()
                outcome = f"{label} failed: {exc}"
                if on_abort is not None:
                    in_session(doc, on_abort, freeze=True)
            finally:
                # in the session, after the result's drawing and any progress report still on its way
                in_session(doc, lambda: self._finish(outcome))

        self._future = EXPERIMENTS.submit(session_key(doc), work)
        self._future.add_done_callback(lambda f: in_session(doc, self._finish) if f.cancelled() else None)
        return True

    def _finish(self, outcome: str = "") -> None:
        """The task ended: its outcome (``outcome``, else the message so far) replaces the progress."""
        with self._report_lock:
            self._latest_report = None
        if outcome:
            self.message = outcome
        if self._job is not None and self._job.cancelled and not self.message.endswith("cancelled"):
            self.message = "cancelled"
        self.status.object = self.message
        self.busy.visible = False
        self.running = False

    def cancel(self) -> None:
        if self._job is not None:
            self._job._cancel.set()
        if self._future is not None and self._future.cancel():  # still queued: it never starts
            self.message = "cancelled"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running task ends (for notebooks and tests); True if it ended."""
        if self._future is not None:
            try:
                self._future.result(timeout)
            except TimeoutError:
                return False
            except Exception:  # CancelledError; the task's own errors are caught inside it
                pass
        return True
