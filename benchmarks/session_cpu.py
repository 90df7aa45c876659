"""Server CPU per new session, in-process: what one page request costs the server (issue 16's goal: < 0.5 s).

``python -m benchmarks.session_cpu [--sessions 5] [--twin synthetic] [--profile 25]`` (from the repository root)
serves the explorer in this process, requests its page once to warm the shared caches, then ``--sessions`` times one
after another, and prints the CPU seconds per page of the server's event loop thread (where sessions are built; user
+ system, so the other work on a shared machine counts less than in wall time) and of the whole process (which also
runs the client), with the load average. ``--profile N`` runs the server's event loop under cProfile and prints its
N most expensive functions (cumulative).
Each page is what a browser asks for without the browser: the page's HTML, then a connection to its session (where
the server builds it: the page's HTML is reused, see ``ui.app.prepare_server``), closed again; as
``benchmarks.app_load``'s burst does.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import threading
import time
import urllib.request

import panel as pn
import psutil

from twin_explorer.ui.app import SERVE_OPTIONS, create_app, prepare_server, settle_startup_objects
from twin_explorer.ui.state import get_twin, unit_table

from .browser import free_port, open_page_session


def cpu_seconds() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def fetch(url: str) -> None:
    with urllib.request.urlopen(url, timeout=300) as resp:
        resp.read()


def measure(twin_name: str, sessions: int, profile: cProfile.Profile | None) -> dict[str, float]:
    """Serve on the main thread (so cProfile sees the session being built); a client thread asks for the pages."""
    twin = get_twin(twin_name)
    unit_table(twin)  # warmed before the first page, as twin-explorer serve does
    port = free_port()
    prepare_server()
    settle_startup_objects()
    server = pn.serve({"explorer": lambda: create_app(twin)}, port=port, address="127.0.0.1", show=False,
                      start=False, websocket_origin=[f"127.0.0.1:{port}"], **SERVE_OPTIONS)
    url = f"http://127.0.0.1:{port}/explorer"
    result: dict[str, float] = {}
    marks: list[float] = []  # the server thread's own CPU clock, read on that thread

    def client() -> None:
        try:
            fetch(url)  # the first session fills the shared caches (unit table, anatomy links, results)
            time.sleep(2.0)  # its designer's first prediction finishes in the worker pool
            server.io_loop.add_callback(lambda: marks.append(time.thread_time()))
            if profile is not None:
                server.io_loop.add_callback(profile.enable)
            t0, c0 = time.perf_counter(), cpu_seconds()
            for _ in range(sessions):
                open_page_session(url)[1].close()
            time.sleep(1.0)  # each session's first redraw (cached) comes back from the pool
            if profile is not None:
                server.io_loop.add_callback(profile.disable)
            result.update(cpu=(cpu_seconds() - c0) / sessions, wall=(time.perf_counter() - t0) / sessions)
            server.io_loop.add_callback(lambda: marks.append(time.thread_time()))
        finally:
            server.io_loop.add_callback(server.io_loop.stop)

    thread = threading.Thread(target=client, daemon=True)
    server.start()
    thread.start()
    server.io_loop.start()
    thread.join()
    server.stop()
    result["thread_cpu"] = (marks[1] - marks[0]) / sessions
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--twin", default="synthetic")
    parser.add_argument("--profile", type=int, default=0, help="print the N most expensive functions")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 50:
        raise SystemExit("--sessions must be 1…50")
    load0 = os.getloadavg()
    profile = cProfile.Profile() if args.profile else None
    r = measure(args.twin, args.sessions, profile)
    print(f"server CPU per new session {r['thread_cpu']:.3f} s (its event loop thread, where sessions are built; "
          f"this whole process {r['cpu']:.3f} s, with the client that receives each page's document; wall "
          f"{r['wall']:.3f} s per page), "
          f"{args.sessions} sessions, twin {args.twin}; load average before / after {load0} / {os.getloadavg()}, "
          f"{os.cpu_count()} cores")
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
