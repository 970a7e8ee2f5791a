"""The ``twin-traffic`` command: thin typer commands over the library, one module each."""

from __future__ import annotations

from twin_traffic.cli import evaluate, scenario  # noqa: F401  (registers the commands)
from twin_traffic.cli.app import app, expand_multi_value_options, main

__all__ = ["app", "expand_multi_value_options", "main"]
