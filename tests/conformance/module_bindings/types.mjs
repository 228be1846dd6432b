// Hand-written twin of what `spacetime generate --lang typescript` emits for the
// quickstart module (spacetime_sched/testing/example_module.py), converted to plain
// JavaScript: same file layout, same calls, type-only lines dropped. Keep it in step
// with the module contract; the conformance test fails loudly when they drift.

/* eslint-disable */
import { t as __t } from "spacetimedb";

export const Event = __t.object("Event", {
  id: __t.u64(),
  name: __t.string(),
  at: __t.timestamp(),
  schedule: __t.scheduleAt(),
  sender: __t.identity(),
});

export const Person = __t.object("Person", {
  id: __t.u64(),
  name: __t.string(),
  createdAt: __t.timestamp(),
});

export const TickLog = __t.object("TickLog", {
  id: __t.u64(),
  label: __t.string(),
  scheduledId: __t.u64(),
  firedAt: __t.timestamp(),
});

export const TickSchedule = __t.object("TickSchedule", {
  scheduledId: __t.u64(),
  scheduledAt: __t.scheduleAt(),
  label: __t.string(),
});
