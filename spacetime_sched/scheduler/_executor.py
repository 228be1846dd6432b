"""The executor: runs admitted fires as tasks, within limiter slots, with retries and timeouts.

Every execution holds a slot of one :class:`anyio.CapacityLimiter` of
``max_concurrent_executions`` while it calls the target, and only then: not while it backs off
between retries. The timer takes a slot *before* it takes a due fire off the queue
(:meth:`Executor.dispatch_due`), so the limiter, not a scan of the queue, bounds how many
executions run and the queue itself is the backlog. A worker task whose call returned takes the
next due fire itself while fires are backlogged, so a burst of quick calls needs a few tasks,
not one per fire.

What a fire *means* (admission, the next fire, statuses, callbacks, claims) is the engine's: it
implements :class:`ExecutionHost`, which the executor calls at the points that matter.
"""

from __future__ import annotations

import logging
import random as _random
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from .._clock import Clock
from .._errors import SchedulerError
from .._time import Timestamp
from ._models import CoalescePolicy, ScheduledReducerCall, ScheduleResult, ScheduleStatus
from ._stats import ExecutionStats

__all__ = ["ExecutionHost", "Executor", "Slot"]

logger: Final = logging.getLogger("spacetime_sched.scheduler")

#: A worker taking backlogged fires yields to other tasks after this many.
_WORKER_YIELD_EVERY: Final = 16

_CANCELLED: Final = ScheduleStatus.CANCELLED
_PAUSED: Final = ScheduleStatus.PAUSED
_ALL: Final = CoalescePolicy.ALL


class Slot:
    """A limiter borrower: one execution task's claim on a CapacityLimiter token."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held = True


class ExecutionHost(Protocol):
    """What the executor asks of the engine."""

    @property
    def accepting(self) -> bool:
        """Whether new fires may start (False once stopping)."""
        ...

    def take_due(self, now: int) -> tuple[ScheduledReducerCall, int] | None:
        """The next due fire admitted to run (schedule, fire), or None."""
        ...

    @property
    def due_entries(self) -> list[tuple[Any, ...]]:
        """The fire queue's heap list: ``due_entries[0][0]`` is the earliest key (may be
        stale; taking it skips it)."""
        ...

    #: Who wants :meth:`report` for every attempt (execution callbacks) and for failed ones
    #: (error callbacks); when both are empty, reporting is skipped.
    execution_callbacks: list[Any]
    error_callbacks: list[Any]

    def admit_now(self, s: ScheduledReducerCall, fire: int) -> bool:
        """Admit one extra execution of ``s`` (trigger_now), per its overlap policy."""
        ...

    async def claim(self, s: ScheduledReducerCall, fire: int, taken_over: bool = False) -> bool:
        """Whether this instance runs the fire (always True without a store); marks it
        started in a leasing store."""
        ...

    async def fire_done(self, s: ScheduledReducerCall, fire: int) -> None:
        """A claimed fire ran (with its retries)."""
        ...

    def start_rerun(self, s: ScheduledReducerCall) -> None:
        """Count a fire taken over from a dead instance as an execution starting."""
        ...

    async def report(self, result: ScheduleResult) -> None:
        """An attempt ended: record it, call the callbacks."""
        ...

    def buffered_fire_started(self, s: ScheduledReducerCall) -> None:
        """A fire buffered behind the previous execution starts in the same task."""
        ...

    def execution_ended(self, s: ScheduledReducerCall, interrupted: bool) -> None:
        """An execution (with its retries and buffered fires) ended."""
        ...


class Executor:
    """Worker tasks, limiter slots, retries and timeouts for one scheduler run."""

    __slots__ = (
        "_call",
        "_claims",
        "_clock",
        "_host",
        "_is_client",
        "_random",
        "_stats",
        "limiter",
    )

    def __init__(
        self,
        host: ExecutionHost,
        call: Callable[..., Awaitable[Any]],
        *,
        is_client: bool,
        clock: Clock,
        stats: ExecutionStats,
        random: _random.Random,
        max_concurrent: int,
        claims: bool,
    ) -> None:
        self._host = host
        self._claims = claims  # whether fires are claimed in a store before they run
        self._call = call
        self._is_client = is_client
        self._clock = clock
        self._stats = stats
        self._random = random
        self.limiter = anyio.CapacityLimiter(max_concurrent)

    async def dispatch_due(self, now: int, tg: anyio.abc.TaskGroup) -> None:
        """Start every fire due at ``now``, taking one limiter slot before each is taken."""
        limiter = self.limiter
        host = self._host
        clock = self._clock
        slot: Slot | None = None
        entries = host.due_entries
        try:
            while True:
                if not entries or entries[0][0] > now:
                    break
                if slot is None:
                    candidate = Slot()
                    try:
                        limiter.acquire_on_behalf_of_nowait(candidate)
                    except anyio.WouldBlock:
                        await limiter.acquire_on_behalf_of(candidate)
                        slot = candidate
                        now = clock.now_micros()
                        continue
                    slot = candidate
                taken = host.take_due(now)
                if taken is None:
                    break
                tg.start_soon(self.worker, taken[0], taken[1], slot)
                slot = None
                # Let the new worker start before spawning another: it takes further due fires
                # itself when its call returns quickly, so a burst of quick calls needs a few
                # tasks, not one per fire; slow calls still fan out, one task per loop turn.
                await anyio.lowlevel.checkpoint()
                now = clock.now_micros()
        finally:
            if slot is not None:
                limiter.release_on_behalf_of(slot)

    async def trigger(self, s: ScheduledReducerCall) -> None:
        """One extra execution of ``s`` now (``trigger_now``), once a slot is free."""
        slot = Slot()
        await self.limiter.acquire_on_behalf_of(slot)
        now = self._clock.now_micros()
        if s.status is _CANCELLED or not self._host.admit_now(s, now):
            self.limiter.release_on_behalf_of(slot)
            return
        await self.worker(s, now, slot)

    async def rerun(self, s: ScheduledReducerCall, fire: int) -> None:
        """Run a fire taken over from a dead instance (already claimed by this one), once a
        slot is free."""
        slot = Slot()
        await self.limiter.acquire_on_behalf_of(slot)
        try:
            self._host.start_rerun(s)
            await self._execute(s, fire, slot, taken_over=True)
        finally:
            if slot.held:
                slot.held = False
                self.limiter.release_on_behalf_of(slot)

    async def worker(self, s: ScheduledReducerCall, fire: int, slot: Slot) -> None:
        """An execution task: run the admitted fire, then, while fires are backlogged, take the
        next due one instead of exiting (it already holds a slot). Releases the slot at the
        end."""
        host = self._host
        clock = self._clock
        entries = host.due_entries
        try:
            ran = 0
            while True:
                await self._execute(s, fire, slot)
                if not host.accepting or not slot.held:
                    break
                if not entries or entries[0][0] > clock.now_micros():
                    break
                ran += 1
                if ran % _WORKER_YIELD_EVERY == 0:
                    await anyio.lowlevel.checkpoint()  # fairness with a target that never yields
                taken = host.take_due(clock.now_micros())
                if taken is None:
                    break
                s, fire = taken
        finally:
            if slot.held:
                slot.held = False
                self.limiter.release_on_behalf_of(slot)

    async def _execute(
        self, s: ScheduledReducerCall, fire: int, slot: Slot, taken_over: bool = False
    ) -> None:
        """Run one admitted fire of ``s`` (with retries, then any buffered fire). Holds the
        limiter ``slot`` while calling the target, not while backing off."""
        limiter = self.limiter
        clock = self._clock
        stats = self._stats
        host = self._host
        policy = s.policy
        interrupted = False
        try:
            while True:
                claimed = await host.claim(s, fire, taken_over) if self._claims else True
                taken_over = False  # a buffered fire after it is claimed as usual
                attempt = 1
                while claimed:
                    started = clock.now_micros()
                    if attempt == 1:
                        stats.record_lateness(started - fire)
                    t0 = clock.monotonic_micros()
                    error: Exception | None = None
                    value: Any = None
                    try:
                        if policy.timeout is None:  # the common case: no extra coroutine
                            value = await self._call(s.reducer_name, *s.args)
                        else:
                            value = await self._call_target(s, policy.timeout)
                    except Exception as exc:
                        error = exc
                    duration = clock.monotonic_micros() - t0
                    ok = error is None
                    result = ScheduleResult(
                        s.id, s.reducer_name, fire, started, duration, ok, error, attempt, value
                    )
                    s.last_result = result
                    stats.record_execution(s.reducer_name, ok, duration)
                    if not ok:
                        logger.info(
                            "schedule %r: %s%r attempt %d failed: %r",
                            s.id,
                            s.reducer_name,
                            s.args,
                            attempt,
                            error,
                        )
                    if host.execution_callbacks or (not ok and host.error_callbacks):
                        await host.report(result)
                    if ok or attempt > policy.max_retries or s.status is _CANCELLED:
                        break
                    delay = policy.backoff_delay(attempt, self._random.random())
                    slot.held = False
                    limiter.release_on_behalf_of(slot)
                    await clock.sleep_until(Timestamp._unchecked(clock.now_micros() + delay))
                    await limiter.acquire_on_behalf_of(slot)
                    slot.held = True
                    attempt += 1
                    stats.retries += 1
                if claimed and self._claims:
                    await host.fire_done(s, fire)
                buffered = s.buffered
                if (
                    buffered is None
                    or policy.coalesce is _ALL  # deferred fires go back to the queue (host)
                    or s.status is _CANCELLED
                    or s.status is _PAUSED
                ):
                    break
                s.buffered = None
                s.run_count += 1
                fire = buffered
                host.buffered_fire_started(s)
        except anyio.get_cancelled_exc_class():
            interrupted = True
            # The scheduler stopped while this ran. Record it: the fire is not run again (with
            # a store it was claimed: at most once, never twice).
            s.last_result = ScheduleResult(
                s.id,
                s.reducer_name,
                fire,
                clock.now_micros(),
                0,
                False,
                SchedulerError(
                    f"schedule {s.id!r} ({s.reducer_name}): the execution for "
                    f"{Timestamp._unchecked(fire)} was cancelled because the scheduler stopped"
                ),
                1,
            )
            raise
        finally:
            host.execution_ended(s, interrupted)

    async def _call_target(self, s: ScheduledReducerCall, limit: Any) -> Any:
        """Call the target under ``limit`` (a TimeDuration): a client also gets it as
        ``timeout=`` so the server-side wait ends too."""
        seconds = limit.micros / 1e6
        with anyio.fail_after(seconds):
            if self._is_client:
                return await self._call(s.reducer_name, *s.args, timeout=seconds)
            return await self._call(s.reducer_name, *s.args)
