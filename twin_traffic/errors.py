"""Errors that speak the user's language.

Every error a user can cause or meet (a bad scenario file, an unknown controller, a SUMO
crash) is a :class:`TwinTrafficError`: the CLI prints its message as one line and exits
non-zero instead of showing a traceback. The messages name the file and the fix.
Instances only carry strings, so they pickle across worker processes.
"""

from __future__ import annotations


class TwinTrafficError(Exception):
    """Base class of the errors the CLI reports as one plain line."""


class ScenarioError(TwinTrafficError):
    """A scenario that cannot be loaded or fails validation."""


class SimulationError(TwinTrafficError):
    """SUMO refused to start or stopped with an error."""


class ControllerError(TwinTrafficError):
    """An unknown controller or bad controller parameters."""
