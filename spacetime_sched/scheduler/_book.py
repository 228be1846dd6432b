"""The schedule book: every schedule by id, its planned fires, and what happened to it.

The book holds the state the engine's public methods change and the executor's executions
report to: the schedules, the fire queue, statistics, finished-schedule retention, execution
and error callbacks, waiters, and the store's write-behind marks. It implements the executor's
:class:`~._executor.ExecutionHost`: which due fire runs next (applying
:mod:`._planning`'s rules), and what an execution's end means for its schedule's status.
"""

from __future__ import annotations

import collections
import inspect
import logging
import random as _random
from collections.abc import Callable
from typing import Any, Final, TypeAlias

import anyio
import anyio.abc

from .._callbacks import call_callback_logged
from .._clock import Clock
from .._errors import InvalidScheduleError, SchedulerError
from .._time import TimeDuration, Timestamp
from ._models import ScheduledReducerCall, ScheduleResult, ScheduleStatus
from ._persistence import Persistence
from ._planning import Admission, admit, buffers_all, clock_step, coalesce
from ._queue import FireQueue
from ._stats import ExecutionStats

__all__ = ["ErrorCallback", "ResultCallback", "ScheduleBook", "takes_result_only"]

logger: Final = logging.getLogger("spacetime_sched.scheduler")

_PENDING: Final = ScheduleStatus.PENDING
_RUNNING: Final = ScheduleStatus.RUNNING
_CANCELLED: Final = ScheduleStatus.CANCELLED
_FINISHED: Final = frozenset({ScheduleStatus.COMPLETED, ScheduleStatus.FAILED, _CANCELLED})
_RUN: Final = Admission.RUN
_MISSED: Final = Admission.MISSED
_BUFFER: Final = Admission.BUFFER

#: An execution callback: ``cb(result)``, sync or async.
ResultCallback: TypeAlias = "Callable[[ScheduleResult], Any]"
#: An error callback: ``on_error(schedule_id, error)`` (or ``on_error(result)``), sync or async.
ErrorCallback: TypeAlias = "Callable[[str, BaseException], Any] | Callable[[ScheduleResult], Any]"


def takes_result_only(callback: Callable[..., Any]) -> bool:
    """Whether an error callback takes one argument (the result), not ``(schedule_id,
    error)``. Callables whose signature cannot be read get ``(schedule_id, error)``."""
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind("id", None)
    except TypeError:
        pass
    else:
        return False
    try:
        signature.bind(None)
    except TypeError:
        raise InvalidScheduleError(
            f"add_error_callback: {callback!r} must accept (schedule_id, error)"
        ) from None
    return True


class ScheduleBook:
    """Schedules, their queue and their outcomes; the executor's host (see module doc)."""

    def __init__(
        self,
        *,
        clock: Clock,
        random: _random.Random,
        persistence: Persistence | None,
        finished_retention: int | None,
    ) -> None:
        self._clock = clock
        self.schedules: dict[str, ScheduledReducerCall] = {}
        self.queue = FireQueue(self.schedules, random)
        self.stats = ExecutionStats()
        self.persistence = persistence
        self._retention = finished_retention
        self._finished: collections.deque[str] = collections.deque()
        self.execution_callbacks: list[ResultCallback] = []
        # (callback, takes_result): see ReducerScheduler.add_error_callback
        self.error_callbacks: list[tuple[ErrorCallback, bool]] = []
        self.waiters: dict[str, list[anyio.Event]] = {}
        self.active = 0  # executions running
        self._progress: anyio.Event | None = None
        #: Whether new fires may start (the engine sets it while running).
        self.accepting = False
        #: Where missed-fire callbacks run (the engine's task group while running).
        self.task_group: anyio.abc.TaskGroup | None = None

    def forget_finished(self) -> int:
        """Forget every finished (completed, failed, cancelled) schedule; returns how many."""
        gone = [sid for sid, s in self.schedules.items() if s.status in _FINISHED]
        for sid in gone:
            del self.schedules[sid]
        self._finished.clear()
        return len(gone)

    def release_waiters(self) -> None:
        """Wake everyone waiting (the scheduler closed)."""
        self.signal_progress()
        for waiters in self.waiters.values():
            for event in waiters:
                event.set()
        self.waiters.clear()

    # --- the executor's questions (ExecutionHost) ----------------------------------------------

    @property
    def due_entries(self) -> list[tuple[Any, ...]]:
        return self.queue.entries

    def take_due(self, now: int) -> tuple[ScheduledReducerCall, int] | None:
        """Take fires due at ``now`` off the queue until one is admitted to run."""
        queue = self.queue
        while (taken := queue.take_due(now)) is not None:
            s, key, fire = taken
            policy = s.policy
            if s.running and buffers_all(policy, s.running):
                s.buffered = fire  # re-queued by the running execution when it ends
                continue
            fire, key, nxt = coalesce(s.schedule, s.created_micros, policy, key, fire, now)
            s.next_micros = nxt
            if nxt is not None:
                queue.push(s, nxt)
            decision = admit(policy, s.running, s.buffered, key, now)
            if decision is _RUN:
                # (inline _start_execution: this runs once per fire)
                s.running += 1
                s.run_count += 1
                if s.status is _PENDING:
                    s.status = _RUNNING
                self.active += 1
                return s, fire
            if decision is _MISSED:
                self.missed(s, fire, now)
            elif decision is _BUFFER:
                s.buffered = fire
            else:
                self.stats.skipped += 1
        return None

    def admit_now(self, s: ScheduledReducerCall, fire: int) -> bool:
        decision = admit(s.policy, s.running, s.buffered, fire, fire)
        if decision is _RUN:
            self._start_execution(s)
            return True
        if decision is _BUFFER:
            s.buffered = fire
        else:
            self.stats.skipped += 1
        return False

    def _start_execution(self, s: ScheduledReducerCall) -> None:
        s.running += 1
        s.run_count += 1
        if s.status is _PENDING:
            s.status = _RUNNING
        self.active += 1

    async def claim(self, s: ScheduledReducerCall, fire: int, taken_over: bool = False) -> bool:
        """Claim the fire in the shared store (a fire ``taken_over`` from a dead instance is
        already ours) and, for a leasing store, mark it started; False if another instance
        has it or the store failed (then the fire is recorded as a failure and not run: never
        run twice)."""
        persistence = self.persistence
        if persistence is None:
            return True
        try:
            won = taken_over or await persistence.claim(s.id, fire)
            if won and persistence.leasing is not None:
                won = await persistence.start(s.id, fire)  # False: taken over meanwhile
        except Exception as exc:
            logger.error("schedule %r: claiming fire %s failed: %r", s.id, fire, exc)
            result = ScheduleResult(
                s.id, s.reducer_name, fire, self._clock.now_micros(), 0, False, exc, 1
            )
            s.last_result = result
            self.stats.record_execution(s.reducer_name, False, 0)
            if self.error_callbacks:
                await self.run_error_callbacks(result)
            return False
        if not won:
            self.stats.skipped += 1  # another instance sharing the store runs this fire
        return won

    async def fire_done(self, s: ScheduledReducerCall, fire: int) -> None:
        """The claimed fire ran (with its retries): mark it done in a leasing store."""
        if self.persistence is not None:
            await self.persistence.finish(s.id, fire)

    def start_rerun(self, s: ScheduledReducerCall) -> None:
        """A fire taken over from a dead instance starts here. A one-shot that this instance
        had counted as done (another instance won its claim) runs again as its last fire."""
        if s.status is ScheduleStatus.COMPLETED or s.status is ScheduleStatus.FAILED:
            s.status = _RUNNING
        self._start_execution(s)

    def interrupted(self, schedule_id: str, reducer_name: str, fire: int, owner: str) -> None:
        """Report a fire whose instance died running it and which is not run again
        (``at_most_once``): stats, last result, callbacks."""
        self.stats.interrupted += 1
        now = self._clock.now_micros()
        error = SchedulerError(
            f"schedule {schedule_id!r} ({reducer_name}): the execution for "
            f"{Timestamp._unchecked(fire)} was interrupted: instance {owner!r} died running it; "
            "not run again (delivery='at_most_once')"
        )
        logger.warning("%s", error)
        result = ScheduleResult(
            schedule_id, reducer_name, fire, now, 0, False, error, 1, interrupted=True
        )
        s = self.schedules.get(schedule_id)
        if s is not None:
            s.last_result = result
            if s.next_micros is None and not s.running and self.persistence is not None:
                self.persistence.mark_deleted(schedule_id)  # its owner died before deleting it
        if self.task_group is not None and (self.execution_callbacks or self.error_callbacks):
            self.task_group.start_soon(self.report, result)
        self.wake_waiters(schedule_id)

    async def report(self, result: ScheduleResult) -> None:
        if self.execution_callbacks:
            await self.run_callbacks(result)
        if not result.ok and self.error_callbacks:
            await self.run_error_callbacks(result)

    def buffered_fire_started(self, s: ScheduledReducerCall) -> None:
        self.wake_waiters(s.id)

    def execution_ended(self, s: ScheduledReducerCall, interrupted: bool) -> None:
        s.running -= 1
        self.active -= 1
        if not s.running:
            deferred, s.buffered = s.buffered, None
            if (
                deferred is not None
                and not interrupted
                and buffers_all(s.policy, 1)
                and deferred == s.next_micros
                and (s.status is _RUNNING or s.status is _PENDING)
            ):
                self.queue.push(s, deferred)
            if s.status is _RUNNING:
                if s.next_micros is not None:
                    s.status = _PENDING
                else:
                    last = s.last_result
                    s.status = (
                        ScheduleStatus.COMPLETED
                        if last is None or last.ok  # None: another instance claimed it
                        else ScheduleStatus.FAILED
                    )
                    # A fire another instance claimed is its to finish: with leases, the
                    # record must outlive this instance's view, for a take-over to run it.
                    foreign = last is None and self._leasing
                    self.finish(s, store=not foreign)
        if self.persistence is not None and s.status not in _FINISHED:
            self.persistence.mark_dirty(s)
        self.wake_waiters(s.id)
        if not self.active:
            self.signal_progress()

    def missed(self, s: ScheduledReducerCall, fire: int, now: int) -> None:
        self.stats.missed += 1
        grace = s.policy.misfire_grace_time
        error = SchedulerError(
            f"schedule {s.id!r} ({s.reducer_name}) missed its fire time "
            f"{Timestamp._unchecked(fire)} by {TimeDuration._unchecked(now - fire)} "
            f"(misfire_grace_time is {grace})"
        )
        logger.warning("%s", error)
        result = ScheduleResult(s.id, s.reducer_name, fire, now, 0, False, error, 0, missed=True)
        s.last_result = result
        if s.next_micros is None and not s.running:
            s.status = ScheduleStatus.FAILED
            self.finish(s)
        elif self.persistence is not None:
            self.persistence.mark_dirty(s)
        if self.error_callbacks and self.task_group is not None:
            self.task_group.start_soon(self.run_error_callbacks, result)
        self.wake_waiters(s.id)

    def on_clock_jump(self, delta: int, now: int) -> None:
        """The wall clock was stepped by ``delta`` µs (``now`` is the new wall time): every
        planned fire moves as :func:`._planning.clock_step` says, and the queue is rebuilt."""
        logger.warning(
            "the wall clock jumped by %s; interval schedules re-anchored",
            TimeDuration._unchecked(delta),
        )
        persistence = self.persistence
        for s in self.schedules.values():
            nxt = s.next_micros
            if nxt is None or s.status in _FINISHED:
                continue
            moved = clock_step(s.schedule, s.created_micros, nxt, delta, now)
            if moved is None:
                continue
            s.schedule, s.created_micros, s.next_micros = moved
            if persistence is not None:
                persistence.mark_dirty(s)
        self.queue.rebuild(self.schedules.values())

    # --- internals: callbacks and waiters -----------------------------------------------------

    async def run_callbacks(self, result: ScheduleResult) -> None:
        what = f"schedule {result.schedule_id!r}"
        for callback in tuple(self.execution_callbacks):
            await call_callback_logged(callback, result, logger=logger, what=what)

    async def run_error_callbacks(self, result: ScheduleResult) -> None:
        what = f"schedule {result.schedule_id!r}"
        error = result.error
        for callback, takes_result in tuple(self.error_callbacks):
            if takes_result:
                await call_callback_logged(callback, result, logger=logger, what=what)
            else:
                await call_callback_logged(
                    callback, result.schedule_id, error, logger=logger, what=what
                )

    def wake_waiters(self, schedule_id: str) -> None:
        if self.waiters:
            for event in self.waiters.pop(schedule_id, ()):
                event.set()

    def signal_progress(self) -> None:
        event, self._progress = self._progress, None
        if event is not None:
            event.set()

    async def wait_progress(self) -> None:
        if self._progress is None:
            self._progress = anyio.Event()
        await self._progress.wait()

    @property
    def _leasing(self) -> bool:
        return self.persistence is not None and self.persistence.leasing is not None

    def finish(self, s: ScheduledReducerCall, store: bool = True) -> None:
        """``s`` reached a final status: drop it from the store (unless not ``store``),
        bound the finished list."""
        if store and self.persistence is not None:
            self.persistence.mark_deleted(s.id)
        retention = self._retention
        if retention is None:
            return
        finished = self._finished
        finished.append(s.id)
        while len(finished) > retention:
            old_id = finished.popleft()
            old = self.schedules.get(old_id)
            if old is not None and old.status in _FINISHED and not old.running:
                del self.schedules[old_id]
