#!/usr/bin/env node
// Rows per second the official SpacetimeDB TypeScript SDK applies to its client cache from one
// large TransactionUpdate: the TypeScript side of benchmarks/bench_cache.py, which writes the
// server frames this script replays and runs it (`python benchmarks/bench_cache.py --ts`).
//
//   node benchmarks/bench_cache_ts.mjs <frames-dir> <rows> <rounds>
//
// <frames-dir> holds initial.bin (InitialConnection), inserts.bin (a TransactionUpdate
// inserting <rows> `person` rows) and updates.bin (one replacing each of them by a row with
// the same primary key), each a v2 server frame (compression tag 0, one message). A stand-in
// WebSocket (the SDK takes globalThis.WebSocket when there is one) delivers them to a real
// DbConnection built from the quickstart bindings: no network, so the figure is the SDK's own
// work, as for the Python client. Timed: from handing the frame to the socket's onmessage to
// the end of its processing (decode, cache, callbacks). Prints one JSON line.

import { readFileSync } from "node:fs";
import { join } from "node:path";
// (connect.mjs turns the SDK's logging down to warnings, as for bench_client_ts.mjs)
import "../tests/conformance/connect.mjs";
import { DbConnection } from "../tests/conformance/module_bindings/index.mjs";

const [dir, rowsArg, roundsArg] = process.argv.slice(2);
if (!dir || !rowsArg || !roundsArg) {
  process.stderr.write("usage: node bench_cache_ts.mjs <frames-dir> <rows> <rounds>\n");
  process.exit(64);
}
const ROWS = Number(rowsArg);
const ROUNDS = Number(roundsArg);
const frame = (name) => {
  const bytes = readFileSync(join(dir, name));
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
};
const FRAMES = { initial: frame("initial.bin"), inserts: frame("inserts.bin"), updates: frame("updates.bin") };

let socket = null; // the stand-in socket of the connection being built

globalThis.WebSocket = class StandInWebSocket {
  constructor(_url, _protocols) {
    this.protocol = "v2.bsatn.spacetimedb";
    this.readyState = 0;
    this.binaryType = "arraybuffer";
    socket = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
      this.deliver(FRAMES.initial);
    }, 0);
  }
  /** Hand one frame to the SDK; resolves when the SDK has processed it. */
  deliver(data) {
    return this.onmessage({ data });
  }
  send(_data) {}
  close() {
    this.readyState = 3;
  }
};

function connect() {
  return new Promise((resolve, reject) => {
    DbConnection.builder()
      .withUri("ws://stand-in.invalid")
      .withDatabaseName("quickstart")
      .withCompression("none")
      .onConnect((conn) => resolve(conn))
      .onConnectError((_ctx, error) => reject(error))
      .build();
  });
}

async function round(kind) {
  const conn = await connect();
  const ws = socket;
  let seen = 0;
  if (kind === "insert-callback") conn.db.person.onInsert(() => (seen += 1));
  if (kind === "update-callback") conn.db.person.onUpdate(() => (seen += 1));
  if (kind.startsWith("update")) await ws.deliver(FRAMES.inserts);
  const t0 = performance.now();
  await ws.deliver(kind.startsWith("update") ? FRAMES.updates : FRAMES.inserts);
  const seconds = (performance.now() - t0) / 1000;
  const count = Number(conn.db.person.count());
  if (count !== ROWS) throw new Error(`expected ${ROWS} cached rows, got ${count}`);
  if (kind.endsWith("callback") && seen !== ROWS) throw new Error(`${seen} callbacks, not ${ROWS}`);
  conn.disconnect();
  return ROWS / seconds;
}

const KINDS = ["insert", "insert-callback", "update-callback"];
for (const kind of KINDS) await round(kind); // warm the JIT up, as Python's rounds warm caches
const results = {};
for (const kind of KINDS) {
  let best = 0;
  for (let i = 0; i < ROUNDS; i++) best = Math.max(best, await round(kind));
  results[kind] = best;
}
process.stdout.write(JSON.stringify({ rows: ROWS, rows_per_s: results, node: process.version }) + "\n");
process.exit(0);
