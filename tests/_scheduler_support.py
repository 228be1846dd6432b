"""Shared helpers for the scheduler tests: a recording target and time shorthands."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio

from spacetime_sched import TimeDuration, Timestamp
from spacetime_sched.testing._clock import VirtualClock

START = Timestamp.from_datetime(dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))


def seconds(value: float) -> TimeDuration:
    return TimeDuration.from_seconds(value)


def at(offset_seconds: float) -> Timestamp:
    """START + offset_seconds."""
    return START + TimeDuration.from_seconds(offset_seconds)


class Recorder:
    """An async target that records (reducer, args, virtual time in seconds since START).

    ``fail`` maps a reducer name to how many of its next calls raise; ``busy`` maps a reducer
    name to virtual seconds each call takes; ``block`` makes calls of that reducer wait for
    ``release`` to be set.
    """

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, tuple[Any, ...], float]] = []
        self.fail: dict[str, int] = {}
        self.busy: dict[str, float] = {}
        self.running = 0
        self.max_running = 0

    def times(self, reducer: str | None = None) -> list[float]:
        return [t for name, _, t in self.calls if reducer is None or name == reducer]

    async def __call__(self, reducer: str, *args: Any) -> str:
        now = self.clock.now_micros() - START.micros_since_epoch
        self.calls.append((reducer, args, now / 1e6))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if reducer in self.busy:
                await self.clock.sleep(self.busy[reducer])
            if self.fail.get(reducer, 0) > 0:
                self.fail[reducer] -= 1
                raise RuntimeError(f"{reducer} failed")
            return f"{reducer} ok"
        finally:
            self.running -= 1


class FakeClient:
    """A client-shaped target: ``call_reducer_async(name, *args, timeout=...)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], Any]] = []
        self.hang = False

    async def call_reducer_async(
        self,
        reducer_name: str,
        *args: Any,
        timeout: Any = None,  # noqa: ASYNC109 - the client's signature
    ) -> None:
        self.calls.append((reducer_name, args, timeout))
        if self.hang:
            await anyio.sleep_forever()
