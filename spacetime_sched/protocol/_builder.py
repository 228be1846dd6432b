"""Build a :class:`ModuleSchema` in Python, the way a module's bindings would declare it.

The local test server describes its Python-defined modules with this, so the schema it serves
has the same derived parts the real server writes: a unique constraint and a B-tree index for
the primary key and every unique column (named ``{table}_{cols}_key`` / ``{table}_{cols}_idx_btree``
like SpacetimeDB does), a sequence per auto-increment column (``{table}_{col}_seq``), and a
schedule named ``{table}_sched``::

    builder = ModuleSchemaBuilder()
    builder.add_table(
        "tick_schedule",
        sats.product(("scheduled_id", sats.U64), ("scheduled_at", sats.SCHEDULE_AT)),
        primary_key="scheduled_id",
        auto_inc=["scheduled_id"],
        scheduled=("tick", "scheduled_at"),
    )
    builder.add_reducer("tick", [("row", builder.type_ref("TickSchedule"))])
    schema = builder.build()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .. import sats
from ._schema import (
    ConstraintDef,
    IndexDef,
    Lifecycle,
    MiscExport,
    ModuleSchema,
    ProcedureDef,
    ReducerDef,
    ScheduleDef,
    SequenceDef,
    TableDef,
    TypeDef,
)

__all__ = ["ModuleSchemaBuilder"]


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _params(
    params: sats.ProductType | Iterable[tuple[str, sats.AlgebraicType]],
) -> sats.ProductType:
    if isinstance(params, sats.ProductType):
        return params
    return sats.product(*params)


class ModuleSchemaBuilder:
    """Collects types, tables, reducers and procedures; :meth:`build` makes the schema.

    The typespace is only complete at :meth:`build`, so every definition is kept as given and
    bound to the final typespace there.
    """

    def __init__(self) -> None:
        self._types: list[sats.AlgebraicType] = []
        self._type_defs: list[TypeDef] = []
        self._tables: list[dict[str, Any]] = []
        self._reducers: list[tuple[str, sats.ProductType, Lifecycle | None]] = []
        self._procedures: list[tuple[str, sats.ProductType, sats.AlgebraicType]] = []
        self._names: dict[str, int] = {}

    def add_type(
        self, name: str, ty: sats.AlgebraicType, *, scope: Sequence[str] = ()
    ) -> sats.RefType:
        """Register a named product or sum type; return the ``Ref`` to use in other types."""
        if name in self._names:
            raise ValueError(f"type {name!r} is already defined")
        index = len(self._types)
        self._types.append(ty)
        self._type_defs.append(TypeDef(name, index, tuple(scope), True))
        self._names[name] = index
        return sats.RefType(index)

    def type_ref(self, name: str) -> sats.RefType:
        """The ``Ref`` of a type registered earlier (tables register ``CamelCase(table)``)."""
        try:
            return sats.RefType(self._names[name])
        except KeyError:
            raise LookupError(f"no type named {name!r} (known: {sorted(self._names)})") from None

    def add_table(
        self,
        name: str,
        row_type: sats.ProductType | sats.RefType,
        *,
        type_name: str | None = None,
        primary_key: str | None = None,
        unique: Iterable[str] = (),
        auto_inc: Iterable[str] = (),
        indexes: Iterable[str | Sequence[str]] = (),
        scheduled: tuple[str, str] | None = None,
        public: bool = True,
    ) -> sats.RefType:
        """Declare a table; returns the ``Ref`` of its row type.

        ``row_type`` is registered as ``type_name`` (default: the table name in CamelCase)
        unless it already is a ``Ref``. ``scheduled=(reducer_name, at_column)`` makes it a
        schedule table. ``indexes`` adds B-tree indexes over one or several columns.
        """
        if isinstance(row_type, sats.RefType):
            ref = row_type
        else:
            ref = self.add_type(type_name or _camel(name), row_type)
        self._tables.append(
            {
                "name": name,
                "ref": ref.index,
                "primary_key": primary_key,
                "unique": list(unique),
                "auto_inc": list(auto_inc),
                "indexes": [[cols] if isinstance(cols, str) else list(cols) for cols in indexes],
                "scheduled": scheduled,
                "public": public,
            }
        )
        return ref

    def add_reducer(
        self,
        name: str,
        params: sats.ProductType | Iterable[tuple[str, sats.AlgebraicType]] = (),
        *,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        """Declare a reducer with its parameters (``("name", type)`` pairs, in order)."""
        self._reducers.append((name, _params(params), lifecycle))

    def add_procedure(
        self,
        name: str,
        params: sats.ProductType | Iterable[tuple[str, sats.AlgebraicType]] = (),
        return_type: sats.AlgebraicType = sats.UNIT,
    ) -> None:
        """Declare a procedure (a ``misc_exports`` entry in V9)."""
        self._procedures.append((name, _params(params), return_type))

    def build(self) -> ModuleSchema:
        """The finished schema, with every definition bound to the final typespace."""
        typespace = sats.Typespace(self._types)
        tables = [self._table(spec, typespace) for spec in self._tables]
        names = {typedef.ty: typedef.name for typedef in self._type_defs}
        reducers = [
            ReducerDef(name, params, lifecycle, typespace, names)
            for name, params, lifecycle in self._reducers
        ]
        misc: list[MiscExport] = [
            ProcedureDef(name, params, return_type, typespace, names)
            for name, params, return_type in self._procedures
        ]
        return ModuleSchema(typespace, tables, reducers, self._type_defs, misc, ())

    @staticmethod
    def _table(spec: dict[str, Any], typespace: sats.Typespace) -> TableDef:
        name = spec["name"]
        row_type = typespace.resolve(sats.RefType(spec["ref"]))
        if not isinstance(row_type, sats.ProductType):
            raise ValueError(f"table {name!r}: the row type must be a product, got {row_type}")
        columns = [element.name for element in row_type.elements]

        def col(column: str, what: str) -> int:
            try:
                return columns.index(column)
            except ValueError:
                raise ValueError(
                    f"table {name!r}: {what} names column {column!r}, but the columns are {columns}"
                ) from None

        unique_cols: list[str] = []
        if spec["primary_key"] is not None:
            unique_cols.append(spec["primary_key"])
        unique_cols += [c for c in spec["unique"] if c not in unique_cols]
        indexes: list[IndexDef] = []
        constraints: list[ConstraintDef] = []
        for column in unique_cols:
            index = col(column, "a unique column")
            indexes.append(IndexDef(f"{name}_{column}_idx_btree", column, "BTree", (index,)))
            constraints.append(ConstraintDef(f"{name}_{column}_key", (index,)))
        for cols in spec["indexes"]:
            ids = tuple(col(c, "an index") for c in cols)
            label = "_".join(cols)
            indexes.append(IndexDef(f"{name}_{label}_idx_btree", None, "BTree", ids))
        sequences = [
            SequenceDef(f"{name}_{column}_seq", col(column, "auto_inc"))
            for column in spec["auto_inc"]
        ]
        schedule = None
        if spec["scheduled"] is not None:
            reducer_name, at_column = spec["scheduled"]
            schedule = ScheduleDef(f"{name}_sched", reducer_name, col(at_column, "scheduled"))
        primary_key = () if spec["primary_key"] is None else (col(spec["primary_key"], "pk"),)
        return TableDef(
            name=name,
            product_type_ref=spec["ref"],
            row_type=row_type,
            primary_key=primary_key,
            indexes=indexes,
            constraints=constraints,
            sequences=sequences,
            schedule=schedule,
            table_type="User",
            table_access="Public" if spec["public"] else "Private",
            typespace=typespace,
        )
