"""One seed syntax for every command and sweep file.

Seeds are whole numbers from 0 to 2**31 - 1 (SUMO's ``--seed``), written as single seeds
and inclusive ranges, separated by commas or spaces: ``0-4``, ``0,1,2``, ``0 1 2``,
``0-2,10``. Each seed is listed once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from twin_traffic.errors import TwinTrafficError

MAX_SEED = 2**31 - 1
SYNTAX = "write seeds as 0-4, 0,1,2 or 0 1 2 (whole numbers from 0)"
_ITEM = re.compile(r"(\d+)(?:-(\d+))?")


class SeedError(TwinTrafficError):
    """Seeds that cannot be read."""


def parse_seeds(text: str, option: str = "--seeds") -> tuple[int, ...]:
    """The seeds written in ``text``, in order; SeedError names ``option`` and the fix."""
    items = [item for item in re.split(r"[\s,]+", text.strip()) if item]
    if not items:
        raise SeedError(f"{option}: no seeds given; {SYNTAX}")
    seeds: list[int] = []
    for item in items:
        match = _ITEM.fullmatch(item)
        if match is None:
            raise SeedError(f"{option} '{item}': not a seed or a range; {SYNTAX}")
        first = int(match[1])
        last = int(match[2]) if match[2] is not None else first
        if last < first:
            raise SeedError(
                f"{option} '{item}': not a range (it runs backwards); write FIRST-LAST with "
                f"FIRST <= LAST, e.g. {last}-{first}"
            )
        if last > MAX_SEED:
            raise SeedError(f"{option} '{item}': seeds go up to {MAX_SEED}")
        seeds.extend(range(first, last + 1))
    return check_seeds(seeds, option)


def check_seeds(seeds: Iterable[object], option: str = "--seeds") -> tuple[int, ...]:
    """Seeds given as a list of numbers (a TOML list), checked like :func:`parse_seeds`."""
    checked: list[int] = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise SeedError(
                f"{option}: {seed!r} is not a seed; seeds are whole numbers from 0 to {MAX_SEED}"
            )
        checked.append(seed)
    if not checked:
        raise SeedError(f"{option}: no seeds given; {SYNTAX}")
    repeated = sorted(seed for seed, n in Counter(checked).items() if n > 1)
    if repeated:
        raise SeedError(f"{option}: seed {repeated[0]} is listed twice; list each seed once")
    return tuple(checked)


def seed_text(seeds: Iterable[int], dash: str = "-", separator: str = " ") -> str:
    """Seeds written back: a run of three or more consecutive seeds as a range
    (``0-4``), others one by one (``0 1``); the defaults give this module's syntax."""
    listed = list(seeds)
    if len(listed) > 2 and listed == list(range(listed[0], listed[-1] + 1)):
        return f"{listed[0]}{dash}{listed[-1]}"
    return separator.join(map(str, listed))


def seeds_after(seeds: Iterable[int], count: int, avoid: Iterable[int] = ()) -> list[int]:
    """``count`` seeds after the largest of ``seeds``, in order, none of them in ``seeds``
    or ``avoid`` (e.g. confirmation seeds that are neither training nor held-out seeds)."""
    used = set(seeds)
    taken = used | set(avoid)
    after: list[int] = []
    candidate = max(used, default=-1) + 1
    while len(after) < count:
        if candidate not in taken:
            after.append(candidate)
        candidate += 1
    return after
