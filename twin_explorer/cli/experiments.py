"""CLI commands of the experiments area: ``validate`` (ground-truth proof), ``tuning`` and ``rf``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _load(twin: str, n_neurons: int, seed: int):
    from twin_explorer.twins import load_twin

    if twin == "synthetic":
        return load_twin("synthetic", seed=seed, n_neurons=n_neurons)
    return load_twin(twin)


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        n_neurons: int = typer.Option(200, help="Neurons in the synthetic mouse."),
        seed: int = typer.Option(0, help="Synthetic mouse seed (another seed is another mouse)."),
        out: Optional[Path] = typer.Option(None, help="Folder for metrics CSV, comparison plots (HTML) and netCDF."),
        quick: bool = typer.Option(True, "--quick/--full", help="Coarser grids and shorter presentations."),
        png: bool = typer.Option(False, help="Also export the plots as PNG (needs a browser driver)."),
    ) -> None:
        """Run the tuning and RF experiments on the synthetic mouse and compare with its true parameters."""
        from twin_explorer.experiments.validate import save_report
        from twin_explorer.experiments.validate import validate as run_validation

        try:
            report = run_validation(n_neurons=n_neurons, seed=seed, quick=quick)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(report.format())
        if out is not None:
            for p in save_report(report, out, png=png):
                typer.echo(f"wrote {p}")
        raise typer.Exit(0 if report.passed else 1)

    @app.command()
    def tuning(
        out: Path = typer.Option(Path("direction_tuning.nc"), help="netCDF file to write."),
        twin: str = typer.Option("synthetic", help="Twin name for load_twin (synthetic, demo, ...)."),
        n_neurons: int = typer.Option(100, help="Neurons (synthetic twin only)."),
        seed: int = typer.Option(0, help="Seed (synthetic twin only)."),
        directions: int = typer.Option(16, help="Number of evenly spaced directions."),
        sf: float = typer.Option(0.04, help="Spatial frequency, cycles/degree."),
        tf: float = typer.Option(2.0, help="Temporal frequency, Hz."),
        duration: float = typer.Option(2.0, help="Seconds per direction."),
        latency: float = typer.Option(0.1, help="Response latency shifting the averaging window, seconds."),
    ) -> None:
        """Direction-tuning experiment (drifting gratings) on a twin; saves a netCDF Dataset."""
        from twin_explorer.experiments import direction_tuning

        try:
            tw = _load(twin, n_neurons, seed)
            ds = direction_tuning(tw, directions=directions, sf_cpd=sf, tf_hz=tf, duration_s=duration,
                                  latency_s=latency, seed=seed)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        ds.to_netcdf(out)
        typer.echo(f"{ds.sizes['unit']} units; median gOSI {float(ds['gosi'].median()):.2f}, "
                   f"median gDSI {float(ds['gdsi'].median()):.2f}; wrote {out}")

    @app.command()
    def rf(
        out: Path = typer.Option(Path("receptive_fields.nc"), help="netCDF file to write."),
        twin: str = typer.Option("synthetic", help="Twin name for load_twin."),
        n_neurons: int = typer.Option(100, help="Neurons (synthetic twin only)."),
        seed: int = typer.Option(0, help="Seed (synthetic twin only; also the dot order)."),
        spacing: float = typer.Option(5.0, help="Dot grid spacing, degrees."),
        dot_s: float = typer.Option(0.2, help="Seconds each dot is shown."),
    ) -> None:
        """Receptive-field mapping (flashing dots, STA, Gaussian fit) on a twin; saves a netCDF Dataset."""
        from twin_explorer.experiments import receptive_fields

        try:
            tw = _load(twin, n_neurons, seed)
            ds = receptive_fields(tw, spacing_deg=spacing, dot_s=dot_s, seed=seed)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        ds.to_netcdf(out)
        typer.echo(f"{ds.sizes['unit']} units; wrote {out}")
