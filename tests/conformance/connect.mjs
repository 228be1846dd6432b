// Small helpers shared by conformance.mjs and benchmarks/bench_client_ts.mjs: open a
// connection with the official SDK exactly as an application would, and turn its
// callbacks into promises with deadlines that say what was being waited for.

import { setGlobalLogLevel } from "spacetimedb";
import { WebSocket as UndiciWebSocket } from "undici";
import { DbConnection } from "./module_bindings/index.mjs";

// The SDK logs "Connecting..." at info level on stdout; our stdout carries JSON only.
setGlobalLogLevel("warn");

/** Reject with a message naming `what` unless `promise` settles within `ms`. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolve with the first value `predicate` accepts among values pushed to `subscribe`'s callback. */
export function waitFor(subscribe, predicate) {
  return new Promise((resolve) => {
    const unsubscribe = subscribe((...args) => {
      const value = predicate(...args);
      if (value !== undefined) {
        unsubscribe();
        resolve(value);
      }
    });
  });
}

/**
 * Connect with `DbConnection.builder()` and wait for `onConnect`.
 *
 * Resolves `{ conn, identity, token, disconnected }`, where `disconnected` is a promise that
 * resolves (with the error, if any) when the connection closes. Rejects with the SDK's
 * error on `onConnectError`.
 */
export function connect(uri, database, { compression = "gzip", token, confirmed } = {}) {
  let onDisconnected;
  const disconnected = new Promise((resolve) => {
    onDisconnected = resolve;
  });
  return new Promise((resolve, reject) => {
    let builder = DbConnection.builder()
      .withUri(uri)
      .withDatabaseName(database)
      .withCompression(compression)
      .onConnect((conn, identity, token) => resolve({ conn, identity, token, disconnected }))
      .onConnectError((_ctx, error) => reject(error))
      .onDisconnect((_ctx, error) => onDisconnected(error ?? null));
    if (token !== undefined) builder = builder.withToken(token);
    if (confirmed !== undefined) builder = builder.withConfirmedReads(confirmed);
    builder.build();
  });
}

/**
 * Make the SDK offer only `protocols` (e.g. `["v2.bsatn.spacetimedb"]`) on the wire.
 *
 * Node 20 has no global WebSocket, so the SDK loads undici's; a global subclass that narrows
 * the offered subprotocols is picked up instead, with the SDK itself untouched.
 */
export function offerOnlyProtocols(protocols) {
  globalThis.WebSocket = class NarrowedWebSocket extends UndiciWebSocket {
    constructor(url, offered) {
      super(url, offered.filter((p) => protocols.includes(p)));
    }
  };
}

/** JSON.stringify that writes bigints as decimal strings (SATS u64/i64 values are bigints). */
export function toJson(value) {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v));
}
