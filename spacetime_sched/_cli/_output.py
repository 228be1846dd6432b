"""What ``run`` and ``demo`` show while schedules run: a live table, or one JSON line per event.

On a terminal the commands draw a live table (with :mod:`rich`, the ``cli`` extra) of each
schedule: its trigger, next fire in local time, runs, failures and last lateness. Otherwise
(output piped to a file or a log collector), or with ``--log-format json``, each event is one
JSON object on its own line, flushed at once:

``{"event": "ready" | "fired" | "failed" | "missed" | "stopping" | "stopped", "time": ISO-8601
UTC, ...}``; fire events carry ``schedule``, ``reducer``, ``fire_time``, ``attempt``,
``lateness_us`` (integer microseconds) and, on failure, ``error``.

The live table is redrawn by our own task (``auto_refresh=False``): rich's auto-refresh would
start a thread, and every task here belongs to the command's task group.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from typing import IO, TYPE_CHECKING, Any, Final

import anyio

from .._time import ScheduleAt, TimeDuration, Timestamp
from ..scheduler import ReducerScheduler, ScheduleResult

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["CLI_EXTRA", "ScheduleBoard", "emit_json", "live_board", "load_rich", "wants_live"]

#: How to install what the terminal output needs; named in every message about it.
CLI_EXTRA: Final = "pip install 'spacetime-sched[cli]'"
_REFRESH_SECONDS: Final = 0.25


def load_rich() -> None:
    """Raise ``ImportError`` naming the ``cli`` extra if :mod:`rich` is not installed."""
    try:
        import rich.live  # noqa: F401
    except ImportError:
        raise ImportError(
            f"the live table needs the 'rich' package, which is not installed: {CLI_EXTRA} "
            "(or use --log-format json)"
        ) from None


def wants_live(log_format: str, stream: IO[str] | None = None) -> bool:
    """The live table for ``--log-format auto`` on a terminal; JSON lines otherwise."""
    stream = sys.stdout if stream is None else stream
    return log_format == "auto" and stream.isatty()


def emit_json(event: str, stream: IO[str] | None = None, **fields: Any) -> None:
    """Write one JSON event line (see the module docstring) and flush it."""
    record = {"event": event, "time": Timestamp.now().to_iso(), **fields}
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
    stream.flush()


def result_fields(result: ScheduleResult, label: str) -> dict[str, Any]:
    """The JSON fields of one execution attempt."""
    fields: dict[str, Any] = {
        "schedule": label,
        "reducer": result.reducer_name,
        "fire_time": result.fire_time.to_iso(),
        "attempt": result.attempt,
        "lateness_us": result.lateness.micros,
    }
    if result.error is not None:
        fields["error"] = f"{type(result.error).__name__}: {result.error}"
    return fields


def result_event(result: ScheduleResult) -> str:
    return "missed" if result.missed else "fired" if result.ok else "failed"


def describe_schedule(schedule: object) -> str:
    """A trigger's own description, or SpacetimeDB's ``ScheduleAt`` in the same words."""
    match schedule:
        case ScheduleAt.Time(when):
            return f"once at {when.to_iso()}"
        case ScheduleAt.Interval(every):
            return f"every {every.format_human_readable()}"
    describe = getattr(schedule, "describe", None)
    return str(describe()) if describe is not None else repr(schedule)


class ScheduleBoard:
    """The counters behind the live table, fed by the scheduler's execution callback.

    ``labels`` maps schedule ids to the names shown (the file's ``[schedules.NAME]``, or the
    demo's labels); schedules without a label show their id. ``zone`` is where "next fire" is
    shown (default: the machine's local zone).
    """

    def __init__(
        self,
        scheduler: ReducerScheduler,
        labels: Mapping[str, str],
        *,
        title: str = "schedules",
        zone: _dt.tzinfo | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.labels = labels
        self.title = title
        self.zone = zone
        self.runs: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.lateness: dict[str, TimeDuration] = {}

    def record(self, result: ScheduleResult) -> None:
        """The execution callback: count one attempt."""
        sid = result.schedule_id
        if result.ok:
            self.runs[sid] = self.runs.get(sid, 0) + 1
        elif not result.missed:
            self.failures[sid] = self.failures.get(sid, 0) + 1
        if not result.missed:
            self.lateness[sid] = result.lateness

    def _local(self, t: Timestamp | None) -> str:
        if t is None:
            return "-"
        local = t.to_datetime(self.zone) if self.zone else t.to_utc().astimezone()
        return local.strftime("%Y-%m-%d %H:%M:%S %Z")

    def rows(self) -> list[tuple[str, ...]]:
        """One row per schedule: name, reducer, trigger, status, next fire (local time), runs,
        failures, last lateness."""
        rows: list[tuple[str, ...]] = []
        for s in self.scheduler.list_schedules():
            late = self.lateness.get(s.id)
            rows.append(
                (
                    self.labels.get(s.id, s.id),
                    s.reducer_name,
                    describe_schedule(s.schedule),
                    s.status.value,
                    self._local(s.next_run),
                    str(self.runs.get(s.id, 0)),
                    str(self.failures.get(s.id, 0)),
                    "-" if late is None else late.format_human_readable(),
                )
            )
        return rows

    def render(self) -> Table:
        from rich.table import Table

        table = Table(title=self.title, title_justify="left")
        headers = ("schedule", "reducer", "trigger", "status", "next fire (local)")
        for header in headers:
            table.add_column(header, no_wrap=header != "trigger")
        for header in ("runs", "failures", "last lateness"):
            table.add_column(header, justify="right", no_wrap=True)
        for row in self.rows():
            style = "red" if row[6] != "0" else None
            table.add_row(*row, style=style)
        return table


@contextlib.asynccontextmanager
async def live_board(board: ScheduleBoard, console: Console) -> AsyncIterator[None]:
    """``async with live_board(board, console):`` shows ``board`` as a live table, redrawn four
    times a second by a task of its own task group, until the block ends (then drawn once
    more, final). Print above it with :func:`console_printer`."""
    from rich.live import Live

    live = Live(board.render(), console=console, auto_refresh=False)

    async def redraw() -> None:
        while True:
            await anyio.sleep(_REFRESH_SECONDS)
            live.update(board.render(), refresh=True)

    live.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(redraw)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
    finally:
        live.update(board.render(), refresh=True)
        live.stop()


def console_printer(console: Console) -> Callable[[str], None]:
    """A narration function printing through ``console`` (above a live table), no markup."""

    def out(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    return out
