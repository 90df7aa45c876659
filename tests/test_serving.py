"""Serving many sessions: the shared fair worker pool, identical requests computed once, sessions released on close."""

from __future__ import annotations

import gc
import threading
import time
import urllib.request
import weakref

import param
import pytest

from twin_explorer.ui.tasks import Cancelled, FairPool, Job, ResultCache, TaskRunner


class FakeTwin:
    id = "fake"


def test_pool_serves_sessions_in_turn():
    pool = FairPool(1, "test")
    gate, order = threading.Event(), []

    def task(name):
        def run():
            gate.wait(10)
            order.append(name)
            return name
        return run

    first = pool.submit("a", task("a0"))
    time.sleep(0.2)  # a0 holds the only worker; the rest queue
    futures = [pool.submit("a", task(f"a{i}")) for i in range(1, 4)] + [pool.submit("b", task("b0"))]
    assert pool.pending() == 4 and pool.pending("b") == 1
    gate.set()
    assert [f.result(10) for f in [first, *futures]] == ["a0", "a1", "a2", "a3", "b0"]
    assert order.index("b0") == 2, f"session b waited behind all of a's requests: {order}"


def test_pool_coalesces_and_drops_a_sessions_queued_requests():
    pool = FairPool(1, "test")
    gate = threading.Event()
    running = pool.submit("s", lambda: gate.wait(10))
    time.sleep(0.2)
    old = pool.submit("s", lambda: "old", coalesce="slider")
    new = pool.submit("s", lambda: "new", coalesce="slider")
    other = pool.submit("s", lambda: "other")
    assert old.cancelled() and pool.pending("s") == 2
    assert pool.drop("s") == 2 and new.cancelled() and other.cancelled()
    gate.set()
    assert running.result(10) is True


def test_pool_rejects_no_workers():
    with pytest.raises(ValueError, match="at least one worker"):
        FairPool(0, "none")


def test_identical_requests_are_computed_once_across_threads():
    cache, calls, results = ResultCache(2**20), [], []
    gate = threading.Event()

    def compute():
        calls.append(1)
        gate.wait(10)
        return {"value": 42}

    threads = [threading.Thread(target=lambda: results.append(cache.compute_once(FakeTwin(), "k", {"p": 1}, compute)))
               for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert cache.in_flight == 1
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and results == [{"value": 42}] * 4 and cache.in_flight == 0
    assert cache.compute_once(FakeTwin(), "k", {"p": 1}, lambda: {"value": 0}) == {"value": 42}  # now cached


def test_a_waiting_request_computes_itself_when_the_first_is_cancelled():
    cache, started = ResultCache(2**20), threading.Event()
    runner = TaskRunner()
    leader_job, follower_job = Job(TaskRunner()), Job(runner)
    out = {}

    def leader():
        def compute():
            started.set()
            while True:
                leader_job.update(0.5, "step 1/2")  # raises Cancelled once cancelled
                time.sleep(0.05)
        try:
            cache.compute_once(FakeTwin(), "k", 1, compute, job=leader_job)
        except Cancelled:
            out["leader"] = "cancelled"

    t1 = threading.Thread(target=leader)
    t1.start()
    started.wait(10)
    t2 = threading.Thread(target=lambda: out.setdefault("follower", cache.compute_once(
        FakeTwin(), "k", 1, lambda: "computed by the follower", job=follower_job)))
    t2.start()
    time.sleep(0.6)
    assert "several sessions" in runner.message  # the follower shows the leader's progress
    leader_job.cancel_event.set()
    t1.join(10)
    t2.join(10)
    assert out == {"leader": "cancelled", "follower": "computed by the follower"}


def test_task_runner_runs_in_the_shared_pool():
    runner = TaskRunner()
    assert runner.run(lambda job: 7, label="x") and runner.wait(10)
    assert not runner.running and "done" in runner.message


def test_sessions_are_independent_and_released_on_close(monkeypatch):
    from benchmarks.browser import open_page_session, serve_app
    from twin_explorer.ui import app as app_module
    from twin_explorer.ui.state import get_twin, unit_table

    twin = get_twin("synthetic")
    unit_table(twin)
    states, closed = [], []
    real_close = app_module.Explorer.close

    def close(self):
        closed.append(self.state)
        real_close(self)

    monkeypatch.setattr(app_module.Explorer, "close", close)
    # these pages connect but never render, so Panel's "page loaded" never ends their sessions' connect grace
    monkeypatch.setattr(app_module, "CONNECT_GRACE_S", 0.5)

    def factory():
        page = app_module.create_app(twin)
        states.append(weakref.ref(page.explorer.state))
        return page

    with serve_app(factory, check_unused_sessions_milliseconds=300, unused_session_lifetime_milliseconds=500) as url:
        first = open_page_session(url)[1]
        n = len(states)
        pages: list = []
        threads = [threading.Thread(target=lambda: pages.append(open_page_session(f"{url}?unit=7")))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert len(pages) == 3 and all(html_s < 60 for html_s, _ in pages)
        # each page connected to a session of its own, built when it connected, with its own link's neuron
        assert len(states) == n + 3 and len({id(ref()) for ref in states}) == len(states)
        assert all(ref().unit == 7 for ref in states[n:])
        s0, s1 = states[n](), states[n + 1]()
        # watchers off: run from this thread, outside the session's document lock, the views' redraw raised in
        # Bokeh, and the logged traceback (kept by pytest's log capture) held the session alive
        with param.parameterized.discard_events(s0):
            s0.unit = int(twin.units.index[5])
        assert s1.unit != s0.unit  # one session's focus is not another's
        del s0, s1
        for _, session in pages:
            session.close()
        first.close()
        pages.clear()
        deadline = time.monotonic() + 60  # the closed pages' sessions expire and are destroyed
        while len(closed) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        # every visitor's session is released (the one whose HTML is reused is the server's own: states[0])
        assert len(closed) == 4, "a closed session was not released"
        closed.clear()
        # Panel's own clean-up of a destroyed session (its onload and view registries) may finish on a later
        # tick than our close: poll, bounded
        deadline = time.monotonic() + 20
        while True:
            gc.collect()
            if all(ref() is None for ref in states[1:]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert all(ref() is None for ref in states[1:]), "a closed session's state is still referenced"
        assert states[0]() is not None


def test_a_new_session_waits_for_its_page_to_connect(monkeypatch):
    """Served without reusing the page's HTML (a plain ``panel serve`` of the app), each HTML request makes a
    session: a page slower to connect than the unused-session lifetime keeps it (before, the sweep dropped it and
    the server built the page a second session); one that never connects is released after the grace period."""
    from benchmarks.browser import serve_app
    from twin_explorer.ui import app as app_module
    from twin_explorer.ui.state import get_twin, unit_table

    twin = get_twin("synthetic")
    unit_table(twin)
    pages = []
    monkeypatch.setattr(app_module, "CONNECT_GRACE_S", 4.0)

    def factory():
        pages.append(app_module.create_app(twin))
        return pages[-1]

    with serve_app(factory, reuse_pages=False, check_unused_sessions_milliseconds=200,
                   unused_session_lifetime_milliseconds=300) as url:
        assert b"twin_explorer" in urllib.request.urlopen(url, timeout=300).read()
        created = time.monotonic()
        time.sleep(2.0)  # several sweeps past the 0.3 s lifetime, no page connected
        assert len(pages) == 1 and not pages[0].explorer.closed, "an unconnected new session was swept at once"
        deadline = created + 60
        while not pages[0].explorer.closed and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pages[0].explorer.closed and time.monotonic() - created >= 4.0, "not released after the grace period"


def test_task_progress_reaches_the_page_merged_and_in_order(monkeypatch):
    """Progress from the worker goes through the session's next tick; reports faster than the session takes them
    are merged into the newest, and the end of the task comes after them."""
    from twin_explorer.ui import tasks as tasks_module

    queued = []
    monkeypatch.setattr(tasks_module, "in_session", lambda doc, fn, freeze=False: queued.append(fn))
    runner = TaskRunner()
    runner.running = True
    for k in range(1, 4):
        runner._report(k / 4, f"{k} of 4 directions")
    assert len(queued) == 1 and runner.status.object == ""  # one tick scheduled, nothing shown before it
    queued.pop()()
    assert runner.progress.value == 750 and runner.status.object == "3 of 4 directions"
    runner._report(1.0, "4 of 4 directions")  # the last report is still on its way when the task ends
    queued.append(lambda: runner._finish("x: done in 1.0 s"))
    for fn in queued:
        fn()
    assert runner.status.object == "x: done in 1.0 s" and not runner.running and not runner.busy.visible


def test_page_roots_keep_their_places_when_a_session_changes():
    """The template places each root of the page by tags on its model; the page's HTML is made from a live session
    (the kept one, ``prepare_server``), so a visitor's changes must not move a root out of its place: a pane redrawn
    at the top level resets its model's tags (a focused neuron redraws the sidebar's summary)."""
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from twin_explorer.ui.app import create_app
    from twin_explorer.ui.state import get_twin

    twin = get_twin("demo")
    doc = Document()
    with set_curdoc(doc):
        page = create_app(twin)
        page.server_doc(doc)
        places = [(root.id, tuple(root.tags)) for root in doc.roots]
        assert ("nav",) in [tags for _, tags in places] and ("main",) in [tags for _, tags in places]
        explorer = page.explorer
        explorer.state.unit = int(twin.units.index[4])  # the summary and the link change
        explorer.focus_text("-5")  # a refused id: the message shows
        explorer.switch_twin("no such twin")  # a refused twin: its message shows
        explorer.open_view("Neurons")
        explorer.state.selection = [int(u) for u in twin.units.index[:3]]
        assert [(root.id, tuple(root.tags)) for root in doc.roots] == places


def test_served_page_is_complete_for_every_visitor_after_the_first_works_in_it():
    """`twin-explorer serve` asks for its own page before serving anyone, so the session whose page is reused is
    none a visitor works in; a visitor's focus change leaves the next visitors' pages complete."""
    import os
    import subprocess
    import sys

    from benchmarks.browser import _connect_page, free_port, page_roots_missing, page_token

    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "twin_explorer", "serve", "--port", str(port), "--no-show",
                               "--twin", "demo"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        for line in server.stdout:  # start-up messages, then the page's address
            lines.append(line)
            if "twin_explorer on http://" in line:
                break
        assert lines and "/explorer" in lines[-1], "".join(lines)
        url = f"http://127.0.0.1:{port}/explorer"
        results: dict = {}

        def visitor() -> None:
            import asyncio

            asyncio.set_event_loop(asyncio.new_event_loop())
            html = urllib.request.urlopen(url, timeout=300).read().decode()
            results["first"] = (html, page_roots_missing(html))
            session = _connect_page(url, page_token(html))
            box = session.document.select_one({"title": "Focused neuron (readout_id)"})  # the sidebar's input
            assert box is not None
            box.value = "7"  # the first visitor focuses another neuron (its sidebar redraws)
            session.request_server_info()  # a round trip: the change has been handled
            time.sleep(1.0)
            html = urllib.request.urlopen(url, timeout=300).read().decode()
            results["next"] = (html, page_roots_missing(html))
            session.close()

        thread = threading.Thread(target=visitor)
        thread.start()
        thread.join(300)
        assert "first" in results and "next" in results
        for name, (html, missing) in results.items():
            assert missing == [], f"the {name} page lists roots it has no place for: {missing}"
        assert page_token(results["first"][0]) != page_token(results["next"][0])
    finally:
        server.terminate()
        server.wait(30)


def test_warm_page_says_when_it_cannot_ask_for_the_page(caplog):
    """The server's own first request failing (nothing answers at the address) is a warning, not an error."""
    import asyncio
    import logging

    from benchmarks.browser import free_port
    from twin_explorer.ui.app import warm_page

    port = free_port()  # a port nothing listens on
    with caplog.at_level(logging.WARNING, logger="twin_explorer.ui.app"):
        asyncio.run(warm_page(f"http://127.0.0.1:{port}/explorer"))
    assert any("could not ask for the page" in r.getMessage() and str(port) in r.getMessage() for r in caplog.records)


def test_served_predictions_use_half_the_cores():
    """Several predictions run at once on a server (its pools): each gets half the cores' intra-op threads, at
    least one (all cores each oversubscribed a 2-core machine: slower and twice the CPU, ui.app). ``prepare_server``
    changes the whole process (Panel's and Bokeh's settings, the preview flag, the text panes' update), so it runs in
    a process of its own: in this one it changed what later tests saw."""
    import subprocess
    import sys

    from twin_explorer.ui.app import serving_torch_threads

    assert [serving_torch_threads(c) for c in (1, 2, 3, 16)] == [1, 1, 1, 8]
    script = ("import torch\n"
              "from twin_explorer.ui import preview\n"
              "from twin_explorer.ui.app import prepare_server, serving_torch_threads\n"
              "prepare_server()\n"
              "print(torch.get_num_threads(), serving_torch_threads(), preview.ANIMATIONS_SERVED)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    threads, wanted, animations_served = done.stdout.split()[-3:]
    assert threads == wanted and animations_served == "True"
