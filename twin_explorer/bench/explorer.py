"""The explorer on a full scan, measured: ``twin-explorer bench explorer``.

On a full-size random-weight bundle (one scan, by default 8-5 with its published 9,941 units, made with
:func:`twin_explorer.twins.fullsize.make_bundle` unless ``--bundle`` names one), in one run and through the
explorer's own views (no browser): loading the scan, the stimulus designer's redraw of its 1 s preview, the unit
table, then an all-unit direction tuning as the Tuning tab runs it (float32, 1 s gratings, the view's other
defaults), timing when the first provisional (streamed) result is drawn and when the final one is, and the
drawing of the binned direction map and histograms. It prints seconds, their ratios to the issue's goals
(first partial result < 3 s, 16-direction all-unit tuning < 20 s on 2 cores) and the load average.

This benchmark sits above the explorer (it drives ``twin_explorer.ui``), beside the command line.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from ..twins.fullsize import make_bundle, parse_scans
from ..ui import state as explorer_state
from ..ui.app import Explorer

GOAL_FIRST_PARTIAL_S = 3.0
GOAL_TUNING_S = 20.0


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def run_explorer_bench(bundle: str | os.PathLike | None = None, scan: str = "8-5", directions: int = 16,
                       duration_s: float = 1.0, threads: int | None = 2, redraws: int = 3) -> dict[str, float]:
    """Measure and print (see the module docstring); returns the timings in seconds."""
    if directions < 4 or duration_s <= 0 or redraws < 1:
        raise ValueError(f"directions ≥ 4, duration_s > 0 and redraws ≥ 1 are required; got {directions}, "
                         f"{duration_s}, {redraws}")
    (session, scan_idx), = parse_scans(scan)
    if threads is not None:
        torch.set_num_threads(int(threads))
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="twin-explorer-bench-") as tmp:
        if bundle is None:
            t0 = time.perf_counter()
            bundle = make_bundle(Path(tmp) / "bundle", scans=[(session, scan_idx)])
            print(f"made a random-weight bundle of scan {session}-{scan_idx} in {time.perf_counter() - t0:.1f} s")
        explorer_state.BUNDLE_DIR = str(bundle)
        name = explorer_state.microns_name(session, scan_idx)
        t0 = time.perf_counter()
        twin = explorer_state.get_twin(name)
        out["load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        explorer = Explorer(name)
        out["explorer_build_s"] = time.perf_counter() - t0
        print(f"scan {name}: {twin.n_units} units, torch threads {torch.get_num_threads()}, load average {_load()}")
        print(f"load {out['load_s']:.2f} s · all views built (unit table, designer's first preview) "
              f"{out['explorer_build_s']:.1f} s")

        designer = explorer.views["Stimulus designer"]
        stim = designer.stimulus
        times = []
        cpu0 = time.process_time()
        for i in range(redraws):  # each a new direction: rendered and predicted afresh, never from a cache
            t0 = time.perf_counter()
            stim.direction_deg = (stim.direction_deg + 37.0 + i) % 360
            times.append(time.perf_counter() - t0)
        out["designer_redraw_s"] = min(times)
        out["designer_redraw_cpu_s"] = (time.process_time() - cpu0) / redraws
        frames = int(designer._result["responses"].shape[0])
        print(f"designer redraw ({frames} frames = {frames / twin.frame_rate:.2f} s preview, all units): best of "
              f"{redraws} {out['designer_redraw_s']:.2f} s ({frames / out['designer_redraw_s']:.1f} frames/s; "
              f"{out['designer_redraw_cpu_s']:.1f} CPU s each on average)")

        view = explorer.views["Tuning"]
        view.param.update(directions=directions, duration_s=duration_s)
        drawn: list[tuple[float, int | None, float]] = []
        draw = view._draw

        def timed_draw(ds) -> None:
            t_draw = time.perf_counter()
            draw(ds)
            drawn.append((time.perf_counter() - t_start, ds.attrs.get("directions_done"),
                          time.perf_counter() - t_draw))

        view._draw = timed_draw
        t_start, cpu0 = time.perf_counter(), time.process_time()
        view.run(wait=True)
        out["tuning_total_s"] = time.perf_counter() - t_start
        out["tuning_cpu_s"] = time.process_time() - cpu0
        if view.runner.error:
            raise RuntimeError(view.runner.error)
        partial = [d for d in drawn if d[1] is not None]
        out["first_partial_s"] = partial[0][0] if partial else float("nan")
        out["partial_draw_s"] = max((d[2] for d in partial), default=float("nan"))
        out["final_draw_s"] = drawn[-1][2] if drawn else float("nan")
        for t, k, cost in drawn:
            what = f"{k} of {directions} directions (provisional)" if k is not None else "final result"
            print(f"  {t:7.1f} s  {what} drawn (drawing took {cost:.2f} s)")
        print(f"first partial result on screen: {out['first_partial_s']:.1f} s "
              f"({out['first_partial_s'] / GOAL_FIRST_PARTIAL_S:.2f}x the {GOAL_FIRST_PARTIAL_S:g} s goal)")
        print(f"{directions}-direction all-unit tuning ({duration_s:g} s gratings): {out['tuning_total_s']:.1f} s "
              f"({out['tuning_total_s'] / GOAL_TUNING_S:.2f}x the {GOAL_TUNING_S:g} s goal; "
              f"{out['tuning_total_s'] / directions:.2f} s per direction; {out['tuning_cpu_s']:.0f} CPU s: on a "
              f"machine shared with other work, CPU s / 2 is the time 2 idle cores would need at best)")
        print(f"load average after the run: {_load()}")
        explorer.close()
    return out
