"""The ``twin-traffic`` command: thin typer commands over the library, one module each.

Every module of this package registers its commands on ``app`` when imported; they are
all imported here. Their heavy imports happen inside the commands, so this stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil

from twin_traffic.cli.app import app, expand_multi_value_options, main

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("app", "common", "__main__"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["app", "expand_multi_value_options", "main"]
