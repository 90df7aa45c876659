"""Engine commands: download the MICrONS bundle, list scans, predict (benchmarks: ``cli/bench.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .lazy import load


def register(app: typer.Typer) -> None:
    @app.command()
    def download(
        directory: Optional[Path] = typer.Option(None, "--directory", "-d",
                                                 help="Target folder (default: $TWIN_EXPLORER_CACHE/microns or the "
                                                      "platform cache folder)"),
        progress: bool = typer.Option(True, help="Show a progress bar"),
    ) -> None:
        """Download the published MICrONS weights (about 222 MB, md5-checked) and unzip them once."""
        BundleError, available_scans, download_microns = load("twins.microns", "BundleError", "available_scans",
                                                              "download_microns")

        try:
            folder = download_microns(directory, progress=progress)
        except BundleError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1)
        typer.echo(f"MICrONS bundle ready in {folder}: {len(available_scans(folder))} scans")

    @app.command()
    def scans(directory: Optional[Path] = typer.Option(None, "--directory", "-d")) -> None:
        """List the MICrONS scans of the downloaded bundle."""
        available_scans, bundle_dir = load("twins.microns", "available_scans", "bundle_dir")

        found = available_scans(directory)
        if not found:
            typer.echo(f"no bundle in {bundle_dir(directory)}; run `twin-explorer download`", err=True)
            raise typer.Exit(1)
        for session, scan_idx in found:
            typer.echo(f"{session} {scan_idx}")

    @app.command()
    def predict(
        stimulus: Path = typer.Argument(..., help="A .npy uint8 array [T,144,256] (or a video file the stimulus "
                                                  "library can read)"),
        output: Path = typer.Option(Path("responses.npy"), "--output", "-o"),
        twin: str = typer.Option("default", help="demo | synthetic | microns (default: the demo twin)"),
        session: Optional[int] = typer.Option(None), scan_idx: Optional[int] = typer.Option(None),
        device: Optional[str] = typer.Option(None),
    ) -> None:
        """Predict responses to a stimulus and save them as .npy [T, U]."""
        import numpy as np

        load_twin = load("twins", "load_twin")

        kw = {} if twin != "microns" else {"session": session, "scan_idx": scan_idx, "device": device}
        model = load_twin(None if twin == "default" else twin, **kw)
        if stimulus.suffix == ".npy":
            frames = np.load(stimulus, allow_pickle=False)
        else:
            VideoFile = load("stimuli", "VideoFile")

            frames = VideoFile(path=str(stimulus)).render()
        try:
            out = model.predict(frames)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        np.save(output, out)
        typer.echo(f"{model.id}: responses {out.shape} saved to {output}")
