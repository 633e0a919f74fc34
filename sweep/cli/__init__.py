"""The ``ocl`` command line: one Typer sub-app per command group.

User mistakes raise :class:`sweep.errors.OCLError`; :func:`main` prints them as one line on stderr
and exits with code 2. ``ocl --debug ...`` shows the traceback instead. The commands are a thin
shell over :mod:`sweep.api`: they parse flags, call it, and print what it returns.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sweep.cli import _dashboard, _data, _devices, _dictionary, _evaluate, _layers, _predict, _report, _sweep

__all__ = ["app", "main"]

app = typer.Typer(
    name="ocl",
    help="Optimal cut-off layer sweeps: which DenseNet-121 layer, strategy, optimizer, learning rate and "
    "augmentation make the best medical-image classifier.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(_data.app, name="data")
app.command(name="layers")(_layers.layers)
app.command(name="devices")(_devices.devices)
app.command(name="sweep")(_sweep.sweep)
app.command(name="worker")(_sweep.worker)
app.command(name="evaluate")(_evaluate.evaluate)
app.command(name="predict")(_predict.predict)
app.command(name="report")(_report.report)
app.command(name="dashboard")(_dashboard.dashboard)
app.add_typer(_dictionary.app, name="dictionary")

_debug = False


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    global _debug
    _debug = debug
    if debug:
        from sweep._keras import configure

        configure(show_logs=True)
    _quiet_libraries()


def _quiet_libraries() -> None:
    """Optuna logs every trial at INFO and warns about experimental features OCL relies on
    (heartbeats, metric names); the tool prints its own progress instead."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", message=".*is experimental.*")
    warnings.filterwarnings("ignore", message=".*experimental feature.*")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def main() -> None:
    """Console-script entry point: every mistake becomes one ``error:`` line on stderr, exit code 2.

    Typer runs in non-standalone mode so that its own usage errors (a bad ``--trials``, an unknown
    option) come out as one line like OCL's, instead of a framed panel.
    """
    from sweep.errors import OCLError

    try:
        code = app(standalone_mode=False)
    except OCLError as exc:
        if _debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message(), err=True)
        else:
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            # Typer words an Enum refusal "Invalid value for '--x': Value error, 'y' is not one of ..."
            message = exc.format_message().replace(": Value error, ", ": ")
            typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
