"""The engine: :class:`ReducerScheduler`, a structured-concurrency scheduler for reducer calls.

A facade over rooms that each hold one concept (``docs/architecture.md`` draws them):

* :mod:`._planning`: pure functions: first and next fire, coalescing, admission (run, buffer,
  skip, missed), clock steps. Triggers answer their own questions (:mod:`._triggers`).
* :mod:`._queue`: the fire queue, on the shared lazy-deletion deadline heap.
* :mod:`._executor`: worker tasks, limiter slots, retries, timeouts.
* :mod:`._persistence`: write-behind to a store, batched fire claims, leases.
* :mod:`._instances`: other instances' changes, fires of dead instances (shared stores).
* :mod:`._book`: the schedules, their queue and outcomes (statuses, callbacks, waiters); the
  executor's host.

What stays here: the lifecycle (``async with``, :meth:`~ReducerScheduler.run`, start/stop),
the public API and the timer loop (sleep until the earliest key; a change that makes an earlier
key cancels that sleep).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import logging
import random as _random
import secrets
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Protocol, TypeAlias

import anyio
import anyio.abc
import attrs

from .._clock import Clock, SystemClock
from .._errors import (
    InvalidScheduleError,
    ScheduleNotFoundError,
    SchedulerClosedError,
    SchedulerError,
)
from .._time import ScheduleAt, TimeDuration, Timestamp
from ._book import ErrorCallback, ResultCallback, ScheduleBook, takes_result_only
from ._executor import Executor
from ._instances import Instances
from ._models import (
    DEFAULT_POLICY,
    DurationLike,
    ScheduledReducerCall,
    SchedulePolicy,
    ScheduleResult,
    ScheduleStatus,
    to_duration,
)
from ._persistence import Persistence
from ._planning import (
    VIXIE_RESET_MICROS,
    Admission,
    next_after,
    prepare,
)
from ._stores._base import ScheduleStore
from ._triggers import CronTrigger, DailyTrigger, TimezoneLike, Trigger

__all__ = [
    "CLOCK_JUMP_TOLERANCE_MICROS",
    "VIXIE_RESET_MICROS",
    "ErrorCallback",
    "ReducerScheduler",
    "ReducerTarget",
    "ResultCallback",
]

logger: Final = logging.getLogger("spacetime_sched.scheduler")

_PENDING: Final = ScheduleStatus.PENDING
_RUNNING: Final = ScheduleStatus.RUNNING
_PAUSED: Final = ScheduleStatus.PAUSED
_CANCELLED: Final = ScheduleStatus.CANCELLED
_FINISHED: Final = frozenset({ScheduleStatus.COMPLETED, ScheduleStatus.FAILED, _CANCELLED})
_RUN: Final = Admission.RUN
_MISSED: Final = Admission.MISSED
_BUFFER: Final = Admission.BUFFER

#: A change of (wall - monotonic) larger than this between two timer wake-ups is a clock step.
CLOCK_JUMP_TOLERANCE_MICROS: Final = 250_000

#: Schedules are handed to :func:`gc.freeze` when their number first reaches this, and then each
#: time it grows past its last high-water mark by this or by 1/64, whichever is more: see _freeze.
_FREEZE_AFTER: Final = 8_192

_NEVER: Final = 2**62

_NEW, _RUNNING_STATE, _STOPPING, _CLOSED = "new", "running", "stopping", "closed"


class _ReducerClient(Protocol):
    async def call_reducer_async(
        self,
        reducer_name: str,
        *args: Any,
        timeout: Any = ...,  # noqa: ASYNC109
    ) -> Any: ...


#: A client with ``call_reducer_async``, or ``async def target(reducer_name, *args)``.
ReducerTarget: TypeAlias = "_ReducerClient | Callable[..., Awaitable[Any]]"
ScheduleSpec: TypeAlias = (
    "ScheduleAt | Trigger | Timestamp | _dt.datetime | TimeDuration | _dt.timedelta"
)


class _StopWaiter:
    """What :meth:`ReducerScheduler.stop` returns: awaiting it waits for the run loop to end.

    Not a coroutine, so a plain call ``scheduler.stop()`` (request only) leaves no un-awaited
    coroutine behind."""

    __slots__ = ("_done",)

    def __init__(self, done: anyio.Event | None) -> None:
        self._done = done

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        if self._done is not None:
            await self._done.wait()


class ReducerScheduler:
    """Call reducers at the times their schedules say, inside a task group you own.

    ``target`` is a SpacetimeDB client (anything with ``async call_reducer_async(name, *args,
    timeout=...)``) or an async function ``async def target(reducer_name, *args)``.

    Run it as an async context manager::

        async with ReducerScheduler(conn) as scheduler:
            scheduler.schedule_at_interval("tick", (), TimeDuration.from_seconds(5))
            ...  # leaving the block stops it

    or start it in your own task group with ``await tg.start(scheduler.run)`` and stop it with
    ``await scheduler.stop()`` (or by cancelling). A host that owns a task group (a client
    connection inside its ``async with`` block) lends it with :meth:`bind`; then
    ``await scheduler.start()`` runs the scheduler there. Scheduling methods are plain sync
    methods returning the new schedule's id; they work before the scheduler starts (the
    schedules run once it does) and while it runs.

    Options:

    * ``max_concurrent_executions`` (default 10): executions running at once, across schedules.
    * ``clock``: a :class:`~spacetime_sched.scheduler.Clock`; default the system clock, tests
      pass a :class:`~spacetime_sched.testing.VirtualClock`.
    * ``store``: a :class:`~spacetime_sched.scheduler.ScheduleStore` (e.g. ``SQLiteStore``);
      ``None`` (default) keeps everything in memory at no cost.
    * ``shutdown_timeout`` (default 10 s): how long running executions may finish when the
      scheduler stops before they are cancelled.
    * ``default_policy``: the :class:`SchedulePolicy` that per-schedule keywords override.
    * ``finished_retention`` (default 10,000): finished (completed, failed, cancelled)
      schedules kept for inspection; older ones are forgotten. ``None`` keeps all.
    * ``instance_id``: this scheduler's name in fire claims of a shared store.
    * ``random``: the random source for jitter (seed one for reproducible tests).
    * ``gc_freeze`` (default True): while the number of schedules grows past 8,192 to new
      highs, call :func:`gc.freeze` at each step of 8,192 or 1/64 (whichever is more), so the
      garbage collector's full collections stop rescanning long-lived schedules (at a million
      schedules one took half a second). It freezes every object of the process existing at
      that moment: frozen objects are still freed by reference counting, but a reference
      cycle that was already garbage then is never collected. A scheduler whose size stays
      level never freezes again. Pass False if your process manages the collector itself.
    """

    def __init__(
        self,
        target: ReducerTarget,
        *,
        max_concurrent_executions: int = 10,
        clock: Clock | None = None,
        store: ScheduleStore | None = None,
        shutdown_timeout: DurationLike = 10.0,
        default_policy: SchedulePolicy | None = None,
        finished_retention: int | None = 10_000,
        instance_id: str | None = None,
        random: _random.Random | None = None,
        gc_freeze: bool = True,
    ) -> None:
        call = getattr(target, "call_reducer_async", None)
        if call is not None:
            self._call: Callable[..., Awaitable[Any]] = call
            self._target_is_client = True
        elif callable(target):
            self._call = target
            self._target_is_client = False
        else:
            raise TypeError(
                "ReducerScheduler: target must have call_reducer_async() or be an async "
                f"callable target(reducer_name, *args), got {type(target).__name__}"
            )
        if type(max_concurrent_executions) is not int or max_concurrent_executions < 1:
            raise InvalidScheduleError(
                "ReducerScheduler: max_concurrent_executions must be an int >= 1, "
                f"got {max_concurrent_executions!r}"
            )
        self._max_concurrent = max_concurrent_executions
        self._clock: Clock = clock if clock is not None else SystemClock()
        if store is not None and not isinstance(store, ScheduleStore):
            raise InvalidScheduleError(
                "ReducerScheduler: store must implement the ScheduleStore protocol (load_all, "
                f"save, delete, claim_fire, aclose, async with), got {type(store).__name__}"
            )
        self._store = store
        self._shutdown_timeout = to_duration(shutdown_timeout, "shutdown_timeout").micros / 1e6
        self._default_policy = default_policy if default_policy is not None else DEFAULT_POLICY
        self._instance_id = instance_id or f"scheduler-{secrets.token_hex(6)}"
        self._persistence = Persistence(store, self._instance_id) if store is not None else None
        self._random = random if random is not None else _random.Random()

        self._book = book = ScheduleBook(
            clock=self._clock,
            random=self._random,
            persistence=self._persistence,
            finished_retention=finished_retention,
        )
        # the book's containers, under the names the public methods use
        self._schedules = book.schedules
        self._queue = book.queue
        self._queue.on_earlier = self._wake_timer
        self._freeze_mark = _FREEZE_AFTER if gc_freeze else _NEVER
        self._id_prefix = secrets.token_hex(3)
        self._id_counter = 0
        self._policy_cache: dict[Any, SchedulePolicy] = {}

        self._state = _NEW
        self._tg: anyio.abc.TaskGroup | None = None
        self._host_tg: anyio.abc.TaskGroup | None = None
        self._lent_tg: anyio.abc.TaskGroup | None = None
        self._starting = False
        self._run_done: anyio.Event | None = None
        self._executor: Executor | None = None
        self._stop_event: anyio.Event | None = None
        self._timer_scope: anyio.CancelScope | None = None
        self._sleep_scope: anyio.CancelScope | None = None
        self._sleep_deadline: int | None = None
        self._last_offset = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> ReducerScheduler:
        host = anyio.create_task_group()
        await host.__aenter__()
        try:
            await host.start(self.run)
        except BaseException as exc:
            # run() failed before it started (e.g. the store could not be loaded): close the
            # task group, whose only task was run(), and raise that error as it is.
            with contextlib.suppress(BaseException):  # the same failure, wrapped in a group
                await host.__aexit__(type(exc), exc, exc.__traceback__)
            raise exc from None
        self._host_tg = host
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self.stop()
        host, self._host_tg = self._host_tg, None
        assert host is not None
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            # The body failed: stop gracefully and let its exception propagate as it is,
            # instead of folding it into an exception group.
            await host.__aexit__(None, None, None)
            return None
        return await host.__aexit__(exc_type, exc, tb)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the scheduler until :meth:`stop` is called or the caller's scope is cancelled.

        Use ``await task_group.start(scheduler.run)``. On stop, no new fires start, running
        executions get ``shutdown_timeout`` to finish and are then cancelled, pending schedules
        stay pending, and the store (if any) is flushed.
        """
        if self._state != _NEW:
            raise SchedulerError(f"ReducerScheduler.run: the scheduler is already {self._state}")
        self._state = _RUNNING_STATE
        done = self._run_done = anyio.Event()
        self._stop_event = anyio.Event()
        persistence = self._persistence
        book = self._book
        self._executor = Executor(
            book,
            self._call,
            is_client=self._target_is_client,
            clock=self._clock,
            stats=book.stats,
            random=self._random,
            max_concurrent=self._max_concurrent,
            claims=persistence is not None,
        )
        try:
            if persistence is not None:
                for s in await persistence.load(self._schedules, self._policy_cache):
                    self._schedules[s.id] = s
                    if s.status is _PENDING:
                        self._queue.push(s, s.next_micros)
                if len(self._schedules) >= self._freeze_mark:
                    self._freeze()  # a bulk load
            async with anyio.create_task_group() as outer:
                if persistence is not None:
                    await outer.start(persistence.run)
                try:
                    async with anyio.create_task_group() as tg:
                        self._tg = book.task_group = tg
                        book.accepting = True
                        tg.start_soon(self._timer_loop)
                        if persistence is not None:
                            await Instances(
                                book, persistence, self._executor, self._policy_cache
                            ).run(tg)
                        task_status.started()
                        await self._stop_event.wait()
                        self._state = _STOPPING
                        book.accepting = False
                        if self._timer_scope is not None:
                            self._timer_scope.cancel()
                        with anyio.move_on_after(self._shutdown_timeout):
                            while book.active:
                                await book.wait_progress()
                        tg.cancel_scope.cancel()
                finally:
                    if persistence is not None:
                        with anyio.CancelScope(shield=True):
                            with anyio.move_on_after(self._shutdown_timeout):
                                await persistence.flush()
                                await persistence.release()  # unstarted claims, for others
                    outer.cancel_scope.cancel()
        finally:
            self._state = _CLOSED
            self._tg = None
            book.accepting = False
            book.task_group = None
            book.release_waiters()
            done.set()

    def bind(self, task_group: anyio.abc.TaskGroup) -> None:
        """Lend the scheduler a task group to run in when :meth:`start` is called.

        For hosts that own a task group for a block of code (a client connection inside its
        ``async with``): the scheduler then lives and dies with that block. :meth:`unbind`
        takes the loan back (a scheduler already running keeps running until that task group
        ends or :meth:`stop`).
        """
        self._lent_tg = task_group

    def unbind(self) -> None:
        """Take back the task group lent by :meth:`bind`; :meth:`start` then has no owner."""
        self._lent_tg = None

    async def start(self) -> None:
        """Start the scheduler in the task group lent by :meth:`bind`; returns once it runs.

        A no-op if it is already running (so ``auto_start`` and an explicit ``start()`` do not
        clash). Without a lent task group there is no owner for the scheduler's tasks, and this
        raises :class:`SchedulerError`: run it with ``async with ReducerScheduler(...)``,
        ``await tg.start(scheduler.run)`` in your task group, or inside a connection's
        ``async with`` block. A stopped scheduler cannot start again
        (:class:`SchedulerClosedError`).
        """
        if self._starting or self._state in (_RUNNING_STATE, _STOPPING):
            return
        if self._state == _CLOSED:
            raise SchedulerClosedError(
                "ReducerScheduler.start: the scheduler was stopped; a scheduler runs once "
                "(create a new one)"
            )
        task_group = self._lent_tg
        if task_group is None:
            raise SchedulerError(
                "ReducerScheduler.start: no task group to run in; use "
                "`async with ReducerScheduler(...) as scheduler:`, "
                "`await task_group.start(scheduler.run)`, or call start() inside a "
                "connection's `async with` block"
            )
        self._starting = True
        try:
            await task_group.start(self.run)
        finally:
            self._starting = False

    def stop(self) -> Awaitable[None]:
        """Stop the scheduler (see :meth:`run`): ``await scheduler.stop()``.

        The request takes effect at the call: no new fires start, running executions get
        ``shutdown_timeout`` to finish and are then cancelled. Awaiting the result returns
        once the run loop has ended (at once if it never started). Calling it without
        ``await`` only requests the stop. Idempotent. Do not *await* it from inside one of
        this scheduler's executions: the stop waits for that very execution.
        """
        if self._state == _NEW and not self._starting:
            self._state = _CLOSED
        elif self._state == _RUNNING_STATE and self._stop_event is not None:
            self._stop_event.set()
        return _StopWaiter(self._run_done)

    @property
    def running(self) -> bool:
        """True between the start of :meth:`run` and the beginning of shutdown."""
        return self._state == _RUNNING_STATE

    @property
    def closed(self) -> bool:
        return self._state == _CLOSED

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def instance_id(self) -> str:
        return self._instance_id

    # --- scheduling ---------------------------------------------------------------------------

    def schedule_reducer(
        self,
        reducer_name: str,
        args: Iterable[Any] | None,
        schedule: ScheduleSpec,
        *,
        metadata: Mapping[str, Any] | None = None,
        schedule_id: str | None = None,
        replace_existing: bool = False,
        **policy: Any,
    ) -> str:
        """Schedule ``reducer_name(*args)`` and return the new schedule's id.

        ``schedule`` is a :class:`ScheduleAt` (``Time``: once; ``Interval``: every interval
        from now, SpacetimeDB's semantics), a trigger (``OnceTrigger``, ``IntervalTrigger``,
        ``DailyTrigger``, ``CronTrigger``, ...), or a Timestamp/aware datetime (once) or
        TimeDuration/timedelta (interval). ``metadata`` is kept with the schedule.
        ``schedule_id`` names the schedule (default: a fresh unique id); an existing id is an
        error unless ``replace_existing``. The remaining keywords are :class:`SchedulePolicy`
        fields (``misfire_grace_time``, ``coalesce``, ``overlap``, ``max_retries``,
        ``backoff_base``, ``backoff_factor``, ``backoff_max``, ``backoff_jitter``, ``timeout``,
        ``jitter``, ``delivery``: ``"at_most_once"`` or ``"at_least_once"``, what a shared store
        does with a fire whose instance died running it; see :class:`DeliveryPolicy`).
        """
        if self._state in (_STOPPING, _CLOSED):
            raise SchedulerClosedError(
                f"cannot schedule {reducer_name!r}: the scheduler is {self._state}"
            )
        if type(reducer_name) is not str or not reducer_name:
            raise InvalidScheduleError(
                f"reducer_name: expected a non-empty str, got {reducer_name!r}"
            )
        if args is None:
            args = ()
        elif type(args) is not tuple:
            if isinstance(args, (str, bytes, Mapping)) or not isinstance(args, Iterable):
                raise InvalidScheduleError(
                    f"args of {reducer_name!r}: expected a tuple or list of reducer arguments, "
                    f"got {type(args).__name__}"
                )
            args = tuple(args)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidScheduleError(
                f"metadata of {reducer_name!r}: expected a mapping such as a dict, "
                f"got {type(metadata).__name__} {metadata!r:.80}"
            )
        pol = self._policy(policy) if policy else self._default_policy
        now = self._clock.now_micros()
        schedule, first = prepare(schedule, now)
        if schedule_id is None:
            self._id_counter += 1
            schedule_id = f"{self._id_prefix}{self._id_counter:08x}"
        else:
            if type(schedule_id) is not str or not schedule_id:
                raise InvalidScheduleError(
                    f"schedule_id: expected a non-empty str, got {schedule_id!r}"
                )
            old = self._schedules.get(schedule_id)
            if old is not None:
                if not replace_existing:
                    raise InvalidScheduleError(
                        f"schedule_id {schedule_id!r} already exists "
                        "(pass replace_existing=True to replace it)"
                    )
                self._queue.cancel(old)
                old.status = _CANCELLED
        s = ScheduledReducerCall(
            schedule_id, reducer_name, args, schedule, metadata, pol, now, first
        )
        self._schedules[schedule_id] = s
        self._queue.push(s, first)
        if self._persistence is not None:
            self._persistence.mark_dirty(s)
        if len(self._schedules) >= self._freeze_mark:
            self._freeze()
        return schedule_id

    def schedule_at_time(
        self,
        reducer_name: str,
        args: Iterable[Any] | None,
        when: Timestamp | _dt.datetime,
        **options: Any,
    ) -> str:
        """Run once at ``when`` (a Timestamp or aware datetime); in the past: at once."""
        return self.schedule_reducer(reducer_name, args, ScheduleAt.at_time(when), **options)

    def schedule_at_interval(
        self,
        reducer_name: str,
        args: Iterable[Any] | None,
        every: TimeDuration | _dt.timedelta | float,
        **options: Any,
    ) -> str:
        """Run every ``every`` (TimeDuration, timedelta or seconds), first at now + every."""
        return self.schedule_reducer(reducer_name, args, ScheduleAt.at_interval(every), **options)

    def schedule_in_seconds(
        self, reducer_name: str, args: Iterable[Any] | None, seconds: float, **options: Any
    ) -> str:
        """Run once, ``seconds`` from now."""
        delay = to_duration(seconds, "seconds")
        when = Timestamp._unchecked(self._clock.now_micros() + delay.micros)
        return self.schedule_reducer(reducer_name, args, ScheduleAt.Time(when), **options)

    def schedule_daily(
        self,
        reducer_name: str,
        args: Iterable[Any] | None,
        hour: int,
        minute: int,
        second: int = 0,
        timezone_info: TimezoneLike = _dt.timezone.utc,
        **options: Any,
    ) -> str:
        """Run every day at ``hour:minute:second`` wall time in ``timezone_info`` (DST-correct,
        Vixie cron rules: a time in the spring-forward gap runs right after the jump, a time in
        the repeated hour runs once)."""
        trigger = DailyTrigger(hour, minute, second, timezone=timezone_info)
        return self.schedule_reducer(reducer_name, args, trigger, **options)

    def schedule_cron(
        self,
        reducer_name: str,
        args: Iterable[Any] | None,
        expression: str,
        timezone_info: TimezoneLike = _dt.timezone.utc,
        **options: Any,
    ) -> str:
        """Run at the times of a crontab ``expression`` in ``timezone_info`` (DST-correct)."""
        trigger = CronTrigger(expression, timezone=timezone_info)
        return self.schedule_reducer(reducer_name, args, trigger, **options)

    # --- management ---------------------------------------------------------------------------

    def get_schedule(self, schedule_id: str) -> ScheduledReducerCall:
        """The schedule with this id (a live view), or :class:`ScheduleNotFoundError`."""
        s = self._schedules.get(schedule_id)
        if s is None:
            raise ScheduleNotFoundError(f"no schedule with id {schedule_id!r}")
        return s

    def list_schedules(
        self,
        status: ScheduleStatus | str | None = None,
        reducer_name: str | None = None,
    ) -> list[ScheduledReducerCall]:
        """Known schedules in creation order, optionally only those with ``status`` and/or
        for ``reducer_name``."""
        wanted: ScheduleStatus | None = None
        if status is not None:
            try:
                wanted = ScheduleStatus(status)
            except ValueError:
                known = ", ".join(repr(s.value) for s in ScheduleStatus)
                raise InvalidScheduleError(
                    f"list_schedules: status must be a ScheduleStatus or one of {known}, "
                    f"got {status!r:.80}"
                ) from None
        if reducer_name is not None and type(reducer_name) is not str:
            raise InvalidScheduleError(
                f"list_schedules: reducer_name must be a str, got {type(reducer_name).__name__}"
            )
        return [
            s
            for s in self._schedules.values()
            if (wanted is None or s.status is wanted)
            and (reducer_name is None or s.reducer_name == reducer_name)
        ]

    def cancel_schedule(self, schedule_id: str) -> bool:
        """Stop a schedule for good. An execution already running finishes. Returns False if
        it had already finished (completed, failed or cancelled)."""
        s = self.get_schedule(schedule_id)
        if s.status in _FINISHED:
            return False
        self._queue.cancel(s)
        s.status = _CANCELLED
        s.next_micros = None
        s.buffered = None
        self._book.finish(s)
        self._book.wake_waiters(s.id)
        return True

    def pause(self, schedule_id: str) -> None:
        """Stop firing until :meth:`resume`. A running execution finishes; fires that were
        buffered behind it are dropped."""
        s = self.get_schedule(schedule_id)
        if s.status is _PAUSED:
            return
        if s.status in _FINISHED:
            raise InvalidScheduleError(
                f"cannot pause schedule {schedule_id!r}: it is {s.status.value}"
            )
        self._queue.cancel(s)
        s.status = _PAUSED
        s.buffered = None
        if self._persistence is not None:
            self._persistence.mark_dirty(s)

    def resume(self, schedule_id: str) -> None:
        """Undo :meth:`pause`. Fire times of a repeating schedule missed while paused are
        skipped (it continues with its next fire after now); a one-shot whose time passed
        while paused fires at once (subject to its misfire grace time)."""
        s = self.get_schedule(schedule_id)
        if s.status is not _PAUSED:
            raise InvalidScheduleError(
                f"cannot resume schedule {schedule_id!r}: it is {s.status.value}, not paused"
            )
        s.status = _RUNNING if s.running else _PENDING
        now = self._clock.now_micros()
        nxt = s.next_micros
        if nxt is not None and nxt < now:
            later = next_after(s.schedule, s.created_micros, now)
            if later is not None:
                nxt = later
        s.next_micros = nxt
        self._queue.push(s, nxt)
        if self._persistence is not None:
            self._persistence.mark_dirty(s)

    def reschedule(self, schedule_id: str, schedule: ScheduleSpec) -> None:
        """Give a schedule a new ScheduleAt or trigger (an interval counts from now). A
        completed or failed schedule becomes pending again; a paused one stays paused."""
        s = self.get_schedule(schedule_id)
        if s.status is _CANCELLED:
            raise InvalidScheduleError(f"cannot reschedule {schedule_id!r}: it was cancelled")
        now = self._clock.now_micros()
        new, first = prepare(schedule, now)
        self._queue.cancel(s)
        s.schedule = new
        s.created_micros = now
        s.next_micros = first
        if s.status in _FINISHED:
            s.status = _RUNNING if s.running else _PENDING
        if s.status is not _PAUSED:
            self._queue.push(s, first)
        if self._persistence is not None:
            self._persistence.mark_dirty(s)

    def trigger_now(self, schedule_id: str) -> None:
        """Start one extra execution of the schedule now (also while paused), without changing
        its next fire time. The overlap policy applies. The scheduler must be running."""
        s = self.get_schedule(schedule_id)
        if s.status is _CANCELLED:
            raise InvalidScheduleError(f"cannot trigger {schedule_id!r}: it was cancelled")
        if self._tg is None or self._state != _RUNNING_STATE:
            raise SchedulerClosedError(
                f"cannot trigger {schedule_id!r}: the scheduler is not running"
            )
        assert self._executor is not None
        self._tg.start_soon(self._executor.trigger, s)

    def remove_finished(self) -> int:
        """Forget every finished (completed, failed, cancelled) schedule; returns how many."""
        return self._book.forget_finished()

    def get_next_execution_time(self) -> Timestamp | None:
        """The earliest upcoming fire time of any schedule, or None."""
        key = self._queue.peek_key()
        return None if key is None else Timestamp._unchecked(key)

    def get_execution_stats(self) -> dict[str, Any]:
        """A snapshot of execution figures: ``total_executions``, ``successful_executions``,
        ``failed_executions``, ``missed_executions``, ``interrupted_executions`` (fires whose
        instance died running them, reported instead of re-run), ``skipped_executions``,
        ``retried_executions``, ``success_rate``, ``average_duration`` (TimeDuration),
        ``lateness_p50``/``lateness_p99``/``lateness_max`` (of recent fires), ``per_reducer``
        (the same figures by reducer name), ``pending_schedules`` and ``running_executions``."""
        snapshot = self._book.stats.snapshot()
        snapshot["pending_schedules"] = sum(
            1 for s in self._schedules.values() if s.status is _PENDING
        )
        snapshot["running_executions"] = self._book.active
        return snapshot

    def add_execution_callback(self, callback: ResultCallback) -> None:
        """Call ``callback(result)`` (a :class:`ScheduleResult`) after every execution attempt.
        Sync or async; a callback that raises is logged and does not affect the scheduler."""
        if not callable(callback):
            raise InvalidScheduleError(
                f"add_execution_callback: expected a callable, got {type(callback).__name__}"
            )
        self._book.execution_callbacks.append(callback)

    def add_error_callback(self, callback: ErrorCallback) -> None:
        """Call ``on_error(schedule_id, error)`` after every failed attempt and every missed
        fire (``error`` is the exception; for a missed fire a :class:`SchedulerError`).

        Sync or async; a callback that raises is logged and ignored. A callback taking a single
        argument gets the whole :class:`ScheduleResult` instead (attempt, lateness, ``missed``).
        """
        if not callable(callback):
            raise InvalidScheduleError(
                f"add_error_callback: expected a callable, got {type(callback).__name__}"
            )
        self._book.error_callbacks.append((callback, takes_result_only(callback)))

    def __len__(self) -> int:
        return len(self._schedules)

    def __contains__(self, schedule_id: object) -> bool:
        return schedule_id in self._schedules

    # --- test helpers -------------------------------------------------------------------------

    async def wait_for(self, schedule_id: str) -> ScheduleResult | None:
        """Wait for the end of the schedule's next execution (including its retries) and
        return its last result; return at once if it has finished for good."""
        s = self.get_schedule(schedule_id)
        if (s.status in _FINISHED and not s.running) or self._state == _CLOSED:
            return s.last_result
        event = anyio.Event()
        self._book.waiters.setdefault(schedule_id, []).append(event)
        await event.wait()
        return s.last_result

    async def wait_idle(self) -> None:
        """Wait until no execution is running and no fire is due now."""
        while self._book.active or self._due_now():
            if self._state == _CLOSED:
                return
            await self._book.wait_progress()

    # --- internals: schedules and the queue ----------------------------------------------------

    def _policy(self, options: dict[str, Any]) -> SchedulePolicy:
        try:
            key: Any = tuple(sorted(options.items()))
            hash(key)
        except TypeError:
            key = None
        if key is not None:
            cached = self._policy_cache.get(key)
            if cached is not None:
                return cached
        try:
            pol = attrs.evolve(self._default_policy, **options)
        except TypeError:
            known = ", ".join(a.name for a in attrs.fields(SchedulePolicy))
            unknown = ", ".join(
                sorted(set(options) - {a.name for a in attrs.fields(SchedulePolicy)})
            )
            raise InvalidScheduleError(
                f"unknown schedule option(s) {unknown}; policy options are: {known}"
            ) from None
        if key is not None and len(self._policy_cache) < 1024:
            self._policy_cache[key] = pol
        return pol

    def _wake_timer(self, key: int) -> None:
        """A fire was queued at ``key``: cut the timer's sleep short if it sleeps past it."""
        scope = self._sleep_scope
        if scope is not None and (self._sleep_deadline is None or key < self._sleep_deadline):
            self._sleep_deadline = key
            scope.cancel()

    def _due_now(self) -> bool:
        nxt = self._queue.peek_key()
        return nxt is not None and nxt <= self._clock.now_micros()

    def _freeze(self) -> None:
        """Move the objects of schedules added in bulk out of the cyclic collector's sight.

        Schedules are long-lived and hold no reference cycles, yet every full collection walks
        all of them (about half a second at a million): one landing in a burst of adds stalls
        it. :func:`gc.freeze` parks every object tracked so far in the permanent generation,
        in O(1); frozen objects are still freed by reference counting when dropped. It runs
        only while the number of schedules climbs to new highs (so a logarithmic number of
        times for a bulk load), never for small schedulers.
        """
        size = len(self._schedules)
        self._freeze_mark = size + max(_FREEZE_AFTER, size // 64)
        gc.freeze()

    # --- internals: the timer -----------------------------------------------------------------

    async def _timer_loop(self) -> None:
        clock = self._clock
        queue = self._queue
        executor = self._executor
        tg = self._tg
        assert executor is not None
        assert tg is not None
        with anyio.CancelScope() as self._timer_scope:
            self._last_offset = clock.now_micros() - clock.monotonic_micros()
            while True:
                now = clock.now_micros()
                offset = now - clock.monotonic_micros()
                if abs(offset - self._last_offset) > CLOCK_JUMP_TOLERANCE_MICROS:
                    self._book.on_clock_jump(offset - self._last_offset, now)
                self._last_offset = offset
                first = queue.first_key()
                if first is not None and first <= now:
                    await executor.dispatch_due(now, tg)
                    continue
                deadline = queue.peek_key()
                self._book.signal_progress()
                with anyio.CancelScope() as scope:
                    self._sleep_scope = scope
                    self._sleep_deadline = deadline
                    try:
                        await clock.sleep_toward(deadline)
                    finally:
                        self._sleep_scope = None

    def __repr__(self) -> str:
        return (
            f"<ReducerScheduler {self._state} schedules={len(self._schedules)} "
            f"running={self._book.active} max_concurrent={self._max_concurrent}>"
        )
