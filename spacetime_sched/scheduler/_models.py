"""The scheduler's value types: statuses, per-schedule policies, results, and the schedule itself.

Memory matters here: a scheduler must hold a million pending schedules in well under 500 bytes
each. So :class:`ScheduledReducerCall` is a plain ``__slots__`` class holding ints and shared
objects (the caller's ScheduleAt or trigger, one shared default :class:`SchedulePolicy`, one
shared empty metadata mapping), with no per-schedule dict, event or Timestamp objects; the
Timestamp-valued attributes are computed on access.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar

import attrs

from .._errors import InvalidScheduleError
from .._time import ScheduleAt, TimeDuration, Timestamp
from ._triggers import OnceTrigger, Trigger

__all__ = [
    "CoalescePolicy",
    "DeliveryPolicy",
    "DurationLike",
    "OverlapPolicy",
    "ScheduleLike",
    "SchedulePolicy",
    "ScheduleResult",
    "ScheduleStatus",
    "ScheduledReducerCall",
]

#: A span of time as the policy arguments accept it: a TimeDuration, a timedelta, or seconds.
DurationLike: TypeAlias = "TimeDuration | _dt.timedelta | float | int"


_E = TypeVar("_E", bound=enum.Enum)

#: What a schedule is built from: SpacetimeDB's ScheduleAt, or a trigger.
ScheduleLike: TypeAlias = "ScheduleAt | Trigger"


class ScheduleStatus(str, enum.Enum):
    """Where a schedule is in its life.

    * ``PENDING``: waiting for its next fire.
    * ``RUNNING``: an execution is in progress (a repeating schedule's next fire is already
      planned and it returns to ``PENDING`` afterwards).
    * ``COMPLETED``: a one-shot ran successfully, or a trigger has no more fire times.
    * ``FAILED``: a one-shot failed (after its retries) or missed its fire time.
    * ``CANCELLED``: :meth:`~ReducerScheduler.cancel_schedule` was called; never fires again.
    * ``PAUSED``: :meth:`~ReducerScheduler.pause` was called; :meth:`~ReducerScheduler.resume`
      brings it back.
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"


class CoalescePolicy(str, enum.Enum):
    """What to do with several fire times of one schedule missed at once (scheduler stopped,
    machine asleep, clock set forward, executions saturated).

    * ``LATEST`` (default): run once, for the most recent missed fire time.
    * ``EARLIEST``: run once, for the oldest missed fire time.
    * ``ALL``: run once for every missed fire time that is still within the misfire grace time.
    """

    LATEST = "latest"
    EARLIEST = "earliest"
    ALL = "all"


class OverlapPolicy(str, enum.Enum):
    """What to do when a schedule fires while its previous execution is still running.

    * ``SKIP`` (default): drop the new fire (counted in ``skipped_executions``).
    * ``BUFFER_ONE``: remember one fire and run it right after the current execution ends;
      more fires while one is buffered are dropped.
    * ``ALLOW_ALL``: start it anyway; executions of the schedule run concurrently.
    """

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    ALLOW_ALL = "allow_all"


class DeliveryPolicy(str, enum.Enum):
    """What happens to a fire whose instance died while running it (shared stores).

    A fire is claimed once, across every instance sharing a store, and then *started*. If
    the instance holding it dies, another one takes it over once its lease expires
    (``PostgresStore``; in a single-process store a fire dies with its scheduler):

    * ``AT_MOST_ONCE`` (default): a fire that had started is not run again but reported as
      *interrupted* (its reducer may or may not have run; reducer calls are not idempotent).
    * ``AT_LEAST_ONCE``: it runs again on the instance that took it over, so it may run twice
      if the first run got its work done before the instance died.

    A fire that was claimed but had not started runs in either case: it never ran.
    """

    AT_MOST_ONCE = "at_most_once"
    AT_LEAST_ONCE = "at_least_once"


def to_duration(value: object, what: str) -> TimeDuration:
    """A TimeDuration from a TimeDuration, timedelta, or a number of seconds."""
    if type(value) is TimeDuration:
        return value
    if isinstance(value, _dt.timedelta):
        return TimeDuration.from_timedelta(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidScheduleError(f"{what}: expected a finite number of seconds, got {value}")
        return TimeDuration.from_seconds(value)
    raise InvalidScheduleError(
        f"{what}: expected a TimeDuration, timedelta or seconds, got {type(value).__name__} "
        f"{value!r}"
    )


def _optional(value: object, what: str) -> TimeDuration | None:
    if value is None:
        return None
    duration = to_duration(value, what)
    if duration.micros < 0:
        raise InvalidScheduleError(f"{what}: must not be negative, got {duration}")
    return duration


def _positive(value: object, what: str) -> TimeDuration:
    duration = to_duration(value, what)
    if duration.micros <= 0:
        raise InvalidScheduleError(f"{what}: must be positive, got {duration}")
    return duration


def _grace(value: object) -> TimeDuration | None:
    return _optional(value, "misfire_grace_time")


def _timeout(value: object) -> TimeDuration | None:
    return _optional(value, "timeout")


def _jitter(value: object) -> TimeDuration | None:
    return _optional(value, "jitter")


def _backoff_base(value: object) -> TimeDuration:
    return _positive(value, "backoff_base")


def _backoff_max(value: object) -> TimeDuration:
    return _positive(value, "backoff_max")


def _coalesce(value: object) -> CoalescePolicy:
    return _enum(CoalescePolicy, value, "coalesce")


def _overlap(value: object) -> OverlapPolicy:
    return _enum(OverlapPolicy, value, "overlap")


def _delivery(value: object) -> DeliveryPolicy:
    return _enum(DeliveryPolicy, value, "delivery")


def _enum(cls: type[_E], value: object, what: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in cls)
        raise InvalidScheduleError(f"{what}: expected one of {choices}, got {value!r}")


def _check_retries(_: object, __: object, value: int) -> None:
    if type(value) is not int or value < 0:
        raise InvalidScheduleError(f"max_retries: expected an int >= 0, got {value!r}")


def _check_factor(_: object, __: object, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1):
        raise InvalidScheduleError(f"backoff_factor: expected a number >= 1, got {value!r}")


def _check_fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise InvalidScheduleError(f"{attribute.name}: expected a number in 0..1, got {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class SchedulePolicy:
    """How one schedule behaves when things do not go to plan. All defaults are shared.

    Durations accept a :class:`TimeDuration`, a :class:`~datetime.timedelta` or seconds.

    * ``misfire_grace_time`` (default 60 s; ``None`` = always run): a fire that starts later
      than this after its fire time is not run but counted as missed. APScheduler 3 defaults to
      1 s, which silently drops runs on a busy or sleeping machine; 60 s does not.
    * ``coalesce`` (default ``LATEST``): see :class:`CoalescePolicy`.
    * ``overlap`` (default ``SKIP``): see :class:`OverlapPolicy`.
    * ``max_retries`` (default 0): failed executions are retried up to this many times, after
      ``min(backoff_base * backoff_factor**(attempt-1), backoff_max)``, shortened by a random
      fraction of up to ``backoff_jitter`` (0..1) so failing schedules do not retry in lockstep.
    * ``timeout`` (default none): limit of one execution; passed to a client as ``timeout=``
      and enforced with :func:`anyio.fail_after`. A timeout is a failure (and retried).
    * ``jitter`` (default none): each fire is delayed by a random amount up to this, but never
      past the schedule's next fire time.
    * ``delivery`` (default ``"at_most_once"``): whether a fire interrupted by the death of
      the instance running it runs again; see :class:`DeliveryPolicy`.
    """

    misfire_grace_time: TimeDuration | None = attrs.field(
        default=TimeDuration.from_seconds(60), converter=_grace
    )
    coalesce: CoalescePolicy = attrs.field(default=CoalescePolicy.LATEST, converter=_coalesce)
    overlap: OverlapPolicy = attrs.field(default=OverlapPolicy.SKIP, converter=_overlap)
    max_retries: int = attrs.field(default=0, validator=_check_retries)
    backoff_base: TimeDuration = attrs.field(
        default=TimeDuration.from_seconds(1), converter=_backoff_base
    )
    backoff_factor: float = attrs.field(default=2.0, validator=_check_factor)
    backoff_max: TimeDuration = attrs.field(
        default=TimeDuration.from_seconds(60), converter=_backoff_max
    )
    backoff_jitter: float = attrs.field(default=0.1, validator=_check_fraction)
    timeout: TimeDuration | None = attrs.field(default=None, converter=_timeout)
    jitter: TimeDuration | None = attrs.field(default=None, converter=_jitter)
    delivery: DeliveryPolicy = attrs.field(default=DeliveryPolicy.AT_MOST_ONCE, converter=_delivery)

    def backoff_delay(self, attempt: int, random_fraction: float) -> int:
        """Microseconds to wait after failed attempt number ``attempt`` (1-based);
        ``random_fraction`` is a uniform draw in [0, 1)."""
        base = self.backoff_base.micros * self.backoff_factor ** (attempt - 1)
        delay = min(base, float(self.backoff_max.micros))
        return max(0, int(delay * (1.0 - self.backoff_jitter * random_fraction)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (durations in µs) for persistent stores."""

        def micros(value: TimeDuration | None) -> int | None:
            return None if value is None else value.micros

        return {
            "misfire_grace_time": micros(self.misfire_grace_time),
            "coalesce": self.coalesce.value,
            "overlap": self.overlap.value,
            "max_retries": self.max_retries,
            "backoff_base": self.backoff_base.micros,
            "backoff_factor": self.backoff_factor,
            "backoff_max": self.backoff_max.micros,
            "backoff_jitter": self.backoff_jitter,
            "timeout": micros(self.timeout),
            "jitter": micros(self.jitter),
            "delivery": self.delivery.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchedulePolicy:
        """The inverse of :meth:`to_dict`; missing keys take their defaults."""
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in _DURATION_FIELDS and value is not None:
                value = TimeDuration(value)
            kwargs[key] = value
        return cls(**kwargs)


_DURATION_FIELDS: Final = frozenset(
    {"misfire_grace_time", "backoff_base", "backoff_max", "timeout", "jitter"}
)

DEFAULT_POLICY: Final = SchedulePolicy()


class ScheduleResult:
    """The outcome of one execution attempt of a schedule (or of one missed fire).

    Attributes: ``schedule_id``, ``reducer_name``, ``fire_time`` (the intended time),
    ``started_at``, ``duration``, ``ok``, ``error`` (the exception, or None), ``attempt``
    (1 for the first try, 2 for the first retry, ...), ``value`` (what the target returned),
    ``missed`` (True when the fire was dropped by the misfire grace time and nothing ran),
    ``interrupted`` (True when the instance running the fire died and, under
    ``delivery="at_most_once"``, the fire is not run again: it may or may not have run).
    """

    __slots__ = (
        "_duration",
        "_fire",
        "_started",
        "attempt",
        "error",
        "interrupted",
        "missed",
        "ok",
        "reducer_name",
        "schedule_id",
        "value",
    )

    def __init__(
        self,
        schedule_id: str,
        reducer_name: str,
        fire_micros: int,
        started_micros: int,
        duration_micros: int,
        ok: bool,
        error: BaseException | None,
        attempt: int,
        value: object = None,
        missed: bool = False,
        interrupted: bool = False,
    ) -> None:
        self.schedule_id = schedule_id
        self.reducer_name = reducer_name
        self._fire = fire_micros
        self._started = started_micros
        self._duration = duration_micros
        self.ok = ok
        self.error = error
        self.attempt = attempt
        self.value = value
        self.missed = missed
        self.interrupted = interrupted

    @property
    def fire_time(self) -> Timestamp:
        """When the execution was due (before jitter)."""
        return Timestamp._unchecked(self._fire)

    @property
    def started_at(self) -> Timestamp:
        """When the target was called (wall clock)."""
        return Timestamp._unchecked(self._started)

    @property
    def duration(self) -> TimeDuration:
        """How long the call took (monotonic clock)."""
        return TimeDuration._unchecked(self._duration)

    @property
    def lateness(self) -> TimeDuration:
        """``started_at - fire_time``."""
        return TimeDuration._unchecked(self._started - self._fire)

    def __repr__(self) -> str:
        outcome = (
            "missed"
            if self.missed
            else "interrupted"
            if self.interrupted
            else "ok"
            if self.ok
            else f"error={self.error!r}"
        )
        return (
            f"ScheduleResult(schedule_id={self.schedule_id!r}, fire_time={self.fire_time}, "
            f"attempt={self.attempt}, {outcome}, duration={self.duration})"
        )


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


class ScheduledReducerCall:
    """One schedule: which reducer to call, with which arguments, when, and how it went.

    Objects returned by :meth:`ReducerScheduler.get_schedule` and ``list_schedules`` are live
    views owned by the scheduler: read them, change them through the scheduler's methods.

    * ``id``: the schedule id (str); ``reducer_name``; ``args`` (a tuple)
    * ``schedule``: the :class:`ScheduleAt` or trigger it was created with
    * ``metadata``: a read-only mapping given at creation (empty by default)
    * ``policy``: its :class:`SchedulePolicy`
    * ``status``: a :class:`ScheduleStatus`; ``run_count``: executions started (retries of one
      fire do not count again)
    * ``next_run``: the next fire time, or None; ``created_at``
    * ``last_result``: the latest :class:`ScheduleResult`, or None
    """

    __slots__ = (
        "args",
        "buffered",
        "created_micros",
        "id",
        "last_result",
        "metadata",
        "next_micros",
        "policy",
        "reducer_name",
        "run_count",
        "running",
        "schedule",
        "status",
    )

    id: str
    reducer_name: str
    args: tuple[Any, ...]
    schedule: ScheduleAt | Trigger
    metadata: Mapping[str, Any]
    policy: SchedulePolicy
    status: ScheduleStatus
    run_count: int
    created_micros: int
    next_micros: int | None
    last_result: ScheduleResult | None
    running: int
    buffered: int | None

    def __init__(
        self,
        id: str,
        reducer_name: str,
        args: tuple[Any, ...],
        schedule: ScheduleAt | Trigger,
        metadata: Mapping[str, Any] | None,
        policy: SchedulePolicy,
        created_micros: int,
        next_micros: int | None,
        status: ScheduleStatus = ScheduleStatus.PENDING,
        run_count: int = 0,
    ) -> None:
        self.id = id
        self.reducer_name = reducer_name
        self.args = args
        self.schedule = schedule
        self.metadata = _EMPTY if not metadata else MappingProxyType(dict(metadata))
        self.policy = policy
        self.status = status
        self.run_count = run_count
        self.created_micros = created_micros
        self.next_micros = next_micros
        self.last_result = None
        self.running = 0
        self.buffered = None

    @property
    def next_run(self) -> Timestamp | None:
        """The next fire time (None when it will not fire again, or while paused)."""
        if self.next_micros is None or self.status is ScheduleStatus.PAUSED:
            return None
        return Timestamp._unchecked(self.next_micros)

    @property
    def created_at(self) -> Timestamp:
        return Timestamp._unchecked(self.created_micros)

    @property
    def is_repeating(self) -> bool:
        """False for ``ScheduleAt.Time`` and one-shot triggers."""
        return not _is_one_shot(self.schedule)

    def describe(self) -> str:
        """A one-line human description, e.g. ``tick() every 5 s [pending, next ...]``."""
        schedule = self.schedule
        if isinstance(schedule, ScheduleAt):
            match schedule:
                case ScheduleAt.Interval(every):
                    when = f"every {every.format_human_readable()}"
                case ScheduleAt.Time(at):
                    when = f"at {at}"
                case _:  # pragma: no cover - ScheduleAt has exactly two variants
                    when = repr(schedule)
        else:
            when = schedule.describe()
        nxt = self.next_run
        return (
            f"{self.reducer_name}{self.args!r} {when} [{self.status.value}"
            + (f", next {nxt}" if nxt is not None else "")
            + f", runs {self.run_count}]"
        )

    def __lt__(self, other: ScheduledReducerCall) -> bool:
        # Heap tie-break for equal fire times: ids are fixed-width and increasing per scheduler,
        # so equal-time fires run in creation order.
        return self.id < other.id

    def __repr__(self) -> str:
        return f"ScheduledReducerCall(id={self.id!r}, {self.describe()})"


def _is_one_shot(schedule: object) -> bool:
    return type(schedule) is ScheduleAt.Time or type(schedule) is OnceTrigger
