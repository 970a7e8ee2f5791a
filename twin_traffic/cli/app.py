"""The ``twin-traffic`` application object, its consoles and the entry point.

Heavy modules (numpy, pandas, libsumo, torch) are imported inside the commands that need
them, so ``twin-traffic --help`` answers at once. Every user error ends as one line on
stderr and exit code 1.
"""

from __future__ import annotations

import re
import sys

import typer
from rich.console import Console
from rich.markup import escape

from twin_traffic.errors import TwinTrafficError

app = typer.Typer(
    name="twin-traffic",
    help="Traffic-signal optimisation on a SUMO digital twin.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
scenario_app = typer.Typer(help="List, inspect, check and build scenarios.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# Options that take several values after one flag (``--seeds 0 1 2``); click wants the
# flag repeated, so the command line is rewritten before parsing.
_SEED_LIST = re.compile(r"^\d+(-\d+)?$")
MULTI_VALUE_OPTIONS = {
    option: _SEED_LIST
    for option in ("--seeds", "--eval-seeds", "--compare-seeds", "--holdout-seeds")
}


def expand_multi_value_options(argv: list[str]) -> list[str]:
    """Rewrite ``--seeds 0 1 2`` (and ``--seeds 0-2``) as ``--seeds 0 --seeds 1 --seeds 2``."""
    expanded: list[str] = []
    option: str | None = None
    consumed = 0
    for token in argv:
        if token in MULTI_VALUE_OPTIONS:
            option, consumed = token, 0
            continue
        if option is not None and MULTI_VALUE_OPTIONS[option].match(token):
            first, _, last = token.partition("-")
            for value in range(int(first), int(last or first) + 1):
                expanded += [option, str(value)]
            consumed += 1
            continue
        if option is not None and not consumed:
            expanded.append(option)  # let the parser report the bad value
        option = None
        expanded.append(token)
    if option is not None and not consumed:
        expanded.append(option)
    return expanded


def main() -> None:
    """Console entry point."""
    try:
        app(args=expand_multi_value_options(sys.argv[1:]), prog_name="twin-traffic")
    except TwinTrafficError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        sys.exit(1)
