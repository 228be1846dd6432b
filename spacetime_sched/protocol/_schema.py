"""The module schema: ``RawModuleDefV9`` as served by ``GET /v1/database/{name}/schema?version=9``.

:meth:`ModuleSchema.from_json` reads the server's JSON into small frozen classes and
:meth:`ModuleSchema.to_json` writes exactly that shape back (the local test server serves it,
so the official CLI and TypeScript SDK must accept it). The pieces a client needs:

* :meth:`ModuleSchema.reducer` -> :class:`ReducerDef`: the wire name, the parameter product and
  :meth:`ReducerDef.encode_args`, which checks and encodes the arguments of a ``CallReducer``;
* :meth:`ModuleSchema.table` -> :class:`TableDef`: row type, primary key, schedule, visibility;
* :meth:`ModuleSchema.procedure` -> :class:`ProcedureDef`.

Types written as ``{"Ref": n}`` point into :attr:`ModuleSchema.typespace`; they stay refs in the
model (so ``to_json`` round-trips) and are resolved when a codec is compiled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal, TypeAlias, TypeVar

import attrs

from .. import sats
from .._errors import ArgumentError, EncodeError, ProtocolError, SatsError

__all__ = [
    "ColumnDefaultValue",
    "ConstraintDef",
    "IndexDef",
    "Lifecycle",
    "MiscExport",
    "ModuleSchema",
    "ProcedureDef",
    "ReducerDef",
    "ScheduleDef",
    "SequenceDef",
    "TableDef",
    "TypeDef",
    "ViewDef",
]

#: The lifecycle role of a reducer; lifecycle reducers are not callable by clients.
Lifecycle: TypeAlias = Literal["Init", "OnConnect", "OnDisconnect"]
_LIFECYCLES: Final = ("Init", "OnConnect", "OnDisconnect")
_INDEX_ALGORITHMS: Final = ("BTree", "Hash", "Direct")


def _tuple(values: Iterable[Any]) -> tuple[Any, ...]:
    return values if type(values) is tuple else tuple(values)


# --- JSON reading helpers -----------------------------------------------------------------------


def _show(value: Any) -> str:
    """A short excerpt of an offending value for an error message (never more than 60
    characters; a value nested too deep to print is named by its type)."""
    if isinstance(value, bytes | bytearray):
        text = repr(value)
    else:
        try:
            text = json.dumps(value)
        except (RecursionError, ValueError, TypeError):
            return f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _obj(value: Any, path: str, keys: Iterable[str] = ()) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{path}: expected a JSON object, got {_show(value)}")
    for key in keys:
        if key not in value:
            raise ProtocolError(f"{path}: missing field {key!r}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(f"{path}: expected a JSON array, got {_show(value)}")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{path}: expected a string, got {_show(value)}")
    return value


def _int(value: Any, path: str) -> int:
    if type(value) is not int:
        raise ProtocolError(f"{path}: expected an integer, got {_show(value)}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"{path}: expected true or false, got {_show(value)}")
    return value


def _variant(value: Any, path: str, names: Sequence[str]) -> tuple[str, Any]:
    """A one-key ``{"Name": payload}`` sum value whose name is one of ``names``."""
    obj = _obj(value, path)
    if len(obj) != 1:
        raise ProtocolError(f"{path}: expected one of {{{', '.join(names)}}}, got {_show(value)}")
    ((name, payload),) = obj.items()
    if name not in names:
        raise ProtocolError(f"{path}: unknown variant {name!r}, expected one of {list(names)}")
    return name, payload


def _option(value: Any, path: str) -> tuple[bool, Any]:
    """``{"some": v}`` -> (True, v); ``{"none": []}`` -> (False, None)."""
    name, payload = _variant(value, path, ("some", "none"))
    return (True, payload) if name == "some" else (False, None)


def _opt_str(value: Any, path: str) -> str | None:
    present, payload = _option(value, path)
    return _str(payload, f"{path}.some") if present else None


def _opt_int(value: Any, path: str) -> int | None:
    present, payload = _option(value, path)
    return _int(payload, f"{path}.some") if present else None


def _some(value: Any) -> Any:
    return {"none": []} if value is None else {"some": value}


def _col_list(value: Any, path: str) -> tuple[int, ...]:
    return tuple(_int(col, f"{path}[{i}]") for i, col in enumerate(_list(value, path)))


def _type(value: Any, path: str) -> sats.AlgebraicType:
    try:
        return sats.AlgebraicType.from_json(value)
    except SatsError as exc:
        raise ProtocolError(f"{path}: {exc}") from None


def _product(value: Any, path: str) -> sats.ProductType:
    ty = _type({"Product": value}, path)
    assert isinstance(ty, sats.ProductType)
    return ty


def _product_json(ty: sats.ProductType) -> Any:
    return ty.to_json()["Product"]


# --- tables -------------------------------------------------------------------------------------


@attrs.frozen
class IndexDef:
    """An index: ``algorithm`` is ``"BTree"``, ``"Hash"`` or ``"Direct"`` (one column).

    On the wire ``RawIndexAlgorithm`` (``crates/lib/src/db/raw_def/v9.rs``) has variants with one
    named field each (``BTree { columns }``, ``Direct { column }``), and the sats derive makes
    such a variant a *newtype* (``crates/bindings-macro/src/sats.rs``, ``variant_data``): the
    payload is the field's value, with no object around it: ``{"BTree": [0, 1]}``,
    ``{"Hash": [2]}``, ``{"Direct": 0}``.
    """

    name: str | None
    accessor_name: str | None
    algorithm: str
    columns: tuple[int, ...] = attrs.field(converter=_tuple)

    @classmethod
    def from_json(cls, raw: Any, path: str) -> IndexDef:
        obj = _obj(raw, path, ("name", "accessor_name", "algorithm"))
        kind, body = _variant(obj["algorithm"], f"{path}.algorithm", _INDEX_ALGORITHMS)
        where = f"{path}.algorithm.{kind}"
        columns = (_int(body, where),) if kind == "Direct" else _col_list(body, where)
        return cls(
            _opt_str(obj["name"], f"{path}.name"),
            _opt_str(obj["accessor_name"], f"{path}.accessor_name"),
            kind,
            columns,
        )

    def to_json(self) -> Any:
        body: Any = self.columns[0] if self.algorithm == "Direct" else list(self.columns)
        return {
            "name": _some(self.name),
            "accessor_name": _some(self.accessor_name),
            "algorithm": {self.algorithm: body},
        }


@attrs.frozen
class ConstraintDef:
    """A unique constraint over ``columns`` (the only constraint kind in V9).

    ``RawConstraintDataV9::Unique(RawUniqueConstraintDataV9)`` is a tuple newtype whose payload
    is a struct, so here the object stays: ``{"Unique": {"columns": [0]}}``.
    """

    name: str | None
    columns: tuple[int, ...] = attrs.field(converter=_tuple)

    @classmethod
    def from_json(cls, raw: Any, path: str) -> ConstraintDef:
        obj = _obj(raw, path, ("name", "data"))
        _kind, body = _variant(obj["data"], f"{path}.data", ("Unique",))
        body = _obj(body, f"{path}.data.Unique", ("columns",))
        return cls(
            _opt_str(obj["name"], f"{path}.name"),
            _col_list(body["columns"], f"{path}.data.Unique.columns"),
        )

    def to_json(self) -> Any:
        return {"name": _some(self.name), "data": {"Unique": {"columns": list(self.columns)}}}


@attrs.frozen
class SequenceDef:
    """An auto-increment sequence on ``column`` (the i128 bounds are ``None`` when unset)."""

    name: str | None
    column: int
    start: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    increment: int = 1

    @classmethod
    def from_json(cls, raw: Any, path: str) -> SequenceDef:
        obj = _obj(raw, path, ("name", "column", "start", "min_value", "max_value", "increment"))
        return cls(
            _opt_str(obj["name"], f"{path}.name"),
            _int(obj["column"], f"{path}.column"),
            _opt_int(obj["start"], f"{path}.start"),
            _opt_int(obj["min_value"], f"{path}.min_value"),
            _opt_int(obj["max_value"], f"{path}.max_value"),
            _int(obj["increment"], f"{path}.increment"),
        )

    def to_json(self) -> Any:
        return {
            "name": _some(self.name),
            "column": self.column,
            "start": _some(self.start),
            "min_value": _some(self.min_value),
            "max_value": _some(self.max_value),
            "increment": self.increment,
        }


@attrs.frozen
class ScheduleDef:
    """Marks a schedule table: each row calls ``reducer_name`` at its ScheduleAt column."""

    name: str | None
    reducer_name: str
    scheduled_at_column: int

    @classmethod
    def from_json(cls, raw: Any, path: str) -> ScheduleDef:
        obj = _obj(raw, path, ("name", "reducer_name", "scheduled_at_column"))
        return cls(
            _opt_str(obj["name"], f"{path}.name"),
            _str(obj["reducer_name"], f"{path}.reducer_name"),
            _int(obj["scheduled_at_column"], f"{path}.scheduled_at_column"),
        )

    def to_json(self) -> Any:
        return {
            "name": _some(self.name),
            "reducer_name": self.reducer_name,
            "scheduled_at_column": self.scheduled_at_column,
        }


@attrs.frozen
class TableDef:
    """A table. ``row_type`` is the resolved product of its columns (``product_type_ref``)."""

    name: str
    product_type_ref: int
    row_type: sats.ProductType = attrs.field(eq=False, repr=False)
    primary_key: tuple[int, ...] = attrs.field(converter=_tuple, default=())
    indexes: tuple[IndexDef, ...] = attrs.field(converter=_tuple, default=())
    constraints: tuple[ConstraintDef, ...] = attrs.field(converter=_tuple, default=())
    sequences: tuple[SequenceDef, ...] = attrs.field(converter=_tuple, default=())
    schedule: ScheduleDef | None = None
    table_type: Literal["User", "System"] = "User"
    table_access: Literal["Public", "Private"] = "Public"
    typespace: sats.Typespace | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def is_public(self) -> bool:
        """Whether clients other than the owner may subscribe to it."""
        return self.table_access == "Public"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(e.name or f"#{i}" for i, e in enumerate(self.row_type.elements))

    @property
    def primary_key_column(self) -> str | None:
        """The name of the primary key column, or ``None`` without one."""
        if not self.primary_key:
            return None
        return self.column_names[self.primary_key[0]]

    @property
    def scheduled_reducer(self) -> str | None:
        """For a schedule table, the reducer (or procedure) its rows call."""
        return self.schedule.reducer_name if self.schedule else None

    @property
    def scheduled_at_column_name(self) -> str | None:
        """For a schedule table, the name of its ScheduleAt column."""
        return self.column_names[self.schedule.scheduled_at_column] if self.schedule else None

    @property
    def row_codec(self) -> sats.Codec:
        """The compiled codec of one row (cached by ``sats.compile``)."""
        return sats.compile(self.row_type, self.typespace)

    def to_json(self) -> Any:
        return {
            "name": self.name,
            "product_type_ref": self.product_type_ref,
            "primary_key": list(self.primary_key),
            "indexes": [index.to_json() for index in self.indexes],
            "constraints": [constraint.to_json() for constraint in self.constraints],
            "sequences": [sequence.to_json() for sequence in self.sequences],
            "schedule": _some(self.schedule.to_json() if self.schedule else None),
            "table_type": {self.table_type: []},
            "table_access": {self.table_access: []},
        }


# --- reducers, procedures, views ------------------------------------------------------------------


class _Callable:
    """Argument checking and encoding shared by reducers and procedures."""

    __slots__ = ()

    KIND: ClassVar[str]
    name: str
    params: sats.ProductType
    typespace: sats.Typespace | None
    type_names: Mapping[int, str]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(e.name or f"#{i}" for i, e in enumerate(self.params.elements))

    def signature(self) -> str:
        """The parameters as people read them: ``name: String, age: u32``."""
        return ", ".join(
            f"{name}: {_describe(e.algebraic_type, self.typespace, self.type_names)}"
            for name, e in zip(self.param_names, self.params.elements, strict=True)
        )

    def _encoders(self) -> tuple[Callable[..., None], ...]:
        cache: dict[str, Any] = self._cache  # type: ignore[attr-defined]
        encoders = cache.get("encoders")
        if encoders is None:
            encoders = tuple(
                sats.compile(e.algebraic_type, self.typespace).encode_into
                for e in self.params.elements
            )
            cache["encoders"] = encoders
        return encoders

    def encode_args(self, args: Sequence[Any] | Mapping[str, Any] = ()) -> bytes:
        """Check ``args`` against the parameters and encode them as the BSATN argument product.

        ``args`` is a sequence in parameter order, or a mapping from parameter name to value.
        Raises :class:`~spacetime_sched.ArgumentError` naming the parameter at fault, e.g.
        ``reducer 'add': args[1] (age): expected u32 in 0..4294967295, got -1``.
        """
        cache: dict[str, Any] = self._cache  # type: ignore[attr-defined]
        codec = cache.get("codec")
        if codec is None:
            codec = cache["codec"] = sats.compile(self.params, self.typespace)
        if (type(args) is list or type(args) is tuple) and len(args) == len(self.params.elements):
            # The fast path: one compiled product encoder, taking the values by position.
            try:
                return codec.encode(args)
            except EncodeError:
                pass  # encode parameter by parameter below, to say which one is wrong
        return self._encode_args_checked(args)

    def _encode_args_checked(self, args: Sequence[Any] | Mapping[str, Any]) -> bytes:
        names = self.param_names
        if isinstance(args, Mapping):
            unknown = [key for key in args if key not in names]
            if unknown:
                raise ArgumentError(
                    f"{self.KIND} {self.name!r} has no parameter {unknown[0]!r} "
                    f"(it takes ({self.signature()}))"
                )
            missing = [name for name in names if name not in args]
            if missing:
                raise ArgumentError(
                    f"{self.KIND} {self.name!r}: missing argument {missing[0]!r} "
                    f"(it takes ({self.signature()}))"
                )
            values: Sequence[Any] = [args[name] for name in names]
        elif isinstance(args, str | bytes | bytearray) or not isinstance(args, Sequence):
            raise ArgumentError(
                f"{self.KIND} {self.name!r}: arguments must be a sequence or a mapping of "
                f"parameter names, got {type(args).__name__}"
            )
        else:
            values = args
        if len(values) != len(names):
            plural = "argument" if len(names) == 1 else "arguments"
            raise ArgumentError(
                f"{self.KIND} {self.name!r} takes {len(names)} {plural} ({self.signature()}), "
                f"got {len(values)}"
            )
        out = bytearray()
        for index, (encode_into, value) in enumerate(zip(self._encoders(), values, strict=True)):
            try:
                encode_into(out, value)
            except EncodeError:
                # Encode again with a path label, so the message names the parameter.
                try:
                    encode_into(bytearray(), value, f"args[{index}] ({names[index]})")
                except EncodeError as exc:
                    raise ArgumentError(f"{self.KIND} {self.name!r}: {exc}") from None
                raise
        return bytes(out)


def _describe(
    ty: sats.AlgebraicType, typespace: sats.Typespace | None, names: Mapping[int, str]
) -> str:
    """Like ``sats.describe``, but a ``Ref`` shows its type's name (``Position``) when the
    schema declares one, else its resolved structure."""
    if isinstance(ty, sats.RefType):
        if ty.index in names:
            return names[ty.index]
        if typespace is not None:
            try:
                return _describe(typespace.resolve(ty), typespace, names)
            except SatsError:
                pass
    elif isinstance(ty, sats.ArrayType) and ty.elem != sats.U8:
        return f"Array<{_describe(ty.elem, typespace, names)}>"
    elif isinstance(ty, sats.SumType) and ty.is_option:
        return f"Option<{_describe(ty.variants[0].algebraic_type, typespace, names)}>"
    return sats.describe(ty)


def _new_cache() -> dict[str, Any]:
    return {}


def _scheduled_reason(function: ReducerDef | ProcedureDef) -> str | None:
    if function.scheduled_by is None:
        return None
    return (
        f"{function.KIND} {function.name!r} is scheduled by table {function.scheduled_by!r}: "
        "a 2.x server keeps it private (only the database owner may call it; insert a row "
        f"into {function.scheduled_by!r} to schedule a call)"
    )


@attrs.frozen
class ReducerDef(_Callable):
    """A reducer: its wire ``name``, parameters in order, and lifecycle role (if any)."""

    name: str
    params: sats.ProductType
    lifecycle: Lifecycle | None = None
    typespace: sats.Typespace | None = attrs.field(default=None, eq=False, repr=False)
    #: Names of typespace entries (``types`` of the schema), used to show ``Ref`` parameters.
    type_names: Mapping[int, str] = attrs.field(factory=dict, eq=False, repr=False)
    #: The schedule table whose rows call this reducer, if one does (set by
    #: :class:`ModuleSchema`).
    scheduled_by: str | None = attrs.field(default=None, kw_only=True)
    _cache: dict[str, Any] = attrs.field(factory=_new_cache, init=False, eq=False, repr=False)

    KIND: ClassVar[str] = "reducer"

    @property
    def client_callable(self) -> bool:
        """Whether a client may call it: not a lifecycle reducer (init, connect, disconnect)
        and not a scheduled one (a 2.x server keeps those private: only the owner may call
        them, everyone else gets "no such reducer")."""
        return self.lifecycle is None and self.scheduled_by is None

    def why_not_callable(self) -> str | None:
        """Why clients cannot call it, or ``None`` when they can."""
        if self.lifecycle is not None:
            return f"reducer {self.name!r} is the {self.lifecycle} lifecycle reducer"
        return _scheduled_reason(self)

    @classmethod
    def from_json(
        cls,
        raw: Any,
        path: str,
        typespace: sats.Typespace | None,
        type_names: Mapping[int, str] | None = None,
    ) -> ReducerDef:
        obj = _obj(raw, path, ("name", "params", "lifecycle"))
        present, lifecycle = _option(obj["lifecycle"], f"{path}.lifecycle")
        role = _variant(lifecycle, f"{path}.lifecycle.some", _LIFECYCLES)[0] if present else None
        return cls(
            _str(obj["name"], f"{path}.name"),
            _product(obj["params"], f"{path}.params"),
            role,  # type: ignore[arg-type]
            typespace,
            type_names or {},
        )

    def to_json(self) -> Any:
        return {
            "name": self.name,
            "params": _product_json(self.params),
            "lifecycle": _some({self.lifecycle: []} if self.lifecycle else None),
        }


@attrs.frozen
class ProcedureDef(_Callable):
    """A procedure (``misc_exports`` ``Procedure``): parameters and return type."""

    name: str
    params: sats.ProductType
    return_type: sats.AlgebraicType
    typespace: sats.Typespace | None = attrs.field(default=None, eq=False, repr=False)
    type_names: Mapping[int, str] = attrs.field(factory=dict, eq=False, repr=False)
    #: The schedule table whose rows call this procedure, if one does.
    scheduled_by: str | None = attrs.field(default=None, kw_only=True)
    _cache: dict[str, Any] = attrs.field(factory=_new_cache, init=False, eq=False, repr=False)

    KIND: ClassVar[str] = "procedure"

    @property
    def client_callable(self) -> bool:
        """Scheduled procedures are private, like scheduled reducers."""
        return self.scheduled_by is None

    def why_not_callable(self) -> str | None:
        """Why clients cannot call it, or ``None`` when they can."""
        return _scheduled_reason(self)

    @property
    def return_codec(self) -> sats.Codec:
        """The codec of the BSATN in ``ProcedureResult.status.value``."""
        return sats.compile(self.return_type, self.typespace)

    @classmethod
    def from_json(
        cls,
        raw: Any,
        path: str,
        typespace: sats.Typespace | None,
        type_names: Mapping[int, str] | None = None,
    ) -> ProcedureDef:
        obj = _obj(raw, path, ("name", "params", "return_type"))
        return cls(
            _str(obj["name"], f"{path}.name"),
            _product(obj["params"], f"{path}.params"),
            _type(obj["return_type"], f"{path}.return_type"),
            typespace,
            type_names or {},
        )

    def to_json(self) -> Any:
        return {
            "Procedure": {
                "name": self.name,
                "params": _product_json(self.params),
                "return_type": self.return_type.to_json(),
            }
        }


@attrs.frozen
class ViewDef:
    """A view (``misc_exports`` ``View``); clients subscribe to it like a table."""

    name: str
    index: int
    is_public: bool
    is_anonymous: bool
    params: sats.ProductType
    return_type: sats.AlgebraicType

    @classmethod
    def from_json(cls, raw: Any, path: str) -> ViewDef:
        obj = _obj(
            raw, path, ("name", "index", "is_public", "is_anonymous", "params", "return_type")
        )
        return cls(
            _str(obj["name"], f"{path}.name"),
            _int(obj["index"], f"{path}.index"),
            _bool(obj["is_public"], f"{path}.is_public"),
            _bool(obj["is_anonymous"], f"{path}.is_anonymous"),
            _product(obj["params"], f"{path}.params"),
            _type(obj["return_type"], f"{path}.return_type"),
        )

    def to_json(self) -> Any:
        return {
            "View": {
                "name": self.name,
                "index": self.index,
                "is_public": self.is_public,
                "is_anonymous": self.is_anonymous,
                "params": _product_json(self.params),
                "return_type": self.return_type.to_json(),
            }
        }


@attrs.frozen
class ColumnDefaultValue:
    """A default for a column added by a migration; ``value`` is its BSATN."""

    table: str
    col_id: int
    value: bytes

    @classmethod
    def from_json(cls, raw: Any, path: str) -> ColumnDefaultValue:
        obj = _obj(raw, path, ("table", "col_id", "value"))
        hex_value = _str(obj["value"], f"{path}.value")
        try:
            value = bytes.fromhex(hex_value)
        except ValueError:
            raise ProtocolError(
                f"{path}.value: expected hex bytes, got {_show(hex_value)}"
            ) from None
        return cls(
            _str(obj["table"], f"{path}.table"), _int(obj["col_id"], f"{path}.col_id"), value
        )

    def to_json(self) -> Any:
        return {
            "ColumnDefaultValue": {
                "table": self.table,
                "col_id": self.col_id,
                "value": self.value.hex(),
            }
        }


#: An entry of ``misc_exports``.
MiscExport: TypeAlias = ColumnDefaultValue | ProcedureDef | ViewDef


@attrs.frozen
class TypeDef:
    """A named type: ``scope::name`` is typespace entry ``ty``."""

    name: str
    ty: int
    scope: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    custom_ordering: bool = True

    @classmethod
    def from_json(cls, raw: Any, path: str) -> TypeDef:
        obj = _obj(raw, path, ("name", "ty", "custom_ordering"))
        name = _obj(obj["name"], f"{path}.name", ("scope", "name"))
        scope = _list(name["scope"], f"{path}.name.scope")
        return cls(
            _str(name["name"], f"{path}.name.name"),
            _int(obj["ty"], f"{path}.ty"),
            tuple(_str(s, f"{path}.name.scope[{i}]") for i, s in enumerate(scope)),
            _bool(obj["custom_ordering"], f"{path}.custom_ordering"),
        )

    def to_json(self) -> Any:
        return {
            "name": {"scope": list(self.scope), "name": self.name},
            "ty": self.ty,
            "custom_ordering": self.custom_ordering,
        }


# --- the module ---------------------------------------------------------------------------------

_Def = TypeVar("_Def")


def _named(by_name: Mapping[str, _Def], name: str, kind: str, error: type[Exception]) -> _Def:
    """``by_name[name]``, or ``error`` listing the names there are (``kind``: what they name)."""
    try:
        return by_name[name]
    except KeyError:
        raise error(
            f"the module has no {kind} {name!r} ({kind}s: {', '.join(sorted(by_name)) or 'none'})"
        ) from None


def _by_name(items: Iterable[Any]) -> dict[str, Any]:
    return {item.name: item for item in items}


_Function = TypeVar("_Function", ReducerDef, ProcedureDef)


def _callable(function: _Function) -> _Function:
    reason = function.why_not_callable()
    if reason is not None:
        raise ArgumentError(f"{reason}; clients cannot call it")
    return function


def _mark_scheduled(export: _Def, scheduled: Mapping[str, str]) -> _Def:
    if isinstance(export, ReducerDef | ProcedureDef) and export.name in scheduled:
        return attrs.evolve(export, scheduled_by=scheduled[export.name])
    return export


@attrs.frozen
class ModuleSchema:
    """A module's ``RawModuleDefV9``: typespace, tables, reducers, types and other exports."""

    typespace: sats.Typespace
    tables: tuple[TableDef, ...] = attrs.field(converter=_tuple, default=())
    reducers: tuple[ReducerDef, ...] = attrs.field(converter=_tuple, default=())
    types: tuple[TypeDef, ...] = attrs.field(converter=_tuple, default=())
    misc_exports: tuple[MiscExport, ...] = attrs.field(converter=_tuple, default=())
    row_level_security: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    _tables_by_name: dict[str, TableDef] = attrs.field(init=False, eq=False, repr=False)
    _reducers_by_name: dict[str, ReducerDef] = attrs.field(init=False, eq=False, repr=False)
    _procedures_by_name: dict[str, ProcedureDef] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # A reducer or procedure that a schedule table names is private on a 2.x server
        # (``crates/schema/src/def/validate/v10.rs:386``,
        # ``change_scheduled_functions_and_lifetimes_visibility``); V9
        # has no visibility field, so the schedule is what tells.
        scheduled = {t.schedule.reducer_name: t.name for t in self.tables if t.schedule}
        if scheduled:
            object.__setattr__(
                self, "reducers", tuple(_mark_scheduled(r, scheduled) for r in self.reducers)
            )
            object.__setattr__(
                self,
                "misc_exports",
                tuple(_mark_scheduled(e, scheduled) for e in self.misc_exports),
            )
        object.__setattr__(self, "_tables_by_name", _by_name(self.tables))
        object.__setattr__(self, "_reducers_by_name", _by_name(self.reducers))
        object.__setattr__(
            self,
            "_procedures_by_name",
            _by_name(e for e in self.misc_exports if isinstance(e, ProcedureDef)),
        )

    @property
    def procedures(self) -> tuple[ProcedureDef, ...]:
        return tuple(self._procedures_by_name.values())

    @property
    def views(self) -> tuple[ViewDef, ...]:
        return tuple(e for e in self.misc_exports if isinstance(e, ViewDef))

    def reducer(self, name: str) -> ReducerDef:
        """The reducer called ``name``; :class:`~spacetime_sched.ArgumentError` if none is."""
        return _named(self._reducers_by_name, name, "reducer", ArgumentError)

    def procedure(self, name: str) -> ProcedureDef:
        """The procedure called ``name``; :class:`~spacetime_sched.ArgumentError` if none is."""
        return _named(self._procedures_by_name, name, "procedure", ArgumentError)

    def callable_reducer(self, name: str) -> ReducerDef:
        """The reducer ``name`` if clients may call it; otherwise
        :class:`~spacetime_sched.ArgumentError` saying why (no such reducer, a lifecycle
        reducer, or a scheduled one, which a 2.x server keeps private)."""
        return _callable(self.reducer(name))

    def callable_procedure(self, name: str) -> ProcedureDef:
        """The procedure ``name`` if clients may call it (see :meth:`callable_reducer`)."""
        return _callable(self.procedure(name))

    def table(self, name: str) -> TableDef:
        """The table called ``name``; ``LookupError`` if there is none."""
        return _named(self._tables_by_name, name, "table", LookupError)

    def schedule_tables(self) -> tuple[TableDef, ...]:
        """The tables that schedule reducer calls."""
        return tuple(table for table in self.tables if table.schedule is not None)

    @classmethod
    def from_json(cls, raw: Any) -> ModuleSchema:
        """Read the ``?version=9`` schema: parsed JSON, or its text as ``str``/``bytes``.

        Raises :class:`~spacetime_sched.ProtocolError` naming the path of anything malformed.
        """
        if isinstance(raw, str | bytes | bytearray):
            try:
                raw = json.loads(raw)
            except RecursionError:
                raise ProtocolError("schema: JSON nested too deep to read") from None
            except ValueError as exc:
                raise ProtocolError(f"schema: not valid JSON ({exc})") from None
        obj = _obj(raw, "schema", ("typespace", "tables", "reducers"))
        try:
            typespace = sats.Typespace.from_json(obj["typespace"])
        except SatsError as exc:
            raise ProtocolError(f"schema.typespace: {exc}") from None
        types = [
            TypeDef.from_json(item, f"schema.types[{i}]")
            for i, item in enumerate(_list(obj.get("types", []), "schema.types"))
        ]
        names = {typedef.ty: typedef.name for typedef in types}
        tables = [
            _table_from_json(item, f"schema.tables[{i}]", typespace)
            for i, item in enumerate(_list(obj["tables"], "schema.tables"))
        ]
        reducers = [
            ReducerDef.from_json(item, f"schema.reducers[{i}]", typespace, names)
            for i, item in enumerate(_list(obj["reducers"], "schema.reducers"))
        ]
        misc = [
            _misc_from_json(item, f"schema.misc_exports[{i}]", typespace, names)
            for i, item in enumerate(_list(obj.get("misc_exports", []), "schema.misc_exports"))
        ]
        rls = [
            _rls_sql(item, f"schema.row_level_security[{i}]")
            for i, item in enumerate(
                _list(obj.get("row_level_security", []), "schema.row_level_security")
            )
        ]
        return cls(typespace, tables, reducers, types, misc, rls)

    def to_json(self) -> dict[str, Any]:
        """The schema as the server writes it (field order included)."""
        return {
            "typespace": self.typespace.to_json(),
            "tables": [table.to_json() for table in self.tables],
            "reducers": [reducer.to_json() for reducer in self.reducers],
            "types": [typedef.to_json() for typedef in self.types],
            "misc_exports": [export.to_json() for export in self.misc_exports],
            "row_level_security": [{"sql": sql} for sql in self.row_level_security],
        }


def _table_from_json(raw: Any, path: str, typespace: sats.Typespace) -> TableDef:
    keys = ("name", "product_type_ref", "primary_key", "indexes", "constraints", "sequences")
    obj = _obj(raw, path, (*keys, "schedule", "table_type", "table_access"))
    ref = _int(obj["product_type_ref"], f"{path}.product_type_ref")
    try:
        row_type = typespace.resolve(sats.RefType(ref))
    except SatsError as exc:
        raise ProtocolError(f"{path}.product_type_ref: {exc}") from None
    if not isinstance(row_type, sats.ProductType):
        raise ProtocolError(
            f"{path}.product_type_ref: typespace entry {ref} is {sats.describe(row_type)}, "
            "not a product"
        )
    present, schedule = _option(obj["schedule"], f"{path}.schedule")
    table_type = _variant(obj["table_type"], f"{path}.table_type", ("User", "System"))[0]
    access = _variant(obj["table_access"], f"{path}.table_access", ("Public", "Private"))[0]
    table = TableDef(
        name=_str(obj["name"], f"{path}.name"),
        product_type_ref=ref,
        row_type=row_type,
        primary_key=_col_list(obj["primary_key"], f"{path}.primary_key"),
        indexes=[
            IndexDef.from_json(item, f"{path}.indexes[{i}]")
            for i, item in enumerate(_list(obj["indexes"], f"{path}.indexes"))
        ],
        constraints=[
            ConstraintDef.from_json(item, f"{path}.constraints[{i}]")
            for i, item in enumerate(_list(obj["constraints"], f"{path}.constraints"))
        ],
        sequences=[
            SequenceDef.from_json(item, f"{path}.sequences[{i}]")
            for i, item in enumerate(_list(obj["sequences"], f"{path}.sequences"))
        ],
        schedule=ScheduleDef.from_json(schedule, f"{path}.schedule.some") if present else None,
        table_type=table_type,  # type: ignore[arg-type]
        table_access=access,  # type: ignore[arg-type]
        typespace=typespace,
    )
    _check_columns(table, path)
    return table


def _check_columns(table: TableDef, path: str) -> None:
    """Every column index the table mentions must exist in its row type."""
    count = len(table.row_type.elements)
    used: list[tuple[str, int]] = [
        (f"primary_key[{i}]", c) for i, c in enumerate(table.primary_key)
    ]
    for i, index in enumerate(table.indexes):
        used += [(f"indexes[{i}].algorithm", c) for c in index.columns]
    for i, constraint in enumerate(table.constraints):
        used += [(f"constraints[{i}].data.Unique.columns", c) for c in constraint.columns]
    used += [(f"sequences[{i}].column", seq.column) for i, seq in enumerate(table.sequences)]
    if table.schedule is not None:
        used.append(("schedule.some.scheduled_at_column", table.schedule.scheduled_at_column))
    for where, column in used:
        if not 0 <= column < count:
            raise ProtocolError(
                f"{path}.{where}: column {column} does not exist (table {table.name!r} has "
                f"{count} columns)"
            )


def _misc_from_json(
    raw: Any, path: str, typespace: sats.Typespace, names: Mapping[int, str]
) -> MiscExport:
    kind, body = _variant(raw, path, ("ColumnDefaultValue", "Procedure", "View"))
    if kind == "Procedure":
        return ProcedureDef.from_json(body, f"{path}.Procedure", typespace, names)
    if kind == "View":
        return ViewDef.from_json(body, f"{path}.View")
    return ColumnDefaultValue.from_json(body, f"{path}.ColumnDefaultValue")


def _rls_sql(raw: Any, path: str) -> str:
    return _str(_obj(raw, path, ("sql",))["sql"], f"{path}.sql")
