// Hand-written twin of what `spacetime generate --lang typescript` emits for the
// quickstart module (spacetime_sched/testing/example_module.py), converted to plain
// JavaScript: same file layout, same calls, type-only lines dropped. Keep it in step
// with the module contract; the conformance test fails loudly when they drift.
//
// Shape follows crates/codegen/src/typescript.rs (SpacetimeDB 2.x): tables sorted by
// name with camelCase accessors (plus deprecated snake_case aliases), only
// client-callable reducers (lifecycle reducers and the scheduled `tick` are private
// in a 2.x module, so codegen leaves them out), procedures sorted by name.

/* eslint-disable */
import {
  DbConnectionBuilder as __DbConnectionBuilder,
  DbConnectionImpl as __DbConnectionImpl,
  SubscriptionBuilderImpl as __SubscriptionBuilderImpl,
  convertToAccessorMap as __convertToAccessorMap,
  makeQueryBuilder as __makeQueryBuilder,
  procedureSchema as __procedureSchema,
  procedures as __procedures,
  reducerSchema as __reducerSchema,
  reducers as __reducers,
  schema as __schema,
  table as __table,
} from "spacetimedb";

// Import all reducer arg schemas
import AddReducer from "./add_reducer.mjs";
import AddPersonReducer from "./add_person_reducer.mjs";
import CancelTickReducer from "./cancel_tick_reducer.mjs";
import FailReducer from "./fail_reducer.mjs";
import RecordEventReducer from "./record_event_reducer.mjs";
import ScheduleTickReducer from "./schedule_tick_reducer.mjs";

// Import all procedure arg schemas
import * as ServerTimeProcedure from "./server_time_procedure.mjs";

// Import all table schema definitions
import EventRow from "./event_table.mjs";
import PersonRow from "./person_table.mjs";
import TickLogRow from "./tick_log_table.mjs";
import TickScheduleRow from "./tick_schedule_table.mjs";

/** The schema information for all tables in this module. */
const tablesSchema = __schema({
  event: __table({
    name: 'event',
    indexes: [
      { accessor: 'id', name: 'event_id_idx_btree', algorithm: 'btree', columns: [
        'id',
      ] },
    ],
    constraints: [
      { name: 'event_id_key', constraint: 'unique', columns: ['id'] },
    ],
  }, EventRow),
  person: __table({
    name: 'person',
    indexes: [
      { accessor: 'id', name: 'person_id_idx_btree', algorithm: 'btree', columns: [
        'id',
      ] },
    ],
    constraints: [
      { name: 'person_id_key', constraint: 'unique', columns: ['id'] },
    ],
  }, PersonRow),
  tickLog: __table({
    name: 'tick_log',
    indexes: [
      { accessor: 'id', name: 'tick_log_id_idx_btree', algorithm: 'btree', columns: [
        'id',
      ] },
    ],
    constraints: [
      { name: 'tick_log_id_key', constraint: 'unique', columns: ['id'] },
    ],
  }, TickLogRow),
  tickSchedule: __table({
    name: 'tick_schedule',
    indexes: [
      { accessor: 'scheduled_id', name: 'tick_schedule_scheduled_id_idx_btree', algorithm: 'btree', columns: [
        'scheduledId',
      ] },
    ],
    constraints: [
      { name: 'tick_schedule_scheduled_id_key', constraint: 'unique', columns: ['scheduledId'] },
    ],
  }, TickScheduleRow),
});

/** The schema information for all reducers in this module (bodies omitted). */
const reducersSchema = __reducers(
  __reducerSchema("add_person", AddPersonReducer),
  __reducerSchema("record_event", RecordEventReducer),
  __reducerSchema("schedule_tick", ScheduleTickReducer),
  __reducerSchema("cancel_tick", CancelTickReducer),
  __reducerSchema("fail", FailReducer),
  __reducerSchema("add", AddReducer),
);

/** The schema information for all procedures in this module. */
const proceduresSchema = __procedures(
  __procedureSchema("server_time", ServerTimeProcedure.params, ServerTimeProcedure.returnType),
);

/** The remote SpacetimeDB module schema, both runtime and type information. */
const REMOTE_MODULE = {
  versionInfo: {
    // The CLI version whose codegen these bindings reproduce (checked by `build()`).
    cliVersion: "2.10.1",
  },
  tables: tablesSchema.schemaType.tables,
  reducers: reducersSchema.reducersType.reducers,
  ...proceduresSchema,
};

const tableAccessorAliases = {
  "tick_log": "tickLog",
  "tick_schedule": "tickSchedule",
};

function __withTableAccessorAliases(target, freeze = false) {
  const out = Object.create(Object.getPrototypeOf(target));
  Object.defineProperties(out, Object.getOwnPropertyDescriptors(target));
  for (const [deprecatedAccessor, targetAccessor] of Object.entries(tableAccessorAliases)) {
    if (deprecatedAccessor in out) {
      continue;
    }
    Object.defineProperty(out, deprecatedAccessor, {
      enumerable: true,
      configurable: false,
      get: () => out[targetAccessor],
    });
  }
  return freeze ? Object.freeze(out) : out;
}

/** The tables available in this remote SpacetimeDB module. Each table reference doubles as a query builder. */
const tablesBase = __makeQueryBuilder(tablesSchema.schemaType);
export const tables = __withTableAccessorAliases(tablesBase, true);

/** The reducers available in this remote SpacetimeDB module. */
export const reducers = __convertToAccessorMap(reducersSchema.reducersType.reducers);

/** The procedures available in this remote SpacetimeDB module. */
export const procedures = __convertToAccessorMap(proceduresSchema.procedures);

/** Builder class to configure a new subscription to the remote SpacetimeDB instance. */
export class SubscriptionBuilder extends __SubscriptionBuilderImpl {}

/** Builder class to configure a new database connection to the remote SpacetimeDB instance. */
export class DbConnectionBuilder extends __DbConnectionBuilder {}

/** The database connection to the remote SpacetimeDB instance, typed by this module. */
export class DbConnection extends __DbConnectionImpl {
  constructor(config) {
    super(config);
    this.db = __withTableAccessorAliases(this.db);
  }

  /** Creates a new {@link DbConnectionBuilder} to configure and connect to the remote SpacetimeDB instance. */
  static builder = () => {
    return new DbConnectionBuilder(REMOTE_MODULE, (config) => new DbConnection(config));
  };

  /** Creates a new {@link SubscriptionBuilder} to configure a subscription to the remote SpacetimeDB instance. */
  subscriptionBuilder = () => {
    return new SubscriptionBuilder(this);
  };
}
