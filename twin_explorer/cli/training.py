"""Training commands: ``twin-explorer train`` (the demo twin), ``train foundation`` (a core shared by several mice),
``report`` (its accuracy), ``adapt`` (a new mouse)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Optional

import typer

from .lazy import load

from ..paths import bundled

if TYPE_CHECKING:
    from ..training.data import RecordingSpec


def _modules() -> SimpleNamespace:
    """The training and twin modules the commands run, imported on first use."""
    adapt, data, figures, report, ship, train = load("training", "adapt", "data", "figures", "report", "ship",
                                                     "train")
    demo = load("twins", "demo")

    modules: dict[str, ModuleType] = {"adapt": adapt, "data": data, "figures": figures, "report": report,
                                      "ship": ship, "train": train, "demo": demo}
    return SimpleNamespace(**modules)


def register(app: typer.Typer) -> None:
    train_group = typer.Typer(help="Train a twin: the demo twin (plain `train`) or a foundation core (`train "
                                   "foundation`).", no_args_is_help=False)
    app.add_typer(train_group, name="train")

    @train_group.callback(invoke_without_command=True)
    def train(
        ctx: typer.Context,
        output: Path = typer.Option(None, "--output", "-o", help="Folder for the trained twin (default: the demo twin's)"),
        steps: Optional[int] = typer.Option(None, help="Optimiser steps (default: the recipe's, TrainConfig)"),
        batch: Optional[int] = typer.Option(None, help="Samples per step (default: the recipe's, TrainConfig)"),
        clips: int = typer.Option(360, help="Training clips of the synthetic mouse (10 s each)"),
        neurons: int = typer.Option(1000, help="Neurons of the synthetic mouse (= twin units)"),
        mouse_seed: int = typer.Option(0, help="Synthetic mouse seed"),
        seed: int = typer.Option(0, help="Training seed (sampling, initialisation)"),
        cache_dir: Optional[Path] = typer.Option(None, help="Recording cache (default $TWIN_EXPLORER_CACHE/recordings)"),
        work_dir: Optional[Path] = typer.Option(None, help="Checkpoint folder (default <output>-work); rerun to resume"),
        progress: bool = typer.Option(True),
    ) -> None:
        """Train the demo twin on recordings of the synthetic mouse (resumes from the last checkpoint); `train
        foundation` trains a core shared by several synthetic mice instead."""
        if ctx.invoked_subcommand is not None:  # `train foundation ...`: that command does the work
            return
        m = _modules()
        spec = m.data.RecordingSpec(mouse_seed=mouse_seed, n_neurons=neurons, n_clips=clips)
        # only what was given overrides the recipe, so its numbers live in one place (TrainConfig)
        overrides = {k: v for k, v in (("steps", steps), ("batch", batch)) if v is not None}
        cfg = m.train.TrainConfig(seed=seed, **overrides)
        out = output or bundled("demo_twin")
        try:
            m.train.train_twin(spec, cfg, out, cache_dir=cache_dir, work_dir=work_dir, progress=progress,
                       log=None if progress else typer.echo)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1)
        typer.echo(f"trained twin saved in {out}")

    @train_group.command("foundation")
    def foundation(
        mice: str = typer.Option("4", help="Number(s) of training mice, comma-separated for a curve (e.g. 1,2,4,8)"),
        minutes: float = typer.Option(30.0, help="Minutes of natural video per training mouse"),
        neurons: int = typer.Option(500, help="Neurons per training mouse"),
        first_seed: int = typer.Option(100, help="Seed of the first training mouse (the others follow)"),
        demo_neurons: int = typer.Option(1000, help="Neurons of the demo mouse (its readout is fitted on the core)"),
        demo_minutes: float = typer.Option(10.0, help="Minutes of the demo mouse's data for its readout fit"),
        steps: Optional[int] = typer.Option(None, help="Core training steps (default: the recipe's, TrainConfig)"),
        steps_per_mouse: Optional[int] = typer.Option(None, min=1, help="Core steps per training mouse instead of "
                                                      "--steps: a core of n mice trains n times as long (each mouse "
                                                      "then gets as many steps whatever the count)"),
        batch: Optional[int] = typer.Option(None, help="Samples per step (default: the recipe's, TrainConfig)"),
        finetune_steps: int = typer.Option(60, help="End-to-end steps of the demo readout on the frozen core"),
        tuning: bool = typer.Option(True, help="Also score the demo twin's tuning against the ground truth"),
        output: Path = typer.Option(..., "--output", "-o", help="Folder for the twins (mice<N>/) and the curve"),
        seed: int = typer.Option(0, help="Training seed"),
        device: str = typer.Option("cpu", help="Where the core trains: cpu, cuda, cuda:1 (the demo readout is "
                                               "fitted on the CPU)"),
        core_only: bool = typer.Option(False, help="Train the cores and stop (e.g. on a GPU machine); rerun without "
                                                   "it, on any machine, to fit and score the demo mouse"),
        card: Optional[Path] = typer.Option(None, help="A shipped twin's folder (e.g. assets/demo_twin) whose model "
                                                       "card gets the curve (foundation_curve.csv and its figure)"),
        progress: bool = typer.Option(True),
    ) -> None:
        """Foundation core: trained on several synthetic mice's natural video only, frozen, the demo mouse's readout
        fitted on it; accuracy and tuning fidelity against the number of mice (resumes from checkpoints)."""
        foundation_module = load("training.foundation")
        try:
            counts = [int(x) for x in mice.split(",")]
        except ValueError:
            typer.echo(f"--mice must be comma-separated whole numbers, got {mice!r}", err=True)
            raise typer.Exit(1)
        if steps is not None and steps_per_mouse is not None:
            typer.echo("give --steps or --steps-per-mouse, not both", err=True)
            raise typer.Exit(1)
        try:
            spec = foundation_module.FoundationSpec(n_mice=max(counts), minutes=minutes, n_neurons=neurons,
                                                    first_seed=first_seed, demo_neurons=demo_neurons,
                                                    demo_minutes=demo_minutes)
            overrides = {k: v for k, v in (("steps", steps), ("batch", batch)) if v is not None}
            cfg = _modules().train.TrainConfig(seed=seed, **overrides)
            table = foundation_module.foundation_curve(counts, spec, cfg, output, finetune_steps=finetune_steps,
                                                       tuning=tuning, progress=progress,
                                                       device=load("engine.devices", "resolve_device")(device),
                                                       core_only=core_only, steps_per_mouse=steps_per_mouse)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1)
        typer.echo(table.to_string(index=False) if len(table) else
                   f"cores trained in {output}/mice<N>-work; rerun without --core-only to fit the demo mouse")
        if card is not None and len(table):
            table.to_csv(card / "foundation_curve.csv", index=False)
            _refresh_card(card)
            typer.echo(f"the curve is in {card / 'MODEL_CARD.md'}")

    @app.command()
    def report(
        directory: Optional[Path] = typer.Option(None, "--directory", "-d", help="Twin folder (default: the demo twin)"),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Report folder (default: the twin folder)"),
        tuning: bool = typer.Option(True, help="Also run tuning/RF experiments against the ground truth"),
        progress: bool = typer.Option(True),
    ) -> None:
        """Accuracy report: CC_abs/CC_norm on held-out natural clips and per stimulus family; tuning vs truth."""
        import json

        m = _modules()
        folder = directory or bundled("demo_twin")
        twin = m.demo.load_demo_twin(folder)
        cache = m.data.RecordingCache(_trained_on(folder), progress=progress)
        result = m.report.full_report(twin, cache, output or folder, progress=progress, tuning=tuning)
        _refresh_card(output or folder)
        typer.echo(json.dumps({"natural": result["natural"], "families": result["families"]}, indent=2))

    @app.command()
    def adapt(
        directory: Optional[Path] = typer.Option(None, "--directory", "-d", help="Twin whose core is transferred"),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder for adaptation.csv/.html"),
        minutes: str = typer.Option("2,5,10,20", help="Comma-separated minutes of the new mouse's data"),
        neurons: int = typer.Option(300, help="Neurons of the new synthetic mouse"),
        mouse_seed: int = typer.Option(1, help="Seed of the new synthetic mouse"),
        scratch_steps: int = typer.Option(200, help="Training steps of each from-scratch twin"),
        finetune_steps: int = typer.Option(60, help="End-to-end steps fitting readout, perspective and modulation "
                                                    "on the frozen core, after the fast readout fit"),
        progress: bool = typer.Option(True),
    ) -> None:
        """Fit a new synthetic mouse on a frozen core vs from scratch, against minutes of data."""
        import holoviews as hv

        m = _modules()

        try:
            mins = tuple(float(m) for m in minutes.split(","))
        except ValueError:
            typer.echo(f"--minutes must be comma-separated numbers, got {minutes!r}", err=True)
            raise typer.Exit(1)
        net, _, _ = m.demo.load_network(directory or bundled("demo_twin"))
        table = m.adapt.adapt_experiment(net, mins, mouse_seed=mouse_seed, n_neurons=neurons, scratch_steps=scratch_steps,
                                 finetune_steps=finetune_steps,
                                 progress=progress)
        out = output or (directory or bundled("demo_twin"))
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "adaptation.csv", index=False)
        hv.extension("bokeh", logo=False)
        hv.save(m.adapt.plot_adaptation(table), out / "adaptation.html", resources="cdn")
        typer.echo(table.to_string(index=False))
        _refresh_card(out)

    @app.command()
    def ship(
        trained: Path = typer.Argument(..., help="Folder written by `twin-explorer train`"),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Shipped twin folder (default: the demo twin's)"),
        refit: bool = typer.Option(True, help="Try a readout refit on the frozen core; keep it if it validates better"),
        tuning: bool = typer.Option(True, help="Also run tuning/RF experiments against the ground truth"),
        progress: bool = typer.Option(True),
    ) -> None:
        """Finish a trained twin: model selection, accuracy report, figures and model card in the output folder."""
        m = _modules()
        out = output or bundled("demo_twin")
        try:
            cache = m.data.RecordingCache(_trained_on(trained), progress=progress)
            result = m.ship.ship(trained, out, cache, refit=refit, progress=progress, tuning=tuning)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1)
        _refresh_card(out, force=True)
        typer.echo(f"shipped to {out}: held-out median CC_norm {result['natural']['cc_norm']:.3f}")


def _trained_on(folder: Path) -> RecordingSpec:
    """The recording a twin was trained on: its metadata's ``trained_on`` (the twin contract)."""
    m = _modules()
    spec = m.demo.read_metadata(folder).trained_on
    if not spec:
        raise ValueError(f"{Path(folder) / 'config.json'} does not say what the twin was trained on "
                         "(metadata.trained_on)")
    return m.data.RecordingSpec(**spec)


def _refresh_card(folder: Path, force: bool = False) -> None:
    """Redraw the figures and rewrite MODEL_CARD.md of a shipped twin (only where a card exists, unless forced)."""
    m = _modules()
    if force or (Path(folder) / "MODEL_CARD.md").exists() and (Path(folder) / "report.json").exists():
        m.figures.all_figures(folder)
        m.ship.write_model_card(folder)
