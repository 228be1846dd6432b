"""Schedule tables fire their reducers on the server, like SpacetimeDB's (on a virtual clock).

* ``Time(ts)``: once at ``ts`` (at once if past); the row is deleted after the reducer runs.
* ``Interval(d)``: first at insert time + |d|, then every |d| anchored to the intended times
  (missed ticks are skipped, not bunched); never deleted; deleting the row cancels it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from spacetime_sched import Identity, ScheduleAt, TimeDuration, Timestamp, sats
from spacetime_sched.protocol import ReducerErr, ReducerInternalError
from spacetime_sched.testing import example_module
from spacetime_sched.testing._clock import VirtualClock
from spacetime_sched.testing._server import Host, Module, ReducerContext
from spacetime_sched.testing._server._host import Caller, NoSuchFunctionError
from spacetime_sched.testing._server._timer import next_tick

SECOND = TimeDuration.from_seconds(1)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def host(clock: VirtualClock) -> AsyncIterator[Host]:
    async with Host(example_module.make_module(), clock=clock) as host:
        yield host


def fired(host: Host) -> list[tuple[str, int, Timestamp]]:
    return [(r["label"], r["scheduled_id"], r["fired_at"]) for r in host.table("tick_log")]


async def test_a_time_in_the_past_fires_at_once_and_the_row_is_deleted(
    host: Host, clock: VirtualClock
) -> None:
    start = clock.now()
    host.call("schedule_tick", ["past", ScheduleAt.Time(start - SECOND * 60)])
    await clock.settle()
    assert fired(host) == [("past", 1, start)]
    assert host.table("tick_schedule").rows() == []


async def test_a_future_time_fires_once_at_that_time(host: Host, clock: VirtualClock) -> None:
    start = clock.now()
    host.call("schedule_tick", ["later", ScheduleAt.Time(start + SECOND * 10)])
    await clock.advance(SECOND * 9)
    assert fired(host) == []
    assert len(host.table("tick_schedule").rows()) == 1
    await clock.advance(SECOND * 100)
    assert fired(host) == [("later", 1, start + SECOND * 10)]
    assert host.table("tick_schedule").rows() == []


async def test_an_interval_repeats_anchored_to_its_intended_times(
    host: Host, clock: VirtualClock
) -> None:
    start = clock.now()
    host.call("schedule_tick", ["every 2s", ScheduleAt.Interval(SECOND * 2)])
    await clock.advance(SECOND * 7)
    assert [at for _, _, at in fired(host)] == [
        start + SECOND * 2,
        start + SECOND * 4,
        start + SECOND * 6,
    ]
    assert len(host.table("tick_schedule").rows()) == 1  # never deleted


async def test_missed_interval_ticks_are_skipped_not_bunched(
    host: Host, clock: VirtualClock
) -> None:
    start = clock.now()
    host.call("schedule_tick", ["every 2s", ScheduleAt.Interval(SECOND * 2)])
    await clock.advance(SECOND * 2)
    # The wall clock leaps 7 s (to +9 s): the tick due at +4 s runs once, late, and the ticks
    # of +6 and +8 s are skipped; the schedule keeps its anchor (+10 s, +12 s, ...).
    await clock.jump(SECOND * 7)
    assert [at for _, _, at in fired(host)] == [start + SECOND * 2, start + SECOND * 9]
    await clock.advance(SECOND * 3)
    assert [at for _, _, at in fired(host)][2:] == [start + SECOND * 10, start + SECOND * 12]


async def test_a_negative_interval_counts_by_its_magnitude(host: Host, clock: VirtualClock) -> None:
    start = clock.now()
    host.call("schedule_tick", ["negative", ScheduleAt.Interval(-SECOND * 3)])
    await clock.advance(SECOND * 3)
    assert [at for _, _, at in fired(host)] == [start + SECOND * 3]


async def test_deleting_the_row_cancels_it(host: Host, clock: VirtualClock) -> None:
    host.call("schedule_tick", ["cancelled", ScheduleAt.Interval(SECOND)])
    host.call("schedule_tick", ["kept", ScheduleAt.Interval(SECOND)])
    await clock.advance(SECOND)
    host.call("cancel_tick", [1])
    await clock.advance(SECOND * 3)
    assert [label for label, _, _ in fired(host)] == ["cancelled", "kept", "kept", "kept", "kept"]
    assert isinstance(host.call("cancel_tick", [1]), ReducerErr)


async def test_a_rolled_back_insert_schedules_nothing(host: Host, clock: VirtualClock) -> None:
    module = Module("m")
    jobs = module.table(
        "jobs",
        [("id", sats.U64), ("at", sats.SCHEDULE_AT)],
        primary_key="id",
        auto_inc="id",
        scheduled="run",
    )
    runs: list[int] = []

    @module.reducer(params=[("row", jobs)])
    def run(ctx: ReducerContext, row: dict[str, object]) -> None:
        runs.append(ctx.timestamp.micros_since_epoch)

    @module.reducer
    def schedule_then_fail(ctx: ReducerContext) -> None:
        ctx.db.jobs.insert({"at": ScheduleAt.Time(ctx.timestamp)})
        raise RuntimeError("no")

    async with Host(module, clock=clock) as own:
        assert isinstance(own.call("schedule_then_fail"), ReducerInternalError)  # crashed
        await clock.advance(SECOND)
        assert runs == []
        assert own.table("jobs").rows() == []


async def test_a_failing_one_shot_is_still_removed_and_an_interval_keeps_going(
    clock: VirtualClock,
) -> None:
    module = Module("m")
    jobs = module.table(
        "jobs",
        [("id", sats.U64), ("at", sats.SCHEDULE_AT)],
        primary_key="id",
        auto_inc="id",
        scheduled="run",
    )
    attempts: list[int] = []

    @module.reducer(params=[("row", jobs)])
    def run(ctx: ReducerContext, row: dict[str, int]) -> None:
        attempts.append(row["id"])
        raise RuntimeError("always fails")

    @module.reducer(params=[("at", sats.SCHEDULE_AT)])
    def add(ctx: ReducerContext, at: ScheduleAt) -> None:
        ctx.db.jobs.insert({"at": at})

    async with Host(module, clock=clock) as host:
        host.call("add", [ScheduleAt.Time(clock.now())])
        host.call("add", [ScheduleAt.Interval(SECOND)])
        await clock.advance(SECOND * 3)
        assert attempts == [1, 2, 2, 2]
        assert [row["id"] for row in host.table("jobs")] == [2]


async def test_a_reducer_that_updates_its_own_row_reschedules_it(clock: VirtualClock) -> None:
    module = Module("m")
    jobs = module.table(
        "jobs",
        [("id", sats.U64), ("at", sats.SCHEDULE_AT), ("left", sats.U32)],
        primary_key="id",
        auto_inc="id",
        scheduled="run",
    )
    times: list[Timestamp] = []

    @module.reducer(params=[("row", jobs)])
    def run(ctx: ReducerContext, row: dict[str, object]) -> None:
        times.append(ctx.timestamp)
        if row["left"]:
            later = ScheduleAt.Time(ctx.timestamp + SECOND * 5)
            ctx.db.jobs.insert({"at": later, "left": int(row["left"]) - 1})  # type: ignore[call-overload]

    @module.init
    def init(ctx: ReducerContext) -> None:
        ctx.db.jobs.insert({"at": ScheduleAt.Time(ctx.timestamp), "left": 2})

    async with Host(module, clock=clock) as host:
        start = clock.now()
        await clock.advance(SECOND * 20)
        assert times == [start, start + SECOND * 5, start + SECOND * 10]
        assert host.table("jobs").rows() == []


async def test_schedules_beyond_the_maximum_delay_are_refused(
    host: Host, clock: VirtualClock
) -> None:
    too_far = ScheduleAt.Time(clock.now() + TimeDuration.from_days(800))
    outcome = host.call("schedule_tick", ["too far", too_far])
    assert isinstance(outcome, ReducerInternalError)  # the insert fails, as Rust's panics
    assert "more than 68719476735 ms ahead" in str(outcome.message)
    assert host.table("tick_schedule").rows() == []


async def test_the_owner_may_call_a_scheduled_reducer_directly(
    host: Host, clock: VirtualClock
) -> None:
    row = {"scheduled_id": 9, "scheduled_at": ScheduleAt.Time(clock.now()), "label": "direct"}
    host.call("tick", [row])  # Host.call runs as the database owner
    assert fired(host) == [("direct", 9, clock.now())]
    with pytest.raises(NoSuchFunctionError, match="no such reducer: 'tick'"):
        host.call("tick", [row], Caller(Identity(1)))


@pytest.mark.parametrize(
    ("intended", "now", "expected"),
    [
        (10, 10, 13),  # on time: one interval later
        (10, 12, 13),  # a little late: still the next anchored tick
        (10, 13, 16),  # exactly on the next tick: that one has passed too
        (10, 25, 28),  # far behind: the missed ticks 13..25 are skipped
    ],
)
def test_next_tick_is_the_first_anchored_tick_after_now(
    intended: int, now: int, expected: int
) -> None:
    every = ScheduleAt.Interval(TimeDuration(3))
    assert next_tick(every, intended, now) == expected
    assert next_tick(ScheduleAt.Interval(TimeDuration(-3)), intended, now) == expected
