"""``twin-explorer serve``: run the explorer web app (the same app as ``panel serve apps/explorer.py``)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        port: int = typer.Option(5006, help="Port to listen on (0 picks a free one)."),
        address: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only."),
        show: bool = typer.Option(True, "--show/--no-show", help="Open a browser tab."),
        twin: str = typer.Option(None, help="Twin to open on: 'demo', 'synthetic' or a MICrONS scan such as "
                                            "'microns 8-5'."),
        num_threads: int = typer.Option(2, help="Worker threads for UI events."),
    ) -> None:
        """Serve the interactive explorer (localhost only unless --address says otherwise)."""
        if not 0 <= port <= 65535:
            raise typer.BadParameter(f"port must be 0–65535, got {port}")
        import panel as pn

        from twin_explorer.ui.app import create_app
        from twin_explorer.ui.state import get_twin, unit_table

        typer.echo("loading the twin…")
        unit_table(get_twin(twin))  # warm the shared twin and its unit table before the first page load
        origins = [f"{host}:{port}" for host in {address, "localhost", "127.0.0.1"}]
        typer.echo(f"twin_explorer on http://{address}:{port}/explorer (Ctrl+C to stop)")
        pn.serve({"explorer": lambda: create_app(twin)}, port=port, address=address, show=show,
                 websocket_origin=origins if port else "*", num_threads=num_threads, title="twin_explorer")
