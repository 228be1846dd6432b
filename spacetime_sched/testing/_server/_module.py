"""The module DSL: declare tables, reducers and procedures in Python, like a SpacetimeDB module.

::

    module = Module("quickstart")
    person = module.table(
        "person",
        [("id", sats.U64), ("name", sats.STRING), ("created_at", sats.TIMESTAMP)],
        primary_key="id",
        auto_inc="id",
        public=True,
    )

    @module.reducer(params=[("name", sats.STRING)])
    def add_person(ctx: ReducerContext, name: str) -> None:
        ctx.db.person.insert({"name": name, "created_at": ctx.timestamp})

Rows are dicts (the SATS product value of the row type). A reducer receives a
:class:`ReducerContext` and its arguments positionally. To fail a call the way a Rust reducer
returns ``Err(message)``, raise :class:`~spacetime_sched.testing.SenderError`: the caller gets
``Err`` (``ReducerError`` in our client, HTTP 530). Any other exception is a crash, like a
panic: the caller gets ``InternalError`` (HTTP 530 too). Either way the changes roll back.

Names are snake_case, as a 2.x server serves them; the served schema converts the rest as the
real server would (type names PascalCase, enum variants camelCase: see
:class:`~spacetime_sched.protocol.ModuleSchemaBuilder`), while the module's own functions see
values with the names it declared.

A *schedule table* names its reducer (``scheduled="tick"``); the reducer takes exactly one
parameter, the row, declared with the table itself as the type: ``params=[("row", tick_table)]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs

from ... import sats
from ...protocol import Lifecycle, ModuleSchema, ModuleSchemaBuilder
from ...protocol._case import snake_case

if TYPE_CHECKING:
    from ..._identity import ConnectionId, Identity
    from ..._time import Timestamp
    from ._database import Db

__all__ = [
    "Module",
    "Procedure",
    "ProcedureContext",
    "Reducer",
    "ReducerContext",
    "Table",
]

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class Table:
    """A table declaration (made by :meth:`Module.table`); its ``name`` is the SQL name."""

    name: str
    row_type: sats.ProductType
    primary_key: str | None = None
    auto_inc: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    public: bool = False
    scheduled: str | None = None
    scheduled_at: str | None = None
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(str(element.name) for element in self.row_type.elements)

    def column_type(self, column: str) -> sats.AlgebraicType:
        for element in self.row_type.elements:
            if element.name == column:
                return element.algebraic_type
        raise LookupError(f"table {self.name!r} has no column {column!r} (columns: {self.columns})")


@attrs.frozen
class Reducer:
    """A reducer declaration: its wire name, parameters, Python function and lifecycle."""

    name: str
    params: tuple[tuple[str, Any], ...]
    function: Callable[..., Any]
    lifecycle: Lifecycle | None = None


@attrs.frozen
class Procedure:
    """A procedure declaration: like a reducer, but it returns a value and has no transaction
    of its own (call :meth:`ProcedureContext.with_tx` to change tables)."""

    name: str
    params: tuple[tuple[str, Any], ...]
    returns: sats.AlgebraicType
    function: Callable[..., Any]


@attrs.frozen
class ReducerContext:
    """What a reducer knows about its call.

    * ``sender``: the caller's identity (the database's own for ``init`` and scheduled calls);
    * ``connection_id``: the caller's connection, ``None`` for ``init`` and scheduled calls;
    * ``timestamp``: when the call started, by the server's clock;
    * ``db``: the tables, by name: ``ctx.db.person.insert({...})``;
    * ``identity``: the database's identity.
    """

    sender: Identity
    connection_id: ConnectionId | None
    timestamp: Timestamp
    db: Db
    identity: Identity


@attrs.frozen
class ProcedureContext:
    """What a procedure knows about its call; :meth:`with_tx` runs a function in a transaction."""

    sender: Identity
    connection_id: ConnectionId | None
    timestamp: Timestamp
    identity: Identity
    _run_tx: Callable[[Callable[[ReducerContext], Any]], Any] = attrs.field(repr=False)

    def with_tx(self, body: Callable[[ReducerContext], Any]) -> Any:
        """Run ``body(ctx)`` as one transaction (committed unless it raises) and return its
        result; subscribers see the changes like those of a reducer."""
        return self._run_tx(body)


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _check_canonical(what: str, name: str) -> None:
    """Names must already be what a 2.x server serves (snake_case), so that the schema, SQL,
    subscriptions and ``ctx.db`` all use one name, as they do against a real server."""
    canonical = snake_case(name)
    if canonical != name:
        raise ValueError(
            f"{what} {name!r}: a SpacetimeDB 2.x server converts names to snake_case and "
            f"would serve it as {canonical!r}; declare it as {canonical!r}"
        )


class Module:
    """A SpacetimeDB module written in Python, served by :class:`LocalServer`.

    Declare everything before the module is served: the schema is built (and the module frozen)
    the first time :attr:`schema` is read.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.tables: dict[str, Table] = {}
        self.reducers: dict[str, Reducer] = {}
        self.procedures: dict[str, Procedure] = {}
        self._schema: ModuleSchema | None = None
        self._declared: ModuleSchema | None = None

    def __repr__(self) -> str:
        return (
            f"<Module {self.name!r}: {len(self.tables)} tables, {len(self.reducers)} reducers, "
            f"{len(self.procedures)} procedures>"
        )

    # --- declarations ---------------------------------------------------------------------------

    def table(
        self,
        name: str,
        columns: Sequence[tuple[str, sats.AlgebraicType]],
        *,
        primary_key: str | None = None,
        auto_inc: str | Iterable[str] | None = None,
        unique: str | Iterable[str] | None = None,
        public: bool = False,
        scheduled: str | None = None,
        scheduled_at: str | None = None,
        indexes: Mapping[str, str | Sequence[str]] | None = None,
    ) -> Table:
        """Declare a table and return it.

        ``auto_inc`` columns (integers) get the next value of their sequence when a row is
        inserted with 0 there. ``public=False`` (SpacetimeDB's default) hides the table from
        subscriptions and SQL. ``scheduled="reducer"`` makes it a schedule table; its
        ``ScheduleAt`` column is found by type unless ``scheduled_at`` names it. ``indexes``
        maps accessor names to the column(s) of B-tree indexes (``{"by_day": ["owner",
        "day"]}``). Table and column names are snake_case, as a 2.x server serves them.
        """
        self._check_open()
        if name in self.tables:
            raise ValueError(f"table {name!r} is already declared in module {self.name!r}")
        _check_canonical("table", name)
        row_type = sats.product(*columns)
        column_names = [str(element.name) for element in row_type.elements]
        for column in column_names:
            _check_canonical(f"table {name!r}: column", column)
        index_columns = {accessor: _names(cols) for accessor, cols in (indexes or {}).items()}
        if len(set(column_names)) != len(column_names):
            raise ValueError(f"table {name!r}: duplicate column names in {column_names}")
        for what, cols in (
            ("primary_key", _names(primary_key)),
            ("auto_inc", _names(auto_inc)),
            ("unique", _names(unique)),
            *((f"index {accessor!r}", cols) for accessor, cols in index_columns.items()),
        ):
            for col in cols:
                if col not in column_names:
                    raise ValueError(
                        f"table {name!r}: {what} names column {col!r}, but the columns are "
                        f"{column_names}"
                    )
        if scheduled is not None and scheduled_at is None:
            candidates = [
                str(element.name)
                for element in row_type.elements
                if element.algebraic_type == sats.SCHEDULE_AT
            ]
            if len(candidates) != 1:
                raise ValueError(
                    f"schedule table {name!r} needs exactly one ScheduleAt column (found "
                    f"{candidates}); name it with scheduled_at="
                )
            scheduled_at = candidates[0]
        elif scheduled_at is not None and scheduled is None:
            raise ValueError(f"table {name!r}: scheduled_at needs scheduled='<reducer name>'")
        if scheduled_at is not None and scheduled_at not in column_names:
            raise ValueError(f"table {name!r}: scheduled_at column {scheduled_at!r} not found")
        table = Table(
            name=name,
            row_type=row_type,
            primary_key=primary_key,
            auto_inc=_names(auto_inc),
            unique=_names(unique),
            public=public,
            scheduled=scheduled,
            scheduled_at=scheduled_at,
            indexes=tuple(index_columns.items()),
        )
        self.tables[name] = table
        return table

    @overload
    def reducer(self, function: F, /) -> F: ...

    @overload
    def reducer(
        self,
        *,
        name: str | None = None,
        params: Sequence[tuple[str, sats.AlgebraicType | Table]] = (),
    ) -> Callable[[F], F]: ...

    def reducer(
        self,
        function: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        params: Sequence[tuple[str, sats.AlgebraicType | Table]] = (),
    ) -> Any:
        """Decorator declaring a reducer; ``params`` are ``(name, type)`` pairs in order."""
        return self._register(function, name, params, None)

    def init(self, function: F) -> F:
        """Decorator for the ``init`` lifecycle reducer (runs once when the server starts)."""
        registered: F = self._register(function, None, (), "Init")
        return registered

    def client_connected(self, function: F) -> F:
        """Decorator for the connect lifecycle reducer (runs for each new connection and each
        HTTP reducer call); raising refuses the connection."""
        registered: F = self._register(function, None, (), "OnConnect")
        return registered

    def client_disconnected(self, function: F) -> F:
        """Decorator for the disconnect lifecycle reducer."""
        registered: F = self._register(function, None, (), "OnDisconnect")
        return registered

    @overload
    def procedure(self, function: F, /) -> F: ...

    @overload
    def procedure(
        self,
        *,
        name: str | None = None,
        params: Sequence[tuple[str, sats.AlgebraicType | Table]] = (),
        returns: sats.AlgebraicType = sats.UNIT,
    ) -> Callable[[F], F]: ...

    def procedure(
        self,
        function: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        params: Sequence[tuple[str, sats.AlgebraicType | Table]] = (),
        returns: sats.AlgebraicType = sats.UNIT,
    ) -> Any:
        """Decorator declaring a procedure (sync or ``async def``) that returns a ``returns``."""

        def register(fn: F) -> F:
            self._check_open()
            proc_name = name or fn.__name__
            _check_canonical("procedure", proc_name)
            self._check_new_name(proc_name)
            self.procedures[proc_name] = Procedure(proc_name, tuple(params), returns, fn)
            return fn

        return register if function is None else register(function)

    def _register(
        self,
        function: F | None,
        name: str | None,
        params: Sequence[tuple[str, sats.AlgebraicType | Table]],
        lifecycle: Lifecycle | None,
    ) -> Any:
        def register(fn: F) -> F:
            self._check_open()
            reducer_name = name or fn.__name__
            _check_canonical("reducer", reducer_name)
            self._check_new_name(reducer_name)
            if lifecycle is not None:
                for other in self.reducers.values():
                    if other.lifecycle == lifecycle:
                        raise ValueError(
                            f"module {self.name!r} already has a {lifecycle} reducer "
                            f"({other.name!r})"
                        )
            self.reducers[reducer_name] = Reducer(reducer_name, tuple(params), fn, lifecycle)
            return fn

        return register if function is None else register(function)

    def _check_new_name(self, name: str) -> None:
        if name in self.reducers or name in self.procedures:
            raise ValueError(f"module {self.name!r} already has a reducer or procedure {name!r}")

    def _check_open(self) -> None:
        if self._schema is not None:
            raise RuntimeError(
                f"module {self.name!r} is already being served; declare everything first"
            )

    # --- schema ---------------------------------------------------------------------------------

    @property
    def schema(self) -> ModuleSchema:
        """The module's ``RawModuleDefV9`` schema as a 2.x server serves it: sorted, with
        generated names and SpacetimeDB's case conversion (enum variants camelCase, type names
        PascalCase). Built once; the module is frozen after."""
        if self._schema is None:
            self._schema = self._build_schema().build()
        return self._schema

    @property
    def declared_schema(self) -> ModuleSchema:
        """The same definitions with the names this Python module gave them (enum variants
        and struct fields as declared): the host decodes values for the module's functions
        with it, so they see the names they were written with."""
        if self._declared is None:
            _ = self.schema  # freeze the module first
            self._declared = self._build_schema().build(served=False)
        return self._declared

    def lifecycle_reducer(self, lifecycle: Lifecycle) -> Reducer | None:
        for reducer in self.reducers.values():
            if reducer.lifecycle == lifecycle:
                return reducer
        return None

    def _build_schema(self) -> ModuleSchemaBuilder:
        builder = ModuleSchemaBuilder()
        refs: dict[str, sats.RefType] = {}
        for table in self.tables.values():
            if table.scheduled is not None:
                self._check_scheduled_reducer(table)
            refs[table.name] = builder.add_table(
                table.name,
                table.row_type,
                primary_key=table.primary_key,
                unique=table.unique,
                auto_inc=table.auto_inc,
                scheduled=None
                if table.scheduled is None
                else (table.scheduled, str(table.scheduled_at)),
                public=table.public,
                indexes=dict(table.indexes),
            )

        def param_types(
            params: Sequence[tuple[str, Any]],
        ) -> list[tuple[str, sats.AlgebraicType]]:
            return [(n, refs[t.name] if isinstance(t, Table) else t) for n, t in params]

        for reducer in self.reducers.values():
            builder.add_reducer(
                reducer.name, param_types(reducer.params), lifecycle=reducer.lifecycle
            )
        for procedure in self.procedures.values():
            builder.add_procedure(procedure.name, param_types(procedure.params), procedure.returns)
        return builder

    def _check_scheduled_reducer(self, table: Table) -> None:
        target = self.reducers.get(str(table.scheduled))
        if target is None:
            raise ValueError(
                f"schedule table {table.name!r} names reducer {table.scheduled!r}, which is not "
                f"declared (reducers: {sorted(self.reducers)})"
            )
        if len(target.params) != 1 or target.params[0][1] != table:
            raise ValueError(
                f"scheduled reducer {target.name!r} must take exactly one parameter, the row of "
                f"{table.name!r}: declare params=[('row', <the table>)]"
            )
