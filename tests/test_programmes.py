"""Schedules compiled into a signal's programme: walking the programme from an entry
plays the schedule back, and known schedules reuse their phases."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from twin_traffic.programmes import FOREVER, Schedule, SignalProgramme

GREENS = ("GGrr", "rrGG", "GrGr")
STATES = (*GREENS, "yyrr", "rryy", "rrrr")


def play(programme: SignalProgramme, entry: int, limit: int = 50) -> list[str]:
    """The states SUMO would show step by step from phase ``entry`` (``limit`` steps at
    most after the last finite phase)."""
    shown: list[str] = []
    index = entry
    for _ in range(len(programme.phases)):  # a cycle of finite phases would never end
        if programme.phases[index].steps == FOREVER:
            break
        phase = programme.phases[index]
        shown += [phase.state] * phase.steps
        index = phase.next
    return shown + [programme.phases[index].state] * limit


def expected(schedule: Schedule, limit: int = 50) -> list[str]:
    return [state for state, steps in schedule.steps for _ in range(steps)] + [
        schedule.final
    ] * limit


def test_greens_are_entries_of_their_own() -> None:
    programme = SignalProgramme(GREENS)
    for index, green in enumerate(GREENS):
        assert programme.entry(Schedule((), green)) == (index, False)
        assert programme.phases[index].next == index  # a green never ends by itself


def test_new_schedule_grows_once_and_plays_back() -> None:
    programme = SignalProgramme(GREENS)
    schedule = Schedule((("GGrr", 1), ("yyrr", 3), ("rrrr", 2)), "rrGG")
    entry, grew = programme.entry(schedule)
    assert grew and entry == len(GREENS)
    assert play(programme, entry) == expected(schedule)
    assert programme.entry(schedule) == (entry, False)
    size = len(programme.phases)
    programme.entry(schedule)
    assert len(programme.phases) == size


def test_final_state_that_is_not_a_green_gets_a_phase() -> None:
    programme = SignalProgramme(GREENS)
    entry, grew = programme.entry(Schedule((), "rrrr"))
    assert grew and play(programme, entry, 3) == ["rrrr"] * 3
    assert programme.entry(Schedule((), "rrrr")) == (entry, False)
    schedule = Schedule((("yyrr", 2),), "rrrr")
    entry, grew = programme.entry(schedule)
    assert grew and play(programme, entry) == expected(schedule)


def test_schedule_after_elapsed_steps() -> None:
    schedule = Schedule((("GGrr", 1), ("yyrr", 3)), "rrGG")
    assert schedule.after(0) == schedule
    assert schedule.after(1) == Schedule((("yyrr", 3),), "rrGG")
    assert schedule.after(2) == Schedule((("yyrr", 2),), "rrGG")
    assert schedule.after(4) == Schedule((), "rrGG")
    assert schedule.after(40) == Schedule((), "rrGG")
    for elapsed in range(8):
        assert expected(schedule.after(elapsed))[:10] == expected(schedule)[elapsed : elapsed + 10]


schedules = st.builds(
    Schedule,
    st.lists(st.tuples(st.sampled_from(STATES), st.integers(1, 6)), max_size=5).map(tuple),
    st.sampled_from(STATES),
)


@given(st.lists(schedules, min_size=1, max_size=12))
def test_property_every_entry_plays_its_schedule(batch: list[Schedule]) -> None:
    programme = SignalProgramme(GREENS)
    entries = [programme.entry(schedule)[0] for schedule in batch]
    # Later schedules never disturb the phases of earlier ones.
    for schedule, entry in zip(batch, entries, strict=True):
        assert play(programme, entry) == expected(schedule)
        assert programme.entry(schedule) == (entry, False)
