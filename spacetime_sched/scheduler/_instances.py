"""Several instances on one store: other instances' changes, and the fires of dead instances.

Two tasks of a running scheduler whose store can do it (``PostgresStore``):

* **Changes** (:class:`~._stores._base.WatchableStore`): the ids other instances saved or
  deleted arrive from :meth:`changes` (LISTEN/NOTIFY) and are reloaded from the store into
  the book and the fire queue at once, so a schedule added on one instance for 100 ms from
  now fires on time from another. Everything is reloaded when the store says so (``None``)
  and, as a safety net against a lost notification, every :data:`POLL_EVERY`.
* **Take-over** (:class:`~._stores._base.LeasingStore`): every third of the lease time, fires
  whose owner's lease expired are taken; each is re-run here or, when it was already running
  and its schedule is ``at_most_once``, reported as interrupted.

Reloading never risks running a fire twice: every fire is still claimed in the store first.
A schedule with a local change not yet written, or with an execution running here, keeps
its local state (the write that follows is the newer one).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import anyio
import anyio.abc

from .._errors import InvalidScheduleError
from ._book import ScheduleBook
from ._executor import Executor
from ._models import ScheduledReducerCall, SchedulePolicy, ScheduleStatus
from ._persistence import Persistence, schedule_of
from ._stores._base import ExpiredFire, LeasingStore, StoredSchedule, WatchableStore

__all__ = ["POLL_EVERY", "Instances"]

logger: Final = logging.getLogger("spacetime_sched.scheduler")

#: Seconds between two full reloads of a watchable store (a safety net: changes come at once).
POLL_EVERY: Final = 30.0

#: Seconds at least between two full reloads: a burst of large batches (each notified as
#: "reload everything") costs a few reloads, not one per batch.
FULL_RELOAD_SPACING: Final = 0.5

#: Fires taken over per store call.
_TAKE_OVER_LIMIT: Final = 1000

_PENDING: Final = ScheduleStatus.PENDING
_FINISHED: Final = frozenset(
    {ScheduleStatus.COMPLETED, ScheduleStatus.FAILED, ScheduleStatus.CANCELLED}
)


class Instances:
    """The change-watcher and the take-over task of one scheduler run."""

    def __init__(
        self,
        book: ScheduleBook,
        persistence: Persistence,
        executor: Executor,
        policies: dict[Any, SchedulePolicy],
    ) -> None:
        self._book = book
        self._persistence = persistence
        self._executor = executor
        self._policies = policies
        self._changed: set[str] = set()
        self._changed_all = False
        self._wake: anyio.Event | None = None

    async def run(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the tasks the store supports in ``tg`` (the scheduler's task group)."""
        watchable = self._persistence.watchable
        if watchable is not None:
            tg.start_soon(self._collect, watchable)
            tg.start_soon(self._reload_loop, watchable)
        leasing = self._persistence.leasing
        if leasing is not None:
            tg.start_soon(self._take_over_loop, leasing, tg)

    # --- changes --------------------------------------------------------------------------------

    async def _collect(self, store: WatchableStore) -> None:
        async for schedule_id in store.changes():
            if schedule_id is None:
                self._changed_all = True
                self._changed.clear()
            elif not self._changed_all:
                self._changed.add(schedule_id)
            if self._wake is not None:
                self._wake.set()

    async def _reload_loop(self, store: WatchableStore) -> None:
        while True:
            if not self._changed and not self._changed_all:
                self._wake = anyio.Event()
                with anyio.move_on_after(POLL_EVERY) as timeout:
                    await self._wake.wait()
                if timeout.cancelled_caught:
                    self._changed_all = True  # the safety-net poll
            ids, everything = self._changed, self._changed_all
            self._changed, self._changed_all = set(), False
            try:
                if everything:
                    self.apply(await store.load_all(), None)
                    # Changes of single ids are applied meanwhile only after the spacing
                    # too; the ids wait in self._changed, nothing is lost.
                    await anyio.sleep(FULL_RELOAD_SPACING)
                elif ids:
                    self.apply(await store.load_many(sorted(ids)), ids)
            except Exception as exc:
                logger.warning("schedule store: reloading changed schedules failed: %r", exc)
                self._changed |= ids
                self._changed_all |= everything
                await anyio.sleep(1.0)  # the store is failing: do not spin

    def apply(self, records: list[StoredSchedule], ids: set[str] | None) -> None:
        """Bring the book in line with ``records`` (the store's current state of ``ids``, or
        of everything when ``ids`` is None: then a schedule absent from the store was
        deleted by another instance)."""
        book = self._book
        schedules = book.schedules
        queue = book.queue
        persistence = self._persistence
        seen: set[str] = set()
        for record in records:
            seen.add(record.id)
            old = schedules.get(record.id)
            if persistence.is_dirty(record.id) or (old is not None and old.running):
                continue
            try:
                new = schedule_of(record, self._policies)
            except (InvalidScheduleError, ValueError, TypeError) as exc:
                logger.error("schedule store: skipping unreadable schedule %r: %s", record.id, exc)
                continue
            if old is not None:
                if old.status in _FINISHED and new.next_micros is None:
                    continue  # its last fire lost its claim here; the winner deletes it
                queue.cancel(old)
                new.last_result = old.last_result
            schedules[record.id] = new
            if new.status is _PENDING:
                queue.push(new, new.next_micros)
        gone = (set(schedules) if ids is None else ids) - seen
        for schedule_id in gone:
            old = schedules.get(schedule_id)
            if old is None or old.running or persistence.is_dirty(schedule_id):
                continue
            if old.status in _FINISHED:
                continue  # kept here for inspection, as any finished schedule
            queue.cancel(old)  # finished or cancelled by another instance
            del schedules[schedule_id]
            book.wake_waiters(schedule_id)

    # --- take-over ------------------------------------------------------------------------------

    async def _take_over_loop(self, store: LeasingStore, tg: anyio.abc.TaskGroup) -> None:
        period = store.lease_ttl.micros / 3e6
        # The first round also takes this instance's own expired claims: they can only be
        # left by a previous process that ran under the same instance id and died.
        first = True
        while True:
            if not first:
                await anyio.sleep(period)
            own, first = first, False
            if not self._book.accepting:
                continue
            try:
                expired = await store.take_over_expired(
                    self._persistence.owner, limit=_TAKE_OVER_LIMIT, include_own=own
                )
            except Exception as exc:
                logger.warning("schedule store: taking over expired fires failed: %r", exc)
                continue
            if not expired:
                continue
            missing = [e.schedule_id for e in expired if e.schedule_id not in self._book.schedules]
            loaded: dict[str, ScheduledReducerCall] = {}
            if missing and isinstance(store, WatchableStore):
                try:
                    for record in await store.load_many(missing):
                        loaded[record.id] = schedule_of(record, self._policies)
                except Exception as exc:
                    logger.warning("schedule store: loading taken-over schedules: %r", exc)
            for fire in expired:
                self._handle(fire, loaded, tg)

    def _handle(
        self, fire: ExpiredFire, loaded: dict[str, ScheduledReducerCall], tg: anyio.abc.TaskGroup
    ) -> None:
        book = self._book
        s = book.schedules.get(fire.schedule_id)
        if s is None:
            s = loaded.get(fire.schedule_id)
            if s is not None:
                book.schedules[s.id] = s
        fire_micros = fire.fire_time.micros_since_epoch
        logger.warning(
            "schedule %r: took over fire %s from %r (%s): %s",
            fire.schedule_id,
            fire.fire_time,
            fire.previous_owner,
            fire.previous_state,
            "running it again" if fire.rerun else "reporting it interrupted",
        )
        if fire.rerun and s is not None:
            tg.start_soon(self._executor.rerun, s, fire_micros)
            return
        reducer = s.reducer_name if s is not None else "?"
        book.interrupted(fire.schedule_id, reducer, fire_micros, fire.previous_owner)
        if fire.rerun:  # its schedule is gone: nothing to run; close the claim
            tg.start_soon(self._persistence.finish, fire.schedule_id, fire_micros)
