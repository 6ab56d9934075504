"""Phase days over workdays (``domain.schedule``) and what the commands do before the phase starts.

Day 1 is the start date, or the first workday after it; only workdays count, and a day off belongs to the
workday before it. Checked on fixed calendars (weekends, a three-workday week), by property against a
day-by-day count and against the launch prompt's own day arithmetic, and end to end: ``sync`` before the
phase starts exits 2 naming the start date unless ``--day`` is given.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

import pytest
from daykit import build, cli, cli_json, edited_manifest
from hypothesis import given, settings
from hypothesis import strategies as st

from coditect_cli.domain import launch as launch_days
from coditect_cli.domain.manifest import WEEKDAYS, Schedule
from coditect_cli.domain.schedule import (
    checkpoints_on,
    date_of,
    due_on,
    first_day,
    is_workday,
    phase_day,
    previous_workday,
)
from coditect_cli.errors import ExitCode

MON = dt.date(2026, 11, 30)
SAT = dt.date(2026, 12, 5)


def d(day: int, month: int = 12) -> dt.date:
    return dt.date(2026, month, day)


class DayCase(NamedTuple):
    test_id: str
    schedule: Schedule
    today: dt.date
    expected: int


WEEK = Schedule(start=MON, days=10)
FROM_SATURDAY = Schedule(start=SAT, days=10)
THREE_DAYS = Schedule(start=MON, days=6, workdays=("mon", "wed", "fri"))

CASES = [
    DayCase("before-start", WEEK, d(29, 11), 0),
    DayCase("monday-start-is-day-1", WEEK, MON, 1),
    DayCase("friday-is-day-5", WEEK, d(4), 5),
    DayCase("saturday-belongs-to-friday", WEEK, d(5), 5),
    DayCase("sunday-belongs-to-friday", WEEK, d(6), 5),
    DayCase("next-monday-is-day-6", WEEK, d(7), 6),
    DayCase("third-week-wednesday", WEEK, d(16), 13),
    DayCase("weekend-start-not-begun-on-saturday", FROM_SATURDAY, SAT, 0),
    DayCase("weekend-start-not-begun-on-sunday", FROM_SATURDAY, d(6), 0),
    DayCase("weekend-start-day-1-is-monday", FROM_SATURDAY, d(7), 1),
    DayCase("weekend-start-friday-is-day-5", FROM_SATURDAY, d(11), 5),
    DayCase("three-day-week-tuesday-belongs-to-monday", THREE_DAYS, d(1), 1),
    DayCase("three-day-week-wednesday-is-day-2", THREE_DAYS, d(2), 2),
    DayCase("three-day-week-friday-is-day-3", THREE_DAYS, d(4), 3),
    DayCase("three-day-week-next-monday-is-day-4", THREE_DAYS, d(7), 4),
    DayCase("three-day-week-second-friday-is-day-6", THREE_DAYS, d(11), 6),
]


@pytest.mark.parametrize("case", CASES, ids=[c.test_id for c in CASES])
def test_phase_day_counts_workdays_only(case: DayCase) -> None:
    assert phase_day(case.schedule, case.today) == case.expected


def test_day_one_of_a_weekend_start_is_the_monday_after() -> None:
    assert first_day(FROM_SATURDAY) == d(7) and first_day(FROM_SATURDAY).weekday() == 0
    assert date_of(FROM_SATURDAY, 1) == d(7)
    assert date_of(FROM_SATURDAY, 6) == d(14)


def test_date_of_skips_weekends_and_days_off() -> None:
    assert [date_of(WEEK, n) for n in (1, 5, 6, 10, 11)] == [MON, d(4), d(7), d(11), d(14)]
    assert [date_of(THREE_DAYS, n) for n in range(1, 7)] == [MON, d(2), d(4), d(7), d(9), d(11)]
    with pytest.raises(ValueError, match="start at 1"):
        date_of(WEEK, 0)


def test_previous_workday_jumps_over_the_weekend_and_days_off() -> None:
    assert previous_workday(WEEK, d(7)) == d(4)  # Monday -> Friday
    assert previous_workday(WEEK, d(6)) == d(4)  # Sunday -> Friday
    assert previous_workday(WEEK, d(2)) == d(1)
    assert previous_workday(THREE_DAYS, d(7)) == d(4)  # Monday -> Friday
    assert previous_workday(THREE_DAYS, d(4)) == d(2)  # Friday -> Wednesday


def test_deliverables_and_checkpoints_due_on_a_day() -> None:
    from helpers import EXAMPLE_MANIFEST

    from coditect_cli.domain.loader import load_manifest

    manifest = load_manifest(EXAMPLE_MANIFEST).manifest
    backend = manifest.stream("backend")
    assert [x.id for x in due_on(backend, 1)] == ["backend-auth"]
    assert [x.id for x in due_on(backend, 4)] == ["backend-orgs"]
    assert [x.id for x in due_on(backend, 11)] == []
    assert checkpoints_on(manifest, 3) == (1,) and checkpoints_on(manifest, 4) == ()
    assert checkpoints_on(manifest, 12) == (4,)


workday_sets = st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
dates = st.dates(dt.date(2000, 1, 1), dt.date(2090, 12, 31))


def _count(schedule: Schedule, today: dt.date) -> int:
    """The phase day by walking the calendar one day at a time."""
    day, n = first_day(schedule), 0
    while day <= today:
        n += is_workday(schedule, day)
        day += dt.timedelta(days=1)
    return n


@settings(max_examples=300, deadline=None)
@given(start=dates, workdays=workday_sets, offset=st.integers(-20, 900))
def test_phase_day_matches_a_day_by_day_count_and_the_launch_prompt(
    start: dt.date, workdays: list[str], offset: int
) -> None:
    schedule = Schedule(start=start, days=10, workdays=tuple(workdays))
    today = start + dt.timedelta(days=offset)
    n = phase_day(schedule, today)
    assert n == _count(schedule, today)
    assert n == launch_days.phase_day(schedule, today)  # the launch prompt's day agrees with the syncs'
    if n == 0:
        assert today < first_day(schedule)
    else:
        # Day n is the last workday on or before today.
        on = date_of(schedule, n)
        assert on <= today and is_workday(schedule, on)
        assert all(
            not is_workday(schedule, on + dt.timedelta(days=k)) for k in range(1, (today - on).days + 1)
        )


@settings(max_examples=300, deadline=None)
@given(start=dates, workdays=workday_sets, n=st.integers(1, 400))
def test_date_of_and_phase_day_round_trip(start: dt.date, workdays: list[str], n: int) -> None:
    schedule = Schedule(start=start, days=10, workdays=tuple(workdays))
    on = date_of(schedule, n)
    assert is_workday(schedule, on) and on >= schedule.start
    assert phase_day(schedule, on) == n
    assert phase_day(schedule, on - dt.timedelta(days=1)) == n - 1
    assert launch_days.day_date(schedule, n) == on
    if n > 1:
        assert previous_workday(schedule, on) == date_of(schedule, n - 1)


# ----------------------------------------------------------------------------------------------- before day 1

FUTURE_START = "2099-01-03"  # a Saturday: day 1 would be Monday 2099-01-05


@pytest.fixture(scope="module")
def future(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox whose phase starts in 2099 (not set up: nothing is needed before day 1)."""

    def edit(data: dict[str, object]) -> None:
        data["schedule"] = {"start": FUTURE_START, "days": 10, "slack": 2}

    return build(tmp_path_factory.mktemp("future"), edited_manifest(edit), setup=False)


@pytest.mark.parametrize("kind", ["morning", "evening"])
def test_sync_before_the_phase_starts_exits_2_naming_the_start_date(
    future: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(future, ["sync", kind], capsys)
    assert result.code == ExitCode.USAGE, result.output
    assert FUTURE_START in result.stderr and "before day 1" in result.stderr
    assert "--day" in result.stderr  # the hint says how to run it anyway
    assert not (future / "workstreams" / "reports").exists()

    as_json = cli(future, ["sync", kind, "--json"], capsys)
    assert as_json.code == 2 and FUTURE_START in as_json.stdout


def test_sync_before_the_phase_starts_runs_with_an_explicit_day(
    future: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_json(future, ["sync", "morning", "--day", "1"], capsys)
    assert data["day"] == 1 and data["date"] == "2099-01-05"  # day 1 of a Saturday start is the Monday
    assert (future / "workstreams/reports/phase-1/day-01-morning.md").is_file()
    zero = cli(future, ["sync", "morning", "--day", "0"], capsys)
    assert zero.code == 2 and "--day must be 1 to 1000 (got 0)" in zero.output


def test_status_before_the_phase_starts_is_day_0_with_every_checkpoint_upcoming(
    future: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_json(future, ["status"], capsys)
    assert data["day"] == 0
    assert {c["state"] for c in data["checkpoints"]} == {"upcoming"}
