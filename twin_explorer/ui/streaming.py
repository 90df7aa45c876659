"""Provisional results on their way from an experiment's worker thread to a view, for every view that streams.

The experiment calls ``partial(ds)`` after each batch (:mod:`twin_explorer.experiments.streaming`); a
:class:`ProvisionalStream` keeps only the newest one and draws it on the session's next tick, so a redraw slower than
a batch skips the provisional results it missed instead of queueing them; one from a run that was superseded (a
newer run, the final result, a cancel, a cleared view) is dropped. A run's provisional results are drawn from
:data:`FIRST_AFTER_S` after its start on, at most every :data:`MIN_GAP_S`: each draw costs the browser far more than
the server (the tuning view's: ~2.5 s of a page's main thread on 2 cores, against 0.07 s of the server's), so a
quick run shows its final result alone (an all-neuron tuning of the demo twin, 1.3 s of computing, was shown done
6.0 s after the click with a provisional draw first and 4.9 s without, one page), and a draw per batch kept a
classroom's pages busy.
:func:`paced_progress` reports "k of n …" with the time left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from twin_explorer.experiments.streaming import PartialCallback

from .tasks import Job

__all__ = ["ProvisionalStream", "time_left", "paced_progress", "MIN_GAP_S", "FIRST_AFTER_S"]

#: Seconds between the starts of two provisional draws of one view (the newest result waits; the final one never does)
MIN_GAP_S = 1.5
#: Seconds from a run's start before its first provisional draw (a run done sooner shows only its final result)
FIRST_AFTER_S = 2.0


def time_left(elapsed_s: float, done: int, total: int) -> str:
    """" · about 40 s left" from the pace so far (empty before anything is done and once all is)."""
    if done <= 0 or done >= total:
        return ""
    left = elapsed_s / done * (total - done)
    return f" · about {left:.0f} s left" if left < 120 else f" · about {left / 60:.1f} min left"


def paced_progress(job: Job, what: str = "conditions", offset: float = 0.0, share: float = 1.0
                   ) -> Callable[[int, int], None]:
    """A runner ``progress(done, total)`` callback reporting "k of n <what> · about … left" to ``job`` (its share
    of the bar from ``offset``)."""
    t0 = time.perf_counter()

    def report(done: int, total: int) -> None:
        job.update(offset + share * done / max(total, 1),
                   f"{done} of {total} {what}" + time_left(time.perf_counter() - t0, done, total))
    return report


class ProvisionalStream:
    """Delivery of one view's provisional results: ``start()`` when a run begins, ``sink(job)`` (in the worker) is
    the experiment's ``partial`` callback, ``stop()`` when the final result is shown or the run ends without one;
    ``draw(ds)`` runs in the session for the newest provisional result of the current run only."""

    def __init__(self, draw: Callable[[Any], None], min_gap_s: float | None = None,
                 first_after_s: float | None = None) -> None:
        self._draw = draw
        self.min_gap_s = MIN_GAP_S if min_gap_s is None else float(min_gap_s)
        self.first_after_s = FIRST_AFTER_S if first_after_s is None else float(first_after_s)
        self._lock = threading.Lock()
        self._pending: tuple[object, Any] | None = None
        self._scheduled = False  # a flush is on its way to the session
        self._last_draw = -float("inf")  # time.monotonic() of this run's last provisional draw
        self._started = -float("inf")  # time.monotonic() of this run's start
        self._run: object | None = None

    @property
    def active(self) -> bool:
        """True from ``start()`` until ``stop()``: provisional results of the current run are still drawn."""
        return self._run is not None

    def start(self) -> None:
        """A new run: provisional results of any earlier run are dropped from now on."""
        self._run = object()
        self._last_draw = -float("inf")
        self._started = time.monotonic()

    def stop(self) -> None:
        """No more provisional results (the final one came, or the run ended without one)."""
        self._run = None

    def sink(self, job: Job) -> PartialCallback:
        """The ``partial`` callback of the run started last, delivering to the session through ``job``."""
        run = self._run
        return lambda ds: self._deliver(job, run, ds)

    def _deliver(self, job: Job, run: object | None, ds: Any) -> None:
        with self._lock:
            self._pending = (run, ds)
            # too soon after the run's start or the last draw: this result waits for the next batch's (or is
            # superseded by the final one)
            now = time.monotonic()
            if self._scheduled or now - self._last_draw < self.min_gap_s or now - self._started < self.first_after_s:
                return
            self._scheduled = True
        job.ui(self._flush, freeze=True)

    def _flush(self) -> None:
        with self._lock:
            item, self._pending, self._scheduled = self._pending, None, False
            if item is None or self._run is None or item[0] is not self._run:
                return  # the final result (or another run) came first
            self._last_draw = time.monotonic()
        self._draw(item[1])
