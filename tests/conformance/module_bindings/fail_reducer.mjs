// Hand-written twin of what `spacetime generate --lang typescript` emits for the
// quickstart module (spacetime_sched/testing/example_module.py), converted to plain
// JavaScript: same file layout, same calls, type-only lines dropped. Keep it in step
// with the module contract; the conformance test fails loudly when they drift.

/* eslint-disable */
import { t as __t } from "spacetimedb";

export default {
  message: __t.string(),
};
