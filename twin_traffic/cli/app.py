"""The ``twin-traffic`` application object, its consoles and the entry point.

Heavy modules (numpy, pandas, libsumo, torch) are imported inside the commands that need
them, so ``twin-traffic --help`` answers at once. Every user error ends as one line on
stderr and exit code 1.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from twin_traffic.errors import TwinTrafficError

try:  # typer >= 0.24 carries its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - older typer on click
    from click import exceptions as _click_errors  # type: ignore[no-redef]

app = typer.Typer(
    name="twin-traffic",
    help="Traffic-signal optimisation on a SUMO digital twin.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
scenario_app = typer.Typer(help="List, inspect, check and build scenarios.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")

# A pipe or a log has no width: rich would assume 80 columns and break a table's headers
# mid-word; such output gets room for a comparison of several controllers instead.
_PIPE_WIDTH = 200


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    sized = stream.isatty() or "COLUMNS" in os.environ
    return Console(stderr=stderr, soft_wrap=True, width=None if sized else _PIPE_WIDTH)


out = _console(stderr=False)
err = _console(stderr=True)

# Seed options take their seeds after one flag (``--seeds 0 1 2``, ``--seeds 0-4``,
# ``--seeds 0,1``); click takes one value per flag, so the command line is rewritten to
# one flag with every seed token joined (``--seeds "0 1 2"``), parsed by
# :func:`twin_traffic.seeds.parse_seeds`. A token that starts like a number (also ``-1``)
# is a seed token, so a negative seed reaches the parser and gets its own message.
_SEED_TOKEN = re.compile(r"^-?\d[\d,\s-]*$")
MULTI_VALUE_OPTIONS = (
    "--seeds",
    "--eval-seeds",
    "--compare-seeds",
    "--holdout-seeds",
    "--confirm-seeds",
)


def expand_multi_value_options(argv: list[str]) -> list[str]:
    """Rewrite ``--seeds 0 2-4`` as ``--seeds "0 2-4"`` (one flag, one value)."""
    expanded: list[str] = []
    option: str | None = None
    values: list[str] = []

    def flush() -> None:
        if option is not None:
            expanded.append(option)
            if values:
                expanded.append(" ".join(values))

    for token in argv:
        if token in MULTI_VALUE_OPTIONS:
            if values:  # a flag without seeds right before another one is dropped
                flush()
            option, values = token, []
            continue
        if option is not None and _SEED_TOKEN.match(token):
            values.append(token)
            continue
        flush()
        option, values = None, []
        expanded.append(token)
    flush()
    return expanded


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twin-traffic")
    except PackageNotFoundError:  # a source checkout that is not installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        out.print(f"twin-traffic {_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Traffic-signal optimisation on a SUMO digital twin."""


def _usage_line(error: _click_errors.UsageError) -> str:
    """A click usage error as one line, with where to find the command's options."""
    message = " ".join(error.format_message().split()).rstrip(".")
    command = error.ctx.command_path if error.ctx is not None else "twin-traffic"
    return f"{message}; see {command} --help"


def main() -> None:
    """Console entry point: user errors, usage errors included, are one line and exit 1."""
    try:
        code = app(
            args=expand_multi_value_options(sys.argv[1:]),
            prog_name="twin-traffic",
            standalone_mode=False,
        )
    except _click_errors.NoArgsIsHelpError as error:  # ``twin-traffic scenario``: its help
        message = error.format_message()
        if message and message != "None":  # typer's rich help has printed itself already
            out.print(message, highlight=False, markup=False)
        sys.exit(0)
    except _click_errors.UsageError as error:
        err.print(f"[red]error:[/red] {escape(_usage_line(error))}", highlight=False)
        sys.exit(1)
    except _click_errors.ClickException as error:
        err.print(f"[red]error:[/red] {escape(error.format_message())}", highlight=False)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        err.print("[red]interrupted[/red]", highlight=False)
        sys.exit(130)
    except TwinTrafficError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        sys.exit(1)
    except OSError as error:  # a path the system refused (permissions, a file for a folder)
        err.print(f"[red]error:[/red] {escape(_os_error_line(error))}", highlight=False)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _os_error_line(error: OSError) -> str:
    """One line for a refused path: the path, the system's reason, and what to check."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return f"{reason}; check the paths given and their permissions"
    return f"{error.filename}: {reason}; check that path and its permissions"
