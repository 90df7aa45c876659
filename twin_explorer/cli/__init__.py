"""Command line interface: ``twin-explorer <command>``.

Each area of the package owns one module here (``engine``, ``experiments``, ``training``, ``anatomy``, ``app``,
``bench``) with a ``register(app)`` function; heavy imports happen inside the commands so that
``twin-explorer --help`` is instant.

Errors a user can cause (a bad option value, a file that is not a video, ...) end in one line on stderr and a
non-zero exit; ``--debug`` (anywhere on the command line) shows the full traceback instead.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import typer

from .. import __version__
from . import anatomy, app, bench, engine, experiments, training

# typer's usage errors (unknown command, bad option value): click's ClickException, which newer typer vendors
_USAGE_ERROR = next(k for k in typer.BadParameter.__mro__ if k.__name__ == "ClickException")

# named so that no command module (e.g. ``cli/app.py``) shadows it as a package attribute
typer_app = typer.Typer(help="twin_explorer: in-silico experiments on the MICrONS digital twin.", no_args_is_help=True,
                        add_completion=False, pretty_exceptions_enable=False)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"twin_explorer {__version__}")
        raise typer.Exit()


@typer_app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="On an error, show the full traceback (also accepted after "
                                                      "the command)."),
) -> None:
    """twin_explorer: in-silico experiments on the MICrONS digital twin."""


for _module in (engine, experiments, training, anatomy, app, bench):
    _module.register(typer_app)


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI on ``argv`` (default: the process's arguments) and exit with its status."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:  # a root option: move it in front of the command, wherever it was typed
        args = ["--debug"] + [a for a in args if a != "--debug"]
    try:
        status = typer_app(args=args, prog_name="twin-explorer", standalone_mode=False)
    except _USAGE_ERROR as exc:  # usage errors: unknown command, bad or missing option value
        if debug:
            traceback.print_exc()
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "twin-explorer"
        message = _one_line(exc.format_message())
        if message:  # empty when a bare command group has just printed its help
            typer.echo(f"{command}: error: {message} (see `{command} --help`)", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort) as exc:  # a training run says that its checkpoint is saved
        typer.echo(f"interrupted: {exc}" if str(exc) else "interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # one line for the user; the traceback only on request
        if debug:
            traceback.print_exc()
            sys.exit(1)
        user_error = isinstance(exc, (ValueError, OSError))  # bad input: the message says it all
        what = _one_line(exc) if user_error and str(exc) else f"{type(exc).__name__}: {_one_line(exc)}"
        typer.echo(f"twin-explorer: error: {what} (add --debug for the full traceback)", err=True)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)  # typer.Exit(code) comes back as its code
