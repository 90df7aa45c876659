"""``twin-explorer bench engine|demo|gpu|explorer|make-bundle``: the speed benchmarks that need no browser (they run from an
installed wheel) and the full-size bundle they use.

The browser benchmark (designer redraw, screenshots) drives Chromium and lives with the tests' browser harness in
the repository: ``python -m benchmarks.browser`` from a checkout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .lazy import load

from ..paths import bundled


def register(app: typer.Typer) -> None:
    bench = typer.Typer(help="Speed benchmarks (each prints its numbers and ratios).", no_args_is_help=True)
    app.add_typer(bench, name="bench")

    @bench.command()
    def engine(
        units: int = typer.Option(10_000, min=1, help="Readout units of the MICrONS network."),
        frames: int = typer.Option(10, min=2, help="Frames per video."),
        batch: int = typer.Option(16, min=1, help="Videos per batch (batches 1 and 4 are always measured too)."),
        device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1, mps (default: the best available)."),
        threads: Optional[int] = typer.Option(None, min=1, help="CPU threads (default: torch's choice)."),
        budget_mb: Optional[float] = typer.Option(None, min=1, help="Activation memory budget of a pass (default: "
                                                                    "the engine's for the device)."),
        reference: bool = typer.Option(True, help="Also time the reference implementation (fnn) on every batch "
                                                  "when it is installed."),
    ) -> None:
        """Frames/s of the MICrONS network through the engine vs a frame-by-frame loop and the reference
        implementation, FLOPs, sgemm peak."""
        run_engine_bench = load("bench", "run_engine_bench")

        run_engine_bench(units=units, frames=frames, batch=batch, device=device, threads=threads,
                         budget_mb=budget_mb, reference_impl=reference)

    @bench.command()
    def demo(
        directory: Optional[Path] = typer.Option(None, help="Twin folder (default: the bundled demo twin)."),
        repeats: int = typer.Option(3, min=1, help="Runs per timing (the best is reported)."),
        threads: Optional[int] = typer.Option(None, min=1, help="CPU threads (default: torch's choice)."),
        write: bool = typer.Option(False, help="Store the timings as bench.json in the twin folder and refresh its "
                                               "model card."),
        machine: str = typer.Option("2 shared CPU cores", help="What to call this machine in bench.json."),
    ) -> None:
        """Demo twin interaction timings: load, 1 s preview, 16-direction tuning, one training step."""
        bench_demo, format_demo_bench, write_demo_bench = load("training.bench", "bench_demo", "format_demo_bench",
                                                                "write_demo_bench")

        result = bench_demo(directory, repeats, threads)
        typer.echo(format_demo_bench(result))
        if write:
            typer.echo(f"wrote {write_demo_bench(directory or bundled('demo_twin'), result, machine)}")

    @bench.command()
    def precision(
        units: int = typer.Option(10_000, min=1, help="Readout units of the MICrONS network."),
        frames: int = typer.Option(300, min=2, help="Frames of the natural video the deviation is measured over."),
        directions: int = typer.Option(16, min=4, help="Directions of the drifting-grating tuning."),
        duration: float = typer.Option(1.0, min=0.1, help="Seconds of grating per direction."),
        device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1, mps (default: the best available)."),
        threads: Optional[int] = typer.Option(None, min=1, help="CPU threads (default: torch's choice)."),
    ) -> None:
        """Every accepted precision against float32: frames/s, response error, preferred-direction and gOSI change."""
        run_precision_bench = load("bench.precision", "run_precision_bench")

        try:
            run_precision_bench(units=units, frames=frames, directions=directions, duration_s=duration,
                                device=device, threads=threads)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc

    @bench.command()
    def gpu(
        units: int = typer.Option(10_000, min=1, help="Readout units of the MICrONS network."),
        frames: int = typer.Option(30, min=2, help="Frames per video."),
        float16: bool = typer.Option(False, help="Measure float16 besides float32 and bfloat16."),
        device: str = typer.Option("cuda", help="The CUDA device (cuda, cuda:1, ...)."),
    ) -> None:
        """GPU path: frames/s at batch 1, 16, 64 in float32 and bfloat16, with and without CUDA graphs."""
        run_gpu_bench = load("bench.gpu", "run_gpu_bench")

        precisions = ("float32", "bfloat16", "float16") if float16 else ("float32", "bfloat16")
        try:
            run_gpu_bench(units=units, frames=frames, precisions=precisions, device=device)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc

    @bench.command()
    def explorer(
        bundle: Optional[Path] = typer.Option(None, file_okay=False, help="Bundle folder (default: a full-size "
                                                                          "random-weight bundle made for the run)."),
        scan: str = typer.Option("8-5", help="The scan to open (session-scan_idx)."),
        directions: int = typer.Option(16, min=4, help="Directions of the all-unit tuning."),
        duration: float = typer.Option(1.0, min=0.1, help="Seconds of grating per direction."),
        threads: int = typer.Option(2, min=1, help="CPU threads."),
    ) -> None:
        """The explorer on a full scan: designer redraw, first streamed and final all-unit tuning result."""
        run_explorer_bench = load("bench.explorer", "run_explorer_bench")

        try:
            run_explorer_bench(bundle=bundle, scan=scan, directions=directions, duration_s=duration, threads=threads)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc

    @bench.command("make-bundle")
    def make_bundle_command(
        directory: Path = typer.Argument(..., help="Folder to write the bundle into."),
        scans: str = typer.Option("8-5", help="'8-5', '4-7,8-5' or 'all' (the 13 published scans)."),
        units: Optional[int] = typer.Option(None, min=1, help="Units of every scan (default: the published "
                                                              "count of each scan; 8-5: 9,941)."),
        seed: int = typer.Option(0, help="Seed of the random weights."),
    ) -> None:
        """Write random weights at the published shapes in the published bundle layout (no download needed)."""
        make_bundle = load("twins.fullsize", "make_bundle")

        try:
            folder = make_bundle(directory, scans=scans, units=units, seed=seed)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(f"wrote a random-weight MICrONS bundle to {folder}; load a scan with "
                   f"twin_explorer.load_twin('microns', session=..., scan_idx=..., directory='{folder}')")
