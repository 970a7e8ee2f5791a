"""Traffic counts per location and time interval, as a city publishes them, and the GEH.

The CSV format has one row per location and interval::

    location,begin,end,count
    e1_-100#3_0,0,900,142
    104,0,900,95

``location`` is a detector id (an induction loop of the scenario's own additional files,
of a detector file, or of its ``sensors.add.xml``) or an edge id of the network; ``begin``
and ``end`` are seconds in the scenario's clock (``end`` excluded; a scenario that starts
at 25 200 s has its first 15 minutes at 25200,26100); ``count`` is the number of vehicles
that passed in the interval. Intervals may be missing: a count that is not there is not
guessed.

SUMO's own induction-loop output (``<interval begin= end= id= nVehContrib=>``, a ``.xml``
file) is read directly as counts.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from twin_traffic.errors import ScenarioError

COLUMNS = ("location", "begin", "end", "count")
GEH_OK = 5.0
"""The usual acceptance threshold: a count fits when its GEH is below 5."""


@dataclass(frozen=True)
class Count:
    """Vehicles counted at one location during ``[begin, end)`` seconds."""

    location: str
    begin: float
    end: float
    count: float

    @property
    def hourly(self) -> float:
        """The count as an hourly flow, veh/h (the GEH statistic is defined on those)."""
        return self.count * 3600.0 / (self.end - self.begin)


def geh(modelled: float, observed: float) -> float:
    """GEH statistic of two hourly flows: sqrt(2 (M - C)^2 / (M + C)), 0 when both are 0."""
    total = modelled + observed
    return 0.0 if total <= 0 else math.sqrt(2.0 * (modelled - observed) ** 2 / total)


def read_counts(path: str | Path) -> list[Count]:
    """Read and check counts: a CSV, or SUMO's detector output XML (see the module docstring).

    Raises:
        ScenarioError: naming the file, the row and the fix.
    """
    source = Path(path)
    if source.suffix.lower() == ".xml":
        return _checked(source, _detector_xml(source))
    try:
        # utf-8-sig: spreadsheets' "CSV UTF-8" starts with a byte-order mark.
        with source.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ScenarioError(
                    f"{source}: missing column(s) {', '.join(missing)}; the header must be "
                    f"{','.join(COLUMNS)}"
                )
            counts = [_row(source, n, row) for n, row in enumerate(reader, start=2)]
    except OSError as error:
        raise ScenarioError(f"{source}: cannot read the counts ({error.strerror})") from None
    return _checked(source, counts)


def _checked(source: Path, counts: list[Count]) -> list[Count]:
    if not counts:
        raise ScenarioError(
            f"{source}: no counts; give SUMO's induction-loop output with its <interval> elements"
            if source.suffix.lower() == ".xml"
            else f"{source}: no counts; add rows of {','.join(COLUMNS)}"
        )
    by_location: dict[str, list[Count]] = {}
    for item in counts:
        by_location.setdefault(item.location, []).append(item)
    for location, items in by_location.items():
        items = sorted(items, key=lambda item: (item.begin, item.end))
        for before, after in itertools.pairwise(items):
            if after.begin < before.end:  # a stretch of time counted twice
                same = (before.begin, before.end) == (after.begin, after.end)
                raise ScenarioError(
                    f"{source}: location '{location}' is counted twice in "
                    f"[{before.begin:g}, {before.end:g})"
                    + ("" if same else f" and [{after.begin:g}, {after.end:g}), which overlap")
                    + "; keep one row per location and interval"
                )
    return counts


def _detector_xml(source: Path) -> list[Count]:
    """Counts from SUMO's induction-loop output: one per ``<interval>`` (``nVehContrib``)."""
    import sumolib

    counts = []
    try:
        for interval in sumolib.xml.parse(str(source), "interval"):
            try:
                begin, end = float(interval.begin), float(interval.end)
                count = float(interval.nVehContrib)
            except (AttributeError, TypeError, ValueError):
                raise ScenarioError(
                    f'{source}: <interval id="{interval.getAttributeSecure("id", "")}"> '
                    "lacks numeric begin, end and nVehContrib; give SUMO's induction-loop "
                    "output (e1Detector file=) or a CSV of location,begin,end,count"
                ) from None
            if end <= begin or count < 0:
                raise ScenarioError(
                    f'{source}: <interval id="{interval.id}" begin="{interval.begin}"> is '
                    "empty or negative; fix the interval"
                )
            counts.append(Count(interval.id, begin, end, count))
    except (ET.ParseError, OSError) as error:
        raise ScenarioError(f"{source}: cannot read the detector output ({error})") from None
    return counts


def missing_counts(counts: Iterable[Count]) -> list[tuple[str, float, float]]:
    """(location, begin, end) of every interval that some location is counted in and this
    location is not: gaps in the data, reported rather than filled."""
    items = list(counts)
    present = {(c.location, c.begin, c.end) for c in items}
    intervals = sorted({(c.begin, c.end) for c in items})
    locations = sorted({c.location for c in items})
    return [
        (location, begin, end)
        for begin, end in intervals
        for location in locations
        if (location, begin, end) not in present
    ]


def write_counts(counts: Iterable[Count], path: str | Path) -> Path:
    """Write counts as CSV (see the module docstring for the format)."""
    from twin_traffic.store import write_file_atomic

    target = Path(path)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")  # as the other text files, not \r\n
    writer.writerow(COLUMNS)
    for item in counts:
        writer.writerow([item.location, f"{item.begin:g}", f"{item.end:g}", f"{item.count:g}"])
    write_file_atomic(target, text.getvalue())  # its folder made; never half a file
    return target


def rebin(
    counts: Iterable[Count], interval: float, source: Path, start: float = 0.0
) -> list[Count]:
    """Sum counts into consecutive intervals of ``interval`` seconds from ``start`` (the
    scenario's begin, where ``scenario counts`` starts its intervals too).

    Raises:
        ScenarioError: when a row straddles two intervals.
    """
    if interval <= 0:
        raise ScenarioError(f"--interval {interval:g}: give a positive number of seconds")
    sums: dict[tuple[str, int], float] = {}
    for item in counts:
        index = math.floor((item.begin - start) / interval + 1e-9)
        if item.end > start + (index + 1) * interval + 1e-6:
            raise ScenarioError(
                f"{source}: the row of '{item.location}' [{item.begin:g}, {item.end:g}) "
                f"straddles two {interval:g} s intervals; choose an --interval that is a "
                "multiple of the counting period"
            )
        key = (item.location, index)
        sums[key] = sums.get(key, 0.0) + item.count
    return [
        Count(location, start + index * interval, start + (index + 1) * interval, total)
        for (location, index), total in sorted(sums.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def _row(source: Path, line: int, row: dict[str, str]) -> Count:
    row = {(key or "").strip(): value for key, value in row.items()}  # "location, begin"
    location = (row.get("location") or "").strip()
    if not location:
        raise ScenarioError(f"{source}, line {line}: empty location; name a detector or edge")
    try:
        begin, end, count = (float((row.get(c) or "").strip()) for c in COLUMNS[1:])
    except ValueError:
        raise ScenarioError(
            f"{source}, line {line}: begin, end and count must be numbers (seconds and vehicles)"
        ) from None
    if not (math.isfinite(begin) and math.isfinite(end)) or begin < 0 or end <= begin:
        raise ScenarioError(
            f"{source}, line {line}: interval [{begin:g}, {end:g}) is empty or negative; "
            "end must come after begin (seconds from the start of the simulation)"
        )
    if count < 0 or not math.isfinite(count):
        raise ScenarioError(
            f"{source}, line {line}: count {count:g} for '{location}' is not a number of "
            "vehicles; counts must be 0 or more"
        )
    return Count(location, begin, end, count)
