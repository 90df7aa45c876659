"""Command line interface: ``twin-explorer <command>``.

Each area of the package owns one module here (``engine``, ``experiments``, ``training``,
``anatomy``, ``app``) with a ``register(app)`` function; heavy imports happen inside the commands so
that ``twin-explorer --help`` is instant.
"""

from __future__ import annotations

import importlib

import typer

# named so that no command module (e.g. ``cli/app.py``) shadows it once imported as a package attribute
typer_app = typer.Typer(help="twin_explorer: in-silico experiments on the MICrONS digital twin.", no_args_is_help=True,
                  add_completion=False)

_COMMAND_MODULES = ("engine", "experiments", "training", "anatomy", "app")

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # an area not written yet
        if _exc.name != f"{__name__}.{_name}":
            raise
        continue
    _module.register(typer_app)


def main() -> None:
    typer_app()
