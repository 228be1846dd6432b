"""The token never reaches a log record, whatever logger level is set (issue 8, defect 8).

SpacetimeDB puts the connection's token in the WebSocket upgrade response
(``spacetime-identity-token``; crates/client-api/src/routes/subscribe.rs sets it beside
``spacetime-identity``), and httpcore logs response headers at DEBUG. The client filters the
loggers of the libraries it drives; this test turns every logger up to DEBUG, connects over a
real socket (httpcore's path, not the in-process transport) and reads every record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from spacetime_sched.client import DbConnection

testing = pytest.importorskip("spacetime_sched.testing")


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))


@pytest.fixture
def every_log_record() -> Iterator[_Everything]:
    handler = _Everything()
    root = logging.getLogger()
    saved = root.level
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = [logger.level for logger in loggers]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def test_no_log_record_holds_the_token(every_log_record: _Everything) -> None:
    async with testing.LocalServer(testing.example_module.make_module()) as server:
        connect = DbConnection.builder().with_uri(server.uri).with_database_name(server.database)
        async with connect.build() as conn:
            token = conn.token
            await conn.call_reducer_async("add_person", "Ann")
        # Reconnect with the token: now it also travels in the request's Authorization header.
        async with connect.with_token(token).build() as again:
            assert again.token == token
    names = {record.name for record in every_log_record.records}
    assert any(name.startswith("httpcore") for name in names)  # the path under test was logged
    assert any("identity-token" in line for line in every_log_record.lines)  # ... with the header
    leaks = [line for line in every_log_record.lines if token in line]
    assert leaks == []
