"""Build a :class:`ModuleSchema` in Python, the way a 2.x server serves a module's schema.

The local test server describes its Python-defined modules with this, so the schema it serves
is what a real SpacetimeDB 2.x server answers for the same module at ``?version=9``: the module
definition is validated (``crates/schema/src/def/validate/v10.rs``) and converted back
(``crates/schema/src/def.rs``, ``From<ModuleDef> for RawModuleDefV9``). That means:

* case conversion with the default ``SnakeCase`` policy (``validate/v9.rs``,
  ``typespace_case_conversion`` and ``convert``): table, column (every product field in the
  typespace) and reducer names snake_case, type names PascalCase, enum variant names camelCase
  (``Active`` -> ``active``); special types (Option, Result, ScheduleAt, Identity, ...) untouched;
* derived parts named as ``validate/v9.rs`` names them (``generate_index_name`` and friends):
  a unique constraint ``{table}_{cols}_key`` and a B-tree index ``{table}_{cols}_idx_btree`` for
  the primary key and every unique column, a sequence ``{table}_{col}_seq`` per auto-increment
  column, a schedule ``{table}_sched``;
* order: tables, and each table's indexes, constraints and sequences, sorted by name
  (``def.rs``, ``to_raw`` over a ``BTreeMap``); ``types`` sorted by scoped name; reducers and
  procedures in declaration order (``IndexMap``).

::

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

``build(served=False)`` skips the conversion (names and order as declared), which the local
server uses to decode values with the names its Python module gave them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .. import sats
from ._case import camel_case, pascal_case, snake_case
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

__all__ = ["ModuleSchemaBuilder", "served_type"]


def _params(
    params: sats.ProductType | Iterable[tuple[str, sats.AlgebraicType]],
) -> sats.ProductType:
    if isinstance(params, sats.ProductType):
        return params
    return sats.product(*params)


def _is_special(ty: sats.AlgebraicType) -> bool:
    """``AlgebraicType::is_special`` (``crates/sats/src/{product,sum}_type.rs``): Identity,
    ConnectionId, Timestamp, TimeDuration, Uuid, Option, ScheduleAt and Result; no Ref followed."""
    if isinstance(ty, sats.RefType):
        return False
    if sats.special_kind(ty) is not None:
        return True
    return (
        isinstance(ty, sats.SumType)
        and len(ty.variants) == 2
        and (ty.variants[0].name, ty.variants[1].name) == ("ok", "err")
    )


def served_type(ty: sats.AlgebraicType) -> sats.AlgebraicType:
    """``ty`` with the names a 2.x server gives it (``convert_algebraic_type`` in
    ``validate/v9.rs``): product fields snake_case, sum variants camelCase, recursively through
    products, sums and arrays; special types are left as they are."""
    if _is_special(ty):
        return ty
    if isinstance(ty, sats.ProductType):
        return sats.ProductType(
            sats.ProductElement(
                None if e.name is None else snake_case(e.name), served_type(e.algebraic_type)
            )
            for e in ty.elements
        )
    if isinstance(ty, sats.SumType):
        return sats.SumType(
            sats.SumVariant(
                None if v.name is None else camel_case(v.name), served_type(v.algebraic_type)
            )
            for v in ty.variants
        )
    if isinstance(ty, sats.ArrayType):
        return sats.ArrayType(served_type(ty.elem))
    return ty


def _identity(name: str) -> str:
    return name


def _identity_type(ty: sats.AlgebraicType) -> sats.AlgebraicType:
    return ty


def _param_types(
    params: sats.ProductType, convert: Callable[[sats.AlgebraicType], sats.AlgebraicType]
) -> sats.ProductType:
    """Parameter names stay as declared (a 2.x server serves ``params`` raw); their types are
    converted like the typespace's, since a real module's enums and structs reach parameters
    as refs to converted typespace entries."""
    return sats.ProductType(
        sats.ProductElement(e.name, convert(e.algebraic_type)) for e in params.elements
    )


class ModuleSchemaBuilder:
    """Collects types, tables, reducers and procedures; :meth:`build` makes the schema.

    The typespace is only complete at :meth:`build`, so every definition is kept as given and
    bound to the final typespace there. Names are given as the module declares them; the
    served schema converts them (see the module docstring).
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
        """The ``Ref`` of a type registered earlier (tables register ``PascalCase(table)``)."""
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
        indexes: Iterable[str | Sequence[str]] | Mapping[str, str | Sequence[str]] = (),
        scheduled: tuple[str, str] | None = None,
        public: bool = True,
    ) -> sats.RefType:
        """Declare a table; returns the ``Ref`` of its row type.

        ``row_type`` is registered as ``type_name`` (default: the table name in PascalCase)
        unless it already is a ``Ref``. ``scheduled=(reducer_name, at_column)`` makes it a
        schedule table. ``indexes`` adds B-tree indexes over one or several columns: a
        mapping gives each its accessor name (``{"by_owner_and_day": ["owner", "day"]}``);
        listed without one, a single-column index is accessed by its column's name and a
        multi-column index has no accessor.
        """
        if isinstance(row_type, sats.RefType):
            ref = row_type
        else:
            ref = self.add_type(type_name or pascal_case(name), row_type)
        if isinstance(indexes, Mapping):
            index_specs = [
                (accessor, [cols] if isinstance(cols, str) else list(cols))
                for accessor, cols in indexes.items()
            ]
        else:
            index_specs = [
                (cols, [cols]) if isinstance(cols, str) else (None, list(cols)) for cols in indexes
            ]
        self._tables.append(
            {
                "name": name,
                "ref": ref.index,
                "primary_key": primary_key,
                "unique": list(unique),
                "auto_inc": list(auto_inc),
                "indexes": index_specs,
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

    def build(self, *, served: bool = True) -> ModuleSchema:
        """The finished schema, with every definition bound to the final typespace.

        ``served=True`` (the default) gives what a 2.x server serves; ``served=False`` the
        definitions with their names and order as declared.
        """
        fn_name = snake_case if served else _identity
        if served:
            typespace = sats.Typespace([served_type(ty) for ty in self._types])
            type_defs = sorted(
                (
                    TypeDef(pascal_case(t.name), t.ty, t.scope, t.custom_ordering)
                    for t in self._type_defs
                ),
                key=lambda t: (t.scope, t.name),
            )
        else:
            typespace = sats.Typespace(self._types)
            type_defs = list(self._type_defs)
        tables = [self._table(spec, typespace, served) for spec in self._tables]
        if served:
            tables.sort(key=lambda table: table.name)
        names = {typedef.ty: typedef.name for typedef in type_defs}
        ty = served_type if served else _identity_type
        reducers = [
            ReducerDef(fn_name(name), _param_types(params, ty), lifecycle, typespace, names)
            for name, params, lifecycle in self._reducers
        ]
        misc: list[MiscExport] = [
            ProcedureDef(fn_name(name), _param_types(params, ty), ty(ret), typespace, names)
            for name, params, ret in self._procedures
        ]
        return ModuleSchema(typespace, tables, reducers, type_defs, misc, ())

    @staticmethod
    def _table(spec: dict[str, Any], typespace: sats.Typespace, served: bool) -> TableDef:
        declared = spec["name"]
        name = snake_case(declared) if served else declared
        row_type = typespace.resolve(sats.RefType(spec["ref"]))
        if not isinstance(row_type, sats.ProductType):
            raise ValueError(f"table {declared!r}: the row type must be a product, got {row_type}")
        columns = [element.name for element in row_type.elements]

        def col(column: str, what: str) -> int:
            try:
                return columns.index(snake_case(column) if served else column)
            except ValueError:
                raise ValueError(
                    f"table {declared!r}: {what} names column {column!r}, but the columns are "
                    f"{columns}"
                ) from None

        def label(ids: Sequence[int]) -> str:
            return "_".join(str(columns[i]) for i in ids)

        unique_cols: list[str] = []
        if spec["primary_key"] is not None:
            unique_cols.append(spec["primary_key"])
        unique_cols += [c for c in spec["unique"] if c not in unique_cols]
        indexes: list[IndexDef] = []
        constraints: list[ConstraintDef] = []
        for column in unique_cols:
            index = col(column, "a unique column")
            accessor = columns[index]
            indexes.append(
                IndexDef(f"{name}_{label([index])}_idx_btree", accessor, "BTree", [index])
            )
            constraints.append(ConstraintDef(f"{name}_{label([index])}_key", (index,)))
        for accessor, cols in spec["indexes"]:
            ids = tuple(col(c, "an index") for c in cols)
            if accessor is not None and len(cols) == 1 and accessor == cols[0]:
                accessor = columns[ids[0]]  # a column's own name, converted with it
            indexes.append(IndexDef(f"{name}_{label(ids)}_idx_btree", accessor, "BTree", ids))
        sequences = [
            SequenceDef(f"{name}_{label([col(c, 'auto_inc')])}_seq", col(c, "auto_inc"))
            for c in spec["auto_inc"]
        ]
        schedule = None
        if spec["scheduled"] is not None:
            reducer_name, at_column = spec["scheduled"]
            schedule = ScheduleDef(
                f"{name}_sched",
                snake_case(reducer_name) if served else reducer_name,
                col(at_column, "scheduled"),
            )
        primary_key = () if spec["primary_key"] is None else (col(spec["primary_key"], "pk"),)
        if served:
            indexes.sort(key=lambda index: str(index.name))
            constraints.sort(key=lambda constraint: str(constraint.name))
            sequences.sort(key=lambda sequence: str(sequence.name))
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
