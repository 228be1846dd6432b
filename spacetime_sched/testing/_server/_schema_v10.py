"""``GET /v1/database/{name}/schema?version=10``: the module as a ``RawModuleDefV10``.

A real server answers ``version=10`` from the same validated module definition as
``version=9`` (``crates/schema/src/def.rs``, ``From<ModuleDef> for RawModuleDefV10``): a list
of sections, each present only when it has entries, in this order: ``Typespace``, ``Types``,
``Tables`` (schedules moved out to ``Schedules``), ``Reducers``, ``Procedures``, ``Schedules``,
``LifeCycleReducers``, ``RowLevelSecurity``, then always ``ExplicitNames`` (each table's and
function's source name -> canonical name). Shapes follow ``crates/lib/src/db/raw_def/v10.rs``;
scheduled functions and lifecycle reducers are ``Private``
(``crates/schema/src/def/validate/v10.rs``,
``change_scheduled_functions_and_lifetimes_visibility``).

The real server iterates hash maps for tables, types and a table's indexes, constraints and
sequences (their order there is arbitrary); here they keep the sorted order of ``version=9``.
The served schema's names are the module's canonical names, and this Python module declares
tables and functions in canonical form already, so source and canonical names coincide.
"""

from __future__ import annotations

from typing import Any

from ... import sats
from ...protocol import ModuleSchema, ProcedureDef, ReducerDef, TableDef
from ._module import Module

__all__ = ["module_def_v10"]


def _some(value: Any) -> Any:
    return {"none": []} if value is None else {"some": value}


def _visibility(function: ReducerDef | ProcedureDef) -> Any:
    private = isinstance(function, ReducerDef) and function.lifecycle is not None
    private = private or function.scheduled_by is not None
    return {"Private": []} if private else {"ClientCallable": []}


def _table(table: TableDef) -> Any:
    return {
        "source_name": table.name,
        "product_type_ref": table.product_type_ref,
        "primary_key": list(table.primary_key),
        "indexes": [
            {
                "source_name": _some(index.name),
                "accessor_name": _some(index.accessor_name),
                "algorithm": index.to_json()["algorithm"],
            }
            for index in table.indexes
        ],
        "constraints": [
            {"source_name": _some(c.name), "data": {"Unique": {"columns": list(c.columns)}}}
            for c in table.constraints
        ],
        "sequences": [
            {
                "source_name": _some(seq.name),
                **{k: v for k, v in seq.to_json().items() if k != "name"},
            }
            for seq in table.sequences
        ],
        "table_type": {table.table_type: []},
        "table_access": {table.table_access: []},
        "default_values": [],
        "is_event": False,
    }


def module_def_v10(module: Module) -> dict[str, Any]:
    """The ``RawModuleDefV10`` JSON a 2.x server serves for ``module``."""
    schema: ModuleSchema = module.schema
    sections: list[Any] = [{"Typespace": schema.typespace.to_json()}]
    if schema.types:
        sections.append(
            {
                "Types": [
                    {
                        "source_name": {"scope": list(t.scope), "source_name": t.name},
                        "ty": t.ty,
                        "custom_ordering": t.custom_ordering,
                    }
                    for t in schema.types
                ]
            }
        )
    if schema.tables:
        sections.append({"Tables": [_table(table) for table in schema.tables]})
    if schema.reducers:
        sections.append(
            {
                "Reducers": [
                    {
                        "source_name": r.name,
                        "params": r.params.to_json()["Product"],
                        "visibility": _visibility(r),
                        "ok_return_type": sats.UNIT.to_json(),
                        "err_return_type": sats.STRING.to_json(),
                    }
                    for r in schema.reducers
                ]
            }
        )
    if schema.procedures:
        sections.append(
            {
                "Procedures": [
                    {
                        "source_name": p.name,
                        "params": p.params.to_json()["Product"],
                        "return_type": p.return_type.to_json(),
                        "visibility": _visibility(p),
                    }
                    for p in schema.procedures
                ]
            }
        )
    schedules = [
        {
            "source_name": _some(table.schedule.name),
            "table_name": table.name,
            "schedule_at_col": table.schedule.scheduled_at_column,
            "function_name": table.schedule.reducer_name,
        }
        for table in schema.tables
        if table.schedule is not None
    ]
    if schedules:
        sections.append({"Schedules": schedules})
    lifecycles = [
        {"lifecycle_spec": {kind: []}, "function_name": r.name}
        for kind in ("Init", "OnConnect", "OnDisconnect")
        for r in schema.reducers
        if r.lifecycle == kind
    ]
    if lifecycles:
        sections.append({"LifeCycleReducers": lifecycles})
    if schema.row_level_security:
        sections.append({"RowLevelSecurity": [{"sql": sql} for sql in schema.row_level_security]})
    names = [
        {"Table": {"source_name": t.name, "canonical_name": t.name}} for t in schema.tables
    ] + [
        {"Function": {"source_name": f.name, "canonical_name": f.name}}
        for f in (*schema.reducers, *schema.procedures)
    ]
    sections.append({"ExplicitNames": {"entries": names}})
    return {"sections": sections}
