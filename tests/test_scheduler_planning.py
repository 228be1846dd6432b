"""The planning rules on their own: pure functions of instants (µs), no event loop, no clock.

Each rule the engine applies (first fire, next fire, coalescing, admission, clock steps) is
specified here directly; tests/test_scheduler_*.py check the same rules end to end.
"""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from spacetime_sched import InvalidScheduleError, ScheduleAt, TimeDuration, Timestamp
from spacetime_sched._deadlines import DeadlineHeap
from spacetime_sched.scheduler import (
    DEFAULT_POLICY,
    CronTrigger,
    DailyTrigger,
    IntervalTrigger,
    OnceTrigger,
)
from spacetime_sched.scheduler._planning import (
    VIXIE_RESET_MICROS,
    Admission,
    admit,
    buffers_all,
    clock_step,
    coalesce,
    latest_due,
    next_after,
    prepare,
)

S = 1_000_000  # one second in µs
T0 = Timestamp.from_datetime(dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)).micros_since_epoch
EVERY_10S = ScheduleAt.Interval(TimeDuration.from_seconds(10))


def policy(**changes: object) -> object:
    return attrs.evolve(DEFAULT_POLICY, **changes)


# --- first and next fires -----------------------------------------------------------------------


def test_prepare_gives_each_kind_of_schedule_its_first_fire() -> None:
    at = ScheduleAt.Time(Timestamp(T0 + 5 * S))
    assert prepare(at, T0) == (at, T0 + 5 * S)
    assert prepare(EVERY_10S, T0) == (EVERY_10S, T0 + 10 * S)  # SpacetimeDB: now + interval
    trigger, first = prepare(IntervalTrigger(TimeDuration.from_seconds(3)), T0)
    assert first == T0 + 3 * S
    assert trigger == IntervalTrigger(TimeDuration.from_seconds(3), Timestamp(T0))  # bound
    assert prepare(TimeDuration.from_seconds(2), T0)[1] == T0 + 2 * S
    with pytest.raises(InvalidScheduleError, match="must not be zero"):
        prepare(ScheduleAt.Interval(TimeDuration(0)), T0)
    with pytest.raises(InvalidScheduleError, match="never fires"):
        prepare(IntervalTrigger(TimeDuration.from_seconds(1), end=Timestamp(T0 - S)), T0)
    with pytest.raises(InvalidScheduleError, match="schedule: expected"):
        prepare("soon", T0)


def test_next_after_follows_the_grid_from_the_anchor() -> None:
    assert next_after(EVERY_10S, T0, T0) == T0 + 10 * S
    assert next_after(EVERY_10S, T0, T0 + 10 * S) == T0 + 20 * S  # strictly after
    assert next_after(EVERY_10S, T0, T0 + 95 * S) == T0 + 100 * S  # missed ticks skipped
    assert next_after(ScheduleAt.Time(Timestamp(T0)), T0, T0 - S) is None  # one-shot: done
    trigger = IntervalTrigger(TimeDuration.from_seconds(10), Timestamp(T0))
    assert next_after(trigger, 0, T0 + 95 * S) == T0 + 100 * S  # the trigger answers
    assert next_after(OnceTrigger(Timestamp(T0)), 0, T0 - 1) == T0


def test_latest_due_is_the_newest_fire_not_after_now() -> None:
    assert latest_due(EVERY_10S, T0, T0 + 10 * S, T0 + 47 * S) == T0 + 40 * S
    assert latest_due(EVERY_10S, T0, T0 + 10 * S, T0 + 10 * S) == T0 + 10 * S
    hourly = CronTrigger("0 * * * *")
    assert latest_due(hourly, 0, T0, T0 + 3 * 3600 * S + 5) == T0 + 3 * 3600 * S


# --- coalescing and admission -------------------------------------------------------------------


def test_coalesce_latest_runs_the_newest_missed_tick_and_plans_past_now() -> None:
    now = T0 + 47 * S  # woke 37 s late for the tick at +10 s
    fire, key, nxt = coalesce(EVERY_10S, T0, policy(), T0 + 10 * S, T0 + 10 * S, now)
    assert (fire, key, nxt) == (T0 + 40 * S, T0 + 40 * S, T0 + 50 * S)


def test_coalesce_earliest_runs_the_due_tick_and_plans_past_now() -> None:
    now = T0 + 47 * S
    result = coalesce(EVERY_10S, T0, policy(coalesce="earliest"), T0 + 10 * S, T0 + 10 * S, now)
    assert result == (T0 + 10 * S, T0 + 10 * S, T0 + 50 * S)


def test_coalesce_all_replays_ticks_within_the_grace_time() -> None:
    now = T0 + 47 * S
    grace = policy(coalesce="all", misfire_grace_time=15)
    fire, _, nxt = coalesce(EVERY_10S, T0, grace, T0 + 10 * S, T0 + 10 * S, now)
    assert fire == T0 + 10 * S
    assert nxt == T0 + 40 * S  # +20 s and +30 s are older than 15 s: skipped
    fire, _, nxt = coalesce(
        EVERY_10S,
        T0,
        policy(coalesce="all", misfire_grace_time=None),
        T0 + 10 * S,
        T0 + 10 * S,
        now,
    )
    assert nxt == T0 + 20 * S  # no grace: every tick is replayed


def test_on_time_fires_plan_from_the_intended_time() -> None:
    fire, key, nxt = coalesce(EVERY_10S, T0, policy(), T0 + 10 * S, T0 + 10 * S, T0 + 10 * S + 3)
    assert (fire, key, nxt) == (T0 + 10 * S, T0 + 10 * S, T0 + 20 * S)  # no drift


def test_admit_reports_a_fire_later_than_the_grace_time_as_missed() -> None:
    assert admit(policy(misfire_grace_time=60), 0, None, T0, T0 + 60 * S) is Admission.RUN
    assert admit(policy(misfire_grace_time=60), 0, None, T0, T0 + 60 * S + 1) is Admission.MISSED
    assert admit(policy(misfire_grace_time=None), 0, None, T0, T0 + 10**12) is Admission.RUN


@pytest.mark.parametrize(
    ("overlap", "buffered", "expected"),
    [
        ("skip", None, Admission.SKIP),
        ("buffer_one", None, Admission.BUFFER),
        ("buffer_one", T0, Admission.SKIP),  # one is buffered already
        ("allow_all", None, Admission.RUN),
    ],
)
def test_admit_applies_the_overlap_policy_while_running(
    overlap: str, buffered: int | None, expected: Admission
) -> None:
    assert admit(policy(overlap=overlap), 1, buffered, T0, T0) is expected
    assert admit(policy(overlap=overlap), 0, buffered, T0, T0) is Admission.RUN  # not running


def test_coalesce_all_buffers_every_fire_behind_a_running_execution() -> None:
    assert buffers_all(policy(coalesce="all", overlap="skip"), 1)
    assert not buffers_all(policy(coalesce="all", overlap="skip"), 0)
    assert not buffers_all(policy(coalesce="all", overlap="allow_all"), 1)
    assert not buffers_all(policy(coalesce="latest", overlap="skip"), 1)


# --- clock steps --------------------------------------------------------------------------------


def test_intervals_move_with_a_clock_step() -> None:
    assert clock_step(EVERY_10S, T0, T0 + 10 * S, -3600 * S, T0) == (
        EVERY_10S,
        T0 - 3600 * S,
        T0 + 10 * S - 3600 * S,
    )
    trigger = IntervalTrigger(TimeDuration.from_seconds(10), Timestamp(T0))
    moved = clock_step(trigger, 0, T0 + 10 * S, 5 * S, T0)
    assert moved == (
        IntervalTrigger(TimeDuration.from_seconds(10), Timestamp(T0 + 5 * S)),
        0,
        T0 + 15 * S,
    )


def test_fixed_wall_times_keep_their_plan_after_a_small_step_back() -> None:
    daily = DailyTrigger(9, 0)
    nxt = daily.next_fire_micros(T0)
    assert nxt is not None
    assert clock_step(daily, 0, nxt, -3600 * S, T0) is None
    assert clock_step(ScheduleAt.Time(Timestamp(nxt)), 0, nxt, -3600 * S, T0) is None
    assert clock_step(daily, 0, nxt, 3600 * S, T0) is None  # forward: misfire rules apply


def test_wildcard_cron_follows_the_clock_back_and_a_reset_replans_everything() -> None:
    minutely = CronTrigger("* * * * *")
    assert minutely.follows_wall_clock
    assert not CronTrigger("30 2 * * *").follows_wall_clock
    now = T0 - 3600 * S  # the clock was set back an hour; the plan was for T0 + 60 s
    assert clock_step(minutely, 0, T0 + 60 * S, -3600 * S, now) == (minutely, 0, now + 60 * S)
    daily = DailyTrigger(0, 0)  # next planned: T0 + 1 day
    reset = -(VIXIE_RESET_MICROS + S)
    now = T0 + reset
    replanned = clock_step(daily, 0, T0 + 86400 * S, reset, now)
    assert replanned == (daily, 0, T0)  # midnight comes again on the new clock


# --- the deadline heap --------------------------------------------------------------------------


def test_deadline_heap_skips_stale_entries_and_compacts() -> None:
    live: set[int] = set()
    heap: DeadlineHeap[tuple[int, int]] = DeadlineHeap(lambda e: e[1] in live, compact_slack=4)
    for i in range(10):
        live.add(i)
        heap.push((100 - i, i))
    assert heap.peek() == (91, 9)
    live.discard(9)  # cancelled: its entry stays until it reaches the top
    heap.note_stale()
    assert heap.peek() == (92, 8)
    assert heap.pop_due(91) is None  # nothing live is due at 91
    assert heap.pop_due(93) == (92, 8)
    live.discard(8)
    for i in range(7):
        live.discard(i)
        heap.note_stale()
    assert len(heap) == 3  # compacted once stale ones passed the slack and half: 8 -> 3
    assert heap.pop() == (93, 7)
    assert heap.pop() is None
    heap.push((5, 1))
    assert heap.first_deadline() == 5
    assert heap.drain() == [(5, 1)]
    assert len(heap) == 0
