"""Results on disk: one folder per run, written atomically.

A run folder holds ``spec.json``, ``metrics.json``, ``trips.parquet`` and
``queues.parquet``. It is first written under a hidden temporary name in the same parent
folder and then renamed into place, so a reader (or a resumed sweep) never sees a
half-written run: a folder either has every file or does not exist.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from twin_traffic.evaluate import RunResult, RunSpec

SPEC_FILE = "spec.json"
METRICS_FILE = "metrics.json"
TRIPS_FILE = "trips.parquet"
QUEUES_FILE = "queues.parquet"


def run_folder(root: Path, spec: RunSpec) -> Path:
    """Where a spec's results live under ``root``: ``scenario/controller/seedN``."""
    return root / Path(*spec.label.split("/"))


def write_run(root: Path, result: RunResult) -> Path:
    """Write a run's folder atomically and return its path (replacing an older one)."""
    target = run_folder(root, result.spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _write_json(staging / SPEC_FILE, result.spec.to_dict())
        _write_json(
            staging / METRICS_FILE,
            {
                "metrics": result.metrics,
                "gridlock_at": result.gridlock_at,
                "timings": result.timings,
            },
        )
        result.trips.to_parquet(staging / TRIPS_FILE, index=False)
        result.queues.to_parquet(staging / QUEUES_FILE, index=False)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_metrics(folder: Path) -> dict[str, Any]:
    """The ``metrics.json`` of a run folder."""
    data: dict[str, Any] = json.loads((folder / METRICS_FILE).read_text())
    return data


def read_trips(folder: Path) -> pd.DataFrame:
    """The per-trip table of a run folder."""
    return pd.read_parquet(folder / TRIPS_FILE)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(json_safe(data), indent=2, sort_keys=True) + "\n")


def json_safe(value: Any) -> Any:
    """NaN is not JSON: write it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
