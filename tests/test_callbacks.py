"""The one callback runner (``spacetime_sched._callbacks``): sync or async callbacks, an
exception logged and never raised, every other callback still called, in order."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from spacetime_sched._callbacks import call_callback_logged, call_callbacks_logged

log = logging.getLogger("test.callbacks")


async def test_the_batch_runner_calls_every_callback_for_every_call_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []

    def plain(x: int, y: int) -> None:
        seen.append(("plain", x, y))

    async def coroutine(x: int, y: int) -> None:
        seen.append(("async", x, y))

    def broken(x: int, y: int) -> None:
        raise RuntimeError(f"broken on {x}")

    with caplog.at_level(logging.ERROR, logger="test.callbacks"):
        await call_callbacks_logged(
            [plain, broken, coroutine], [(1, 2), (3, 4)], logger=log, what="rows"
        )
    assert seen == [("plain", 1, 2), ("async", 1, 2), ("plain", 3, 4), ("async", 3, 4)]
    assert [r.getMessage() for r in caplog.records] == [
        f"callback {broken!r} raised for rows (ignored)"
    ] * 2


async def test_one_call_logs_and_swallows_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise ValueError("nope")

    with caplog.at_level(logging.ERROR, logger="test.callbacks"):
        await call_callback_logged(broken, logger=log, what="one")
    assert "nope" in caplog.text
