"""Phase days: which day of the phase a calendar date is, counting only workdays.

Day 1 is the schedule's start date, or the first workday after it when the start is not a workday. Only
workdays count: with a Monday-to-Friday week, the Friday of week one is day 5 and the Monday after is day
6. Weekends (non-workdays) belong to the day before them: nothing is due on them.
"""

from __future__ import annotations

import datetime as dt

from coditect_cli.domain.manifest import WEEKDAYS, Checkpoint, Deliverable, Manifest, Schedule, Stream


def is_workday(schedule: Schedule, day: dt.date) -> bool:
    """True when ``day`` falls on one of the schedule's workdays."""
    return WEEKDAYS[day.weekday()] in schedule.workdays


def first_day(schedule: Schedule) -> dt.date:
    """The calendar date of phase day 1."""
    day = schedule.start
    while not is_workday(schedule, day):
        day += dt.timedelta(days=1)
    return day


def phase_day(schedule: Schedule, today: dt.date) -> int:
    """The phase day of ``today``: 0 before the phase starts; a non-workday counts as the workday before it.

    Past the end of the schedule the count simply goes on (day 13 of a 10-day phase), so late work shows.
    """
    start = first_day(schedule)
    if today < start:
        return 0
    per_week = len(schedule.workdays)
    span = (today - start).days
    weeks = span // 7
    count = weeks * per_week
    day = start + dt.timedelta(days=weeks * 7)
    while day <= today:
        if is_workday(schedule, day):
            count += 1
        day += dt.timedelta(days=1)
    return count


def date_of(schedule: Schedule, day_number: int) -> dt.date:
    """The calendar date of phase day ``day_number`` (>= 1)."""
    if day_number < 1:
        raise ValueError("phase days start at 1")
    per_week = len(schedule.workdays)
    weeks, rest = divmod(day_number - 1, per_week)
    day = first_day(schedule) + dt.timedelta(days=weeks * 7)
    while True:
        if is_workday(schedule, day):
            if rest == 0:
                return day
            rest -= 1
        day += dt.timedelta(days=1)


def previous_workday(schedule: Schedule, today: dt.date) -> dt.date:
    """The last workday strictly before ``today``."""
    day = today - dt.timedelta(days=1)
    while not is_workday(schedule, day):
        day -= dt.timedelta(days=1)
    return day


def due_on(stream: Stream, day_number: int) -> tuple[Deliverable, ...]:
    """The stream's deliverables whose day range includes ``day_number``."""
    return tuple(d for d in stream.deliverables if day_number in d.days)


def checkpoints_due(manifest: Manifest, day_number: int) -> list[Checkpoint]:
    """The checkpoints scheduled on ``day_number``."""
    return [c for c in manifest.checkpoints if c.day == day_number]


def checkpoints_on(manifest: Manifest, day_number: int) -> tuple[int, ...]:
    """Ids of the checkpoints scheduled on ``day_number``."""
    return tuple(c.id for c in checkpoints_due(manifest, day_number))
