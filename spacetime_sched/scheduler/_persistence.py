"""Persistence: schedules written behind to a store, read back at start, fires claimed in batches.

The engine never waits for the store while scheduling: a change marks the schedule *dirty*
and a writer task saves the latest state of every dirty schedule (one transaction per batch
when the store is a :class:`BatchScheduleStore`, else one call each). Fire claims from
concurrent executions are gathered by a claimer task and sent together (one round trip for
the batch) when the store can claim many at once.

A :class:`LeasingStore` (PostgreSQL) also gets each won fire marked started before the target
is called and finished after (batched the same way), its leases renewed every third of the
lease time, and its unstarted claims released at a graceful stop.

Which optional abilities a store has is asked with ``isinstance`` on the runtime-checkable
protocols of :mod:`._stores._base`, never by probing attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias

import anyio
import anyio.abc

from .._errors import InvalidScheduleError
from .._time import ScheduleAt, Timestamp
from ._models import ScheduledReducerCall, SchedulePolicy, ScheduleStatus
from ._stores._base import (
    BatchScheduleStore,
    LeasingStore,
    ScheduleStore,
    StoredSchedule,
    WatchableStore,
)
from ._triggers import trigger_from_dict, trigger_from_schedule_at

__all__ = ["Persistence"]

logger: Final = logging.getLogger("spacetime_sched.scheduler")

_PENDING: Final = ScheduleStatus.PENDING
_RUNNING: Final = ScheduleStatus.RUNNING


class _Request:
    """One execution waiting for a batch's answer about its fire."""

    __slots__ = ("error", "event", "fire", "ok", "schedule_id")

    def __init__(self, schedule_id: str, fire: int) -> None:
        self.schedule_id = schedule_id
        self.fire = fire
        self.event = anyio.Event()
        self.ok = False
        self.error: Exception | None = None


_BatchCall: TypeAlias = Callable[[list[tuple[str, Timestamp]], str], Awaitable[list[bool]]]


class _Batcher:
    """Gathers per-fire requests from concurrent executions and sends them together: one
    transaction and one worker-thread hop for the batch instead of one per fire."""

    def __init__(self, call: _BatchCall, owner: str) -> None:
        self._call = call
        self._owner = owner
        self._queue: list[_Request] = []
        self._event: anyio.Event | None = None

    async def ask(self, schedule_id: str, fire: int) -> bool:
        request = _Request(schedule_id, fire)
        self._queue.append(request)
        if self._event is not None:
            self._event.set()
        await request.event.wait()
        if request.error is not None:
            raise request.error
        return request.ok

    async def run(self) -> None:
        while True:
            if not self._queue:
                self._event = anyio.Event()
                await self._event.wait()
            batch, self._queue = self._queue, []
            try:
                fires = [(r.schedule_id, Timestamp._unchecked(r.fire)) for r in batch]
                results = await self._call(fires, self._owner)
                for request, ok in zip(batch, results, strict=True):
                    request.ok = bool(ok)
            except Exception as exc:
                for request in batch:
                    request.error = exc
            for request in batch:
                request.event.set()


def record_of(s: ScheduledReducerCall) -> StoredSchedule:
    """The store record of a schedule (a running schedule is stored as pending)."""
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


def schedule_of(
    record: StoredSchedule, policies: dict[Any, SchedulePolicy]
) -> ScheduledReducerCall:
    """The schedule a record describes (``policies`` interns equal policies). Raises
    :class:`InvalidScheduleError`, ``ValueError`` or ``TypeError`` for an unreadable record."""
    trigger = trigger_from_dict(record.trigger)
    policy = SchedulePolicy.from_dict(record.policy)
    status = ScheduleStatus(record.status)
    if status is _RUNNING:
        status = _PENDING
    policy = policies.setdefault(("stored", policy), policy)
    return ScheduledReducerCall(
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


class Persistence:
    """The write-behind queue, the fire claimer and the lease keeper of one scheduler."""

    def __init__(self, store: ScheduleStore, instance_id: str) -> None:
        self.store = store
        self._instance_id = instance_id
        self._batched = isinstance(store, BatchScheduleStore)
        #: The store's claims are leases (started, finished, renewed, taken over).
        self.leasing: LeasingStore | None = store if isinstance(store, LeasingStore) else None
        #: The store reports other instances' changes.
        self.watchable: WatchableStore | None = store if isinstance(store, WatchableStore) else None
        self._dirty: dict[str, ScheduledReducerCall | None] = {}
        self._writing: dict[str, ScheduledReducerCall | None] = {}  # the batch being written
        self._dirty_event: anyio.Event | None = None
        self._claims: _Batcher | None = None
        if isinstance(store, BatchScheduleStore):
            self._claims = _Batcher(store.claim_fires, instance_id)
        self._starts: _Batcher | None = None
        self._finishes: _Batcher | None = None
        if self.leasing is not None:
            self._starts = _Batcher(self.leasing.start_fires, instance_id)
            self._finishes = _Batcher(self.leasing.finish_fires, instance_id)

    @property
    def owner(self) -> str:
        """This instance's name in the store's claims."""
        return self._instance_id

    def is_dirty(self, schedule_id: str) -> bool:
        """Whether a local change of the schedule is still to be written."""
        return schedule_id in self._dirty or schedule_id in self._writing

    async def load(
        self, known: dict[str, ScheduledReducerCall], policies: dict[Any, SchedulePolicy]
    ) -> list[ScheduledReducerCall]:
        """The store's schedules not already in ``known`` (a schedule added before start with
        the same id wins, so re-adding named schedules at every start is idempotent).
        Unreadable records are logged and skipped."""
        loaded = []
        for record in await self.store.load_all():
            if record.id in known:
                continue
            try:
                loaded.append(schedule_of(record, policies))
            except (InvalidScheduleError, ValueError, TypeError) as exc:
                logger.error("schedule store: skipping unreadable schedule %r: %s", record.id, exc)
        return loaded

    def mark_dirty(self, s: ScheduledReducerCall) -> None:
        self._dirty[s.id] = s
        if self._dirty_event is not None:
            self._dirty_event.set()

    def mark_deleted(self, schedule_id: str) -> None:
        self._dirty[schedule_id] = None
        if self._dirty_event is not None:
            self._dirty_event.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The writer, the batchers and (for leasing stores) the lease renewer, until
        cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._writer)
            for batcher in (self._claims, self._starts, self._finishes):
                if batcher is not None:
                    tg.start_soon(batcher.run)
            if self.leasing is not None:
                tg.start_soon(self._renewer, self.leasing)
            task_status.started()

    async def _renewer(self, store: LeasingStore) -> None:
        """Renew this instance's leases every third of the lease time, so two renewals can
        fail (a slow database, a lost connection) before another instance takes over."""
        period = store.lease_ttl.micros / 3e6
        while True:
            await anyio.sleep(period)
            try:
                await store.renew_leases(self._instance_id)
            except Exception as exc:
                logger.warning("schedule store: renewing leases failed: %r", exc)

    async def _writer(self) -> None:
        while True:
            if not self._dirty:
                self._dirty_event = anyio.Event()
                await self._dirty_event.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write every dirty schedule's latest state: one transaction per batch for batch
        stores; if a batch fails, one by one, so one bad record does not lose the others."""
        while self._dirty:
            batch, self._dirty = self._dirty, {}
            self._writing = batch
            try:
                await self._write(batch)
            finally:
                self._writing = {}

    async def _write(self, batch: dict[str, ScheduledReducerCall | None]) -> None:
        store = self.store
        if isinstance(store, BatchScheduleStore):
            try:
                saves = [record_of(s) for s in batch.values() if s is not None]
                deletes = [sid for sid, s in batch.items() if s is None]
                if saves:
                    await store.save_many(saves)
                if deletes:
                    await store.delete_many(deletes)
                return
            except Exception:
                logger.warning("schedule store: batch write failed; writing one by one")
        for schedule_id, s in batch.items():
            try:
                if s is None:
                    await store.delete(schedule_id)
                else:
                    await store.save(record_of(s))
            except Exception:
                logger.exception("schedule store: writing %r failed", schedule_id)

    async def claim(self, schedule_id: str, fire: int) -> bool:
        """Whether this instance won the fire. Concurrent claims to a batch store go out
        together; a store failure raises."""
        if self._claims is None:
            return await self.store.claim_fire(
                schedule_id, Timestamp._unchecked(fire), self._instance_id
            )
        return await self._claims.ask(schedule_id, fire)

    async def start(self, schedule_id: str, fire: int) -> bool:
        """Mark a won fire running (leasing stores; else True): False if it was taken over."""
        if self._starts is None:
            return True
        return await self._starts.ask(schedule_id, fire)

    async def finish(self, schedule_id: str, fire: int) -> None:
        """Mark a fire done (leasing stores); a failure is logged (the lease then expires and
        the fire is handled by its delivery option)."""
        if self._finishes is None:
            return
        try:
            if not await self._finishes.ask(schedule_id, fire):
                logger.warning(
                    "schedule %r: fire %s was taken over by another instance while it ran "
                    "(its lease expired)",
                    schedule_id,
                    Timestamp._unchecked(fire),
                )
        except Exception as exc:
            logger.error("schedule %r: marking fire %s done failed: %r", schedule_id, fire, exc)

    async def release(self) -> None:
        """Give back the claims this instance has not started (graceful shutdown)."""
        if self.leasing is None:
            return
        try:
            await self.leasing.release_claims(self._instance_id)
        except Exception as exc:
            logger.warning("schedule store: releasing claims failed: %r", exc)
