"""VirtualClock: time moves only when the test says so, through every wake-up in order."""

from __future__ import annotations

import anyio
import pytest

from spacetime_sched import TimeDuration, Timestamp
from spacetime_sched.scheduler import Clock
from spacetime_sched.testing._clock import VirtualClock

T0 = Timestamp(1_700_000_000_000_000)


def test_it_reads_its_start_time_and_implements_the_clock_protocol() -> None:
    clock = VirtualClock(T0)
    assert clock.now() == T0
    assert clock.now_micros() == T0.micros_since_epoch
    assert clock.monotonic_micros() == 0
    assert isinstance(clock, Clock)
    assert VirtualClock().now() == Timestamp.parse("2025-01-01T00:00:00Z")


async def test_advance_wakes_sleepers_in_deadline_order_at_their_exact_times() -> None:
    clock = VirtualClock(T0)
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now_micros() - T0.micros_since_epoch))

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "c", 3)
        tg.start_soon(sleeper, "a", 1)
        tg.start_soon(sleeper, "b", 2)
        await clock.advance(TimeDuration.from_seconds(2.5))
        assert woke == [("a", 1_000_000), ("b", 2_000_000)]
        assert clock.now() == T0 + TimeDuration.from_seconds(2.5)
        await clock.advance(1)
    assert woke[-1] == ("c", 3_000_000)
    assert clock.monotonic_micros() == 3_500_000


async def test_a_task_that_sleeps_again_is_woken_again_within_the_same_advance() -> None:
    clock = VirtualClock(T0)
    ticks: list[int] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(10)
            ticks.append(clock.now_micros() - T0.micros_since_epoch)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await clock.advance(TimeDuration.from_days(1))
        tg.cancel_scope.cancel()
    assert len(ticks) == 8640
    assert ticks[-1] == 86_400_000_000


async def test_sleep_until_a_past_deadline_returns_at_once() -> None:
    clock = VirtualClock(T0)
    with anyio.fail_after(1):
        await clock.sleep_until(T0 - TimeDuration.from_seconds(5))
        await clock.sleep_toward(T0.micros_since_epoch)


async def test_cancelled_sleepers_are_forgotten() -> None:
    clock = VirtualClock(T0)
    with anyio.move_on_after(0.01):
        await clock.sleep(100)
    await clock.advance(200)
    assert clock.now() == T0 + TimeDuration.from_seconds(200)
    assert "pending_sleepers=0" in repr(clock)


async def test_jump_moves_only_wall_time_and_wakes_sleepers_to_recheck() -> None:
    clock = VirtualClock(T0)
    events: list[str] = []

    async def dozer() -> None:
        await clock.sleep_toward(T0.micros_since_epoch + 3_600_000_000)
        events.append("woke")

    async def strict() -> None:
        await clock.sleep_until(T0 + TimeDuration.from_seconds(60))
        events.append("deadline reached")

    async with anyio.create_task_group() as tg:
        tg.start_soon(dozer)
        tg.start_soon(strict)
        await clock.settle()
        await clock.jump(-30)
        assert events == ["woke"]  # sleep_toward may return early; sleep_until re-checks
        assert clock.monotonic_micros() == 0
        await clock.advance(80)
        assert events == ["woke"]  # wall time reads 50 s: not yet
        await clock.advance(10)
    assert events == ["woke", "deadline reached"]


async def test_advance_refuses_to_go_back() -> None:
    clock = VirtualClock(T0)
    with pytest.raises(ValueError, match="must not be negative"):
        await clock.advance(-1)
    with pytest.raises(ValueError, match="before the current virtual time"):
        await clock.advance_to(T0 - TimeDuration(1))
