"""Typed Python bindings for one SpacetimeDB module, from its schema (``spacetime-sched generate``).

:func:`generate_bindings` turns a :class:`~spacetime_sched.protocol.ModuleSchema` into the text
of one Python module (a package's ``__init__.py``) holding:

* one frozen attrs class per table row and per struct type, subclasses of
  :class:`~spacetime_sched.client.Row` with the attribute names the runtime gives the columns;
* per enum, one small frozen class per variant (``payload`` in ``value``; a unit variant has
  none) and a union alias of them (``Color = ColorRed | ColorRgb | ColorNamed``), so ``match``
  and ``isinstance`` narrow it under mypy --strict;
* ``Reducers``: one ``async`` method per reducer a client may call, with the exact parameter
  types; ``Db``: one :class:`~spacetime_sched.bindings.TableHandle` subclass per table
  (``find(key)`` typed by the primary key, unique columns, ``on_update`` where there is a key);
  ``Module``/``bind(conn)`` wrapping a connection;
* a call of :func:`~spacetime_sched.client.register_row_classes` with the schema's digest, so
  rows the connection decodes are instances of these very classes (no conversion, no copy).

The text is deterministic (tables, reducers and types in schema-sorted order, no time stamps)
and written in the shape ``ruff format`` gives it (every multi-line construct with a magic
trailing comma), so a check with ``ruff format --check`` passes as it is.
"""

from __future__ import annotations

import textwrap

import attrs

from . import sats
from ._version import __version__
from .client._rows import _attribute_name, _attribute_names, _class_name, schema_digest, type_key
from .protocol import ModuleSchema, TableDef

__all__ = ["generate_bindings"]

_PRIMITIVES = {
    "Bool": "bool",
    "String": "str",
    "F32": "float",
    "F64": "float",
    **{f"{s}{n}": "int" for s in "IU" for n in (8, 16, 32, 64, 128, 256)},
}
_SPECIAL = {
    "identity": "Identity",
    "connection_id": "ConnectionId",
    "timestamp": "Timestamp",
    "time_duration": "TimeDuration",
    "schedule_at": "ScheduleAt",
    "uuid": "uuid.UUID",
}
#: Names a table handle or the generated module already uses.
_HANDLE_NAMES = frozenset({"cache", "count", "find", "rows", "on_insert", "on_delete", "on_update"})
#: Names the generated module defines or imports: a type of the schema gets another.
_MODULE_NAMES = frozenset(
    {
        *("Db", "Module", "Reducers", "SCHEMA_SHA256", "bind", "_CLASSES", "attrs", "uuid"),
        *("Any", "Callable", "ClassVar", "Final", "Mapping", "TypeAlias", "Some", "Row"),
        *("TableHandle", "UniqueColumn", "CallbackHandle", "ClientCache", "DbConnection"),
        *("ReducerCallResult", "RuntimeReducers", "register_row_classes", "schema_digest"),
        *_SPECIAL.values(),
    }
)
_LINE = 88


@attrs.define
class _Struct:
    key: str
    name: str
    #: (column name as the schema spells it, attribute, annotation)
    fields: list[tuple[str, str, str]]
    doc: str


@attrs.define
class _Enum:
    key: str
    name: str
    #: (variant name, class name, payload annotation or None for a unit variant)
    variants: list[tuple[str, str, str | None]]
    doc: str


class _Types:
    """Names every type the schema uses, creating struct and enum classes as it meets them."""

    def __init__(self, schema: ModuleSchema) -> None:
        self.schema = schema
        self.typespace = schema.typespace
        self.type_names = {t.ty: t.name for t in schema.types}
        self.table_names = {t.product_type_ref: t.name for t in schema.tables}
        self.taken: set[str] = set(_MODULE_NAMES)
        self.structs: dict[str, _Struct] = {}
        self.enums: dict[str, _Enum] = {}
        self.order: list[str] = []  # keys in the order they were met
        self.imports: set[str] = set()
        self.table_classes: dict[str, str] = {}  # table -> its handle class

    def fresh(self, name: str) -> str:
        base = name
        number = 2
        while name in self.taken:
            name = f"{base}{number}"
            number += 1
        self.taken.add(name)
        return name

    def annotation(self, ty: sats.AlgebraicType, hint: str) -> str:
        typespace = self.typespace
        kind = sats.special_kind(ty, typespace)
        if kind in _SPECIAL:
            self.imports.add(kind)
            return _SPECIAL[kind]
        if isinstance(ty, sats.RefType):
            target = typespace[ty.index]
            if isinstance(target, sats.ProductType) and _is_struct(target, typespace):
                return self.struct(target, type_key(target, ty.index), self.ref_name(ty.index))
            return self.annotation(target, self.type_names.get(ty.index) or hint)
        if isinstance(ty, sats.PrimitiveType):
            return _PRIMITIVES[ty.name]
        if isinstance(ty, sats.ArrayType):
            if typespace.resolve(ty.elem) == sats.U8:
                return "bytes"
            return f"tuple[{self.annotation(ty.elem, hint)}, ...]"
        if isinstance(ty, sats.ProductType):
            if not ty.elements:
                return "tuple[()]"
            if any(e.name is None for e in ty.elements):
                inner = ", ".join(self.annotation(e.algebraic_type, hint) for e in ty.elements)
                return f"tuple[{inner}]"
            return self.struct(ty, type_key(ty), hint)
        if isinstance(ty, sats.SumType):
            if ty.is_option:
                payload = ty.variants[0].algebraic_type
                if sats.special_kind(payload, typespace) == "option":
                    self.imports.add("some")  # some(x) of a nested option decodes as Some(x)
                    return "Some | None"
                return f"{self.annotation(payload, hint)} | None"
            return self.enum(ty, type_key(ty), hint)
        raise TypeError(f"not a SATS type: {ty!r}")  # pragma: no cover - the schema checked it

    def ref_name(self, index: int) -> str:
        return self.type_names.get(index) or self.table_names.get(index) or f"Type{index}"

    def struct(self, ty: sats.ProductType, key: str, hint: str) -> str:
        found = self.structs.get(key)
        if found is not None:
            return found.name
        struct = _Struct(key, self.fresh(_class_name(hint)), [], "")
        self.structs[key] = struct
        self.order.append(key)
        names = tuple(e.name for e in ty.elements)
        for element, attribute in zip(ty.elements, _attribute_names(names), strict=True):
            column = element.name or attribute
            annotation = self.annotation(element.algebraic_type, column)
            struct.fields.append((column, attribute, annotation))
        return struct.name

    def enum(self, ty: sats.SumType, key: str, hint: str) -> str:
        found = self.enums.get(key)
        if found is not None:
            return found.name
        enum = _Enum(key, self.fresh(_class_name(hint)), [], "")
        self.enums[key] = enum
        self.order.append(key)
        for tag, variant in enumerate(ty.variants):
            name = variant.name or f"variant_{tag}"
            resolved = self.typespace.resolve(variant.algebraic_type)
            unit = isinstance(resolved, sats.ProductType) and not resolved.elements
            cls = self.fresh(enum.name + _class_name(name))
            payload = None if unit else self.annotation(variant.algebraic_type, name)
            enum.variants.append((name, cls, payload))
        return enum.name


def _is_struct(ty: sats.AlgebraicType, typespace: sats.Typespace) -> bool:
    """A named product the runtime makes a class for (the same test as the row model's)."""
    return (
        isinstance(ty, sats.ProductType)
        and bool(ty.elements)
        and all(e.name is not None for e in ty.elements)
        and sats.special_kind(ty, typespace) is None
    )


def _q(text: str) -> str:
    """A string literal as ruff format writes it (double quotes unless that needs escapes)."""
    literal = repr(text)
    if literal.startswith("'") and '"' not in text:
        literal = '"' + literal[1:-1].replace("\\'", "'") + '"'
    return literal


def _call_lines(head: str, items: list[str], tail: str, indent: str) -> list[str]:
    """``head(items)tail`` on one line, or exploded one item a line with a trailing comma."""
    one = f"{indent}{head}{', '.join(items)}{tail}"
    if len(one) <= _LINE and "\n" not in one:
        return [one]
    return [f"{indent}{head}", *[f"{indent}    {item}," for item in items], f"{indent}{tail}"]


def generate_bindings(schema: ModuleSchema, *, source: str) -> str:
    """The bindings module for ``schema``; ``source`` says where the schema came from (written
    in the header with the schema's SHA-256 and this tool's version)."""
    types = _Types(schema)
    tables = sorted(schema.tables, key=lambda t: t.name)
    table_rows: dict[str, str] = {}
    for table in tables:
        ref = sats.RefType(table.product_type_ref)
        if table.row_type.elements:
            table_rows[table.name] = types.annotation(ref, table.name)
        else:
            table_rows[table.name] = "Row"
    reducers = sorted((r for r in schema.reducers if r.client_callable), key=lambda r: r.name)
    reducer_params: dict[str, list[tuple[str, str]]] = {}
    for reducer in reducers:
        params = reducer.params.elements
        # ``timeout=`` is the call's own keyword: a parameter of that name becomes ``timeout_``
        spelled = tuple("timeout_" if n == "timeout" else n for n in reducer.param_names)
        reducer_params[reducer.name] = [
            (name, types.annotation(e.algebraic_type, name))
            for name, e in zip(_attribute_names(spelled), params, strict=True)
        ]
    for typedef in sorted(schema.types, key=lambda t: (t.name, t.ty)):  # types no table uses
        types.annotation(sats.RefType(typedef.ty), typedef.name)

    if types.enums:
        types.imports.add("alias")
    if any(len(t.primary_key) == 1 for t in tables):
        types.imports.add("callable")
    digest = schema_digest(schema)
    lines: list[str] = []
    lines += _header(schema, source, digest, types.imports)
    lines += _type_lines(types)
    lines += _table_lines(types, tables, table_rows)
    lines += _reducer_lines(reducer_params)
    lines += _module_lines(types)
    return "\n".join(lines) + "\n"


def _header(schema: ModuleSchema, source: str, digest: str, imports: set[str]) -> list[str]:
    names = sorted(t.name for t in schema.tables)
    # The header is a docstring: no backslash escapes, no closing quotes, one line.
    source = " ".join(source.split()).replace("\\", "\\\\").replace('"', "'")
    specials = sorted(_SPECIAL[k] for k in imports if k in _SPECIAL and k != "uuid")
    lines = [
        '"""Typed bindings of a SpacetimeDB module: do not edit, regenerate instead.',
        "",
        f"Generated by spacetime-sched {__version__} (``spacetime-sched generate``)",
        f"from {source}",
        f"(schema SHA-256 {digest}).",
        "",
        *textwrap.wrap(f"Tables: {', '.join(names) or 'none'}.", _LINE, break_on_hyphens=False),
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if "uuid" in imports:
        lines += ["import uuid"]
    abc = ["Callable", "Mapping"] if "callable" in imports else ["Mapping"]
    typing = ["Any", "ClassVar", "Final", *(["TypeAlias"] if "alias" in imports else [])]
    lines += [
        f"from collections.abc import {', '.join(abc)}",
        f"from typing import {', '.join(typing)}",
        "",
        "import attrs",
    ]
    if specials:
        lines += _import_lines("spacetime_sched", specials)
    lines += _import_lines("spacetime_sched.bindings", ["TableHandle", "UniqueColumn"])
    lines += _import_lines(
        "spacetime_sched.client",
        [
            "CallbackHandle",
            "ClientCache",
            "DbConnection",
            "ReducerCallResult",
            "Row",
            "register_row_classes",
            "schema_digest",
        ],
    )
    lines += _import_lines("spacetime_sched.client", ["Reducers as RuntimeReducers"])
    if "some" in imports:
        lines += _import_lines("spacetime_sched.sats", ["Some"])
    lines += ["", "SCHEMA_SHA256: Final = (", f"    {_q(digest)}", ")"]
    return lines


def _import_lines(module: str, names: list[str]) -> list[str]:
    return (
        _call_lines(f"from {module} import (", names, ")", "")
        if _too_long(module, names)
        else [f"from {module} import {', '.join(names)}"]
    )


def _too_long(module: str, names: list[str]) -> bool:
    return len(f"from {module} import {', '.join(names)}") > _LINE


def _doc(text: str, indent: str) -> list[str]:
    return [f'{indent}"""{text}"""']


def _type_lines(types: _Types) -> list[str]:
    lines: list[str] = []
    for key in types.order:
        lines += ["", ""]
        struct = types.structs.get(key)
        if struct is not None:
            lines += _struct_lines(struct)
        else:
            lines += _enum_lines(types.enums[key])
    return lines


def _struct_lines(struct: _Struct) -> list[str]:
    columns = [f"{_q(column)}: {_q(attribute)}" for column, attribute, _a in struct.fields]
    lines = [
        "@attrs.frozen(order=True)",
        f"class {struct.name}(Row):",
        *_doc(f"Row or struct ``{struct.name}``.", "    "),
        "",
    ]
    lines += _call_lines("__columns__: ClassVar[Mapping[str, str]] = {", columns, "}", "    ")
    lines += [f"    {attribute}: {annotation}" for _c, attribute, annotation in struct.fields]
    return lines


def _enum_lines(enum: _Enum) -> list[str]:
    lines: list[str] = []
    for tag, (variant, cls, payload) in enumerate(enum.variants):
        if tag:
            lines += ["", ""]
        lines += [
            "@attrs.frozen(order=True)",
            f"class {cls}:",
            *_doc(f"Variant ``{variant}`` of :data:`{enum.name}`.", "    "),
            "",
            f"    __tag__: ClassVar[int] = {tag}",
        ]
        if payload is not None:
            lines.append(f"    value: {payload}")
    members = [cls for _v, cls, _p in enum.variants]
    one = f"{enum.name}: TypeAlias = {' | '.join(members)}"
    lines += ["", ""]
    if len(one) <= _LINE:
        lines.append(one)
    elif len("    " + " | ".join(members)) <= _LINE:
        lines += [f"{enum.name}: TypeAlias = (", "    " + " | ".join(members), ")"]
    else:
        lines += [f"{enum.name}: TypeAlias = (", f"    {members[0]}"]
        lines += [f"    | {member}" for member in members[1:]]
        lines.append(")")
    return lines


def _table_lines(types: _Types, tables: list[TableDef], rows: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for table in tables:
        row = rows[table.name]
        cls = _table_class(types, table.name)
        lines += ["", "", f"class {cls}(TableHandle[{row}]):"]
        lines += _doc(f"Table ``{table.name}``: rows of :class:`{row}`.", "    ")
        lines += ["", "    __slots__ = ()"]
        elements = table.row_type.elements
        attributes = _attribute_names(tuple(e.name for e in elements))
        if len(table.primary_key) == 1:
            index = table.primary_key[0]
            key_type = types.annotation(elements[index].algebraic_type, attributes[index])
            lines += [
                "",
                f"    def find(self, key: {key_type}) -> {row} | None:",
                *_doc("The cached row with this primary key, or ``None``.", "        "),
                "        return self._find(key)",
                "",
            ]
            lines += _call_lines(
                "def on_update(",
                ["self", f"callback: Callable[[{row}, {row}], object]"],
                ") -> CallbackHandle:",
                "    ",
            )
            lines += [
                *_doc(
                    "Call ``callback(old, new)`` when a row is replaced by one with its key.",
                    "        ",
                ),
                "        return self._on_update(callback)",
            ]
        unique = {c.columns[0] for c in table.constraints if len(c.columns) == 1}
        unique.update(table.primary_key[:1] if len(table.primary_key) == 1 else ())
        for index in sorted(unique):
            attribute = attributes[index]
            if attribute in _HANDLE_NAMES:
                continue  # the handle's own method; reach it through .cache.column(name)
            value = types.annotation(elements[index].algebraic_type, attribute)
            lines += ["", "    @property"]
            lines += _call_lines(
                f"def {attribute}(",
                ["self"],
                f") -> UniqueColumn[{value}, {row}]:",
                "    ",
            )
            lines += [
                *_doc(f"Lookup by the unique column ``{elements[index].name}``.", "        "),
                f"        return UniqueColumn(self._unique({_q(elements[index].name or '')}))",
            ]
    return lines


def _table_class(types: _Types, table: str) -> str:
    name = types.table_classes.get(table)
    if name is None:
        name = types.table_classes[table] = types.fresh(f"{_class_name(table)}Table")
    return name


def _reducer_lines(params: dict[str, list[tuple[str, str]]]) -> list[str]:
    lines = [
        "",
        "",
        "class Reducers:",
        *_doc(
            "The reducers a client may call: ``await reducers.name(*args, timeout=30.0)``.", "    "
        ),
        "",
        '    __slots__ = ("_reducers",)',
        "",
        "    def __init__(self, reducers: RuntimeReducers) -> None:",
        "        self._reducers = reducers",
    ]
    for name in sorted(params):
        method = _attribute_name(name, 0)
        if method.startswith("_"):
            method = f"reducer{method}"
        signature = ["self", *[f"{p}: {a}" for p, a in params[name]]]
        signature += ["*", "timeout: float | None = 30.0"]
        lines.append("")
        lines += _call_lines(f"async def {method}(", signature, ") -> ReducerCallResult:", "    ")
        lines += _doc(f"Call reducer ``{name}``.", "        ")
        args = [p for p, _a in params[name]] + ["timeout=timeout"]
        lines += _call_lines(f"return await self._reducers[{_q(name)}](", args, ")", "        ")
    return lines


def _module_lines(types: _Types) -> list[str]:
    schema = types.schema
    names = sorted(t.name for t in schema.tables)
    attributes = dict(zip(names, _attribute_names(tuple(names)), strict=True))
    lines = [
        "",
        "",
        "class Db:",
        *_doc("The tables of the connection's cache, typed.", "    "),
        "",
    ]
    lines += [
        '    __slots__ = ("_db",)',
        "",
        "    def __init__(self, db: ClientCache) -> None:",
        "        self._db = db",
    ]
    for name in names:  # a handle per access: binding checks nothing, as conn.db does not
        handle = _table_class(types, name)
        lines += [
            "",
            "    @property",
            f"    def {attributes[name]}(self) -> {handle}:",
            *_doc(f"Table ``{name}``.", "        "),
            f"        return {handle}(self._db.table({_q(name)}))",
        ]
    lines += [
        "",
        "",
        "class Module:",
        *_doc(
            "A connection seen through these bindings: ``conn``, ``db`` and ``reducers``.", "    "
        ),
        "",
        '    __slots__ = ("conn", "db", "reducers")',
        "",
        "    def __init__(self, conn: DbConnection) -> None:",
        "        self.conn = conn",
        "        self.db = Db(conn.db)",
        "        self.reducers = Reducers(conn.reducers)",
        "",
        "    async def schema_matches(self) -> bool:",
        *_doc("Whether the database serves the schema these bindings were made from.", "        "),
        "        return schema_digest(await self.conn.module_schema()) == SCHEMA_SHA256",
        "",
        "",
        "def bind(conn: DbConnection) -> Module:",
        *_doc("The typed view of ``conn`` (a connection to this module).", "    "),
        "    return Module(conn)",
        "",
        "",
    ]
    entries: list[str] = []
    for key in sorted(types.order):
        struct = types.structs.get(key)
        if struct is not None:
            entries.append(f"{_q(key)}: {struct.name}")
        else:
            members = [cls for _v, cls, _p in types.enums[key].variants]
            entries.append(f"{_q(key)}: ({', '.join(members)}{',' if len(members) == 1 else ''})")
    lines += _call_lines("_CLASSES: Mapping[str, Any] = {", entries, "}", "")
    lines.append("register_row_classes(SCHEMA_SHA256, _CLASSES)")
    return lines
