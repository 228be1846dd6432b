"""The module's own schedule tables, seen from a client: ``conn.schedule_tables()`` and
``conn.server_schedules(table)``.

A schedule table (``#[table(scheduled(reducer))]`` in a Rust module) makes the *database* call a
reducer: each row holds a ``ScheduleAt`` column, and the host calls the table's reducer with the
row when it is due, once (``ScheduleAt.Time``; the host then deletes the row) or every period
(``ScheduleAt.Interval``: first one period after the row was inserted, then every period after
that, missed periods skipped). Clients create and cancel such schedules only through the
module's own reducers (inserting or deleting rows); the scheduled reducer itself is private.

:class:`ServerSchedules` subscribes to one schedule table and keeps its rows as
:class:`ServerSchedule` entries whose ``next_fire`` is on the **server's** clock (the client
estimates how far the server's clock is from its own, NTP style, when the watch starts:
:meth:`DbConnection.estimate_clock_skew`), and ``next_fire_local`` on ours. For a ``Time`` row
the time is exact. For an ``Interval`` row the client cannot know when the row was inserted (a
row does not say), so it counts periods from when it first saw the row: ``estimated`` is true.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Literal

import anyio
import attrs

from .._errors import ArgumentError, CallTimeoutError, ConnectionClosedError, UnknownNameError
from .._time import ScheduleAt, ScheduleAtInterval, ScheduleAtTime, TimeDuration, Timestamp
from ..protocol import ModuleSchema, TableDef
from ._subscription import SubscriptionHandle
from ._tables import CallbackHandle, TableCache, close_matches

__all__ = [
    "ScheduleChange",
    "ScheduleTable",
    "ServerSchedule",
    "ServerSchedules",
    "schedule_tables",
]

log = logging.getLogger("spacetime_sched.client")

#: Seconds leaving ``server_schedules`` waits for the server to confirm the unsubscribe.
UNSUBSCRIBE_TIMEOUT: Final = 5.0
#: At most this many changes wait to be read by ``async for``; older ones are dropped (logged).
MAX_BUFFERED_CHANGES: Final = 65_536


@attrs.frozen
class ScheduleTable:
    """A schedule table of the module: rows of ``table`` call ``reducer`` at the time in their
    ``scheduled_at_column``; ``id_column`` is the row's id (the primary key)."""

    table: str
    reducer: str
    scheduled_at_column: str
    id_column: str | None
    public: bool


def schedule_tables(schema: ModuleSchema) -> list[ScheduleTable]:
    """The schedule tables of ``schema``, in schema order."""
    return [_schedule_table(table) for table in schema.schedule_tables()]


def _schedule_table(table: TableDef) -> ScheduleTable:
    assert table.schedule is not None
    return ScheduleTable(
        table.name,
        table.schedule.reducer_name,
        table.column_names[table.schedule.scheduled_at_column],
        table.primary_key_column,
        table.is_public,
    )


@attrs.frozen
class ServerSchedule:
    """One row of a schedule table, with when it fires next.

    ``next_fire`` is on the server's clock, ``next_fire_local`` the same instant on ours (both
    µs-exact :class:`~spacetime_sched.Timestamp`). ``estimated`` is true for an interval row,
    whose period is counted from ``first_seen`` (server clock) since its insert time is not in
    the row.
    """

    table: str
    id: Any
    row: Any = attrs.field(eq=False)
    scheduled_at: ScheduleAt
    next_fire: Timestamp
    next_fire_local: Timestamp
    repeating: bool
    estimated: bool
    first_seen: Timestamp


@attrs.frozen
class ScheduleChange:
    """What happened to a schedule: ``"added"``, ``"changed"`` or ``"removed"`` (a one-shot
    row that fired is removed by the host; so is a cancelled one)."""

    kind: Literal["added", "changed", "removed"]
    schedule: ServerSchedule


class ServerSchedules:
    """A live view of one schedule table (``async with conn.server_schedules(table)``).

    * :meth:`entries`: the schedules, soonest first; :meth:`get` one by id;
    * ``async for change in watch``: each :class:`ScheduleChange` as it happens;
    * :attr:`clock_skew`: how far the server's clock is ahead of ours;
      :meth:`server_now`: the server's time now, by that estimate.
    """

    def __init__(
        self,
        definition: ScheduleTable,
        table: TableCache,
        subscribe: Callable[[str], Awaitable[SubscriptionHandle]],
        skew: Callable[[int], Awaitable[TimeDuration]],
    ) -> None:
        self.definition = definition
        self._table = table
        self._subscribe = subscribe
        self._estimate_skew = skew
        self._skew = TimeDuration(0)
        self._handle: SubscriptionHandle | None = None
        self._callbacks: list[CallbackHandle] = []
        self._first_seen: dict[Any, int] = {}  # id -> server µs when first seen
        self._changes: collections.deque[ScheduleChange] = collections.deque()
        self._changed = anyio.Event()
        self._closed = False

    def __repr__(self) -> str:
        return f"<ServerSchedules {self.definition.table!r}: {len(self._first_seen)} rows>"

    # --- life -----------------------------------------------------------------------------------

    async def __aenter__(self) -> ServerSchedules:
        await self.refresh_clock()
        self._callbacks = [
            self._table.on_insert(self._on_insert),
            self._table.on_delete(self._on_delete),
        ]
        if self._table.primary_key is not None:
            self._callbacks.append(self._table.on_update(self._on_update))
        try:
            self._handle = await self._subscribe(f"SELECT * FROM {self.definition.table}")
        except BaseException:
            self._remove_callbacks()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closed = True
        self._changed.set()
        self._remove_callbacks()
        handle = self._handle
        if handle is not None and handle.is_active:
            # If the connection went away, the subscription went with it; a connection that is
            # reconnecting gets a short while, not the block's exit held up for long.
            with (
                anyio.CancelScope(shield=True),
                contextlib.suppress(ConnectionClosedError, CallTimeoutError),
            ):
                await handle.unsubscribe(timeout=UNSUBSCRIBE_TIMEOUT)

    def _remove_callbacks(self) -> None:
        for callback in self._callbacks:
            callback.remove()
        self._callbacks = []

    async def refresh_clock(self, samples: int = 5) -> TimeDuration:
        """Estimate the server's clock offset again (``samples`` HTTP round trips)."""
        self._skew = await self._estimate_skew(samples)
        return self._skew

    @property
    def clock_skew(self) -> TimeDuration:
        """The server's clock minus ours, as last estimated."""
        return self._skew

    def server_now(self) -> Timestamp:
        """The server's time now, by the last estimate."""
        return Timestamp(Timestamp.now().micros_since_epoch + self._skew.micros)

    # --- reading ----------------------------------------------------------------------------

    def entries(self) -> list[ServerSchedule]:
        """Every schedule in the table now, soonest next fire first."""
        now = self.server_now().micros_since_epoch
        found = [self._entry(row, now) for row in self._table]
        found.sort(key=lambda entry: entry.next_fire.micros_since_epoch)
        return found

    def get(self, schedule_id: Any) -> ServerSchedule | None:
        """The schedule with id ``schedule_id``, or ``None``."""
        row = self._table.find(schedule_id)
        return None if row is None else self._entry(row, self.server_now().micros_since_epoch)

    def __aiter__(self) -> AsyncIterator[ScheduleChange]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ScheduleChange]:
        while True:
            while self._changes:
                yield self._changes.popleft()
            if self._closed or (self._handle is not None and self._handle.is_ended):
                return
            self._changed = anyio.Event()
            await self._changed.wait()

    # --- computing ------------------------------------------------------------------------

    def _id(self, row: Any) -> Any:
        column = self.definition.id_column
        return row[column] if column is not None else row

    def _entry(self, row: Any, now: int) -> ServerSchedule:
        at = row[self.definition.scheduled_at_column]
        schedule_id = self._id(row)
        first_seen = self._first_seen.setdefault(schedule_id, now)
        if isinstance(at, ScheduleAtTime):
            fire, repeating, estimated = at.value.micros_since_epoch, False, False
        elif isinstance(at, ScheduleAtInterval):
            # The host fires one period after the insert, then every period (missed ones
            # skipped); counted here from when this client first saw the row.
            every = max(abs(at.value.micros), 1)
            fire = first_seen + max((now - first_seen) // every + 1, 1) * every
            repeating, estimated = True, True
        else:  # pragma: no cover - the schema says the column is a ScheduleAt
            raise ArgumentError(f"{self.definition.table}: {at!r} is not a ScheduleAt")
        return ServerSchedule(
            self.definition.table,
            schedule_id,
            row,
            at,
            Timestamp(fire),
            Timestamp(fire - self._skew.micros),
            repeating,
            estimated,
            Timestamp(first_seen),
        )

    def _push(self, kind: Literal["added", "changed", "removed"], row: Any) -> None:
        entry = self._entry(row, self.server_now().micros_since_epoch)
        if kind == "removed":
            self._first_seen.pop(entry.id, None)
        if len(self._changes) >= MAX_BUFFERED_CHANGES:
            self._changes.popleft()
            log.warning(
                "server_schedules(%r): too many unread changes; dropped the oldest",
                self.definition.table,
            )
        self._changes.append(ScheduleChange(kind, entry))
        self._changed.set()

    def _on_insert(self, row: Any) -> None:
        self._push("added", row)

    def _on_delete(self, row: Any) -> None:
        self._push("removed", row)

    def _on_update(self, old: Any, new: Any) -> None:
        if self._id(old) != self._id(new):  # pragma: no cover - an update keeps the key
            self._first_seen.pop(self._id(old), None)
        self._push("changed", new)


def find_schedule_table(schema: ModuleSchema, table: str) -> ScheduleTable:
    """The schedule table ``table``, or :class:`~spacetime_sched.UnknownNameError` /
    :class:`~spacetime_sched.ArgumentError` saying why not."""
    names = [t.name for t in schema.schedule_tables()]
    if table in names:
        return _schedule_table(schema.table(table))
    if table in [t.name for t in schema.tables]:
        raise ArgumentError(
            f"table {table!r} is not a schedule table (schedule tables: "
            f"{', '.join(names) or 'none'})"
        )
    raise UnknownNameError(
        f"the module has no schedule table {table!r}" + close_matches(table, names),
        name=table,
    )
