"""Schedule stores, one per module behind one protocol (:mod:`._base`).

* :class:`MemoryStore` (:mod:`._memory`): in-process dictionaries; nothing survives the process.
* :class:`SQLiteStore` (:mod:`._sqlite`): a SQLite file in WAL mode, multi-process safe.
"""

from __future__ import annotations

from ._base import (
    DEFAULT_FIRE_RETENTION,
    BatchScheduleStore,
    ExpiredFire,
    LeasingStore,
    ScheduleStore,
    StoredSchedule,
    WatchableStore,
    decode_value,
    default_owner,
    dumps_value,
    encode_value,
    loads_value,
)
from ._memory import MemoryStore
from ._sqlite import SQLiteStore

__all__ = [
    "DEFAULT_FIRE_RETENTION",
    "BatchScheduleStore",
    "ExpiredFire",
    "LeasingStore",
    "MemoryStore",
    "SQLiteStore",
    "ScheduleStore",
    "StoredSchedule",
    "WatchableStore",
    "decode_value",
    "default_owner",
    "dumps_value",
    "encode_value",
    "loads_value",
]
