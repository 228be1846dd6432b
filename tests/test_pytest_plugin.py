"""The pytest plugin for users (``spacetime_sched.pytest_plugin``, entry point ``pytest11``).

Most tests here run pytest on a user's project in a subprocess (``pytester``), where this
project's conftest.py does not apply: what a user gets is what is checked. The quickstart's
testing section must run there as written, on asyncio and trio.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from spacetime_sched import TimeDuration, Timestamp
from spacetime_sched.client import DbConnection
from spacetime_sched.scheduler import ReducerScheduler
from spacetime_sched.testing import LocalServer, RecordingTarget, VirtualClock

QUICKSTART = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"


def _testing_section_code() -> str:
    text = QUICKSTART.read_text(encoding="utf-8")
    section = text[text.index("## Testing") : text.index("## Examples")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 2
    return "\n\n".join(blocks)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", *args)


def test_the_quickstart_testing_section_runs_as_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_quickstart=_testing_section_code())
    result = _run(pytester)
    result.assert_outcomes(passed=4)  # two tests, each on asyncio and trio
    for name in ("test_add_person", "test_hourly_for_a_day"):
        for backend in ("asyncio", "trio"):
            result.stdout.fnmatch_lines([f"*::{name}?{backend}? PASSED*"])


def test_a_project_serves_its_own_module(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from spacetime_sched import sats
        from spacetime_sched.testing import Module

        @pytest.fixture
        def spacetime_module():
            module = Module("notes")
            module.table("note", [("text", sats.STRING)])

            @module.reducer(params=[("text", sats.STRING)])
            def add_note(ctx, text):
                ctx.db.note.insert({"text": text})

            return module
        """
    )
    pytester.makepyfile(
        """
        async def test_notes(db_connection, local_server):
            assert local_server.database == "notes"
            await db_connection.call_reducer_async("add_note", "hi")
            assert [r["text"] for r in local_server.host.table("note").rows()] == ["hi"]
        """
    )
    _run(pytester).assert_outcomes(passed=2)


def test_the_plugin_leaves_other_async_tests_and_backends_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():          # this project runs on trio only
            return "trio"
        """
    )
    pytester.makepyfile(
        """
        import pytest
        import sniffio

        async def test_uses_a_fixture(virtual_clock):
            assert sniffio.current_async_library() == "trio"

        @pytest.mark.anyio
        async def test_marked_by_the_user():
            assert sniffio.current_async_library() == "trio"

        def test_sync(recording_target):
            assert recording_target.calls == []
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=3)


def test_the_backends_can_be_narrowed_in_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nspacetime_sched_backends = asyncio\n")
    pytester.makepyfile(
        """
        async def test_one(virtual_clock):
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_one?asyncio? PASSED*"])


def test_an_async_test_without_the_fixtures_is_not_claimed(pytester: pytest.Pytester) -> None:
    # Not ours to run: pytest reports it as it would without the plugin (no async plugin).
    pytester.makepyfile(
        """
        async def test_plain():
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])


# --- this project's own tests, on the plugin's fixtures -----------------------------------------


async def test_local_server_runs_on_the_virtual_clock(
    local_server: LocalServer, db_connection: DbConnection, virtual_clock: VirtualClock
) -> None:
    await virtual_clock.advance(TimeDuration.from_hours(2))
    result = await db_connection.call_reducer_async("add_person", "Ada")
    assert result.timestamp == virtual_clock.now() == Timestamp.parse("2025-01-01T02:00:00Z")
    (row,) = local_server.host.table("person").rows()
    assert row["created_at"] == virtual_clock.now()


async def test_recording_target_records_retries(
    virtual_clock: VirtualClock, recording_target: RecordingTarget
) -> None:
    recording_target.fail("sync", RuntimeError("down"))
    async with ReducerScheduler(recording_target, clock=virtual_clock) as scheduler:
        scheduler.schedule_in_seconds("sync", ("a",), 1, max_retries=2, backoff_jitter=0)
        await virtual_clock.advance(TimeDuration.from_seconds(10))
    assert recording_target.names() == ["sync"] * 3
    start = Timestamp.parse("2025-01-01T00:00:00Z")
    # 1 s, then backoff 1 s and 2 s (backoff_base 1 s, doubling)
    assert [c.at - start for c in recording_target.calls] == [
        TimeDuration.from_seconds(s) for s in (1, 2, 4)
    ]
    assert recording_target.calls_to("sync")[0].args == ("a",)
    recording_target.fail("sync", None)
    await recording_target("sync")
    assert len(recording_target.calls) == 4


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points.pytest11]\nspacetime_sched = "spacetime_sched.pytest_plugin"' in (
        text
    )


def test_the_doc_example_module_code_is_python() -> None:
    compile(textwrap.dedent(_testing_section_code()), str(QUICKSTART), "exec")
