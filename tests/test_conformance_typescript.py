"""The official TypeScript SDK must be able to use our local server.

If the official client cannot use :class:`~spacetime_sched.testing.LocalServer`, the server is
wrong. These tests start the server in-process with the quickstart module, run
``tests/conformance/conformance.mjs`` (npm package ``spacetimedb``, code-generated-style
bindings) against it in a Node subprocess, and check both sides: what the SDK decoded (the JSON
summary it prints) and what the server stored.

Set-up: ``npm ci --prefix tests/conformance`` (nox does it). Without Node or the SDK the tests
skip, except when ``CI`` is set: there they fail, because CI must run them.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from _conformance_support import CONFORMANCE_DIR, find_node

from spacetime_sched import Identity, ScheduleAt, TimeDuration, Timestamp
from spacetime_sched.testing import LocalServer, example_module

pytestmark = pytest.mark.conformance

SCRIPT = CONFORMANCE_DIR / "conformance.mjs"
REFUSED_CALLS_SCRIPT = CONFORMANCE_DIR / "refused_calls.mjs"
DATABASE = "quickstart"

# The values conformance.mjs sends (kept in step with the script's constants).
AT_MICROS = 1_735_689_600_123_456
BEFORE_EPOCH_MICROS = -86_400_000_001
SCHEDULE_TIME_MICROS = 4_102_444_800_000_001
SCHEDULE_INTERVAL_MICROS = 90_061_000_001
LONG_NAME = "Grace Brewster Murray Hopper " * 100

GZIP_TAG, NO_COMPRESSION_TAG = "2", "0"
V2, V3 = "v2.bsatn.spacetimedb", "v3.bsatn.spacetimedb"


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable, once the SDK is installed; otherwise skip (fail under CI)."""
    return find_node()


async def run_conformance(
    node: str, uri: str, *, compression: str, protocols: str | None = None
) -> dict[str, Any]:
    """Run conformance.mjs against ``uri``; return its JSON summary, or fail with its story."""
    command = [node, str(SCRIPT), uri, DATABASE, f"--compression={compression}"]
    if protocols is not None:
        command.append(f"--protocols={protocols}")
    with anyio.fail_after(40):
        done = await anyio.run_process(command, check=False, cwd=CONFORMANCE_DIR)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(f"conformance.mjs printed no summary (exit {done.returncode}):\n{stderr}")
    summary: dict[str, Any] = json.loads(lines[-1])
    if done.returncode != 0 or not summary.get("ok"):
        pytest.fail(
            f"the TypeScript SDK failed against LocalServer at stage {summary.get('stage')!r}:\n"
            f"  {summary.get('error')}\n"
            f"observed: {json.dumps(summary.get('observed'), indent=2)}\n"
            f"stderr:\n{stderr}"
        )
    return summary


@pytest.mark.anyio  # explicit: parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize(
    ("compression", "protocols", "negotiated"),
    [
        # What an application gets by default: gzip, and v3 (the server's preference).
        pytest.param("gzip", None, V3, id="gzip-v3"),
        # The SDK's v2 code path, as against a server that picks v2; and no compression.
        pytest.param("none", "v2", V2, id="none-v2"),
    ],
)
async def test_typescript_sdk_connects_calls_and_subscribes(
    node: str, compression: str, protocols: str | None, negotiated: str
) -> None:
    async with LocalServer(example_module.make_module(), database=DATABASE) as server:
        summary = await run_conformance(
            node, server.uri, compression=compression, protocols=protocols
        )
        stored = {
            table: server.host.table(table).rows()
            for table in ("person", "event", "tick_schedule", "tick_log")
        }

    seen = summary["observed"]
    caller = Identity.from_hex(seen["identity"])

    # Connection: an identity and a token arrive in InitialConnection.
    assert seen["token_received"] is True
    assert seen["ws_offered_protocols"] == [V3, V2]
    assert seen["protocol"] == negotiated
    assert f"compression={compression.capitalize()}" in seen["ws_urls"][0]
    # The reconnect with the saved token went through POST /v1/identity/websocket-token.
    assert "token=%3Credacted%3E" in seen["ws_urls"][1]
    assert "confirmed=true" in seen["ws_urls"][1]
    assert seen["reconnect_same_identity"] is True

    # Compression: "none" means every frame is tagged 0; gzip is used for big frames.
    tags = seen["server_frame_compression_tags"]
    if compression == "none":
        assert set(tags) == {NO_COMPRESSION_TAG}
    else:
        assert tags.get(GZIP_TAG, 0) >= 1, f"no gzip frame although one frame was > 1 KiB: {tags}"

    # Reducers: Ok resolves, Err rejects with the reducer's message.
    assert seen["reducers"] == {
        "record_event_time": "ok",
        "record_event_interval": "ok",
        "add_person": "ok",
        "add": "ok",
        "fail": {"rejected": "SenderError", "message": "boom: ✗"},
    }

    # The subscription's rows, as the SDK decoded them (bigints arrive as strings).
    events = {e["name"]: e for e in seen["subscribed"]["event"]}
    assert events["time ✓"]["at"] == str(AT_MICROS)
    assert events["time ✓"]["schedule"] == {"Time": str(SCHEDULE_TIME_MICROS)}
    assert events["interval ✓"]["at"] == str(BEFORE_EPOCH_MICROS)
    assert events["interval ✓"]["schedule"] == {"Interval": str(SCHEDULE_INTERVAL_MICROS)}
    assert {e["sender"] for e in events.values()} == {seen["identity"]}
    assert [p["name"] for p in seen["subscribed"]["person"]] == ["Ada Lovelace"]
    assert "no_such_table" in seen["subscription_error"]

    # Live updates and scheduling.
    live = seen["live"]
    assert live["own_insert_in_reducer_result"] is True
    assert live["interval_ticks_before_cancel"] >= 2
    assert seen["unsubscribed_rows_dropped"] is True

    # The server's side of the same story.
    stored_events = {row["name"]: row for row in stored["event"]}
    assert stored_events["time ✓"]["at"] == Timestamp(AT_MICROS)
    assert stored_events["time ✓"]["schedule"] == ScheduleAt.Time(Timestamp(SCHEDULE_TIME_MICROS))
    assert stored_events["interval ✓"]["at"] == Timestamp(BEFORE_EPOCH_MICROS)
    assert stored_events["interval ✓"]["schedule"] == ScheduleAt.Interval(
        TimeDuration(SCHEDULE_INTERVAL_MICROS)
    )
    assert {row["sender"] for row in stored["event"]} == {caller}
    assert sorted(row["name"] for row in stored["person"]) == sorted(
        ["Ada Lovelace", "Grace Hopper", LONG_NAME]
    )
    past_ticks = [row for row in stored["tick_log"] if row["label"] == "past tick"]
    assert [row["scheduled_id"] for row in past_ticks] == [int(live["past_tick"]["scheduled_id"])]
    assert past_ticks[0]["fired_at"] == Timestamp(int(live["past_tick"]["fired_at"]))
    # The one-shot row deleted itself after firing; the repeating one was cancelled.
    assert stored["tick_schedule"] == []


async def test_typescript_sdk_is_refused_private_and_unknown_functions(node: str) -> None:
    """Calls a 2.x server refuses reach the SDK as rejected promises, and change nothing.

    In a 2.x module scheduled and lifecycle reducers are private: for any caller but the
    database owner the real server answers ``InternalError("no such reducer")`` (scheduled) or
    ``InternalError`` naming the lifecycle reducer (``module_host.rs``, ``call_reducer``).
    """
    async with LocalServer(example_module.make_module(), database=DATABASE) as server:
        command = [node, str(REFUSED_CALLS_SCRIPT), server.uri, DATABASE]
        with anyio.fail_after(30):
            done = await anyio.run_process(command, check=False, cwd=CONFORMANCE_DIR)
        assert done.returncode == 0, done.stderr.decode()
        calls = json.loads(done.stdout.decode().splitlines()[-1])
        fired_directly = server.host.table("tick_log").filter(label="called directly")

    assert calls["scheduled_tick"].startswith("InternalError: "), calls["scheduled_tick"]
    assert "no such reducer" in calls["scheduled_tick"]
    assert fired_directly == []
    for name in ("lifecycle_client_connected", "lifecycle_init"):
        assert calls[name].startswith("InternalError: "), calls[name]
    assert calls["unknown_reducer"].startswith("InternalError: ")
    assert "no_such_reducer" in calls["unknown_reducer"]
    assert calls["truncated_args"].startswith("InternalError: ")
    # A procedure's InternalError rejects with the bare message string (SDK 2.10.1).
    assert calls["unknown_procedure"].startswith("string: ")
    assert "no_such_procedure" in calls["unknown_procedure"]
