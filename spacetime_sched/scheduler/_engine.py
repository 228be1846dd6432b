"""The engine: :class:`ReducerScheduler`, a structured-concurrency scheduler for reducer calls.

How it works, in one paragraph. Pending schedules live in a binary heap keyed by their next fire
time (µs). One *timer* task sleeps until the earliest key; changes that make an earlier key
cancel that sleep (a cancel scope, no per-change allocation). When fires are due the timer
takes a slot of a :class:`anyio.CapacityLimiter` *before* popping each one, so the limiter (not a
queue scan) bounds how many executions run, and the heap itself is the backlog. Each admitted
fire runs as its own task in the scheduler's task group. Entries are never removed from the
middle of the heap: cancel, pause and reschedule leave the old entry behind, and the timer drops
an entry whose key no longer matches its schedule's ``next_micros`` (lazy deletion), compacting
the heap when more than half of it is stale. Every operation is O(log n).

The next fire of a repeating schedule is planned *before* its execution starts, from its intended
fire time, so execution time never shifts the cadence; ticks missed while the scheduler was late
are coalesced per policy instead of replayed in a burst.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import heapq
import inspect
import logging
import random as _random
import secrets
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from .._callbacks import call_callback_logged
from .._errors import (
    InvalidScheduleError,
    ScheduleNotFoundError,
    SchedulerClosedError,
    SchedulerError,
)
from .._time import ScheduleAt, TimeDuration, Timestamp
from ._clock import Clock, SystemClock
from ._models import (
    DEFAULT_POLICY,
    CoalescePolicy,
    DurationLike,
    OverlapPolicy,
    ScheduledReducerCall,
    SchedulePolicy,
    ScheduleResult,
    ScheduleStatus,
    to_duration,
)
from ._stats import ExecutionStats
from ._triggers import (
    CronTrigger,
    DailyTrigger,
    IntervalTrigger,
    TimezoneLike,
    Trigger,
    trigger_from_dict,
    trigger_from_schedule_at,
)

if TYPE_CHECKING:
    from ._stores import ScheduleStore, StoredSchedule

__all__ = ["ErrorCallback", "ReducerScheduler", "ReducerTarget", "ResultCallback"]

logger: Final = logging.getLogger("spacetime_sched.scheduler")

_ScheduleAtTime: Final = ScheduleAt.Time
_ScheduleAtInterval: Final = ScheduleAt.Interval
_PENDING: Final = ScheduleStatus.PENDING
_RUNNING: Final = ScheduleStatus.RUNNING
_PAUSED: Final = ScheduleStatus.PAUSED
_CANCELLED: Final = ScheduleStatus.CANCELLED
_ALL: Final = CoalescePolicy.ALL
_ALLOW_ALL: Final = OverlapPolicy.ALLOW_ALL
_FINISHED: Final = frozenset({ScheduleStatus.COMPLETED, ScheduleStatus.FAILED, _CANCELLED})

#: A change of (wall - monotonic) larger than this between two timer wake-ups is a clock step.
CLOCK_JUMP_TOLERANCE_MICROS: Final = 250_000
#: A step of the wall clock back by more than this (3 h, as in Vixie cron) is a time reset.
VIXIE_RESET_MICROS: Final = 3 * 3600 * 1_000_000
#: An execution task taking backlogged fires yields to other tasks after this many.
_WORKER_YIELD_EVERY: Final = 16
#: How many missed ticks of a trigger are stepped through to find the latest one.
_MAX_COALESCE_STEPS: Final = 1024

_NEW, _RUNNING_STATE, _STOPPING, _CLOSED = "new", "running", "stopping", "closed"


class _Slot:
    """A limiter borrower: one execution task's claim on a CapacityLimiter token."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held = True


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


def _takes_result_only(callback: Callable[..., Any]) -> bool:
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


class _ClaimRequest:
    """One execution waiting for the claimer's answer about its fire."""

    __slots__ = ("error", "event", "fire", "schedule_id", "won")

    def __init__(self, schedule_id: str, fire: int) -> None:
        self.schedule_id = schedule_id
        self.fire = fire
        self.event = anyio.Event()
        self.won = False
        self.error: Exception | None = None


def _follows_wall_clock(schedule: object) -> bool:
    """Whether a trigger is a wildcard cron (``*`` in its minute or hour field)."""
    return type(schedule) is CronTrigger and not schedule.fixed_time


class _ReducerClient(Protocol):
    async def call_reducer_async(
        self,
        reducer_name: str,
        *args: Any,
        timeout: Any = ...,  # noqa: ASYNC109
    ) -> Any: ...


#: A client with ``call_reducer_async``, or ``async def target(reducer_name, *args)``.
ReducerTarget: TypeAlias = "_ReducerClient | Callable[..., Awaitable[Any]]"
#: An execution callback: ``cb(result)``, sync or async.
ResultCallback: TypeAlias = "Callable[[ScheduleResult], Any]"
#: An error callback: ``on_error(schedule_id, error)`` (or ``on_error(result)``), sync or async.
ErrorCallback: TypeAlias = "Callable[[str, BaseException], Any] | Callable[[ScheduleResult], Any]"
ScheduleSpec: TypeAlias = (
    "ScheduleAt | Trigger | Timestamp | _dt.datetime | TimeDuration | _dt.timedelta"
)


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
            raise ValueError(
                "ReducerScheduler: max_concurrent_executions must be an int >= 1, "
                f"got {max_concurrent_executions!r}"
            )
        self._max_concurrent = max_concurrent_executions
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._store = store
        self._shutdown_timeout = to_duration(shutdown_timeout, "shutdown_timeout").micros / 1e6
        self._default_policy = default_policy if default_policy is not None else DEFAULT_POLICY
        self._finished_retention = finished_retention
        self._instance_id = instance_id or f"scheduler-{secrets.token_hex(6)}"
        self._random = random if random is not None else _random.Random()

        self._schedules: dict[str, ScheduledReducerCall] = {}
        # (key, id, schedule) or, for jittered fires, (key, id, schedule, intended fire): the id
        # (a str the schedule holds anyway) breaks ties in C and in creation order; see _push
        self._heap: list[tuple[Any, ...]] = []
        self._stale = 0
        self._finished: collections.deque[str] = collections.deque()
        self._id_prefix = secrets.token_hex(3)
        self._id_counter = 0
        self._policy_cache: dict[Any, SchedulePolicy] = {}
        self._stats = ExecutionStats()
        self._execution_callbacks: list[ResultCallback] = []
        # (callback, takes_result): see add_error_callback
        self._error_callbacks: list[tuple[ErrorCallback, bool]] = []
        self._waiters: dict[str, list[anyio.Event]] = {}

        self._state = _NEW
        self._tg: anyio.abc.TaskGroup | None = None
        self._host_tg: anyio.abc.TaskGroup | None = None
        self._lent_tg: anyio.abc.TaskGroup | None = None
        self._starting = False
        self._run_done: anyio.Event | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._stop_event: anyio.Event | None = None
        self._progress: anyio.Event | None = None
        self._timer_scope: anyio.CancelScope | None = None
        self._sleep_scope: anyio.CancelScope | None = None
        self._sleep_deadline: int | None = None
        self._last_offset = 0
        self._active = 0
        self._dirty: dict[str, ScheduledReducerCall | None] = {}
        self._dirty_event: anyio.Event | None = None
        self._claim_queue: list[_ClaimRequest] | None = None  # a list while claims are batched
        self._claim_event: anyio.Event | None = None

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
        self._limiter = anyio.CapacityLimiter(self._max_concurrent)
        try:
            if self._store is not None:
                await self._load_from_store(self._store)
            async with anyio.create_task_group() as outer:
                if self._store is not None:
                    outer.start_soon(self._store_writer, self._store)
                    if getattr(self._store, "claim_fires", None) is not None:
                        self._claim_queue = []
                        outer.start_soon(self._claimer, self._store)
                try:
                    async with anyio.create_task_group() as tg:
                        self._tg = tg
                        tg.start_soon(self._timer_loop)
                        task_status.started()
                        await self._stop_event.wait()
                        self._state = _STOPPING
                        if self._timer_scope is not None:
                            self._timer_scope.cancel()
                        with anyio.move_on_after(self._shutdown_timeout):
                            while self._active:
                                await self._wait_progress()
                        tg.cancel_scope.cancel()
                finally:
                    if self._store is not None:
                        with anyio.CancelScope(shield=True):
                            with anyio.move_on_after(self._shutdown_timeout):
                                await self._flush_store(self._store)
                    outer.cancel_scope.cancel()
        finally:
            self._state = _CLOSED
            self._tg = None
            self._signal_progress()
            for waiters in self._waiters.values():
                for event in waiters:
                    event.set()
            self._waiters.clear()
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
        ``jitter``).
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
        pol = self._policy(policy) if policy else self._default_policy
        now = self._clock.now_micros()
        schedule, first = self._prepare(schedule, now)
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
                self._invalidate(old)
                old.status = _CANCELLED
        s = ScheduledReducerCall(
            schedule_id, reducer_name, args, schedule, metadata, pol, now, first
        )
        self._schedules[schedule_id] = s
        self._push(s, first)
        if self._store is not None:
            self._mark_dirty(s)
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
        wanted = None if status is None else ScheduleStatus(status)
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
        self._invalidate(s)
        s.status = _CANCELLED
        s.next_micros = None
        s.buffered = None
        self._finish(s)
        self._wake_waiters(s.id)
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
        self._invalidate(s)
        s.status = _PAUSED
        s.buffered = None
        if self._store is not None:
            self._mark_dirty(s)

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
            later = self._next_after(s, now)
            if later is not None:
                nxt = later
        s.next_micros = nxt
        self._push(s, nxt)
        if self._store is not None:
            self._mark_dirty(s)

    def reschedule(self, schedule_id: str, schedule: ScheduleSpec) -> None:
        """Give a schedule a new ScheduleAt or trigger (an interval counts from now). A
        completed or failed schedule becomes pending again; a paused one stays paused."""
        s = self.get_schedule(schedule_id)
        if s.status is _CANCELLED:
            raise InvalidScheduleError(f"cannot reschedule {schedule_id!r}: it was cancelled")
        now = self._clock.now_micros()
        new, first = self._prepare(schedule, now)
        self._invalidate(s)
        s.schedule = new
        s.created_micros = now
        s.next_micros = first
        if s.status in _FINISHED:
            s.status = _RUNNING if s.running else _PENDING
        if s.status is not _PAUSED:
            self._push(s, first)
        if self._store is not None:
            self._mark_dirty(s)

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
        self._tg.start_soon(self._trigger_task, s)

    def remove_finished(self) -> int:
        """Forget every finished (completed, failed, cancelled) schedule; returns how many."""
        gone = [sid for sid, s in self._schedules.items() if s.status in _FINISHED]
        for sid in gone:
            del self._schedules[sid]
        self._finished.clear()
        return len(gone)

    def get_next_execution_time(self) -> Timestamp | None:
        """The earliest upcoming fire time of any schedule, or None."""
        heap = self._heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)
            self._stale = max(0, self._stale - 1)
        return Timestamp._unchecked(heap[0][0]) if heap else None

    def get_execution_stats(self) -> dict[str, Any]:
        """A snapshot of execution figures: ``total_executions``, ``successful_executions``,
        ``failed_executions``, ``missed_executions``, ``skipped_executions``,
        ``retried_executions``, ``success_rate``, ``average_duration`` (TimeDuration),
        ``lateness_p50``/``lateness_p99``/``lateness_max`` (of recent fires), ``per_reducer``
        (the same figures by reducer name), ``pending_schedules`` and ``running_executions``."""
        snapshot = self._stats.snapshot()
        snapshot["pending_schedules"] = sum(
            1 for s in self._schedules.values() if s.status is _PENDING
        )
        snapshot["running_executions"] = self._active
        return snapshot

    def add_execution_callback(self, callback: ResultCallback) -> None:
        """Call ``callback(result)`` (a :class:`ScheduleResult`) after every execution attempt.
        Sync or async; a callback that raises is logged and does not affect the scheduler."""
        if not callable(callback):
            raise InvalidScheduleError(
                f"add_execution_callback: expected a callable, got {type(callback).__name__}"
            )
        self._execution_callbacks.append(callback)

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
        self._error_callbacks.append((callback, _takes_result_only(callback)))

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
        self._waiters.setdefault(schedule_id, []).append(event)
        await event.wait()
        return s.last_result

    async def wait_idle(self) -> None:
        """Wait until no execution is running and no fire is due now."""
        while self._active or self._due_now():
            if self._state == _CLOSED:
                return
            await self._wait_progress()

    # --- internals: schedules and the heap ----------------------------------------------------

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

    def _prepare(self, schedule: object, now: int) -> tuple[ScheduleAt | Trigger, int | None]:
        """Validate ``schedule`` and return it (triggers bound to ``now``) and its first fire."""
        if isinstance(schedule, _ScheduleAtTime):
            return schedule, schedule.value.micros_since_epoch
        if isinstance(schedule, _ScheduleAtInterval):
            every = abs(schedule.value.micros)
            if every == 0:
                raise InvalidScheduleError("ScheduleAt.Interval: the interval must not be zero")
            return schedule, now + every
        if isinstance(schedule, (Timestamp, _dt.datetime, TimeDuration, _dt.timedelta)):
            return self._prepare(ScheduleAt.coerce(schedule), now)
        if hasattr(schedule, "next_fire") and hasattr(schedule, "initial_fire"):
            trigger: Trigger = schedule.bind(Timestamp._unchecked(now))  # type: ignore[attr-defined]
            first = trigger.initial_fire(Timestamp._unchecked(now))
            if first is None:
                raise InvalidScheduleError(f"trigger {trigger.describe()!r} never fires")
            return trigger, first.micros_since_epoch
        raise InvalidScheduleError(
            "schedule: expected a ScheduleAt, a trigger, a Timestamp/datetime or a "
            f"TimeDuration/timedelta, got {type(schedule).__name__} {schedule!r}"
        )

    def _next_after(self, s: ScheduledReducerCall, after: int) -> int | None:
        """The schedule's first fire time strictly after ``after`` (µs), or None."""
        schedule = s.schedule
        if isinstance(schedule, _ScheduleAtTime):
            return None
        anchor: int
        if isinstance(schedule, _ScheduleAtInterval):
            every = abs(schedule.value.micros)
            anchor = s.created_micros
        elif type(schedule) is IntervalTrigger and schedule.start is None and schedule.end is None:
            # the same grid arithmetic, without building Timestamps (the hot path of intervals)
            assert schedule.anchor is not None  # bound at creation
            every = abs(schedule.every.micros)
            anchor = schedule.anchor.micros_since_epoch
        else:
            nxt = schedule.next_fire(Timestamp._unchecked(after))  # type: ignore[union-attr]
            return None if nxt is None else nxt.micros_since_epoch
        k = (after - anchor) // every + 1
        return anchor + (k if k > 1 else 1) * every

    def _latest_due(self, s: ScheduledReducerCall, fire: int, now: int) -> int:
        """The latest fire time of ``s`` in ``fire..now`` (``fire`` is one)."""
        schedule = s.schedule
        if type(schedule) is _ScheduleAtInterval:
            every = abs(schedule.value.micros)
            anchor = s.created_micros
            return max(fire, anchor + (now - anchor) // every * every)
        if type(schedule) is IntervalTrigger and schedule.start is None and schedule.end is None:
            assert schedule.anchor is not None  # bound at creation
            every = abs(schedule.every.micros)
            anchor = schedule.anchor.micros_since_epoch
            return max(fire, anchor + (now - anchor) // every * every)
        latest = fire
        for _ in range(_MAX_COALESCE_STEPS):
            nxt = self._next_after(s, latest)
            if nxt is None or nxt > now:
                break
            latest = nxt
        return latest

    def _push(self, s: ScheduledReducerCall, fire: int | None) -> None:
        if fire is None:
            return
        jitter = s.policy.jitter
        if jitter is None or not jitter.micros:
            key = fire
            heapq.heappush(self._heap, (fire, s.id, s))
        else:
            # A random delay up to `jitter`, but never reaching the following fire time.
            delay = self._random.randrange(jitter.micros + 1)
            following = self._next_after(s, fire)
            if following is not None:
                delay = min(delay, max(0, following - fire - 1))
            key = fire + delay
            heapq.heappush(self._heap, (key, s.id, s, fire))
        scope = self._sleep_scope
        if scope is not None and (self._sleep_deadline is None or key < self._sleep_deadline):
            self._sleep_deadline = key
            scope.cancel()

    def _valid(self, entry: tuple[Any, ...]) -> bool:
        s = entry[2]
        fire = entry[3] if len(entry) == 4 else entry[0]
        return fire == s.next_micros and (s.status is _PENDING or s.status is _RUNNING)

    def _invalidate(self, s: ScheduledReducerCall) -> None:
        """Note that ``s``'s heap entry (if any) is stale from now on; compact when needed."""
        if s.next_micros is not None and (s.status is _PENDING or s.status is _RUNNING):
            self._stale += 1
            if self._stale > 1024 and self._stale * 2 > len(self._heap):
                self._compact()

    def _compact(self) -> None:
        heap = [entry for entry in self._heap if self._valid(entry)]
        heapq.heapify(heap)
        self._heap = heap
        self._stale = 0

    def _due_now(self) -> bool:
        nxt = self.get_next_execution_time()
        return nxt is not None and nxt.micros_since_epoch <= self._clock.now_micros()

    def _finish(self, s: ScheduledReducerCall) -> None:
        """``s`` reached a final status: drop it from the store, bound the finished list."""
        if self._store is not None:
            self._mark_deleted(s.id)
        retention = self._finished_retention
        if retention is None:
            return
        finished = self._finished
        finished.append(s.id)
        while len(finished) > retention:
            old_id = finished.popleft()
            old = self._schedules.get(old_id)
            if old is not None and old.status in _FINISHED and not old.running:
                del self._schedules[old_id]

    # --- internals: the timer -----------------------------------------------------------------

    async def _timer_loop(self) -> None:
        clock = self._clock
        heap = self._heap
        with anyio.CancelScope() as self._timer_scope:
            self._last_offset = clock.now_micros() - clock.monotonic_micros()
            while True:
                now = clock.now_micros()
                offset = now - clock.monotonic_micros()
                if abs(offset - self._last_offset) > CLOCK_JUMP_TOLERANCE_MICROS:
                    self._on_clock_jump(offset - self._last_offset, now)
                self._last_offset = offset
                heap = self._heap  # _compact/_on_clock_jump may have replaced it
                if heap and heap[0][0] <= now:
                    await self._dispatch_due(now)
                    continue
                deadline = heap[0][0] if heap else None
                self._signal_progress()
                with anyio.CancelScope() as scope:
                    self._sleep_scope = scope
                    self._sleep_deadline = deadline
                    try:
                        await clock.sleep_toward(deadline)
                    finally:
                        self._sleep_scope = None

    async def _dispatch_due(self, now: int) -> None:
        """Start every fire due at ``now``, taking one limiter slot before each pop."""
        limiter = self._limiter
        tg = self._tg
        assert limiter is not None
        assert tg is not None
        clock = self._clock
        slot: _Slot | None = None
        try:
            while True:
                heap = self._heap
                if not heap or heap[0][0] > now:
                    break
                if slot is None:
                    candidate = _Slot()
                    try:
                        limiter.acquire_on_behalf_of_nowait(candidate)
                    except anyio.WouldBlock:
                        await limiter.acquire_on_behalf_of(candidate)
                        slot = candidate
                        now = clock.now_micros()
                        continue
                    slot = candidate
                taken = self._take_due(now)
                if taken is None:
                    break
                tg.start_soon(self._worker, taken[0], taken[1], slot)
                slot = None
                # Let the new worker start before spawning another: it takes further due fires
                # itself when its call returns quickly, so a burst of quick calls needs a few
                # tasks, not one per fire; slow calls still fan out, one task per loop turn.
                await anyio.lowlevel.checkpoint()
                now = clock.now_micros()
        finally:
            if slot is not None:
                limiter.release_on_behalf_of(slot)

    def _take_due(self, now: int) -> tuple[ScheduledReducerCall, int] | None:
        """Pop fires due at ``now`` until one is admitted to run; return it (schedule, fire)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            s = entry[2]
            fire = entry[3] if len(entry) == 4 else entry[0]
            if fire != s.next_micros or (s.status is not _PENDING and s.status is not _RUNNING):
                if self._stale:
                    self._stale -= 1
                continue
            admitted = self._commit(s, entry[0], fire, now)
            if admitted is not None:
                return s, admitted
        return None

    def _commit(self, s: ScheduledReducerCall, key: int, fire: int, now: int) -> int | None:
        """Plan ``s``'s next fire, then admit this one if the policies allow: returns the fire
        time to run (after coalescing), or None."""
        policy = s.policy
        if s.running and policy.coalesce is _ALL and policy.overlap is not _ALLOW_ALL:
            # Buffer-all: this fire waits for the running execution and is re-queued by it.
            s.buffered = fire
            return None
        # Plan the next fire first, from the intended fire time: no drift by execution time.
        nxt = self._next_after(s, fire)
        if nxt is not None and nxt <= now:  # ticks were missed: coalesce
            coalesce = policy.coalesce
            if coalesce is CoalescePolicy.ALL:
                grace = policy.misfire_grace_time
                if grace is not None and nxt < now - grace.micros:
                    nxt = self._next_after(s, now - grace.micros - 1)
            else:
                if coalesce is CoalescePolicy.LATEST:
                    fire = self._latest_due(s, fire, now)
                    key = max(key, fire)
                nxt = self._next_after(s, now)
        s.next_micros = nxt
        self._push(s, nxt)

        grace = policy.misfire_grace_time
        if grace is not None and now - key > grace.micros:
            self._missed(s, fire, now)
            return None
        if not self._admit(s, fire):
            return None
        return fire

    def _admit(self, s: ScheduledReducerCall, fire: int) -> bool:
        """Apply the overlap policy; True if an execution of ``s`` may start now."""
        if s.running:
            overlap = s.policy.overlap
            if overlap is OverlapPolicy.SKIP:
                self._stats.skipped += 1
                return False
            if overlap is OverlapPolicy.BUFFER_ONE:
                if s.buffered is None:
                    s.buffered = fire
                else:
                    self._stats.skipped += 1
                return False
        s.running += 1
        s.run_count += 1
        if s.status is _PENDING:
            s.status = _RUNNING
        self._active += 1
        return True

    def _missed(self, s: ScheduledReducerCall, fire: int, now: int) -> None:
        self._stats.missed += 1
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
            self._finish(s)
        elif self._store is not None:
            self._mark_dirty(s)
        if self._error_callbacks and self._tg is not None:
            self._tg.start_soon(self._run_error_callbacks, result)
        self._wake_waiters(s.id)

    def _on_clock_jump(self, delta: int, now: int) -> None:
        """The wall clock was stepped by ``delta`` µs (``now`` is the new wall time).

        * Intervals measure elapsed time, so their grids move with the clock: no stall after a
          step back, no burst after a step forward.
        * Wall-clock triggers keep their wall times, following Vixie cron: after a step back
          (of up to 3 hours) fixed-time schedules (daily, fixed cron, one-shots) are not run
          again, while wildcard cron schedules (``*`` in the minute or hour) follow the new
          clock. A step back of more than 3 hours is a reset: every wall-clock trigger plans
          its next fire from the new time. What a step forward skipped over is handled by the
          misfire grace time and coalescing (at most one run per schedule by default).
        """
        logger.warning(
            "the wall clock jumped by %s; interval schedules re-anchored",
            TimeDuration._unchecked(delta),
        )
        reset = delta < -VIXIE_RESET_MICROS
        for s in self._schedules.values():
            nxt = s.next_micros
            if nxt is None or s.status in _FINISHED:
                continue
            schedule = s.schedule
            if type(schedule) is _ScheduleAtInterval:
                s.created_micros += delta
                s.next_micros = nxt + delta
            elif type(schedule) is IntervalTrigger and schedule.anchor is not None:
                anchor = Timestamp._unchecked(schedule.anchor.micros_since_epoch + delta)
                s.schedule = attrs.evolve(schedule, anchor=anchor)
                s.next_micros = nxt + delta
            elif delta < 0 and (reset or _follows_wall_clock(schedule)):
                replanned = self._next_after(s, now)
                if replanned is not None and replanned < nxt:
                    s.next_micros = replanned
                else:
                    continue
            else:
                continue
            if self._store is not None:
                self._mark_dirty(s)
        self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        heap = []
        for s in self._schedules.values():
            if s.next_micros is not None and (s.status is _PENDING or s.status is _RUNNING):
                heap.append((s.next_micros, s.id, s))
        heapq.heapify(heap)
        self._heap = heap
        self._stale = 0

    # --- internals: executions ----------------------------------------------------------------

    async def _trigger_task(self, s: ScheduledReducerCall) -> None:
        limiter = self._limiter
        assert limiter is not None
        slot = _Slot()
        await limiter.acquire_on_behalf_of(slot)
        now = self._clock.now_micros()
        if s.status is _CANCELLED or not self._admit(s, now):
            limiter.release_on_behalf_of(slot)
            return
        await self._worker(s, now, slot)

    async def _worker(self, s: ScheduledReducerCall, fire: int, slot: _Slot) -> None:
        """An execution task: run the admitted fire, then, while fires are backlogged, take the
        next due one instead of exiting (it already holds a limiter slot; this saves spawning
        a task per fire under load). Releases the slot when done."""
        limiter = self._limiter
        assert limiter is not None
        try:
            ran = 0
            while True:
                await self._execute(s, fire, slot)
                if self._state != _RUNNING_STATE or not slot.held:
                    break
                heap = self._heap
                if not heap or heap[0][0] > self._clock.now_micros():
                    break
                ran += 1
                if ran % _WORKER_YIELD_EVERY == 0:
                    await anyio.lowlevel.checkpoint()  # fairness with a target that never yields
                taken = self._take_due(self._clock.now_micros())
                if taken is None:
                    break
                s, fire = taken
        finally:
            if slot.held:
                slot.held = False
                limiter.release_on_behalf_of(slot)

    async def _execute(self, s: ScheduledReducerCall, fire: int, slot: _Slot) -> None:
        """Run one admitted fire of ``s`` (with retries, then any buffered fire). Holds the
        limiter ``slot`` while calling the target, not while backing off."""
        limiter = self._limiter
        assert limiter is not None
        clock = self._clock
        stats = self._stats
        policy = s.policy
        interrupted = False
        try:
            while True:
                claimed = True
                if self._store is not None:
                    claimed = await self._claim(s, fire)
                attempt = 1
                while claimed:
                    started = clock.now_micros()
                    if attempt == 1:
                        stats.record_lateness(started - fire)
                    t0 = clock.monotonic_micros()
                    error: Exception | None = None
                    value: Any = None
                    try:
                        timeout = policy.timeout
                        if timeout is None:
                            value = await self._call(s.reducer_name, *s.args)
                        else:
                            seconds = timeout.micros / 1e6
                            with anyio.fail_after(seconds):
                                if self._target_is_client:
                                    value = await self._call(
                                        s.reducer_name, *s.args, timeout=seconds
                                    )
                                else:
                                    value = await self._call(s.reducer_name, *s.args)
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
                    if self._execution_callbacks:
                        await self._run_callbacks(result)
                    if not ok and self._error_callbacks:
                        await self._run_error_callbacks(result)
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
                buffered = s.buffered
                if (
                    buffered is None
                    or policy.coalesce is _ALL  # deferred fires go back to the heap (finally)
                    or s.status is _CANCELLED
                    or s.status is _PAUSED
                ):
                    break
                s.buffered = None
                s.run_count += 1
                fire = buffered
                self._wake_waiters(s.id)
        except anyio.get_cancelled_exc_class():
            interrupted = True
            # The scheduler stopped while this ran. Record it: the fire is not run again (with
            # a store it was claimed: at most once, never twice).
            now = clock.now_micros()
            s.last_result = ScheduleResult(
                s.id,
                s.reducer_name,
                fire,
                now,
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
            s.running -= 1
            self._active -= 1
            if not s.running:
                deferred, s.buffered = s.buffered, None
                if (
                    deferred is not None
                    and not interrupted
                    and policy.coalesce is _ALL
                    and deferred == s.next_micros
                    and (s.status is _RUNNING or s.status is _PENDING)
                ):
                    self._push(s, deferred)
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
                        self._finish(s)
            if self._store is not None and s.status not in _FINISHED:
                self._mark_dirty(s)
            self._wake_waiters(s.id)
            if not self._active:
                self._signal_progress()

    async def _claim(self, s: ScheduledReducerCall, fire: int) -> bool:
        """Claim the fire in the shared store; False if another instance has it or the store
        failed (then the fire is recorded as a failure and not run: never run twice).

        With a store that has ``claim_fires``, concurrent claims go out together: a claimer
        task sends everything queued since its last round trip in one call (one transaction
        and one worker-thread hop for SQLite, instead of one per fire)."""
        store = self._store
        assert store is not None
        try:
            if self._claim_queue is not None:
                request = _ClaimRequest(s.id, fire)
                self._claim_queue.append(request)
                if self._claim_event is not None:
                    self._claim_event.set()
                await request.event.wait()
                if request.error is not None:
                    raise request.error
                won = request.won
            else:
                won = await store.claim_fire(s.id, Timestamp._unchecked(fire), self._instance_id)
        except Exception as exc:
            logger.error("schedule %r: claiming fire %s failed: %r", s.id, fire, exc)
            now = self._clock.now_micros()
            result = ScheduleResult(s.id, s.reducer_name, fire, now, 0, False, exc, 1)
            s.last_result = result
            self._stats.record_execution(s.reducer_name, False, 0)
            if self._error_callbacks:
                await self._run_error_callbacks(result)
            return False
        if not won:
            self._stats.skipped += 1  # another instance sharing the store runs this fire
        return won

    async def _claimer(self, store: Any) -> None:
        """Send queued claims to the store in batches (see :meth:`_claim`)."""
        assert self._claim_queue is not None
        while True:
            if not self._claim_queue:
                self._claim_event = anyio.Event()
                await self._claim_event.wait()
            batch, self._claim_queue = self._claim_queue, []
            try:
                fires = [(r.schedule_id, Timestamp._unchecked(r.fire)) for r in batch]
                results = await store.claim_fires(fires, self._instance_id)
                for request, won in zip(batch, results, strict=True):
                    request.won = bool(won)
            except Exception as exc:
                for request in batch:
                    request.error = exc
            for request in batch:
                request.event.set()

    async def _run_callbacks(self, result: ScheduleResult) -> None:
        what = f"schedule {result.schedule_id!r}"
        for callback in tuple(self._execution_callbacks):
            await call_callback_logged(callback, result, logger=logger, what=what)

    async def _run_error_callbacks(self, result: ScheduleResult) -> None:
        what = f"schedule {result.schedule_id!r}"
        error = result.error
        for callback, takes_result in tuple(self._error_callbacks):
            if takes_result:
                await call_callback_logged(callback, result, logger=logger, what=what)
            else:
                await call_callback_logged(
                    callback, result.schedule_id, error, logger=logger, what=what
                )

    def _wake_waiters(self, schedule_id: str) -> None:
        if self._waiters:
            for event in self._waiters.pop(schedule_id, ()):
                event.set()

    def _signal_progress(self) -> None:
        event, self._progress = self._progress, None
        if event is not None:
            event.set()

    async def _wait_progress(self) -> None:
        if self._progress is None:
            self._progress = anyio.Event()
        await self._progress.wait()

    # --- internals: the store (write-behind) --------------------------------------------------

    def _mark_dirty(self, s: ScheduledReducerCall) -> None:
        self._dirty[s.id] = s
        if self._dirty_event is not None:
            self._dirty_event.set()

    def _mark_deleted(self, schedule_id: str) -> None:
        self._dirty[schedule_id] = None
        if self._dirty_event is not None:
            self._dirty_event.set()

    async def _store_writer(self, store: ScheduleStore) -> None:
        while True:
            if not self._dirty:
                self._dirty_event = anyio.Event()
                await self._dirty_event.wait()
            await self._flush_store(store)

    async def _flush_store(self, store: ScheduleStore) -> None:
        """Write every dirty schedule's latest state: in one transaction per batch when the
        store offers ``save_many``/``delete_many`` (both built-in stores do); if a batch fails,
        one by one, so one bad record does not lose the others."""
        batched = (
            getattr(store, "save_many", None) is not None
            and getattr(store, "delete_many", None) is not None
        )
        while self._dirty:
            batch, self._dirty = self._dirty, {}
            if batched:
                try:
                    saves = [self._record(s) for s in batch.values() if s is not None]
                    deletes = [sid for sid, s in batch.items() if s is None]
                    if saves:
                        await store.save_many(saves)  # type: ignore[attr-defined]
                    if deletes:
                        await store.delete_many(deletes)  # type: ignore[attr-defined]
                    continue
                except Exception:
                    logger.warning("schedule store: batch write failed; writing one by one")
            for schedule_id, s in batch.items():
                try:
                    if s is None:
                        await store.delete(schedule_id)
                    else:
                        await store.save(self._record(s))
                except Exception:
                    logger.exception("schedule store: writing %r failed", schedule_id)

    def _record(self, s: ScheduledReducerCall) -> StoredSchedule:
        from ._stores import StoredSchedule

        schedule = s.schedule
        if isinstance(schedule, ScheduleAt):
            trigger = trigger_from_schedule_at(schedule, Timestamp._unchecked(s.created_micros))
        else:
            trigger = schedule
        status = _PENDING if s.status is _RUNNING else s.status
        return StoredSchedule(
            id=s.id,
            reducer_name=s.reducer_name,
            args=s.args,
            trigger=trigger.to_dict(),
            policy=s.policy.to_dict(),
            metadata=dict(s.metadata),
            status=status.value,
            run_count=s.run_count,
            next_run_micros=s.next_micros,
            created_at_micros=s.created_micros,
        )

    async def _load_from_store(self, store: ScheduleStore) -> None:
        """Adopt the store's schedules. A schedule added before start with the same id wins
        (so re-adding named schedules at every start is idempotent) and overwrites the row."""
        for record in await store.load_all():
            if record.id in self._schedules:
                continue
            try:
                trigger = trigger_from_dict(record.trigger)
                policy = SchedulePolicy.from_dict(record.policy)
                status = ScheduleStatus(record.status)
            except (InvalidScheduleError, ValueError, TypeError) as exc:
                logger.error("schedule store: skipping unreadable schedule %r: %s", record.id, exc)
                continue
            if status is _RUNNING:
                status = _PENDING
            policy = self._policy_cache.setdefault(("stored", policy), policy)
            s = ScheduledReducerCall(
                record.id,
                record.reducer_name,
                tuple(record.args),
                trigger,
                record.metadata,
                policy,
                record.created_at_micros,
                record.next_run_micros,
                status,
                record.run_count,
            )
            self._schedules[record.id] = s
            if status is _PENDING:
                self._push(s, s.next_micros)

    def __repr__(self) -> str:
        return (
            f"<ReducerScheduler {self._state} schedules={len(self._schedules)} "
            f"running={self._active} max_concurrent={self._max_concurrent}>"
        )
