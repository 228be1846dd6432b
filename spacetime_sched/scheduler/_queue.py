"""The fire queue: every planned fire, earliest first, on the shared deadline heap.

An entry is ``(key, schedule id)``, or ``(key, schedule id, fire)`` when a jitter moved the key
away from the intended fire time; the schedule is looked up by id when the entry is taken. The
id (a ``str`` the schedule holds anyway) breaks ties in C, in creation order. Entries hold only
an int and a str, so the garbage collector stops tracking them: a million pending schedules add
no work to its full collections, and each entry is a few bytes smaller.

An entry is live while its schedule still exists, its fire is still the schedule's
``next_micros`` and the schedule is pending or running; cancel, pause and reschedule only make
the old entry stale (:meth:`FireQueue.cancel`), and the heap drops it lazily. Two live entries
for one fire (after a resume, or a replaced id) are harmless: taking the first moves the
schedule's ``next_micros``, which makes the second stale.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from .._deadlines import DeadlineHeap
from ._models import ScheduledReducerCall, ScheduleStatus
from ._planning import next_after

__all__ = ["FireQueue"]

_PENDING: Final = ScheduleStatus.PENDING
_RUNNING: Final = ScheduleStatus.RUNNING

Entry = tuple[Any, ...]


def _counts(s: ScheduledReducerCall) -> bool:
    """Whether ``s`` has a live entry (a planned fire and a status that fires)."""
    return s.next_micros is not None and (s.status is _PENDING or s.status is _RUNNING)


class FireQueue:
    """Planned fires by key. ``on_earlier(key)`` is called when a push makes ``key`` the
    earliest deadline anyone may be sleeping towards (the timer uses it to wake up)."""

    __slots__ = ("_found", "_heap", "_random", "_schedules", "entries", "on_earlier")

    def __init__(
        self, schedules: Mapping[str, ScheduledReducerCall], random: _random.Random
    ) -> None:
        self._schedules = schedules
        self._heap: DeadlineHeap[Entry] = DeadlineHeap(self._is_live)
        #: The heap list (``entries[0][0]`` is the earliest key, possibly stale): for the
        #: executor's "is anything due?" check, which runs once per fire.
        self.entries = self._heap.entries
        self._found: ScheduledReducerCall | None = None
        self._random = random
        self.on_earlier: Callable[[int], None] | None = None

    def _is_live(self, entry: Entry) -> bool:
        s = self._schedules.get(entry[1])
        if s is None:
            return False
        fire = entry[2] if len(entry) == 3 else entry[0]
        # remembered for take_due, which then needs no second lookup
        self._found = s
        return fire == s.next_micros and (s.status is _PENDING or s.status is _RUNNING)

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, s: ScheduledReducerCall, fire: int | None) -> None:
        """Queue ``s``'s fire at ``fire`` (None: nothing to queue), jittered per its policy."""
        if fire is None:
            return
        jitter = s.policy.jitter
        if jitter is None or not jitter.micros:
            key = fire
            self._heap.push((fire, s.id))
        else:
            # A random delay up to `jitter`, but never reaching the following fire time.
            delay = self._random.randrange(jitter.micros + 1)
            following = next_after(s.schedule, s.created_micros, fire)
            if following is not None:
                delay = min(delay, max(0, following - fire - 1))
            key = fire + delay
            self._heap.push((key, s.id, fire))
        if self.on_earlier is not None:
            self.on_earlier(key)

    def cancel(self, s: ScheduledReducerCall) -> None:
        """``s``'s queued fire (if any) no longer counts; call *before* changing ``s``."""
        if _counts(s):
            self._heap.note_stale()

    def first_key(self) -> int | None:
        """The earliest key, possibly of a stale entry (cheap; taking it skips it)."""
        key: int | None = self._heap.first_deadline()
        return key

    def peek_key(self) -> int | None:
        """The earliest key of a live fire, or None."""
        entry = self._heap.peek()
        return None if entry is None else int(entry[0])

    def take_due(self, now: int) -> tuple[ScheduledReducerCall, int, int] | None:
        """Remove the earliest live fire with key ``<= now``: ``(schedule, key, fire)``."""
        entry = self._heap.pop_due(now)
        if entry is None:
            return None
        s = self._found  # the schedule _is_live just looked up for this entry
        assert s is not None
        key = entry[0]
        return s, key, entry[2] if len(entry) == 3 else key

    def rebuild(self, schedules: Iterable[ScheduledReducerCall]) -> None:
        """Queue exactly the planned fires of ``schedules`` (after fire times moved)."""
        self._heap.replace((s.next_micros, s.id) for s in schedules if _counts(s))

    def compact(self) -> None:
        self._heap.compact()
