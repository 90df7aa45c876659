"""CLI commands of the experiments area: ``run`` (any registered experiment), ``validate`` (ground-truth proof),
``compare-properties`` (a twin against the published digital-twin properties) and ``tuning`` (kept as an alias of
``run direction_tuning`` with its historical options)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .lazy import load


def _load(twin: str, n_neurons: int, seed: int):
    load_twin = load("twins", "load_twin")

    if twin == "synthetic":
        return load_twin("synthetic", seed=seed, n_neurons=n_neurons)
    return load_twin(twin)


def _units(text: str | None) -> list[int] | None:
    if text is None or text.strip() in ("", "all"):
        return None
    try:
        return [int(u) for u in text.replace(" ", "").split(",") if u]
    except ValueError:
        raise typer.BadParameter(f"--units must be 'all' or comma-separated readout ids such as 0,5,9; got {text!r}")


def _run_spec(name: str, params: dict, out: Path | None, twin: str, n_neurons: int, seed: int,
              units: str | None = None) -> None:
    get_experiment = load("experiments", "get_experiment")

    try:
        spec = get_experiment(name)
        ds = spec(_load(twin, n_neurons, seed), units=_units(units), **params)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    target = out if out is not None else Path(f"{spec.name}.nc")
    ds.to_netcdf(target)
    typer.echo(f"{spec.summary(ds)}; wrote {target}")


def _scan(text: str) -> tuple[int, int]:
    try:
        session, scan_idx = (int(v) for v in text.split("-"))
    except ValueError:
        raise typer.BadParameter(f"--scan must be session-scan_idx such as 8-5; got {text!r}") from None
    return session, scan_idx


def _compare(scan: str, properties: Path | None, bundle: Path | None, twin: str, units: str | None, tuning: bool,
             directions: int, duration: float):
    compare_properties = load("experiments.compare", "compare_properties")
    download_properties, read_properties = load("experiments.published", "download_properties", "read_properties")
    load_twin = load("twins", "load_twin")

    session, scan_idx = _scan(scan)
    folder = properties if properties is not None else download_properties()
    published = read_properties(folder, scan=(session, scan_idx))
    if twin == "microns":
        model = load_twin("microns", session=session, scan_idx=scan_idx, directory=bundle)
    else:
        model = load_twin(twin)
    chosen = _units(units)
    return compare_properties(model, published, units=chosen, tuning=tuning, directions=directions,
                              duration_s=duration, show_progress=False)


def _scan_specs(scans: str, bundle: Path | None, twin: str, n_neurons: int, seed: int) -> list:
    TwinSpec = load("experiments.batch", "TwinSpec")
    available_scans = load("twins", "available_scans")

    if twin != "microns":
        options = {"seed": seed, "n_neurons": n_neurons} if twin == "synthetic" else {}
        return [TwinSpec(twin, options)]
    listed = available_scans(bundle)
    if scans.strip().lower() == "all":
        chosen = listed
    else:
        chosen = [_scan(s.strip()) for s in scans.split(",") if s.strip()]
    missing = [s for s in chosen if s not in listed]
    if not chosen or missing:
        raise typer.BadParameter(f"scans {missing or scans!r} are not in the bundle; available: "
                                 f"{', '.join(f'{a}-{b}' for a, b in listed) or 'none (run twin-explorer download)'}")
    extra = {} if bundle is None else {"directory": str(bundle)}
    return [TwinSpec("microns", {"session": a, "scan_idx": b, **extra}) for a, b in chosen]


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch_command(
        experiment: str = typer.Argument(..., help="Registered experiment, e.g. direction_tuning."),
        param: list[str] = typer.Option([], "--param", "-p", help="Experiment parameter key=value (see `run "
                                        "--show-params`)."),
        scans: str = typer.Option("all", help="Scans of the bundle: all, or session-scan_idx list such as 4-7,8-5."),
        bundle: Optional[Path] = typer.Option(None, help="Folder of the MICrONS weight bundle (default: the cache's)."),
        twin: str = typer.Option("microns", help="microns (every chosen scan) or one load_twin name (synthetic, demo)."),
        n_neurons: int = typer.Option(100, help="Neurons (synthetic twin only)."),
        seed: int = typer.Option(0, help="Twin seed (synthetic twin only)."),
        workers: int = typer.Option(0, help="Dask worker processes on this machine (0: run here; with GPUs one "
                                    "worker per GPU whatever the number)."),
        scheduler: Optional[str] = typer.Option(None, help="Address of a running dask scheduler (tcp://host:port) "
                                                "instead of local workers."),
        chunk_size: int = typer.Option(256, help="Units per task."),
        cache: Optional[Path] = typer.Option(Path("batch-cache"), help="Folder of the per-chunk cache (resume)."),
        store: Path = typer.Option(Path("results.nc"), help="netCDF file with one group per scan."),
    ) -> None:
        """Run an experiment over every unit of every scan (chunked, cached, resumable; optionally on a dask
        cluster) and write all scans' results to one store."""
        get_experiment = load("experiments", "get_experiment")
        BatchRunner = load("experiments.batch", "BatchRunner")
        local_cluster, visible_gpus = load("experiments.cluster", "local_cluster", "visible_gpus")

        try:
            spec = get_experiment(experiment)
            params = spec.parse(param)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        specs = _scan_specs(scans, bundle, twin, n_neurons, seed)
        cluster = client = None
        try:
            if scheduler or workers > 0:
                import distributed  # optional dependency at call time

                if scheduler:
                    client = distributed.Client(scheduler, timeout=60)
                else:
                    gpus = visible_gpus()  # one worker per GPU when there are GPUs
                    cluster = local_cluster(n_workers=None if gpus else max(workers, 1), gpus=gpus or None)
                    client = distributed.Client(cluster)
            runner = BatchRunner(spec, chunk_size=chunk_size, cache_dir=cache, client=client, store=store)
            out = runner.run(specs, **params)
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
        for name, ds in out.items():
            typer.echo(f"{name}: {spec.summary(ds)}")
        typer.echo(f"{runner.computed} chunks computed, the rest from {cache}; wrote {store}")

    @app.command("compare-properties")
    def compare_properties_command(
        scan: str = typer.Option("8-5", help="Scan as session-scan_idx, e.g. 8-5."),
        properties: Optional[Path] = typer.Option(None, help="Folder with the published digital-twin properties v2 "
                                                  "(readout/, performance/, ori_dir_tuning/, anatomy/); default: "
                                                  "download them into the cache."),
        bundle: Optional[Path] = typer.Option(None, help="Folder of the MICrONS weight bundle (default: the "
                                              "cache's; see `twin-explorer download`)."),
        twin: str = typer.Option("microns", help="microns (the scan's published twin) or another load_twin name "
                                 "whose units carry session/scan_idx/unit_id (e.g. demo)."),
        units: Optional[str] = typer.Option(None, help="Readout ids, comma-separated (default: all units)."),
        tuning: bool = typer.Option(True, "--tuning/--no-tuning", help="Run the in-silico direction tuning (off: "
                                    "readout positions only)."),
        directions: int = typer.Option(16, help="Directions of the drifting gratings."),
        duration: float = typer.Option(1.0, help="Seconds per direction."),
        out: Path = typer.Option(Path("compare-properties"), help="Folder for the table (CSV) and plots (HTML/PNG)."),
        png: bool = typer.Option(True, "--png/--no-png", help="Also save the plots as PNG (matplotlib)."),
    ) -> None:
        """Run the in-silico tuning and readout RFs of a scan and compare them with the published properties
        (exit status 1 when they disagree)."""
        save_comparison = load("experiments.compare", "save_comparison")

        try:
            result = _compare(scan, properties, bundle, twin, units, tuning, directions, duration)
        except ValueError as exc:  # bad input: scan, folders, units
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(result.format())
        for path in save_comparison(result, out, png=png):
            typer.echo(f"wrote {path}")
        raise typer.Exit(0 if result.agrees else 1)

    @app.command()
    def run(
        experiment: Optional[str] = typer.Argument(None, help="Registered experiment (see --list), e.g. "
                                                   "direction_tuning."),
        param: list[str] = typer.Option([], "--param", "-p", help="Experiment parameter key=value (JSON values: "
                                        "0.04, [1,2,4], null); repeat for several. See --show-params."),
        out: Optional[Path] = typer.Option(None, help="netCDF file to write (default: <experiment>.nc)."),
        twin: str = typer.Option("synthetic", help="Twin name for load_twin (synthetic, demo, ...)."),
        n_neurons: int = typer.Option(100, help="Neurons (synthetic twin only)."),
        seed: int = typer.Option(0, help="Twin seed (synthetic twin only)."),
        units: Optional[str] = typer.Option(None, help="Readout ids, comma-separated (default: all units)."),
        list_: bool = typer.Option(False, "--list", help="List the registered experiments and exit."),
        show_params: bool = typer.Option(False, "--show-params", help="Print the experiment's parameters and exit."),
    ) -> None:
        """Run any registered experiment on a twin and save its Dataset as netCDF."""
        REGISTRY, get_experiment = load("experiments", "REGISTRY", "get_experiment")

        if list_:
            for name, spec in sorted(REGISTRY.items()):
                typer.echo(f"{name:22s} {spec.description}")
            raise typer.Exit(0)
        if experiment is None:
            raise typer.BadParameter(f"name an experiment: {', '.join(sorted(REGISTRY))} (or pass --list)")
        try:
            spec = get_experiment(experiment)
            params = spec.parse(param)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        if show_params:
            for key, value in spec.defaults().items():
                typer.echo(f"{key} = {value!r}")
            raise typer.Exit(0)
        _run_spec(spec.name, params, out, twin, n_neurons, seed, units)

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
        """Direction tuning (alias of `run direction_tuning`); saves a netCDF Dataset."""
        _run_spec("direction_tuning", dict(directions=directions, sf_cpd=sf, tf_hz=tf, duration_s=duration,
                                           latency_s=latency, seed=seed), out, twin, n_neurons, seed)

    @app.command()
    def validate(
        n_neurons: int = typer.Option(200, help="Neurons in the synthetic mouse."),
        seed: int = typer.Option(0, help="Synthetic mouse seed (another seed is another mouse)."),
        out: Optional[Path] = typer.Option(None, help="Folder for metrics CSV, comparison plots (HTML) and netCDF."),
        quick: bool = typer.Option(True, "--quick/--full", help="Coarser grids and shorter presentations."),
        png: bool = typer.Option(False, help="Also export the plots as PNG (needs a browser driver)."),
    ) -> None:
        """Run the tuning and RF experiments on the synthetic mouse and compare with its true parameters."""
        save_report = load("experiments.validate", "save_report")
        run_validation = load("experiments.validate", "validate")

        try:
            report = run_validation(n_neurons=n_neurons, seed=seed, quick=quick)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(report.format())
        if out is not None:
            for p in save_report(report, out, png=png):
                typer.echo(f"wrote {p}")
        raise typer.Exit(0 if report.passed else 1)
