"""MemoryStore: schedules and fire claims in process memory; nothing survives the process."""

from __future__ import annotations

from collections.abc import Iterable

from ..._errors import ScheduleStoreError
from ..._time import TimeDuration, Timestamp
from ._base import DEFAULT_FIRE_RETENTION, StoreBase, StoredSchedule, check_schedule_id

__all__ = ["MemoryStore"]


# --- MemoryStore --------------------------------------------------------------------------------


class MemoryStore(StoreBase):
    """Schedules and fire claims in process memory (for tests and single-process apps).

    Claims older than ``fire_retention`` before the newest claimed fire time are dropped now
    and then, so memory stays bounded for schedules that run forever.
    """

    def __init__(self, *, fire_retention: TimeDuration = DEFAULT_FIRE_RETENTION) -> None:
        super().__init__()
        self._records: dict[str, StoredSchedule] = {}
        self._claims: dict[tuple[str, int], str] = {}
        self._retention = fire_retention.micros
        self._newest_fire: int | None = None
        self._claims_since_prune = 0
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ScheduleStoreError("MemoryStore is closed")

    async def load_all(self) -> list[StoredSchedule]:
        self._check_open()
        return list(self._records.values())

    async def save(self, record: StoredSchedule) -> None:
        self._check_open()
        if not isinstance(record, StoredSchedule):
            raise TypeError(f"save: expected StoredSchedule, got {type(record).__name__}")
        self._records[record.id] = record

    async def save_many(self, records: Iterable[StoredSchedule]) -> None:
        self._check_open()
        batch = list(records)
        for record in batch:
            if not isinstance(record, StoredSchedule):
                raise TypeError(f"save_many: expected StoredSchedule, got {type(record).__name__}")
        self._records.update((record.id, record) for record in batch)

    async def delete(self, schedule_id: str) -> None:
        self._check_open()
        self._records.pop(schedule_id, None)

    async def delete_many(self, schedule_ids: Iterable[str]) -> None:
        self._check_open()
        for schedule_id in schedule_ids:
            self._records.pop(schedule_id, None)

    async def claim_fires(self, fires: Iterable[tuple[str, Timestamp]], owner: str) -> list[bool]:
        self._check_open()
        return [self._claim(schedule_id, fire_time, owner) for schedule_id, fire_time in fires]

    async def claim_fire(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        self._check_open()
        return self._claim(schedule_id, fire_time, owner)

    def _claim(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        key = (check_schedule_id(schedule_id), fire_time.micros_since_epoch)
        if key in self._claims:
            return False
        self._claims[key] = owner
        fire = fire_time.micros_since_epoch
        if self._newest_fire is None or fire > self._newest_fire:
            self._newest_fire = fire
        self._claims_since_prune += 1
        if self._claims_since_prune >= 4096:
            self._prune(None)
        return True

    async def claimed_by(self, schedule_id: str, fire_time: Timestamp) -> str | None:
        """Who claimed a fire, or None."""
        return self._claims.get((schedule_id, fire_time.micros_since_epoch))

    async def prune_fires(self, before: Timestamp | None = None) -> int:
        """Drop claims for fire times before ``before`` (default: the newest claimed fire time
        minus the retention); returns how many were dropped."""
        return self._prune(before)

    def _prune(self, before: Timestamp | None) -> int:
        self._claims_since_prune = 0
        if before is None:
            if self._newest_fire is None:
                return 0
            cutoff = self._newest_fire - self._retention
        else:
            cutoff = before.micros_since_epoch
        old = [key for key in self._claims if key[1] < cutoff]
        for key in old:
            del self._claims[key]
        return len(old)

    async def aclose(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<MemoryStore schedules={len(self._records)} claims={len(self._claims)}>"
