"""Files as the user expects them: permissions, and the JSON objects the toolkit writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from twin_traffic.errors import TwinTrafficError


def current_umask() -> int:
    """The process's file-mode creation mask (read without changing it where possible)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(mask)
    return mask


def read_json_object(
    path: Path, fix: str, error: type[TwinTrafficError] = TwinTrafficError
) -> dict[str, Any]:
    """The JSON object in ``path``; ``error`` naming the file and ``fix`` if it is not
    valid JSON or holds something else (cut short by a full disk, edited by hand)."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as problem:
        raise error(f"{path}: damaged, not valid JSON ({problem}); {fix}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: damaged, not a JSON object; {fix}")
    return data
