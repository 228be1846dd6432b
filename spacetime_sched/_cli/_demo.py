"""The end-to-end demo behind ``python -m spacetime_sched demo``.

In a few seconds it shows the whole product working, and checks that it did:

1. a local SpacetimeDB-compatible server running the ``quickstart`` module starts in this
   process (or ``--uri`` names an existing server running that module);
2. a :class:`~spacetime_sched.client.DbConnection` connects with scheduling enabled and
   subscribes to the ``event``, ``tick_schedule`` and ``tick_log`` tables;
3. a reducer is called directly (identity, the server's commit timestamp, argument checks);
4. the client-side scheduler runs a one-shot, an interval, a cron schedule and a daily schedule
   in ``America/New_York`` (whose next runs are shown across the next DST change), and a
   schedule whose reducer fails, retried with backoff;
5. the server schedules reducers itself: rows of its ``tick_schedule`` table with a
   ``ScheduleAt.Interval`` and a ``ScheduleAt.Time``, whose runs arrive as ``tick_log`` rows;
6. the scheduler's statistics and a summary table are printed, then every expectation is
   checked. :func:`main` returns 0 only if all of them held, so scripts and CI can trust it.

Everything lives inside ``async with`` blocks (server, connection, scheduler), so leaving
:func:`run_demo` in any way, including Ctrl-C, stops every task it started. It runs the same on
asyncio and trio (``--backend trio``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import anyio
import attrs

from .._backend import current_backend
from .._errors import ArgumentError, ReducerError, SpacetimeSchedError
from .._identity import Identity
from .._time import ScheduleAt, TimeDuration, Timestamp
from ..client import DbConnection
from ..scheduler import ReducerScheduler, ScheduledReducerCall, ScheduleResult, ScheduleStatus
from ._output import ScheduleBoard, console_printer, live_board, load_rich, wants_live
from ._signals import StopRequest, run_command

if TYPE_CHECKING:
    from rich.console import Console

    from ..testing import LocalServer, Module

__all__ = ["DemoCheck", "DemoReport", "add_arguments", "main", "run_demo", "run_from_args"]

DEFAULT_DATABASE: Final = "quickstart"
DEFAULT_DURATION: Final = 5.0
#: Below this the repeating schedules cannot run often enough for the checks to mean anything.
MIN_DURATION: Final = 3.0
NEW_YORK: Final = "America/New_York"

#: The client-side schedules, by the label the narration uses.
_ONE_SHOT, _INTERVAL, _CRON, _DAILY, _FAILING = (
    "one-shot",
    "every second",
    "cron",
    "daily 09:00",
    "always fails",
)
#: The failing schedule's retry policy: 1 + 2 attempts, 0.25 s then 0.5 s apart.
_RETRIES: Final = 2
#: The labels of the two server-side schedules (rows of ``tick_schedule``).
_SERVER_INTERVAL, _SERVER_ONCE = "server every second", "server once"

Out = Callable[[str], object]


@attrs.frozen
class DemoCheck:
    """One expectation of the demo and whether it held; ``detail`` says what was seen."""

    name: str
    passed: bool
    detail: str


@attrs.frozen
class DemoReport:
    """What :func:`run_demo` saw.

    ``checks`` are the expectations in the order they were checked; ``stats`` is the client
    scheduler's :meth:`~spacetime_sched.scheduler.ReducerScheduler.get_execution_stats`;
    ``events`` and ``ticks`` are the ``event`` and ``tick_log`` rows this run produced, as they
    arrived through the subscription. ``error`` is set when the demo could not run to the end
    (no server, connection lost, ...).
    """

    backend: str
    uri: str | None
    database: str
    identity: Identity | None
    checks: tuple[DemoCheck, ...]
    stats: Mapping[str, Any]
    events: tuple[Mapping[str, Any], ...]
    ticks: tuple[Mapping[str, Any], ...]
    elapsed: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the demo ran to the end and every check passed."""
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[DemoCheck]:
        return [c for c in self.checks if not c.passed]


async def run_demo(
    *,
    duration: float = DEFAULT_DURATION,
    out: Out = print,
    uri: str | None = None,
    database: str = DEFAULT_DATABASE,
    console: Console | None = None,
    stop: StopRequest | None = None,
) -> DemoReport:
    """Run the demo on the current event loop (asyncio or trio) and report what happened.

    ``duration`` is how long, in seconds, the schedules run before the results are checked (at
    least 3; startup and shutdown add about a second). ``out`` receives each line of narration.
    ``uri`` names an existing server whose database ``database`` runs the quickstart module;
    without it a :class:`~spacetime_sched.testing.LocalServer` starts in-process. With a
    rich ``console`` (a terminal), the schedules are also shown as the live table of
    ``spacetime-sched run`` while they run. A ``stop`` request (Ctrl-C) ends the demo early,
    inside the local server's block so that the server shuts down normally.
    """
    if not duration >= MIN_DURATION:
        raise ValueError(f"run_demo: duration must be at least {MIN_DURATION} s, got {duration}")
    demo = _Demo(out, duration, database, console)
    try:
        if uri is None:
            local_server, make_module = _local_server()
            demo.say(f"Starting a local SpacetimeDB-compatible server (database {database!r})")
            async with local_server(make_module(), database=database) as server:
                demo.uri = str(server.uri)
                demo.say(f"  listening on {demo.uri}")
                with stop.cancel_scope() if stop is not None else contextlib.nullcontext():
                    await demo.run()
        else:
            demo.uri = uri
            with stop.cancel_scope() if stop is not None else contextlib.nullcontext():
                await demo.run()
    except (SpacetimeSchedError, OSError, ImportError) as exc:
        demo.error = f"{type(exc).__name__}: {exc}"
        demo.say("")
        demo.say(f"The demo could not finish: {demo.error}")
    return demo.report()


def _local_server() -> tuple[type[LocalServer], Callable[[], Module]]:
    """The LocalServer class and the quickstart module factory (an optional extra)."""
    hint = "install it with pip install 'spacetime-sched[server]', or pass --uri"
    # hypercorn is imported only when the server starts: check for it up front.
    for package in ("hypercorn", "starlette"):
        if importlib.util.find_spec(package) is None:
            raise ImportError(f"the local server needs {package}, which is not installed; {hint}")
    try:
        from ..testing import LocalServer, example_module
    except ImportError as exc:
        raise ImportError(f"the local server could not be loaded ({exc}); {hint}") from exc
    return LocalServer, example_module.make_module


def _clock(t: Timestamp) -> str:
    """``HH:MM:SS.mmm`` UTC: enough to follow a few seconds of events."""
    return t.to_iso()[11:23]


def _local(t: Timestamp, zone: str) -> str:
    return t.to_timezone(zone).strftime("%Y-%m-%d %H:%M %Z")


class _Demo:
    """The state of one demo run: what was scheduled, what arrived, what to check."""

    def __init__(
        self, out: Out, duration: float, database: str, console: Console | None = None
    ) -> None:
        self.out = out
        self.console = console
        self.duration = duration
        self.database = database
        self.uri: str | None = None
        self.error: str | None = None
        self.backend = current_backend()
        self.t0 = anyio.current_time()
        self.identity: Identity | None = None
        self.checks: list[DemoCheck] = []
        self.stats: Mapping[str, Any] = {}
        self.events: list[Mapping[str, Any]] = []
        self.ticks: list[Mapping[str, Any]] = []
        #: client schedule id -> label, and the results of every attempt, per label
        self.labels: dict[str, str] = {}
        self.results: dict[str, list[ScheduleResult]] = {}
        #: server schedule label -> scheduled_id (a row of tick_schedule)
        self.server_ids: dict[str, int] = {}
        #: the client schedules at the end, by label (filled by summarize)
        self.scheduled: dict[str, ScheduledReducerCall] = {}

    # --- narration ----------------------------------------------------------------------------

    def say(self, line: str) -> None:
        self.out(line)

    def stamp(self, line: str) -> None:
        """A line stamped with the seconds since the demo started."""
        self.out(f"  [{anyio.current_time() - self.t0:5.2f}s] {line}")

    def section(self, title: str) -> None:
        self.out("")
        self.out(f"== {title} ==")

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(DemoCheck(name, passed, detail))

    def report(self) -> DemoReport:
        return DemoReport(
            backend=self.backend,
            uri=self.uri,
            database=self.database,
            identity=self.identity,
            checks=tuple(self.checks),
            stats=self.stats,
            events=tuple(self.events),
            ticks=tuple(self.ticks),
            elapsed=anyio.current_time() - self.t0,
            error=self.error,
        )

    # --- the run ------------------------------------------------------------------------------

    async def run(self) -> None:
        assert self.uri is not None
        builder = (
            DbConnection.builder()
            .with_uri(self.uri)
            .with_database_name(self.database)
            .with_scheduling(max_concurrent_executions=5)
        )
        self.section(f"Connect ({self.backend})")
        async with builder.build() as conn:
            self.identity = conn.identity
            self.say(f"  connected to {self.database!r} as identity {conn.identity}")
            self.say(f"  connection id {conn.connection_id}")
            await self.subscribe(conn)
            await self.direct_calls(conn)
            scheduler = conn.scheduler
            scheduler.add_execution_callback(self.on_execution)
            self.schedule_client_side(scheduler)
            try:
                await self.schedule_server_side(conn)

                self.section(
                    f"Watching for {self.duration:g} s (rows arrive through the subscription)"
                )
                if self.console is None:
                    await anyio.sleep(self.duration)
                else:
                    board = ScheduleBoard(scheduler, self.labels, title="client schedules")
                    scheduler.add_execution_callback(board.record)
                    async with live_board(board, self.console):
                        await anyio.sleep(self.duration)

                self.section("Clean up")
                for schedule in scheduler.list_schedules():
                    if scheduler.cancel_schedule(schedule.id):
                        self.say(f"  cancelled client schedule {self.labels[schedule.id]!r}")
                await self.cancel_server_interval(conn)
                await scheduler.wait_idle()
                self.stats = scheduler.get_execution_stats()
                self.summarize(scheduler)
            finally:
                await self.cancel_leftover_server_schedules(conn)
        self.say("  connection closed; every task the demo started has ended")
        self.verify()

    async def subscribe(self, conn: DbConnection) -> None:
        handle = await conn.subscribe(
            ["SELECT * FROM event", "SELECT * FROM tick_schedule", "SELECT * FROM tick_log"],
            buffer_updates=False,
        )
        existing = sum(len(rows) for rows in handle.rows.values())
        self.say(f"  subscribed to event, tick_schedule and tick_log ({existing} rows already)")
        identity = conn.identity

        def on_event(row: Mapping[str, Any]) -> None:
            if row["sender"] != identity:  # rows of earlier runs or other clients
                return
            self.events.append(row)
            self.stamp(f"row event     #{row['id']} {row['name']!r} (sender: us)")

        def on_tick(row: Mapping[str, Any]) -> None:
            if row["scheduled_id"] not in self.server_ids.values():
                return
            self.ticks.append(row)
            self.stamp(
                f"row tick_log  #{row['id']} {row['label']!r} fired by the server at "
                f"{_clock(row['fired_at'])}"
            )

        conn.db["event"].on_insert(on_event)
        conn.db["tick_log"].on_insert(on_tick)

    async def direct_calls(self, conn: DbConnection) -> None:
        self.section("Call a reducer directly")
        before = Timestamp.now()
        result = await conn.call_reducer_async("add_person", "Ada Lovelace")
        after = Timestamp.now()
        self.say(
            f"  add_person('Ada Lovelace') committed; the server ran it at "
            f"{result.timestamp.to_iso()} (request {result.request_id})"
        )
        # The server clock may differ from ours; a few seconds either way is still "now".
        slack = TimeDuration.from_seconds(5)
        self.check(
            "direct call committed",
            before - slack <= result.timestamp <= after + slack,
            f"server timestamp {result.timestamp.to_iso()}, local call {before.to_iso()}",
        )
        try:
            await conn.call_reducer_async("add", 1, -1)
        except ArgumentError as exc:
            self.say(f"  add(1, -1) was refused before sending: {exc}")
            self.check("arguments checked against the schema", True, str(exc))
        else:
            self.check("arguments checked against the schema", False, "add(1, -1) was sent")

    def schedule_client_side(self, scheduler: ReducerScheduler) -> None:
        self.section("Schedule reducers from the client")
        now = Timestamp.now()
        second = TimeDuration.from_seconds(1)
        once_at = now + second
        one_shot = scheduler.schedule_in_seconds(
            "record_event", (_ONE_SHOT, once_at, ScheduleAt.Time(once_at)), 1.0
        )
        self.labels[one_shot] = _ONE_SHOT
        self.say(
            f"  {_ONE_SHOT:13} record_event once, in 1 s "
            f"(at {_clock(_next_run(scheduler, one_shot))})"
        )

        interval = scheduler.schedule_at_interval(
            "record_event", (_INTERVAL, now, ScheduleAt.Interval(second)), second
        )
        self.labels[interval] = _INTERVAL
        self.say(
            f"  {_INTERVAL:13} record_event every 1 s, first at "
            f"{_clock(_next_run(scheduler, interval))}"
        )

        cron = scheduler.schedule_cron("add", (20, 22), "* * * * * *", timezone_info=NEW_YORK)
        self.labels[cron] = _CRON
        trigger = scheduler.get_schedule(cron).schedule
        fires = _next_fires(trigger, now, 3)
        self.say(
            f"  {_CRON:13} add(20, 22) on cron '* * * * * *' (every second, {NEW_YORK}); next: "
            + ", ".join(_clock(t) for t in fires)
        )

        daily = scheduler.schedule_daily(
            "add_person", ("Grace Hopper",), 9, 0, timezone_info=NEW_YORK
        )
        self.labels[daily] = _DAILY
        self.show_daily(scheduler, daily)

        failing = scheduler.schedule_in_seconds(
            "fail",
            ("card declined",),
            0.5,
            max_retries=_RETRIES,
            backoff_base=0.25,
            backoff_jitter=0.0,
        )
        self.labels[failing] = _FAILING
        self.say(
            f"  {_FAILING:13} fail('card declined') in 0.5 s, max_retries={_RETRIES}, "
            "backoff 0.25 s doubling"
        )

    def show_daily(self, scheduler: ReducerScheduler, schedule_id: str) -> None:
        """Print the daily schedule's next run and its runs on both sides of the next DST
        change in New York, where the same 09:00 moves by an hour in UTC."""
        s = scheduler.get_schedule(schedule_id)
        nxt = _next_run(scheduler, schedule_id)
        self.say(
            f"  {_DAILY:13} add_person('Grace Hopper') daily at 09:00 {NEW_YORK}; next run "
            f"{_local(nxt, NEW_YORK)} ({nxt.to_iso()[:16]}Z)"
        )
        before, after = _around_offset_change(s.schedule, nxt, ZoneInfo(NEW_YORK))
        gap = after - before
        self.say(
            f"  {'':13} across the next DST change: {_local(before, NEW_YORK)} = "
            f"{before.to_iso()[11:16]}Z, then {_local(after, NEW_YORK)} = "
            f"{after.to_iso()[11:16]}Z ({gap.format_human_readable()} apart)"
        )
        zone = ZoneInfo(NEW_YORK)
        at_nine = all(t.to_timezone(zone).time() == _dt.time(9) for t in (nxt, before, after))
        self.check(
            "daily schedule is DST-correct",
            at_nine and gap in (TimeDuration.from_hours(23), TimeDuration.from_hours(25)),
            f"next {_local(nxt, NEW_YORK)}; {_local(before, NEW_YORK)} -> "
            f"{_local(after, NEW_YORK)} is {gap.format_human_readable()}",
        )

    async def schedule_server_side(self, conn: DbConnection) -> None:
        self.section("Schedule reducers on the server (schedule table tick_schedule)")
        schedules = {
            _SERVER_INTERVAL: ScheduleAt.Interval(TimeDuration.from_seconds(1)),
            _SERVER_ONCE: ScheduleAt.Time(Timestamp.now() + TimeDuration.from_seconds(1.5)),
        }
        for label, at in schedules.items():
            known = {row["scheduled_id"] for row in conn.db["tick_schedule"]}
            await conn.call_reducer_async("schedule_tick", label, at)
            # The caller's own row changes are applied before the call returns.
            new = [
                row
                for row in conn.db["tick_schedule"]
                if row["label"] == label and row["scheduled_id"] not in known
            ]
            if len(new) != 1:
                raise SpacetimeSchedError(
                    f"schedule_tick({label!r}) should add one tick_schedule row, saw {new!r}"
                )
            self.server_ids[label] = new[0]["scheduled_id"]
            self.say(
                f"  schedule_tick({label!r}, {_describe(at)}) -> tick_schedule row "
                f"scheduled_id={new[0]['scheduled_id']}"
            )

    async def cancel_server_interval(self, conn: DbConnection) -> None:
        scheduled_id = self.server_ids[_SERVER_INTERVAL]
        await conn.call_reducer_async("cancel_tick", scheduled_id)
        remaining = [r for r in conn.db["tick_schedule"] if r["scheduled_id"] == scheduled_id]
        gone = "is gone" if not remaining else "is STILL THERE"
        self.say(f"  cancel_tick({scheduled_id}): the server's schedule row {gone}")
        self.check(
            "server interval cancelled",
            not remaining,
            f"tick_schedule rows left for scheduled_id {scheduled_id}: {len(remaining)}",
        )

    async def cancel_leftover_server_schedules(self, conn: DbConnection) -> None:
        """Leave no schedule of ours running on the server, even when the demo failed or was
        interrupted (on a real SpacetimeDB it would otherwise tick forever)."""
        ours = set(self.server_ids.values())
        leftovers = [
            r["scheduled_id"] for r in conn.db["tick_schedule"] if r["scheduled_id"] in ours
        ]
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            for scheduled_id in leftovers:
                try:
                    await conn.call_reducer_async("cancel_tick", scheduled_id)
                except SpacetimeSchedError as exc:  # the connection may be gone; say so
                    self.say(f"  could not cancel server schedule {scheduled_id}: {exc}")
                else:
                    self.say(f"  cancelled leftover server schedule {scheduled_id}")

    def on_execution(self, result: ScheduleResult) -> None:
        """Scheduler execution callback: runs after every attempt of every client schedule."""
        label = self.labels.get(result.schedule_id, result.schedule_id)
        self.results.setdefault(label, []).append(result)
        late = result.lateness.format_human_readable()
        if result.ok:
            committed = getattr(result.value, "timestamp", None)
            where = f", committed {_clock(committed)}" if committed is not None else ""
            self.stamp(f"scheduler     {label!r}: {result.reducer_name} ok, {late} late{where}")
        else:
            self.stamp(
                f"scheduler     {label!r}: attempt {result.attempt}/{_RETRIES + 1} failed: "
                f"{result.error}"
            )

    # --- results ------------------------------------------------------------------------------

    def summarize(self, scheduler: ReducerScheduler) -> None:
        stats = self.stats
        self.section("Scheduler statistics")

        def human(value: TimeDuration | None) -> str:
            return "-" if value is None else value.format_human_readable()

        self.say(
            f"  executions {stats['total_executions']} (ok {stats['successful_executions']}, "
            f"failed {stats['failed_executions']}, retried {stats['retried_executions']}, "
            f"missed {stats['missed_executions']}, skipped {stats['skipped_executions']})"
        )
        self.say(
            f"  success rate {stats['success_rate']:.1%}, average duration "
            f"{human(stats['average_duration'])}, lateness p50 {human(stats['lateness_p50'])}, "
            f"p99 {human(stats['lateness_p99'])}"
        )

        self.section("Summary")
        rows: list[tuple[str, ...]] = [("schedule", "where", "reducer", "runs", "status", "last")]
        for s in scheduler.list_schedules():
            label = self.labels[s.id]
            attempts = self.results.get(label, [])
            last = "-" if not attempts else "ok" if attempts[-1].ok else "error"
            rows.append((label, "client", s.reducer_name, str(s.run_count), s.status.value, last))
        for label, scheduled_id in self.server_ids.items():
            runs = sum(1 for row in self.ticks if row["scheduled_id"] == scheduled_id)
            status = "cancelled" if label == _SERVER_INTERVAL else "completed"
            rows.append((label, "server", "tick", str(runs), status, "ok" if runs else "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for n, row in enumerate(rows):
            self.say(
                "  "
                + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )
            if n == 0:
                self.say("  " + "  ".join("-" * w for w in widths))
        self.scheduled = {self.labels[s.id]: s for s in scheduler.list_schedules()}

    def verify(self) -> None:
        """Check every expectation; print the verdict."""
        runs = {label: [r for r in rs if r.ok] for label, rs in self.results.items()}
        # Intervals and cron fire about once a second; allow a slow, busy machine one miss.
        expected_repeats = max(2, int(self.duration) - 2)

        one_shot = runs.get(_ONE_SHOT, [])
        self.check("client one-shot ran once", len(one_shot) == 1, f"{len(one_shot)} runs")
        interval = runs.get(_INTERVAL, [])
        self.check(
            "client interval repeated",
            len(interval) >= expected_repeats,
            f"{len(interval)} runs (expected at least {expected_repeats})",
        )
        cron = runs.get(_CRON, [])
        self.check(
            "client cron repeated",
            len(cron) >= expected_repeats,
            f"{len(cron)} runs (expected at least {expected_repeats})",
        )
        attempts = self.results.get(_FAILING, [])
        errors = [r.error for r in attempts]
        failing = self.scheduled.get(_FAILING)
        self.check(
            "failing schedule retried, then failed",
            len(attempts) == _RETRIES + 1
            and all(isinstance(e, ReducerError) and e.message == "card declined" for e in errors)
            and failing is not None
            and failing.status is ScheduleStatus.FAILED,
            f"{len(attempts)} attempts, errors: {'; '.join(sorted({str(e) for e in errors}))}",
        )
        recorded = [row for row in self.events if row["name"] in (_ONE_SHOT, _INTERVAL)]
        self.check(
            "event rows arrived through the subscription",
            len(recorded) == len(one_shot) + len(interval) and bool(recorded),
            f"{len(recorded)} event rows for {len(one_shot) + len(interval)} committed calls",
        )
        by_label = {
            label: [row for row in self.ticks if row["scheduled_id"] == scheduled_id]
            for label, scheduled_id in self.server_ids.items()
        }
        server_interval = by_label.get(_SERVER_INTERVAL, [])
        self.check(
            "server interval schedule fired repeatedly",
            len(server_interval) >= expected_repeats,
            f"{len(server_interval)} tick_log rows (expected at least {expected_repeats})",
        )
        server_once = by_label.get(_SERVER_ONCE, [])
        self.check(
            "server one-shot schedule fired once",
            len(server_once) == 1,
            f"{len(server_once)} tick_log rows",
        )
        stats = self.stats
        total = stats.get("total_executions", 0)
        rate = stats.get("success_rate", 0.0)
        p99 = stats.get("lateness_p99")
        consistent = (
            total == sum(len(rs) for rs in self.results.values())
            and stats.get("failed_executions") == _RETRIES + 1
            and abs(rate - stats.get("successful_executions", 0) / max(total, 1)) < 1e-9
        )
        self.check(
            "statistics add up",
            consistent,
            f"{total} executions recorded, {len(self.results)} schedules reported",
        )
        self.check(
            "fires started on time",
            p99 is not None and p99 <= TimeDuration.from_seconds(1),
            f"lateness p99 {'-' if p99 is None else p99.format_human_readable()}",
        )

        self.section("Checks")
        for c in self.checks:
            self.say(f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}")
        elapsed = anyio.current_time() - self.t0
        failed = [c for c in self.checks if not c.passed]
        self.say("")
        if failed:
            self.say(f"demo FAILED: {len(failed)} of {len(self.checks)} checks did not hold")
        else:
            self.say(f"demo OK: all {len(self.checks)} checks passed in {elapsed:.1f} s")


def _next_run(scheduler: ReducerScheduler, schedule_id: str) -> Timestamp:
    nxt = scheduler.get_schedule(schedule_id).next_run
    if nxt is None:
        raise SpacetimeSchedError(f"schedule {schedule_id!r} has no next run right after creation")
    return nxt


def _describe(at: ScheduleAt) -> str:
    match at:
        case ScheduleAt.Interval(every):
            return f"ScheduleAt.Interval({every.format_human_readable()})"
        case ScheduleAt.Time(when):
            return f"ScheduleAt.Time({_clock(when)})"
    return repr(at)


def _next_fires(trigger: Any, after: Timestamp, count: int) -> list[Timestamp]:
    fires: list[Timestamp] = []
    t: Timestamp | None = after
    while t is not None and len(fires) < count:
        t = trigger.next_fire(t)
        if t is not None:
            fires.append(t)
    return fires


def _around_offset_change(
    trigger: Any, start: Timestamp, zone: _dt.tzinfo
) -> tuple[Timestamp, Timestamp]:
    """The two consecutive fires of a daily ``trigger`` on either side of the next change of
    ``zone``'s UTC offset (a DST change), searching at most two years ahead."""
    previous = start
    offset = previous.to_timezone(zone).utcoffset()
    for _ in range(800):
        nxt = trigger.next_fire(previous)
        if nxt is None:
            break
        if nxt.to_timezone(zone).utcoffset() != offset:
            return previous, nxt
        previous = nxt
    raise SpacetimeSchedError(f"no UTC offset change in {zone} within two years of {start}")


# --- command line -------------------------------------------------------------------------------


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    if not value >= MIN_DURATION:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_DURATION:g} seconds, got {text}")
    return value


#: The demo command's description, for ``--help``.
DESCRIPTION: Final = (
    "Show spacetime_sched end to end in a few seconds: connect, call reducers, schedule them "
    "from the client (one-shot, interval, cron, daily, retries) and on the server (schedule "
    "tables), watch rows arrive, print statistics. Exits 0 only if everything expected happened."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser`` (this module's own, or a ``demo`` subparser)."""
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="the event loop to run on (default: asyncio)",
    )
    parser.add_argument(
        "--duration",
        type=_duration,
        default=DEFAULT_DURATION,
        metavar="SECONDS",
        help=f"how long the schedules run before the checks (default {DEFAULT_DURATION:g})",
    )
    parser.add_argument(
        "--uri",
        help="use this running server (its database must run the quickstart module) "
        "instead of starting a local one",
    )
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        metavar="NAME",
        help=f"the database name (default {DEFAULT_DATABASE!r})",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "plain"),
        default="auto",
        help="auto: a live table on a terminal, plain lines otherwise; plain: always lines",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spacetime_sched demo", description=DESCRIPTION)
    add_arguments(parser)
    return parser


def run_from_args(args: argparse.Namespace, out: Out | None = None) -> int:
    """Run the demo with parsed :func:`add_arguments` options; return the exit status: 0 if
    every check passed, 1 if not (or the demo could not run), 130 on Ctrl-C (143 on SIGTERM).

    On a terminal (and with rich installed) the narration goes through rich and the schedules
    show as a live table; otherwise (or with ``--log-format plain``) each line is printed and
    flushed.
    """
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        print("--backend trio needs trio installed (pip install trio)", file=sys.stderr)
        return 2
    console = None
    if wants_live(args.log_format):
        try:
            load_rich()
        except ImportError as exc:
            print(f"spacetime-sched demo: {exc}; printing plain lines", file=sys.stderr)
        else:
            from rich.console import Console

            console = Console()
            out = console_printer(console)

    async def demo(stop: StopRequest) -> int:
        report = await run_demo(
            duration=args.duration,
            # flush each line: show progress even through a pipe
            out=out if out is not None else functools.partial(print, flush=True),
            uri=args.uri,
            database=args.database,
            console=console,
            stop=stop,
        )
        return 0 if report.ok else 1

    return run_command(demo, backend=args.backend, graceful=False)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spacetime_sched demo [options]``: run the demo, return the exit status."""
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
