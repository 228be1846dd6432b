"""Persistence: schedules written behind to a store, read back at start, fires claimed in batches.

The engine never waits for the store while scheduling: a change marks the schedule *dirty*
and a writer task saves the latest state of every dirty schedule (one transaction per batch
when the store is a :class:`BatchScheduleStore`, else one call each). Fire claims from
concurrent executions are gathered by a claimer task and sent together (one round trip for
the batch) when the store can claim many at once.

Which optional abilities a store has is asked with ``isinstance`` on the runtime-checkable
protocols of :mod:`._stores._base`, never by probing attributes.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import anyio
import anyio.abc

from .._errors import InvalidScheduleError
from .._time import ScheduleAt, Timestamp
from ._models import ScheduledReducerCall, SchedulePolicy, ScheduleStatus
from ._stores._base import BatchScheduleStore, ScheduleStore, StoredSchedule
from ._triggers import trigger_from_dict, trigger_from_schedule_at

__all__ = ["Persistence"]

logger: Final = logging.getLogger("spacetime_sched.scheduler")

_PENDING: Final = ScheduleStatus.PENDING
_RUNNING: Final = ScheduleStatus.RUNNING


class _ClaimRequest:
    """One execution waiting for the claimer's answer about its fire."""

    __slots__ = ("error", "event", "fire", "schedule_id", "won")

    def __init__(self, schedule_id: str, fire: int) -> None:
        self.schedule_id = schedule_id
        self.fire = fire
        self.event = anyio.Event()
        self.won = False
        self.error: Exception | None = None


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
    """The write-behind queue and the fire claimer of one scheduler and its store."""

    def __init__(self, store: ScheduleStore, instance_id: str) -> None:
        self.store = store
        self._instance_id = instance_id
        self._batched = isinstance(store, BatchScheduleStore)
        self._dirty: dict[str, ScheduledReducerCall | None] = {}
        self._dirty_event: anyio.Event | None = None
        self._claim_queue: list[_ClaimRequest] = []
        self._claim_event: anyio.Event | None = None

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
        """The writer and (for batch stores) the claimer, until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._writer)
            if self._batched:
                tg.start_soon(self._claimer)
            task_status.started()

    async def _writer(self) -> None:
        while True:
            if not self._dirty:
                self._dirty_event = anyio.Event()
                await self._dirty_event.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write every dirty schedule's latest state: one transaction per batch for batch
        stores; if a batch fails, one by one, so one bad record does not lose the others."""
        store = self.store
        while self._dirty:
            batch, self._dirty = self._dirty, {}
            if isinstance(store, BatchScheduleStore):
                try:
                    saves = [record_of(s) for s in batch.values() if s is not None]
                    deletes = [sid for sid, s in batch.items() if s is None]
                    if saves:
                        await store.save_many(saves)
                    if deletes:
                        await store.delete_many(deletes)
                    continue
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
        together (see :meth:`_claimer`); a store failure raises."""
        if not self._batched:
            return await self.store.claim_fire(
                schedule_id, Timestamp._unchecked(fire), self._instance_id
            )
        request = _ClaimRequest(schedule_id, fire)
        self._claim_queue.append(request)
        if self._claim_event is not None:
            self._claim_event.set()
        await request.event.wait()
        if request.error is not None:
            raise request.error
        return request.won

    async def _claimer(self) -> None:
        """Send queued claims in batches: one transaction and one worker-thread hop for SQLite,
        instead of one per fire."""
        store = self.store
        assert isinstance(store, BatchScheduleStore)
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
