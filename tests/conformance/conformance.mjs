#!/usr/bin/env node
// Conformance check: drive the official SpacetimeDB TypeScript SDK (npm `spacetimedb`)
// against a server running the quickstart module, the way an application would.
//
//   node conformance.mjs <uri> <database> [--compression=gzip|none|brotli]
//                        [--protocols=v3,v2] [--timeout-ms=20000]
//
// --protocols limits the subprotocols offered on the wire (default: what the SDK offers, v3
// then v2); `--protocols=v2` runs the SDK's v2 code path, as against a server that picks v2.
//
// On success prints ONE JSON line (`"ok": true`) describing what the SDK observed and
// exits 0. On any failure prints one JSON line with `"ok": false`, the stage that failed
// and the error (also on stderr) and exits 1. A hard deadline ends a hung run with exit 2.
//
// Every value is checked as the SDK decoded it (Timestamp, ScheduleAt, Identity objects),
// so a server that speaks the protocol slightly differently fails here, not in a user's app.

import { Identity, ScheduleAt, SenderError, TimeDuration, Timestamp } from "spacetimedb";
import { WebSocket as UndiciWebSocket } from "undici";
import { connect, toJson, waitFor, within } from "./connect.mjs";

const STEP_MS = 5000;

// Values chosen to catch sloppy time handling: microsecond digits that are not
// millisecond aligned, a pre-1970 (negative) timestamp, a far-future schedule.
const AT_MICROS = 1735689600123456n; // 2025-01-01T00:00:00.123456Z
const BEFORE_EPOCH_MICROS = -86400000001n; // 1969-12-30T23:59:59.999999Z
const SCHEDULE_TIME_MICROS = 4102444800000001n; // 2100-01-01T00:00:00.000001Z
const SCHEDULE_INTERVAL_MICROS = 90061000001n; // 1 d 1 h 1 min 1.000001 s
const TICK_EVERY_MICROS = 150000n;
// Servers compress only frames above 1 KiB; this row makes the subscription frame bigger.
const LONG_NAME = "Grace Brewster Murray Hopper ".repeat(100);

function parseArgs(argv) {
  const positional = argv.filter((a) => !a.startsWith("--"));
  const options = Object.fromEntries(
    argv.filter((a) => a.startsWith("--")).map((a) => a.slice(2).split("=", 2)),
  );
  if (positional.length !== 2) {
    process.stderr.write(
      "usage: node conformance.mjs <uri> <database> [--compression=gzip|none|brotli] " +
        "[--protocols=v3,v2] [--timeout-ms=N]\n",
    );
    process.exit(64);
  }
  return {
    uri: positional[0],
    database: positional[1],
    compression: options.compression ?? "gzip",
    protocols: options.protocols?.split(",").map((v) => `${v}.bsatn.spacetimedb`),
    timeoutMs: Number(options["timeout-ms"] ?? 20000),
  };
}

const args = parseArgs(process.argv.slice(2));
const observed = { sdk: "spacetimedb", compression: args.compression };
let stage = "start";

// The SDK takes the global WebSocket when there is one (Node 20 has none, so it would load
// undici's). Installing a subclass lets us watch the transport without touching the SDK:
// the URL it dialled and the compression tag byte of every server frame; and, with
// --protocols, narrow the subprotocols it offers.
const frameTags = {};
globalThis.WebSocket = class TappedWebSocket extends UndiciWebSocket {
  constructor(url, protocols) {
    const offered = args.protocols ? protocols.filter((p) => args.protocols.includes(p)) : protocols;
    super(url, offered);
    const dialled = new URL(url);
    if (dialled.searchParams.has("token")) dialled.searchParams.set("token", "<redacted>");
    (observed.ws_urls ??= []).push(`${dialled.pathname}${dialled.search}`);
    observed.ws_offered_protocols = protocols;
    observed.ws_sent_protocols = offered;
    this.addEventListener("message", (event) => {
      const tag = new Uint8Array(event.data)[0];
      frameTags[tag] = (frameTags[tag] ?? 0) + 1;
    });
    // The SDK reports neither; they explain a refused upgrade or an unexpected close.
    this.addEventListener("error", (event) => {
      (observed.ws_errors ??= []).push(event.message ?? String(event));
    });
    this.addEventListener("close", (event) => {
      (observed.ws_closes ??= []).push({ code: event.code, reason: event.reason });
    });
  }
};
observed.server_frame_compression_tags = frameTags;

function finish(code, extra) {
  process.stdout.write(`${toJson({ ...extra, stage, observed })}\n`, () => process.exit(code));
}

const hardDeadline = setTimeout(() => {
  process.stderr.write(`conformance: hard timeout (${args.timeoutMs} ms) during stage "${stage}"\n`);
  finish(2, { ok: false, error: `hard timeout after ${args.timeoutMs} ms` });
}, args.timeoutMs);

class Mismatch extends Error {}

function expect(condition, message) {
  if (!condition) throw new Mismatch(message);
}

function micros(ts) {
  expect(ts instanceof Timestamp, `expected a Timestamp, got ${toJson(ts)}`);
  return ts.microsSinceUnixEpoch;
}

function scheduleAtJson(value) {
  expect(
    value && (value.tag === "Time" || value.tag === "Interval"),
    `expected a ScheduleAt, got ${toJson(value)}`,
  );
  if (value.tag === "Time") return { Time: micros(value.value) };
  expect(value.value instanceof TimeDuration, `Interval payload is not a TimeDuration`);
  return { Interval: value.value.micros };
}

function near(ts, what) {
  const skew = micros(ts) - BigInt(Date.now()) * 1000n;
  expect(skew < 300_000_000n && skew > -300_000_000n, `${what} is ${skew} µs away from now`);
}

function rows(table) {
  return [...table.iter()];
}

function onTable(table, kind) {
  const add = kind === "insert" ? table.onInsert : table.onDelete;
  const remove = kind === "insert" ? table.removeOnInsert : table.removeOnDelete;
  return (cb) => {
    add.call(table, cb);
    return () => remove.call(table, cb);
  };
}

async function step(name, fn) {
  stage = name;
  return await within(STEP_MS, name, fn());
}

async function main() {
  const start = Date.now();

  const { conn, identity, token, disconnected } = await step("connect (InitialConnection)", () =>
    connect(args.uri, args.database, { compression: args.compression }),
  );
  expect(identity instanceof Identity, "onConnect identity is not an Identity");
  expect(typeof token === "string" && token.length > 0, "onConnect token is empty");
  expect(conn.identity.isEqual(identity), "conn.identity differs from the onConnect identity");
  observed.identity = identity.toHexString();
  observed.connection_id = conn.connectionId.toHexString();
  observed.token_received = true;
  observed.protocol = conn.ws?.protocol ?? null;

  // --- reducers with Timestamp and ScheduleAt arguments, awaited one by one ------------
  observed.reducers = {};
  await step("call record_event(Time)", () =>
    conn.reducers.recordEvent({
      name: "time ✓",
      at: new Timestamp(AT_MICROS),
      schedule: ScheduleAt.time(SCHEDULE_TIME_MICROS),
    }),
  );
  observed.reducers.record_event_time = "ok";
  await step("call record_event(Interval)", () =>
    conn.reducers.recordEvent({
      name: "interval ✓",
      at: new Timestamp(BEFORE_EPOCH_MICROS),
      schedule: ScheduleAt.interval(SCHEDULE_INTERVAL_MICROS),
    }),
  );
  observed.reducers.record_event_interval = "ok";
  await step("call add_person", () => conn.reducers.addPerson({ name: "Ada Lovelace" }));
  await step("call add_person (long name)", () => conn.reducers.addPerson({ name: LONG_NAME }));
  observed.reducers.add_person = "ok";
  await step("call add", () => conn.reducers.add({ a: 1, b: 2 }));
  observed.reducers.add = "ok";

  const failure = await step("call fail (expect rejection)", () =>
    conn.reducers.fail({ message: "boom: ✗" }).then(
      () => null,
      (error) => error,
    ),
  );
  expect(failure !== null, "fail() resolved; the reducer's Err must reject the promise");
  expect(failure instanceof SenderError, `fail() rejected with ${failure?.name}: ${failure?.message}`);
  expect(failure.message === "boom: ✗", `fail() message was ${toJson(failure.message)}`);
  observed.reducers.fail = { rejected: failure.name, message: failure.message };

  const serverTime = await step("call procedure server_time", () => conn.procedures.serverTime({}));
  near(serverTime, "server_time()");
  observed.procedure_server_time = micros(serverTime);

  // --- subscription: initial rows, decoded by the SDK ----------------------------------
  const badQuery = await step("subscribe to a missing table (expect onError)", () =>
    new Promise((resolve) => {
      conn
        .subscriptionBuilder()
        .onApplied(() => resolve(null))
        .onError((_ctx, error) => resolve(error ?? new Error("onError without an error")))
        .subscribe(["SELECT * FROM no_such_table"]);
    }),
  );
  expect(badQuery !== null, "subscribing to a missing table was applied; expected onError");
  observed.subscription_error = String(badQuery.message ?? badQuery);

  const queries = [
    "SELECT * FROM person",
    "SELECT * FROM event",
    "SELECT * FROM tick_schedule",
    "SELECT * FROM tick_log",
  ];
  let handle;
  await step("subscribe (SubscribeApplied)", () =>
    new Promise((resolve, reject) => {
      handle = conn
        .subscriptionBuilder()
        .onApplied(resolve)
        .onError((_ctx, error) => reject(error ?? new Error("subscription error")))
        .subscribe(queries);
    }),
  );
  stage = "check subscribed rows";
  const people = rows(conn.db.person);
  const ada = people.find((p) => p.name === "Ada Lovelace");
  expect(ada !== undefined, `person rows lack Ada Lovelace: ${toJson(people)}`);
  expect(typeof ada.id === "bigint", "person.id is not a u64 bigint");
  near(ada.createdAt, "person.created_at");
  expect(
    people.some((p) => p.name === LONG_NAME),
    `the ${LONG_NAME.length}-character name did not come back intact`,
  );

  const events = rows(conn.db.event);
  const byName = Object.fromEntries(events.map((e) => [e.name, e]));
  const timeEvent = byName["time ✓"];
  const intervalEvent = byName["interval ✓"];
  expect(timeEvent && intervalEvent, `event rows: ${toJson(events)}`);
  expect(micros(timeEvent.at) === AT_MICROS, `event.at ${micros(timeEvent.at)} != ${AT_MICROS}`);
  expect(
    micros(intervalEvent.at) === BEFORE_EPOCH_MICROS,
    `pre-epoch event.at ${micros(intervalEvent.at)} != ${BEFORE_EPOCH_MICROS}`,
  );
  const timeSchedule = scheduleAtJson(timeEvent.schedule);
  const intervalSchedule = scheduleAtJson(intervalEvent.schedule);
  expect(timeSchedule.Time === SCHEDULE_TIME_MICROS, `Time schedule ${toJson(timeSchedule)}`);
  expect(
    intervalSchedule.Interval === SCHEDULE_INTERVAL_MICROS,
    `Interval schedule ${toJson(intervalSchedule)}`,
  );
  for (const e of [timeEvent, intervalEvent]) {
    expect(e.sender instanceof Identity, "event.sender is not an Identity");
    expect(e.sender.isEqual(identity), `event.sender ${e.sender.toHexString()} != caller`);
  }
  observed.subscribed = {
    person: people
      .filter((p) => p.name !== LONG_NAME)
      .map((p) => ({ id: p.id, name: p.name, created_at: micros(p.createdAt) })),
    event: events.map((e) => ({
      id: e.id,
      name: e.name,
      at: micros(e.at),
      schedule: scheduleAtJson(e.schedule),
      sender: e.sender.toHexString(),
    })),
  };

  // --- live updates --------------------------------------------------------------------
  // The caller's own changes ride in its ReducerResult: visible when the promise resolves.
  await step("call add_person while subscribed", () =>
    conn.reducers.addPerson({ name: "Grace Hopper" }),
  );
  expect(
    rows(conn.db.person).some((p) => p.name === "Grace Hopper"),
    "the caller's own insert was not in its ReducerResult",
  );
  observed.live = { own_insert_in_reducer_result: true };

  // A one-shot tick in the past fires at once; the scheduled reducer's transaction reaches
  // us as a TransactionUpdate (we are not its caller), and the schedule row is deleted.
  const pastMicros = BigInt(Date.now() - 60_000) * 1000n;
  const pastFired = waitFor(onTable(conn.db.tickLog, "insert"), (_ctx, row) =>
    row.label === "past tick" ? row : undefined,
  );
  const pastDeleted = waitFor(onTable(conn.db.tickSchedule, "delete"), (_ctx, row) =>
    row.label === "past tick" ? row : undefined,
  );
  await step("call schedule_tick(Time in the past)", () =>
    conn.reducers.scheduleTick({ label: "past tick", at: ScheduleAt.time(pastMicros) }),
  );
  const log = await step("wait for tick_log insert", () => pastFired);
  const gone = await step("wait for one-shot tick_schedule delete", () => pastDeleted);
  expect(gone.scheduledId === log.scheduledId, "tick_log.scheduled_id != the deleted schedule id");
  expect(scheduleAtJson(gone.scheduledAt).Time === pastMicros, "schedule row changed its time");
  near(log.firedAt, "tick_log.fired_at");
  expect(micros(log.firedAt) >= pastMicros, "tick fired before its scheduled time");
  observed.live.past_tick = { scheduled_id: log.scheduledId, fired_at: micros(log.firedAt) };

  // A repeating tick fires again and again until cancel_tick deletes its row.
  const intervalTicks = [];
  const twoTicks = waitFor(onTable(conn.db.tickLog, "insert"), (_ctx, row) => {
    if (row.label !== "every 150 ms") return undefined;
    intervalTicks.push(row);
    return intervalTicks.length >= 2 ? true : undefined;
  });
  await step("call schedule_tick(Interval)", () =>
    conn.reducers.scheduleTick({
      label: "every 150 ms",
      at: ScheduleAt.interval(TICK_EVERY_MICROS),
    }),
  );
  const repeating = rows(conn.db.tickSchedule).find((r) => r.label === "every 150 ms");
  expect(repeating !== undefined, "the caller's tick_schedule insert was not in its ReducerResult");
  expect(
    scheduleAtJson(repeating.scheduledAt).Interval === TICK_EVERY_MICROS,
    "interval schedule row",
  );
  await step("wait for two interval ticks", () => twoTicks);
  expect(
    micros(intervalTicks[1].firedAt) > micros(intervalTicks[0].firedAt),
    "interval ticks did not advance in time",
  );
  await step("call cancel_tick", () =>
    conn.reducers.cancelTick({ scheduledId: repeating.scheduledId }),
  );
  expect(
    conn.db.tickSchedule.scheduled_id.find(repeating.scheduledId) === null,
    "the cancelled schedule row is still in the client cache",
  );
  const ticksAtCancel = intervalTicks.length;
  stage = "check no tick after cancel";
  await new Promise((resolve) => setTimeout(resolve, Number(TICK_EVERY_MICROS / 1000n) * 3));
  expect(
    intervalTicks.length === ticksAtCancel,
    `ticks kept firing after cancel_tick (${ticksAtCancel} -> ${intervalTicks.length})`,
  );
  observed.live.interval_ticks_before_cancel = ticksAtCancel;
  observed.live.cancelled_scheduled_id = repeating.scheduledId;

  // --- unsubscribe: the SDK asks for the dropped rows and removes them -------------------
  await step("unsubscribe (UnsubscribeApplied)", () =>
    new Promise((resolve) => handle.unsubscribeThen(resolve)),
  );
  expect(conn.db.person.count() === 0n, "person rows remain in the cache after unsubscribe");
  observed.unsubscribed_rows_dropped = true;

  // --- disconnect, then reconnect with the saved token (same identity) -------------------
  conn.disconnect();
  await step("disconnect (onDisconnect)", () => disconnected);
  const again = await step("reconnect with the saved token and confirmed reads", () =>
    connect(args.uri, args.database, { compression: args.compression, token, confirmed: true }),
  );
  expect(
    again.identity.isEqual(identity),
    `reconnecting with the token gave identity ${again.identity.toHexString()}`,
  );
  observed.reconnect_same_identity = true;
  again.conn.disconnect();
  await step("disconnect again", () => again.disconnected);

  observed.elapsed_ms = Date.now() - start;
  stage = "done";
}

main().then(
  () => {
    clearTimeout(hardDeadline);
    finish(0, { ok: true });
  },
  (error) => {
    clearTimeout(hardDeadline);
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    process.stderr.write(`conformance: failed during stage "${stage}": ${message}\n`);
    finish(1, { ok: false, error: message });
  },
);
