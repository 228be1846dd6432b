"""The scheduler's clock: re-exported from :mod:`spacetime_sched._clock`, shared with the
local server and :class:`~spacetime_sched.testing.VirtualClock`."""

from __future__ import annotations

from .._clock import WALL_CHECK_INTERVAL_MICROS, Clock, SystemClock

__all__ = ["WALL_CHECK_INTERVAL_MICROS", "Clock", "SystemClock"]
