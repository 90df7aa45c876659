"""Training commands: ``twin-explorer train`` (the demo twin), ``report`` (its accuracy), ``adapt`` (a new mouse)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        output: Path = typer.Option(None, "--output", "-o", help="Folder for the trained twin (default: assets/demo_twin)"),
        steps: int = typer.Option(450, help="Optimiser steps"),
        batch: int = typer.Option(4, help="Samples per step"),
        clips: int = typer.Option(60, help="Training clips of the synthetic mouse (10 s each)"),
        neurons: int = typer.Option(1000, help="Neurons of the synthetic mouse (= twin units)"),
        mouse_seed: int = typer.Option(0, help="Synthetic mouse seed"),
        seed: int = typer.Option(0, help="Training seed (sampling, initialisation)"),
        cache_dir: Optional[Path] = typer.Option(None, help="Recording cache (default $TWIN_EXPLORER_CACHE/recordings)"),
        work_dir: Optional[Path] = typer.Option(None, help="Checkpoint folder (default <output>-work); rerun to resume"),
        progress: bool = typer.Option(True),
    ) -> None:
        """Train the demo twin on recordings of the synthetic mouse (resumes from the last checkpoint)."""
        from ..training.checkpoint import DEMO_DIR
        from ..training.data import RecordingSpec
        from ..training.train import TrainConfig, train_twin

        spec = RecordingSpec(mouse_seed=mouse_seed, n_neurons=neurons, n_clips=clips)
        cfg = TrainConfig(steps=steps, batch=batch, seed=seed)
        out = output or DEMO_DIR
        try:
            train_twin(spec, cfg, out, cache_dir=cache_dir, work_dir=work_dir, progress=progress,
                       log=None if progress else typer.echo)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1)
        typer.echo(f"trained twin saved in {out}")
