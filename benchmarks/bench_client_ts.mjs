#!/usr/bin/env node
// Reducer-call throughput of the official SpacetimeDB TypeScript SDK, for comparison with
// spacetime_sched's Python client (benchmarks/bench_client.py) against the same server.
//
//   node benchmarks/bench_client_ts.mjs <uri> <database> <n_sequential> <n_pipelined>
//       [--in-flight=1000] [--compression=gzip|none] [--protocols=v2]
//
// Calls the quickstart module's `add(1, 2)` reducer:
//   * sequential: await each call before the next (round-trip latency bound);
//   * pipelined: keep up to --in-flight calls outstanding (throughput bound).
// --protocols=v2 offers only v2 on the wire (the SDK offers v3 then v2, and v3 lets it batch
// many calls into one frame). Prints one JSON line. Needs `npm ci --prefix tests/conformance`.

import { readFileSync } from "node:fs";
import { connect, offerOnlyProtocols, toJson, within } from "../tests/conformance/connect.mjs";

const WARMUP_CALLS = 50;

function parseArgs(argv) {
  const positional = argv.filter((a) => !a.startsWith("--"));
  const options = Object.fromEntries(
    argv.filter((a) => a.startsWith("--")).map((a) => a.slice(2).split("=", 2)),
  );
  if (positional.length !== 4) {
    process.stderr.write(
      "usage: node bench_client_ts.mjs <uri> <database> <n_sequential> <n_pipelined> " +
        "[--in-flight=1000] [--compression=gzip|none] [--protocols=v2]\n",
    );
    process.exit(64);
  }
  return {
    uri: positional[0],
    database: positional[1],
    nSequential: Number(positional[2]),
    nPipelined: Number(positional[3]),
    inFlight: Number(options["in-flight"] ?? 1000),
    compression: options.compression ?? "gzip",
    protocols: options.protocols?.split(",").map((v) => `${v}.bsatn.spacetimedb`),
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function sequential(conn, n) {
  const latencies = new Float64Array(n);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await conn.reducers.add({ a: 1, b: 2 });
    latencies[i] = performance.now() - t0;
  }
  const seconds = (performance.now() - start) / 1000;
  const sorted = Array.from(latencies).sort((x, y) => x - y);
  return {
    calls: n,
    seconds,
    calls_per_s: n / seconds,
    p50_ms: percentile(sorted, 50),
    p99_ms: percentile(sorted, 99),
  };
}

async function pipelined(conn, n, inFlight) {
  let started = 0;
  const start = performance.now();
  // Each lane issues its next call as soon as its previous one settles, so at most
  // `inFlight` calls are outstanding and the window stays full until the tail.
  async function lane() {
    while (started < n) {
      started += 1;
      await conn.reducers.add({ a: 1, b: 2 });
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane));
  const seconds = (performance.now() - start) / 1000;
  return { calls: n, in_flight: inFlight, seconds, calls_per_s: n / seconds };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.protocols) offerOnlyProtocols(args.protocols);
  const sdkPackage = new URL("../tests/conformance/node_modules/spacetimedb/package.json", import.meta.url);
  const sdkVersion = JSON.parse(readFileSync(sdkPackage, "utf8")).version;

  const { conn, disconnected } = await within(
    10000,
    "onConnect",
    connect(args.uri, args.database, { compression: args.compression }),
  );
  for (let i = 0; i < WARMUP_CALLS; i++) await conn.reducers.add({ a: 1, b: 2 });

  const result = {
    client: "typescript",
    sdk: `spacetimedb ${sdkVersion}`,
    node: process.version,
    protocol: conn.ws?.protocol ?? null,
    compression: args.compression,
    sequential: await sequential(conn, args.nSequential),
    pipelined: await pipelined(conn, args.nPipelined, args.inFlight),
  };
  conn.disconnect();
  await within(5000, "onDisconnect", disconnected);
  process.stdout.write(`${toJson(result)}\n`);
}

const deadline = setTimeout(() => {
  process.stderr.write("bench_client_ts: gave up after 120 s\n");
  process.exit(2);
}, 120000);

main().then(
  () => clearTimeout(deadline),
  (error) => {
    process.stderr.write(`bench_client_ts: ${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
