"""Every Python snippet of the design document runs as written and does what the document says.

The document (``tests/design/design-document.md``, a verbatim copy of the one this project was
created from) is the API users copy. Each test below runs one snippet through
``tests/_design_support.py`` (which lists the only substitution, the server URI, and the names
it supplies), on asyncio and on trio, against a LocalServer serving a ``game_server`` module
with every reducer the snippets call, and then checks, one assertion at a time, what the
document says the snippet does: its comments (``# "in 30 minutes"``), its prose, and the
reducer calls that reach the server.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import inspect
import io
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from _design_support import (
    DATABASE,
    FAILING_REDUCER,
    blocks,
    builder,
    calls,
    design_server,
    outline,
    python_snippets,
    run,
    signature_of,
    snippet,
    split_at,
    wait_for_call,
)

from spacetime_sched import (
    ClientError,
    EnhancedTimeDuration,
    EnhancedTimestamp,
    ModernSpacetimeDBClient,
    PrecisionTimer,
    ReducerScheduler,
    ScheduleAt,
    ScheduleAtInterval,
    ScheduleAtTime,
    ScheduledReducerCall,
    ScheduleResult,
    ScheduleStatus,
    TimeDuration,
    TimeMetrics,
    Timestamp,
)
from spacetime_sched.testing import LocalServer

UTC = dt.timezone.utc
SECOND = 1_000_000
#: The document's ✅ and ❌, as its copy spells them (UTF-8 read as Mac Roman).
DOC_CHECK = "\N{WHITE HEAVY CHECK MARK}".encode().decode("mac_roman")
DOC_CROSS = "\N{CROSS MARK}".encode().decode("mac_roman")


def documented(code: str, line_start: str) -> str:
    """The quoted text in the comment of the snippet line starting with ``line_start``, decoded
    as the document's author wrote it (the copy's odd characters are UTF-8 read as Mac Roman)."""
    line = next(raw for raw in code.splitlines() if raw.strip().startswith(line_start))
    quoted = re.search(r'#\s*"([^"]*)"', line)
    assert quoted is not None, line
    return demojibake(quoted[1])


def demojibake(text: str) -> str:
    try:
        return text.encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def same_text(printed: str, documented_text: str) -> bool:
    """Equal up to Unicode compatibility: the document's µ is U+03BC (Greek mu), ours the
    micro sign U+00B5; NFKC folds one into the other."""
    return unicodedata.normalize("NFKC", printed) == unicodedata.normalize("NFKC", documented_text)


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """What callbacks print while the block runs (they run in the scheduler's tasks)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        yield out


@contextlib.asynccontextmanager
async def connected(server: LocalServer) -> AsyncIterator[Any]:
    """A connection with a running scheduler, the way the document's client has one.

    ``async with builder.build() as conn`` is the form that works before and after h9c."""
    async with builder(server).build() as conn:
        yield conn


async def not_connected(client: Any) -> None:
    """``client`` has not connected: a reducer call fails at once with a ClientError."""
    with anyio.fail_after(5), pytest.raises(ClientError):
        await client.call_reducer_async("heartbeat")


def by_reducer(scheduler: ReducerScheduler, name: str) -> ScheduledReducerCall:
    (found,) = scheduler.list_schedules(reducer_name=name)
    return found


def next_utc(now: Timestamp, hour: int, minute: int) -> Timestamp:
    """The first ``hour:minute`` UTC strictly after ``now``."""
    today = now.to_utc().replace(hour=hour, minute=minute, second=0, microsecond=0)
    candidate = Timestamp.from_datetime(today)
    return candidate if candidate > now else candidate + TimeDuration.from_hours(24)


# --- the document, whole --------------------------------------------------------------------------

#: Which test checks each Python snippet (by the heading above it).
COVERED = {
    "1. Enhanced Time Types": "test_key_classes_enhanced_time_types",
    "2. Scheduling System": "test_key_classes_scheduling_system",
    "Microsecond Precision": "test_microsecond_precision",
    "Comprehensive Arithmetic": "test_comprehensive_arithmetic",
    "Timezone Support": "test_timezone_support",
    "Type-Safe Scheduling": "test_type_safe_scheduling",
    "Flexible Input Types": "test_flexible_input_types",
    "Comprehensive Scheduling API": "test_comprehensive_scheduling_api",
    "Schedule Management": "test_schedule_management",
    "Scheduler Property": "test_scheduler_property",
    "Connection Builder Integration": "test_connection_builder_integration",
    "Simple Scheduling APIs": "test_simple_scheduling_apis",
    "High-Precision Timing": "test_high_precision_timing",
    "Execution Analytics": "test_execution_analytics",
    "Basic Time Operations": "test_basic_time_operations",
    "Scheduling Reducers": "test_scheduling_reducers",
    "Advanced Scheduling": "test_advanced_scheduling",
    "API Compatibility": "test_api_compatibility",
}


def test_every_python_snippet_has_a_test() -> None:
    assert set(python_snippets()) == set(COVERED)
    for heading, name in COVERED.items():
        assert callable(globals()[name]), heading
        assert python_snippets()[heading].code.strip()


# --- Key Classes and Types (outlines, not code) ---------------------------------------------------


def test_key_classes_enhanced_time_types() -> None:
    code = snippet("1. Enhanced Time Types")
    with pytest.raises(SyntaxError):  # "- name: type" lines: an outline, read by outline()
        ast.parse(code)
    classes = outline(code)
    assert classes["EnhancedTimestamp"] == [
        "micros_since_epoch: int",
        "timezone_info: Optional[timezone]",
    ]
    now = EnhancedTimestamp.now()
    assert type(now.micros_since_epoch) is int
    assert now.timezone_info is None
    zoned = EnhancedTimestamp.from_datetime(dt.datetime(2025, 5, 25, 12, tzinfo=UTC))
    assert isinstance(zoned.timezone_info, dt.timezone)  # Optional[timezone]
    assert classes["EnhancedTimeDuration"] == ["micros: int"]
    assert type(EnhancedTimeDuration.from_seconds(30.5).micros) is int
    assert classes["ScheduleAt"] == ["ScheduleAtTime(timestamp)", "ScheduleAtInterval(duration)"]
    at = ScheduleAtTime(now)
    assert isinstance(at, ScheduleAt) and at.value == now  # noqa: PT018
    every = ScheduleAtInterval(EnhancedTimeDuration.from_minutes(5))
    assert isinstance(every, ScheduleAt) and every.value == TimeDuration.from_minutes(5)  # noqa: PT018


def test_key_classes_scheduling_system() -> None:
    code = snippet("2. Scheduling System")
    with pytest.raises(SyntaxError):
        ast.parse(code)
    classes = outline(code)
    assert classes["ReducerScheduler"][:4] == [
        "schedule_reducer()",
        "schedule_at_time()",
        "schedule_at_interval()",
        "schedule_daily()",
    ]
    for member in classes["ReducerScheduler"][:4]:
        assert callable(getattr(ReducerScheduler, member.removesuffix("()")))
    assert classes["ScheduledReducerCall"] == [
        "id, reducer_name, args",
        "schedule: ScheduleAt",
        "status: ScheduleStatus",
        "execution metrics",
    ]
    fields = ScheduledReducerCall.__annotations__
    assert {"id", "reducer_name", "args", "schedule", "status", "run_count"} <= set(fields)
    assert "ScheduleAt" in str(fields["schedule"])
    assert "ScheduleStatus" in str(fields["status"])
    # "execution metrics": per schedule, its run count and last result (with its duration).
    assert {"run_count", "last_result"} <= {
        name for name, _ in inspect.getmembers(ScheduledReducerCall)
    } | set(fields)


async def test_key_classes_scheduling_system_start_stop() -> None:
    assert outline(snippet("2. Scheduling System"))["ReducerScheduler"][4] == "start() / stop()"

    async def target(reducer: str, *args: Any) -> None:
        return None

    # Both are awaited, as the document's usage example does, inside the scheduler's owner.
    async with ReducerScheduler(target) as scheduler:
        assert scheduler.running
        await scheduler.start()  # already running: a no-op
        assert scheduler.running
        await scheduler.stop()
        assert scheduler.closed


# --- 1. Enhanced Time Utilities -------------------------------------------------------------------


async def test_microsecond_precision() -> None:
    code = snippet("Microsecond Precision")
    before = Timestamp.now()
    result = await run(code)
    after = Timestamp.now()
    timestamp = result["timestamp"]
    assert isinstance(timestamp, EnhancedTimestamp)
    assert before <= timestamp <= after
    assert result.output[0] == f"Microseconds: {timestamp.micros_since_epoch}"
    assert result["duration"] == TimeDuration(30_500_000)
    assert result.output[1] == "Precise: 30500000µs"
    assert same_text(result.output[1], "Precise: " + documented(code, 'print(f"Precise'))
    assert len(result.output) == 2


async def test_comprehensive_arithmetic() -> None:
    timestamp = Timestamp.now()
    givens = {
        # From the snippet above it: timestamp = now, duration = 30.5 s.
        "timestamp": timestamp,
        "duration": EnhancedTimeDuration.from_seconds(30.5),
        # Never defined by the document: two durations.
        "duration1": EnhancedTimeDuration.from_minutes(5),
        "duration2": EnhancedTimeDuration.from_seconds(90),
    }
    result = await run(snippet("Comprehensive Arithmetic"), givens)
    assert result["future"] == timestamp + TimeDuration(30_500_000)
    assert result["past"] == timestamp - TimeDuration(30_500_000)
    assert isinstance(result["time_diff"], EnhancedTimeDuration)  # "Returns EnhancedTimeDuration"
    assert result["time_diff"] == TimeDuration(61_000_000)
    assert result["total"] == TimeDuration.from_seconds(390)
    assert result["scaled"] == TimeDuration.from_seconds(76.25)  # exact: 30.5 s * 2.5
    assert result["remainder"] == TimeDuration.from_seconds(30)  # 300 s % 90 s


@pytest.mark.parametrize(
    ("offset", "says"),
    [
        # The document's two examples of the output: "3 hours ago" or "in 2 minutes".
        (-TimeDuration.from_hours(3), "3 hours ago"),
        (TimeDuration.from_minutes(2), "in 2 minutes"),
    ],
)
async def test_timezone_support(offset: TimeDuration, says: str) -> None:
    code = snippet("Timezone Support")
    assert says in code  # the comment of the print line
    timestamp = Timestamp.now() + offset
    result = await run(code, {"timestamp": timestamp})
    utc_time, local_time, est_time = result["utc_time"], result["local_time"], result["est_time"]
    for converted in (utc_time, local_time, est_time):
        assert Timestamp.from_datetime(converted) == timestamp  # the same instant
    assert utc_time.utcoffset() == dt.timedelta(0)
    assert local_time.tzinfo is UTC
    assert est_time.utcoffset() == dt.timedelta(hours=-5)
    assert est_time.replace(tzinfo=None) == (utc_time - dt.timedelta(hours=5)).replace(tzinfo=None)
    assert result.output == [says]


async def test_type_safe_scheduling() -> None:
    future_timestamp = Timestamp.now() + TimeDuration.from_hours(1)  # not defined by the document
    duration = EnhancedTimeDuration.from_seconds(30.5)  # from "Microsecond Precision"
    # The snippet's own asserts are checks too: run() fails if one does not hold.
    givens = {"future_timestamp": future_timestamp, "duration": duration}
    result = await run(snippet("Type-Safe Scheduling"), givens)
    assert result["time_schedule"] == ScheduleAt.Time(future_timestamp)
    assert result["interval_schedule"] == ScheduleAt.Interval(duration)


async def test_flexible_input_types() -> None:
    duration = EnhancedTimeDuration.from_seconds(30.5)  # from "Microsecond Precision"
    before = Timestamp.now()
    result = await run(snippet("Flexible Input Types"), {"duration": duration})
    after = Timestamp.now()
    from_datetime, from_unix, from_enhanced, *intervals = result.values
    # datetime.now() is a naive datetime: local time, so it is now wherever the machine is.
    assert isinstance(from_datetime, ScheduleAtTime)
    assert before <= from_datetime.value <= after
    assert isinstance(from_unix, ScheduleAtTime)  # time.time(): a float, to the nearest µs
    assert before - TimeDuration(1) <= from_unix.value <= after + TimeDuration(1)
    assert isinstance(from_enhanced, ScheduleAtTime)
    assert before <= from_enhanced.value <= after
    assert intervals == [
        ScheduleAt.Interval(TimeDuration.from_minutes(5)),
        ScheduleAt.Interval(TimeDuration.from_seconds(300)),
        ScheduleAt.Interval(duration),
    ]


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="time.tzset() is POSIX-only")
async def test_flexible_input_types_datetime_now_is_now_in_new_york() -> None:
    from test_time_local import local_zone

    with local_zone("America/New_York"):
        before = Timestamp.now()
        result = await run(snippet("Flexible Input Types"), {"duration": TimeDuration(1)})
        after = Timestamp.now()
    assert before <= result.values[0].value <= after


# --- 3. Reducer Scheduling System -----------------------------------------------------------------


async def test_comprehensive_scheduling_api() -> None:
    async with design_server() as server, connected(server) as client:
        # Never defined by the document: a time soon enough to watch the call arrive.
        future_timestamp = Timestamp.now() + TimeDuration.from_seconds(0.3)
        before = Timestamp.now()
        result = await run(
            snippet("Comprehensive Scheduling API"),
            {"client": client, "future_timestamp": future_timestamp},
        )
        after = Timestamp.now()
        scheduler = result["scheduler"]
        assert scheduler is client.scheduler
        notification = by_reducer(scheduler, "send_notification")
        assert notification.schedule == ScheduleAt.Time(future_timestamp)
        assert notification.args == ("user123", "Welcome!")
        cleanup = by_reducer(scheduler, "cleanup_expired_data")
        assert cleanup.schedule == ScheduleAt.Interval(TimeDuration.from_hours(6))
        assert cleanup.next_run is not None
        six_hours = TimeDuration.from_hours(6)
        assert before + six_hours <= cleanup.next_run <= after + six_hours
        backup = by_reducer(scheduler, "daily_backup")
        assert backup.id == result["schedule_id"]  # the last assignment wins
        assert backup.next_run == next_utc(after, 2, 30)
        assert await wait_for_call(server, "send_notification") == "('user123', 'Welcome!')"
        assert all(name == "send_notification" for name, _ in calls(server))


async def test_schedule_management() -> None:
    async with design_server() as server, connected(server) as client:
        scheduler = client.scheduler
        now = Timestamp.now()
        hour = TimeDuration.from_hours(1)
        # Never defined by the document: schedule_id (a one-shot "cleanup" to move, then
        # cancel), new_time, and some other schedules to list.
        schedule_id = scheduler.schedule_at_time("cleanup", [], now + hour)
        repeating = scheduler.schedule_at_interval("cleanup", [], hour * 2)
        heartbeat = scheduler.schedule_at_time("heartbeat", [], now + hour * 3)
        new_time = now + hour * 4
        givens = {"scheduler": scheduler, "schedule_id": schedule_id, "new_time": new_time}
        result = await run(snippet("Schedule Management"), givens)
        assert [s.id for s in result["all_schedules"]] == [schedule_id, repeating, heartbeat]
        assert [s.id for s in result["pending"]] == [schedule_id, repeating, heartbeat]
        assert [s.id for s in result["cleanup_schedules"]] == [schedule_id, repeating]
        moved = scheduler.get_schedule(schedule_id)
        assert moved.schedule == ScheduleAt.Time(new_time)  # rescheduled, then cancelled
        assert moved.status is ScheduleStatus.CANCELLED
        assert scheduler.list_schedules(status=ScheduleStatus.PENDING) == [
            scheduler.get_schedule(repeating),
            scheduler.get_schedule(heartbeat),
        ]
        assert result["next_time"] == scheduler.get_schedule(repeating).next_run
        stats = result["stats"]
        assert stats["total_executions"] == 0
        assert stats["pending_schedules"] == 2
        assert calls(server) == []


# --- 4. Modern Client Integration -----------------------------------------------------------------


def test_scheduler_property_call_reducer_async_signature() -> None:
    code = snippet("Scheduler Property")
    documented_def = signature_of(code, "call_reducer_async")
    assert isinstance(documented_def, ast.AsyncFunctionDef)
    ours = inspect.signature(ModernSpacetimeDBClient.call_reducer_async)
    assert inspect.iscoroutinefunction(ModernSpacetimeDBClient.call_reducer_async)
    arguments = documented_def.args
    assert [a.arg for a in arguments.args] == list(ours.parameters)[:2] == ["self", "reducer_name"]
    assert arguments.vararg is not None
    assert ours.parameters[arguments.vararg.arg].kind is inspect.Parameter.VAR_POSITIONAL
    (timeout,) = arguments.kwonlyargs
    default = arguments.kw_defaults[0]
    assert isinstance(default, ast.Constant)
    assert ours.parameters[timeout.arg].kind is inspect.Parameter.KEYWORD_ONLY
    assert ours.parameters[timeout.arg].default == default.value == 30.0


async def test_scheduler_property(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACETIMEDB_URI", raising=False)
    code, _signature = split_at(snippet("Scheduler Property"), "# Async reducer calling")
    result = await run(code)
    client, scheduler = result["client"], result["scheduler"]
    assert isinstance(client, ModernSpacetimeDBClient)
    assert isinstance(scheduler, ReducerScheduler)
    assert client.scheduler is scheduler  # "Lazy initialization": made once, on first access
    # The documented default without the variable.
    assert client.uri.rstrip("/") == "http://127.0.0.1:3000"
    await not_connected(client)


async def test_connection_builder_integration() -> None:
    async with design_server() as server:
        result = await run(snippet("Connection Builder Integration"), uri=server.uri)
        client = result["client"]
        assert isinstance(client, ModernSpacetimeDBClient)
        assert client.database_name == DATABASE
        await not_connected(client)  # "build()" does not connect
        scheduler = client.scheduler
        heartbeat = scheduler.schedule_in_seconds("heartbeat", [], 0.05)  # kept until it runs
        async with client:  # "Auto-start scheduler on connection"
            assert client.is_active
            assert scheduler.running
            assert await wait_for_call(server, "heartbeat") == "()"
            ran = await scheduler.wait_for(heartbeat)  # the server ran it; now its result is in
            assert isinstance(ran, ScheduleResult)
            assert ran.ok
            assert scheduler.get_schedule(heartbeat).status is ScheduleStatus.COMPLETED
        assert not client.is_active


# --- 5. Convenience Functions ---------------------------------------------------------------------


async def test_simple_scheduling_apis() -> None:
    async with design_server() as server, connected(server) as client:
        future_time = Timestamp.now() + TimeDuration.from_seconds(0.3)  # not defined by it
        before = Timestamp.now()
        result = await run(
            snippet("Simple Scheduling APIs"), {"client": client, "future_time": future_time}
        )
        after = Timestamp.now()
        scheduler = client.scheduler
        once = by_reducer(scheduler, "cleanup")
        minute = TimeDuration.from_seconds(60)
        assert isinstance(once.schedule, ScheduleAtTime)
        assert before + minute <= once.schedule.value <= after + minute
        repeating = by_reducer(scheduler, "heartbeat")
        assert repeating.schedule == ScheduleAt.Interval(TimeDuration.from_seconds(30))
        reminder = by_reducer(scheduler, "reminder")
        assert reminder.schedule == ScheduleAt.Time(future_time)
        assert result["schedule_id"] == reminder.id
        assert await wait_for_call(server, "reminder") == "('user',)"


# --- 6. Performance and Monitoring ----------------------------------------------------------------


async def test_high_precision_timing() -> None:
    result = await run(snippet("High-Precision Timing"))
    timer, duration = result["timer"], result["duration"]
    assert isinstance(timer, PrecisionTimer)
    assert isinstance(duration, TimeDuration)  # "Microsecond precision": whole µs
    assert TimeDuration.ZERO <= duration < TimeDuration.from_seconds(1)
    assert timer.stop() == duration  # stopped when the block ended
    metrics, average = result["metrics"], result["avg_duration"]
    assert isinstance(metrics, TimeMetrics)
    assert isinstance(average, TimeDuration)
    assert TimeDuration.ZERO <= average < TimeDuration.from_seconds(1)


async def test_execution_analytics() -> None:
    async with design_server() as server, connected(server) as client:
        scheduler = client.scheduler
        result = await run(snippet("Execution Analytics"), {"scheduler": scheduler})
        assert result.output == [
            "Success rate: 100.0%",  # nothing has failed yet
            f"Average duration: {TimeDuration.ZERO}",  # nothing has run yet: +0.000000
        ]
        with captured() as out:
            heartbeat = scheduler.schedule_in_seconds("heartbeat", [], 0.05)
            ran = await scheduler.wait_for(heartbeat)
        assert isinstance(ran, ScheduleResult)
        assert ran.ok
        assert out.getvalue().splitlines() == [f"Executed {heartbeat} in {ran.duration}"]
        stats = scheduler.get_execution_stats()
        assert stats["success_rate"] == 1.0
        assert stats["average_duration"] == ran.duration


# --- Usage Examples -------------------------------------------------------------------------------


async def test_basic_time_operations() -> None:
    code = snippet("Basic Time Operations")
    result = await run(code)
    assert result.output == [
        "Meeting starts " + documented(code, 'print(f"Meeting'),  # "in 30 minutes"
        "Duration: " + documented(code, 'print(f"Duration'),  # "30.0min"
    ]
    assert result.output == ["Meeting starts in 30 minutes", "Duration: 30.0min"]
    assert result["future"] - result["now"] == TimeDuration.from_minutes(30)


async def test_scheduling_reducers() -> None:
    code = snippet("Scheduling Reducers")
    # Structured concurrency: the document's last line starts the scheduler, which must run
    # inside the connection's block; everything before it runs as written, outside.
    setup, start = split_at(code, "# Start scheduler")
    async with design_server() as server:
        before = Timestamp.now()
        result = await run(setup, uri=server.uri)
        after = Timestamp.now()
        client, scheduler = result["client"], result["scheduler"]
        async with client:
            started = await run(start, {"scheduler": scheduler})
            assert started.output == []
            assert scheduler.running
            six_hours = TimeDuration.from_hours(6)
            cleanup = scheduler.get_schedule(result["cleanup_id"])
            assert cleanup.schedule == ScheduleAt.Interval(six_hours)
            backup = scheduler.get_schedule(result["backup_id"])
            assert backup.next_run == next_utc(after, 2, 0)  # "Daily backup at 2 AM" (UTC)
            notification = scheduler.get_schedule(result["notification_id"])
            thirty = TimeDuration.from_seconds(30)
            assert isinstance(notification.schedule, ScheduleAtTime)
            assert before + thirty <= notification.schedule.value <= after + thirty
            scheduler.trigger_now(result["notification_id"])  # not 30 s of waiting
            assert await wait_for_call(server, "send_welcome_message") == "('user123',)"
            await scheduler.start()  # auto_start=True: a second start() is a no-op
            assert scheduler.running


async def _advanced_scheduling(server: LocalServer, client: Any) -> tuple[Any, Any]:
    scheduler = client.scheduler
    result = await run(snippet("Advanced Scheduling"), {"scheduler": scheduler})
    assert result.output == ["Success rate: 100.0%", f"Average execution time: {TimeDuration.ZERO}"]
    analytics = scheduler.get_schedule(result["schedule_id"])
    assert analytics.schedule == ScheduleAt.Interval(TimeDuration.from_hours(1))
    assert dict(analytics.metadata) == {"priority": "high", "category": "analytics"}
    assert analytics.args == ({"batch_size": 1000},)
    return scheduler, result


async def test_advanced_scheduling() -> None:
    async with design_server() as server, connected(server) as client:
        scheduler, result = await _advanced_scheduling(server, client)
        schedule_id = result["schedule_id"]
        with captured() as out:
            scheduler.trigger_now(schedule_id)  # an hour is long to wait
            ran = await scheduler.wait_for(schedule_id)
        assert isinstance(ran, ScheduleResult)
        assert ran.ok
        # The document's print, its odd characters included (they are in the original).
        assert DOC_CHECK in snippet("Advanced Scheduling")
        assert out.getvalue().splitlines() == [
            f"{DOC_CHECK} {schedule_id} completed in {ran.duration}"
        ]
        assert await wait_for_call(server, "process_analytics") == "({'batch_size': 1000},)"


async def test_advanced_scheduling_error_callback() -> None:
    async with design_server() as server, connected(server) as client:
        scheduler, _ = await _advanced_scheduling(server, client)
        with captured() as out:
            failing = scheduler.schedule_in_seconds(FAILING_REDUCER, ["disk full"], 0.05)
            ran = await scheduler.wait_for(failing)
        assert isinstance(ran, ScheduleResult)
        assert not ran.ok
        # on_success is an execution callback, so it prints for this attempt too; on_error
        # prints once, with the schedule id and the error, as the document shows.
        assert DOC_CROSS in snippet("Advanced Scheduling")
        failed = [line for line in out.getvalue().splitlines() if line.startswith(DOC_CROSS)]
        assert failed == [f"{DOC_CROSS} {failing} failed: {ran.error}"]
        assert "disk full" in str(ran.error)


# --- TypeScript SDK Parity ------------------------------------------------------------------------


async def test_api_compatibility() -> None:
    before = Timestamp.now()
    result = await run(snippet("API Compatibility"))
    after = Timestamp.now()
    timestamp = result["timestamp"]
    assert isinstance(timestamp, EnhancedTimestamp)
    assert before <= timestamp <= after
    assert result["duration"] == TimeDuration.from_seconds(30)
    assert result["schedule"] == ScheduleAt.Time(timestamp)
    # The Python names mirror the TypeScript ones in the same block.
    typescript = next(b.code for b in blocks() if b.language == "typescript")
    pairs = [("Timestamp.now()", "now"), ("fromSeconds(30)", "from_seconds"), ("atTime", "at_time")]
    for ts, py in pairs:
        assert ts in typescript
        assert py in snippet("API Compatibility")


def test_the_other_blocks_are_not_python() -> None:
    # The layout, benchmark figures and a shell transcript are prose; the TypeScript block's
    # Python half is test_api_compatibility's snippet.
    kinds = [(b.heading, b.language) for b in blocks() if b.language != "python"]
    assert kinds == [
        ("Core Components", ""),
        ("Benchmarks (from example)", ""),
        ("Test Results", "bash"),
        ("API Compatibility", "typescript"),
    ]
