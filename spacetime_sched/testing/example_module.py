"""The "quickstart" module: a small SpacetimeDB module in Python for tests, demos and benchmarks.

Serve it with ``python -m spacetime_sched serve`` or ``LocalServer(make_module())``. Tests of
this project and the TypeScript SDK conformance test rely on exactly these definitions:

* public table ``person``: ``id: u64`` (primary key, auto_inc), ``name: String``,
  ``created_at: Timestamp``
* public table ``event``: ``id: u64`` (pk, auto_inc), ``name: String``, ``at: Timestamp``,
  ``schedule: ScheduleAt``, ``sender: Identity``
* public schedule table ``tick_schedule``: ``scheduled_id: u64`` (pk, auto_inc),
  ``scheduled_at: ScheduleAt``, ``label: String``; it runs the reducer ``tick``
* public table ``tick_log``: ``id: u64`` (pk, auto_inc), ``label: String``,
  ``scheduled_id: u64``, ``fired_at: Timestamp``
* private table ``connection_log``: ``id: u64`` (pk, auto_inc), ``event: String``,
  ``identity: Identity``, ``at: Timestamp`` (written by the lifecycle reducers)
* reducers ``add_person(name)``, ``record_event(name, at, schedule)``,
  ``schedule_tick(label, at)``, ``cancel_tick(scheduled_id)``, ``tick(row)`` (scheduled),
  ``fail(message)`` (always fails with ``message``), ``add(a: u32, b: u32)`` (changes nothing),
  and the lifecycle reducers ``init``, ``client_connected``, ``client_disconnected``
* procedure ``server_time() -> Timestamp``
"""

from __future__ import annotations

from typing import Any

from .. import sats
from .._time import ScheduleAt, Timestamp
from ._server import Module, ProcedureContext, ReducerContext, SenderError

__all__ = ["make_module", "module"]


def make_module() -> Module:
    """A new quickstart module. (Tables live in each server's host, not in the module, so
    serving :data:`module` twice also starts from empty tables.)"""
    module = Module("quickstart")

    module.table(
        "person",
        [("id", sats.U64), ("name", sats.STRING), ("created_at", sats.TIMESTAMP)],
        primary_key="id",
        auto_inc="id",
        public=True,
    )
    module.table(
        "event",
        [
            ("id", sats.U64),
            ("name", sats.STRING),
            ("at", sats.TIMESTAMP),
            ("schedule", sats.SCHEDULE_AT),
            ("sender", sats.IDENTITY),
        ],
        primary_key="id",
        auto_inc="id",
        public=True,
    )
    tick_schedule = module.table(
        "tick_schedule",
        [("scheduled_id", sats.U64), ("scheduled_at", sats.SCHEDULE_AT), ("label", sats.STRING)],
        primary_key="scheduled_id",
        auto_inc="scheduled_id",
        public=True,
        scheduled="tick",
    )
    module.table(
        "tick_log",
        [
            ("id", sats.U64),
            ("label", sats.STRING),
            ("scheduled_id", sats.U64),
            ("fired_at", sats.TIMESTAMP),
        ],
        primary_key="id",
        auto_inc="id",
        public=True,
    )
    module.table(
        "connection_log",
        [
            ("id", sats.U64),
            ("event", sats.STRING),
            ("identity", sats.IDENTITY),
            ("at", sats.TIMESTAMP),
        ],
        primary_key="id",
        auto_inc="id",
    )

    def log(ctx: ReducerContext, event: str) -> None:
        ctx.db.connection_log.insert({"event": event, "identity": ctx.sender, "at": ctx.timestamp})

    @module.init
    def init(ctx: ReducerContext) -> None:
        log(ctx, "init")

    @module.client_connected
    def client_connected(ctx: ReducerContext) -> None:
        log(ctx, "connected")

    @module.client_disconnected
    def client_disconnected(ctx: ReducerContext) -> None:
        log(ctx, "disconnected")

    @module.reducer(params=[("name", sats.STRING)])
    def add_person(ctx: ReducerContext, name: str) -> None:
        ctx.db.person.insert({"name": name, "created_at": ctx.timestamp})

    @module.reducer(
        params=[("name", sats.STRING), ("at", sats.TIMESTAMP), ("schedule", sats.SCHEDULE_AT)]
    )
    def record_event(ctx: ReducerContext, name: str, at: Timestamp, schedule: ScheduleAt) -> None:
        ctx.db.event.insert({"name": name, "at": at, "schedule": schedule, "sender": ctx.sender})

    @module.reducer(params=[("label", sats.STRING), ("at", sats.SCHEDULE_AT)])
    def schedule_tick(ctx: ReducerContext, label: str, at: ScheduleAt) -> None:
        ctx.db.tick_schedule.insert({"scheduled_at": at, "label": label})

    @module.reducer(params=[("scheduled_id", sats.U64)])
    def cancel_tick(ctx: ReducerContext, scheduled_id: int) -> None:
        if not ctx.db.tick_schedule.delete(scheduled_id):
            raise SenderError(f"no scheduled tick with id {scheduled_id}")

    @module.reducer(params=[("row", tick_schedule)])
    def tick(ctx: ReducerContext, row: dict[str, Any]) -> None:
        ctx.db.tick_log.insert(
            {"label": row["label"], "scheduled_id": row["scheduled_id"], "fired_at": ctx.timestamp}
        )

    @module.reducer(params=[("message", sats.STRING)])
    def fail(ctx: ReducerContext, message: str) -> None:
        # Write first, so a test can see the rollback. SenderError is the module returning
        # Err(message); any other exception would be a crash (the caller gets InternalError).
        ctx.db.person.insert({"name": f"never stored ({message})", "created_at": ctx.timestamp})
        raise SenderError(message)

    @module.reducer(params=[("a", sats.U32), ("b", sats.U32)])
    def add(ctx: ReducerContext, a: int, b: int) -> None:
        _ = a + b  # a pure call: no table changes, so the caller gets Ok with no updates

    @module.procedure(returns=sats.TIMESTAMP)
    def server_time(ctx: ProcedureContext) -> Timestamp:
        return ctx.timestamp

    return module


#: A module instance for ``--module spacetime_sched.testing.example_module:module``.
module = make_module()
