"""A min-heap of deadlines with lazy deletion: the one used wherever something waits for a time.

Every timer of the library keeps its pending deadlines the same way: the scheduler's fire queue,
the virtual clock's sleepers, the local server's schedule timer (and it fits a client's call
deadlines too). An entry is a tuple whose first item is the deadline (µs as an ``int``, or
seconds as a ``float``) and whose second item breaks ties (a sequence number, or an id), so
comparing entries never reaches the payload after them.

Removing an entry from the middle of a heap is O(n), so nobody does: a change (cancel, re-arm,
answered call) leaves the old entry where it is, and the heap drops it when it reaches the top,
because ``is_live(entry)`` then says it no longer counts (*lazy deletion*). Callers that know
they made an entry stale say so with :meth:`DeadlineHeap.note_stale`; when stale entries are
both more than ``compact_slack`` and more than half of the heap, it is rebuilt from the live
ones, so its size stays proportional to what is really pending. Every operation is O(log n).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, Generic, TypeVar

__all__ = ["DEFAULT_COMPACT_SLACK", "DeadlineHeap"]

#: Stale entries tolerated before a compaction is considered.
DEFAULT_COMPACT_SLACK: Final = 1024

E = TypeVar("E", bound="tuple[Any, ...]")


class DeadlineHeap(Generic[E]):
    """Entries ordered by deadline (their first item); stale ones skipped and swept lazily.

    ``is_live(entry)`` tells whether an entry still counts. It is asked when an entry reaches
    the top (:meth:`peek`, :meth:`pop_due`, :meth:`pop`) and when the heap is compacted.
    """

    __slots__ = ("_heap", "_is_live", "_slack", "_stale")

    def __init__(
        self, is_live: Callable[[E], bool], *, compact_slack: int = DEFAULT_COMPACT_SLACK
    ) -> None:
        self._heap: list[E] = []
        self._is_live = is_live
        self._slack = compact_slack
        self._stale = 0

    def __len__(self) -> int:
        """Entries held, stale ones included (a bound on memory, not a count of live ones)."""
        return len(self._heap)

    def __iter__(self) -> Iterator[E]:
        """Every entry held, stale ones included, in no particular order."""
        return iter(self._heap)

    def push(self, entry: E) -> None:
        heapq.heappush(self._heap, entry)

    @property
    def entries(self) -> list[E]:
        """The heap list itself (``entries[0]`` is the top, possibly stale). Read only; its
        identity never changes, so hot loops may keep a reference."""
        return self._heap

    def first_deadline(self) -> Any:
        """The deadline at the top, stale or not (cheap: for "is anything due?" checks where a
        stale top is harmless because taking it skips it), or ``None`` when empty."""
        heap = self._heap
        return heap[0][0] if heap else None

    def peek(self) -> E | None:
        """The live entry with the earliest deadline (stale ones above it are dropped)."""
        heap = self._heap
        is_live = self._is_live
        while heap:
            if is_live(heap[0]):
                return heap[0]
            heapq.heappop(heap)
            if self._stale:
                self._stale -= 1
        return None

    def pop(self) -> E | None:
        """Remove and return the live entry with the earliest deadline, or ``None``."""
        entry = self.peek()
        if entry is not None:
            heapq.heappop(self._heap)
        return entry

    def pop_due(self, now: Any) -> E | None:
        """Remove and return the earliest live entry whose deadline is ``<= now``, or ``None``."""
        heap = self._heap
        is_live = self._is_live
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if is_live(entry):
                return entry
            if self._stale:
                self._stale -= 1
        return None

    def note_stale(self, count: int = 1) -> None:
        """Record that ``count`` entries went stale; compact when they dominate the heap."""
        self._stale += count
        if self._stale > self._slack and self._stale * 2 > len(self._heap):
            self.compact()

    def compact(self) -> None:
        """Drop every stale entry now (O(n))."""
        is_live = self._is_live
        self.replace(entry for entry in self._heap if is_live(entry))

    def replace(self, entries: Iterable[E]) -> None:
        """Hold exactly ``entries`` (heapified in O(n)), e.g. after every deadline moved."""
        heap = list(entries)
        heapq.heapify(heap)
        self._heap[:] = heap
        self._stale = 0

    def drain(self) -> list[E]:
        """Remove and return every entry, stale ones included, in no particular order."""
        entries = self._heap[:]
        self._heap.clear()
        self._stale = 0
        return entries

    def __repr__(self) -> str:
        return f"<DeadlineHeap entries={len(self._heap)} stale~{self._stale}>"
