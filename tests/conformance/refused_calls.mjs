#!/usr/bin/env node
// Calls a SpacetimeDB 2.x server must refuse, made with the official SDK's low-level
// `conn.callReducer(name, argsBytes)` / `conn.callProcedure(...)` (the generated bindings
// have no accessor for them, on purpose):
//
//   node refused_calls.mjs <uri> <database>
//
// Prints one JSON line: for each call, "resolved" or "<ErrorName>: <message>". The caller
// decides what is right; see tests/test_conformance_typescript.py.

import { BinaryWriter, ProductType, ScheduleAt } from "spacetimedb";
import { connect, toJson, within } from "./connect.mjs";
import TickScheduleRow from "./module_bindings/tick_schedule_table.mjs";

const [uri, database] = process.argv.slice(2);

function encode(rowBuilder, value) {
  const writer = new BinaryWriter(64);
  ProductType.makeSerializer(rowBuilder.algebraicType.value)(writer, value);
  return writer.getBuffer().slice();
}

async function outcome(promise) {
  try {
    await within(5000, "the call's result", promise);
    return "resolved";
  } catch (error) {
    return error instanceof Error ? `${error.name}: ${error.message}` : `string: ${error}`;
  }
}

async function main() {
  const { conn, disconnected } = await within(
    5000,
    "onConnect",
    connect(uri, database, { compression: "none" }),
  );
  const tickArgs = encode(TickScheduleRow, {
    scheduledId: 4242n,
    scheduledAt: ScheduleAt.time(0n),
    label: "called directly",
  });
  const result = {
    // In a 2.x module, scheduled and lifecycle reducers are private: "no such reducer"
    // (scheduled) or "can't directly call ... lifecycle reducer" for every caller but the owner.
    scheduled_tick: await outcome(conn.callReducer("tick", tickArgs)),
    lifecycle_client_connected: await outcome(conn.callReducer("client_connected", new Uint8Array())),
    lifecycle_init: await outcome(conn.callReducer("init", new Uint8Array())),
    unknown_reducer: await outcome(conn.callReducer("no_such_reducer", new Uint8Array())),
    truncated_args: await outcome(conn.callReducer("add", new Uint8Array([1, 2, 3]))),
    unknown_procedure: await outcome(conn.callProcedure("no_such_procedure", new Uint8Array())),
  };
  conn.disconnect();
  await within(5000, "onDisconnect", disconnected);
  process.stdout.write(`${toJson(result)}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`refused_calls: ${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
