"""Results on disk: one folder per run, written atomically, and a sweep's index.

A run folder holds ``spec.json``, ``metrics.json``, ``trips.parquet`` and
``queues.parquet``. It is first written under a hidden temporary name in the same parent
folder and then renamed into place, so a reader (or a resumed sweep) never sees a
half-written run: a folder either has every file or does not exist. Single files (a
sweep's ``index.json`` and its copy of the sweep file) are replaced the same way: written
beside their target under a hidden name, then renamed over it. What is renamed into place
gets the permissions of a file created the ordinary way (the user's umask), not the
owner-only ones of a temporary file.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from twin_traffic.errors import TwinTrafficError
from twin_traffic.evaluate import RunResult, RunSpec
from twin_traffic.files import current_umask, read_json_object

SPEC_FILE = "spec.json"
METRICS_FILE = "metrics.json"
TRIPS_FILE = "trips.parquet"
QUEUES_FILE = "queues.parquet"
RUN_FILES = (SPEC_FILE, METRICS_FILE, TRIPS_FILE, QUEUES_FILE)
INDEX_FILE = "index.json"

# Hidden names of folders and files being written; what is left of them after a hard kill
# (SIGKILL, power loss) is never read and is removed by :func:`remove_staging`.
_STAGING_PREFIX = "."
_STAGING_MARK = ".tmp-"


# Characters kept in folder names; anything else (path separators, spaces, quotes) is '_'.
_UNSAFE_IN_FOLDER = re.compile(r"[^A-Za-z0-9._=,+@\[\]-]")


def folder_name(label: str) -> str:
    """A label made safe as one folder name (separators and spaces become ``_``)."""
    return _UNSAFE_IN_FOLDER.sub("_", label).lstrip(".") or "_"


def run_folder(root: Path, spec: RunSpec) -> Path:
    """Where a spec's results live under ``root``: ``scenario/controller/seedN``, one
    folder each (a parameter that is a path, ``model=runs/a/best.zip``, nests none)."""
    scenario, rest = spec.label.split("/", 1)
    controller, seed = rest.rsplit("/", 1)
    return root / folder_name(scenario) / folder_name(controller) / seed


def write_run(root: Path, result: RunResult, relative: Path | None = None) -> Path:
    """Write a run's folder atomically and return its path (replacing an older one).

    Args:
        root: the results folder.
        result: the finished run.
        relative: the run's folder below ``root``; by default :func:`run_folder`'s.
    """
    target = root / relative if relative is not None else run_folder(root, result.spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{target.name}{_STAGING_MARK}", dir=target.parent)
    )
    try:
        staging.chmod(0o777 & ~current_umask())
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


def write_file_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` in one rename: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f"{_STAGING_PREFIX}{path.name}{_STAGING_MARK}", dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            os.fchmod(file.fileno(), 0o666 & ~current_umask())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_results_index(
    root: Path,
    name: str,
    baseline: str,
    scenarios: list[str],
    controllers: list[str],
    seeds: list[int],
    runs: list[dict[str, Any]],
) -> None:
    """Write the ``index.json`` that ``twin-traffic compare`` reads, atomically.

    Args:
        root: the results folder.
        name: what produced it (a sweep's or an evaluation's name).
        baseline: the controller label the others are compared with.
        scenarios, controllers, seeds: the labels and seeds, in display order.
        runs: one record per run: ``run``, ``scenario``, ``controller``, ``seed``, ``path``
            (of its folder, relative to ``root``), ``status`` (``ok``, ``failed`` or
            ``pending``) and ``error``.
    """
    counts = {status: 0 for status in ("ok", "failed", "pending")}
    for run in runs:
        counts[run["status"]] += 1
    write_json_atomic(
        root / INDEX_FILE,
        {
            "sweep": name,
            "baseline": baseline,
            "scenarios": scenarios,
            "controllers": controllers,
            "seeds": seeds,
            "counts": counts,
            "runs": runs,
        },
    )


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as indented JSON (NaN written as null), atomically."""
    write_file_atomic(path, json.dumps(json_safe(data), indent=2) + "\n")


def remove_staging(root: Path) -> list[Path]:
    """Delete what a hard-killed writer left under ``root`` (hidden staging names); return it."""
    if not root.is_dir():
        return []
    leftovers = [
        path
        for path in root.rglob(f"{_STAGING_PREFIX}*{_STAGING_MARK}*")
        if path.name.startswith(_STAGING_PREFIX)
    ]
    for path in sorted(leftovers, key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return leftovers


def is_complete(folder: Path) -> bool:
    """True when ``folder`` is a finished run folder (every file present)."""
    return all((folder / name).is_file() for name in RUN_FILES)


_RUN_FIX = "delete that run's folder and run the sweep or evaluation again"


def read_spec(folder: Path) -> dict[str, Any]:
    """The ``spec.json`` of a run folder, as written (see :meth:`RunSpec.to_dict`)."""
    return _read_json(folder / SPEC_FILE, _RUN_FIX)


def read_metrics(folder: Path) -> dict[str, Any]:
    """The ``metrics.json`` of a run folder."""
    return _read_json(folder / METRICS_FILE, _RUN_FIX)


class DamagedFileError(TwinTrafficError):
    """A results file that is not the JSON object the toolkit wrote (cut short by a
    full disk, edited by hand)."""


def _read_json(path: Path, fix: str) -> dict[str, Any]:
    return read_json_object(path, fix, DamagedFileError)


def read_trips(folder: Path) -> pd.DataFrame:
    """The per-trip table of a run folder."""
    return _read_table(folder / TRIPS_FILE)


def read_queues(folder: Path) -> pd.DataFrame:
    """The queue time series of a run folder: ``time`` and one column per signal."""
    return _read_table(folder / QUEUES_FILE)


def _read_table(path: Path) -> pd.DataFrame:
    # The file alone: by default pyarrow reads a folder name such as ``scale=1000`` or
    # ``max-pressure[min_green=8]`` on the path as a hive partition and adds its column.
    return pd.read_parquet(path, partitioning=None)


def read_index(root: Path) -> dict[str, Any] | None:
    """A sweep folder's ``index.json``, or ``None`` when it has none."""
    path = root / INDEX_FILE
    if not path.is_file():
        return None
    return _read_json(path, "run the sweep that wrote it again to rewrite it")


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
