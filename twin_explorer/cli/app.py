"""``twin-explorer serve`` (the explorer web app, as ``panel serve apps/explorer.py``) and ``twin-explorer notebooks``
(a copy of the teaching notebooks to open in JupyterLab)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

import typer

from ..paths import bundled


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        port: int = typer.Option(5006, min=0, max=65535, help="Port to listen on (0 picks a free one)."),
        address: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only."),
        show: bool = typer.Option(True, "--show/--no-show", help="Open a browser tab."),
        twin: str = typer.Option(None, help="Twin to open on: 'demo', 'synthetic' or a MICrONS scan such as "
                                            "'microns 8-5'."),
        num_threads: int = typer.Option(2, min=1, help="Worker threads for UI events."),
        bundle: Optional[Path] = typer.Option(
            None, envvar="TWIN_EXPLORER_BUNDLE", file_okay=False,
            help="MICrONS bundle folder whose scans the twin picker offers (default: the download cache); e.g. one "
                 "from `twin-explorer bench make-bundle DIR --scans all`."),
        anatomy: Optional[Path] = typer.Option(
            None, envvar="TWIN_EXPLORER_ANATOMY", file_okay=False,
            help="Anatomy folder (e.g. from `twin-explorer anatomy export`) to link the twin's units to; "
                 "default: the bundled synthetic sample."),
    ) -> None:
        """Serve the interactive explorer (localhost only unless --address says otherwise)."""
        # imported here for start-up time: Panel and torch load only to serve
        import panel as pn
        import torch

        from ..ui.app import SERVE_OPTIONS, create_app, prepare_server, settle_startup_objects, warm_page
        from ..ui import state as explorer_state
        from ..ui.state import anatomy_is_synthetic, get_anatomy, get_twin, unit_table

        if bundle is not None:
            explorer_state.BUNDLE_DIR = str(bundle.resolve())
        folder = str(anatomy.resolve()) if anatomy is not None else None
        try:
            volume = get_anatomy(folder)
            if folder is not None:
                _ = volume.nuclei  # read the nucleus table now: a broken folder fails here, not in the page
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot open anatomy folder {anatomy}: {exc}", param_hint="--anatomy") from None
        if volume is None or anatomy_is_synthetic(volume):
            typer.echo("anatomy: the bundled synthetic sample (not MICrONS data); --anatomy DIR opens a real folder")
        else:
            typer.echo(f"anatomy: {volume.folder} (materialization v{volume.materialization_version})")
        prepare_server()
        typer.echo("loading the twin…")
        unit_table(get_twin(twin), folder)  # warm the shared twin and its unit table before the first page load
        settle_startup_objects()
        typer.echo(f"predictions: {torch.get_num_threads()} torch thread(s) each, several at once "
                   f"({os.cpu_count()} cores)")
        origins = [f"{host}:{port}" for host in {address, "localhost", "127.0.0.1"}]
        server = pn.serve({"explorer": lambda: create_app(twin, anatomy=folder)}, port=port, address=address,
                          show=show, start=False, websocket_origin=origins if port else "*", num_threads=num_threads,
                          title="twin_explorer", **SERVE_OPTIONS)
        local = "127.0.0.1" if address in ("0.0.0.0", "::", "") else f"[{address}]" if ":" in address else address
        server.io_loop.add_callback(warm_page, f"http://{local}:{server.port}/explorer")  # before any visitor
        typer.echo(f"twin_explorer on http://{address}:{server.port}/explorer (Ctrl+C to stop)")
        server.start()
        server.io_loop.start()

    @app.command()
    def notebooks(
        folder: Path = typer.Argument(Path("twin_explorer_notebooks"), help="Where to put the copies."),
        force: bool = typer.Option(False, help="Overwrite notebooks already in FOLDER."),
    ) -> None:
        """Copy the teaching notebooks (shipped with the package) into FOLDER; open them with `jupyter lab FOLDER`."""
        sources = sorted(bundled("apps").glob("*.ipynb"))
        clashes = [p.name for p in sources if (folder / p.name).exists()]
        if clashes and not force:
            raise typer.BadParameter(f"{folder} already holds {', '.join(clashes)}; pass --force to overwrite")
        folder.mkdir(parents=True, exist_ok=True)
        for path in sources:
            shutil.copyfile(path, folder / path.name)
        typer.echo(f"copied {len(sources)} notebooks to {folder}; open them with: jupyter lab {folder}")
