"""Typed rows: one frozen attrs class per table and per struct type, built from the schema.

:func:`row_model` compiles a :class:`RowModel` once per module schema (and shares it between
connections to modules with the same schema, so rows of two connections to one database are of
the same class and compare equal). For each table, :meth:`RowModel.table` gives a
:class:`TableRows`: the row class, and ``decode(bsatn) -> row``.

What the columns hold (SATS types as in ``docs/architecture.md``, with three changes so that
every row is hashable):

* a struct column (a named product) is an instance of its own frozen class (named after the
  schema's type name, e.g. ``Point``; one class per typespace entry);
* an array column is a ``tuple`` (``bytes`` for ``Array<U8>``, as before);
* an enum column is a :class:`~spacetime_sched.sats.SumValue` whose payload is typed the same way.

Timestamp, TimeDuration, ScheduleAt, Identity, ConnectionId and Uuid columns are the project's
own classes, as the codec decodes them. Options are the value or ``None``.

Decoding is allocation-light: the row's columns are decoded by one compiled codec of the row
type *without field names* (so the codec builds a tuple, not a dict), and the instance is built
from that tuple. Only columns that need a conversion (structs, arrays, enums with such payloads)
pay for one.

A row also answers ``row["column"]`` (the column's value), so code written for dict rows keeps
reading them; :func:`row_dict` gives the exact dict the codec would have decoded.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import attrs

from .. import sats
from ..protocol import ModuleSchema

__all__ = [
    "Row",
    "RowModel",
    "TableRows",
    "register_row_classes",
    "row_dict",
    "row_model",
    "schema_digest",
    "type_key",
]

#: A converter of one value; ``None`` where the value needs none (the common case).
_Conv = Callable[[Any], Any] | None

#: How many compiled schemas are kept (a process talks to few modules).
_MODEL_CACHE_SIZE: Final = 32


class Row:
    """Base class of every generated row and struct class (frozen, slotted attrs classes)."""

    __slots__ = ()

    #: column name -> attribute name (they differ only where a column name is a Python keyword
    #: or not an identifier: ``from`` -> ``from_``).
    __columns__: ClassVar[Mapping[str, str]] = {}
    #: Converts a typed instance back to the codec's dict form (set per class).
    __to_plain__: ClassVar[Callable[[Any], dict[str, Any]]]

    def __getitem__(self, column: str) -> Any:
        """The value of ``column`` (``row["name"]``), for code written for dict rows."""
        try:
            attribute = self.__columns__[column]
        except (KeyError, TypeError):
            raise KeyError(column) from None
        return getattr(self, attribute)


def row_dict(row: Any) -> Any:
    """The dict form of a typed row (exactly what the codec decodes: nested structs as dicts,
    arrays as lists); any other value is returned as it is."""
    if isinstance(row, Row):
        return type(row).__to_plain__(row)
    return row


@attrs.frozen
class TableRows:
    """The typed rows of one table."""

    name: str
    row_class: type[Row]
    #: Column names in order, and the attribute name of each.
    columns: tuple[str, ...]
    attributes: tuple[str, ...]
    #: ``decode(bsatn) -> row``.
    decode: Callable[[bytes], Any] = attrs.field(repr=False)
    #: A typed row, or a dict of the codec's form, as a typed row.
    typed: Callable[[Any], Any] = attrs.field(repr=False)
    #: The primary key column's index, or ``None``.
    primary_key: int | None = None
    #: Indexes of the columns whose values are unique (the primary key and every single-column
    #: unique constraint).
    unique_columns: tuple[int, ...] = ()


def _attribute_name(column: str | None, index: int) -> str:
    """The Python attribute of a column: its name when that is a plain identifier; otherwise
    the name made one (``from`` -> ``from_``, ``my-col`` -> ``my_col_``, ``2d`` -> ``f_2d_``)
    with a trailing underscore, which no plain name of the same spelling has."""
    if column is None:
        return f"field_{index}"
    if (
        column.isidentifier()
        and not keyword.iskeyword(column)
        and not column.startswith("_")
        and column != "self"  # the generated __init__ takes self
    ):
        return column
    name = re.sub(r"\W", "_", column).strip("_") or f"field_{index}"
    return f"{'f_' if name[0].isdigit() else ''}{name}_"


def _attribute_names(columns: tuple[str | None, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for index, column in enumerate(columns):
        name = _attribute_name(column, index)
        while name in names:  # two columns made the same name: keep both apart
            name += "_"
        names.append(name)
    return tuple(names)


def _class_name(name: str) -> str:
    """``tick_schedule`` -> ``TickSchedule`` (a valid identifier in any case)."""
    parts = [part for part in re.split(r"[^0-9A-Za-z]+", name) if part]
    text = "".join(part[:1].upper() + part[1:] for part in parts) or "Row"
    return text if not text[0].isdigit() else f"Row{text}"


def _make_class(name: str, columns: tuple[str | None, ...]) -> type[Row]:
    attributes = _attribute_names(columns)
    cls: type[Row] = attrs.make_class(
        _class_name(name),
        {attribute: attrs.field() for attribute in attributes},
        bases=(Row,),
        frozen=True,
        slots=True,
        eq=True,
        order=True,
    )
    cls.__columns__ = {
        column if column is not None else attribute: attribute
        for column, attribute in zip(columns, attributes, strict=True)
    }
    cls.__module__ = "spacetime_sched.client.rows"
    return cls


def type_key(ty: sats.AlgebraicType, index: int | None = None) -> str:
    """The key a registered class is found by: ``ref:<index>`` for a named struct of the
    typespace, else a hash of the type's canonical JSON (an inline struct, an enum)."""
    if index is not None:
        return f"ref:{index}"
    canonical = json.dumps(ty.to_json(), sort_keys=True, separators=(",", ":"))
    return "type:" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


class RowModel:
    """The row and struct classes of one module schema (see the module docs).

    ``classes`` (from :func:`register_row_classes`, e.g. by generated bindings) are used instead
    of generated ones where their key (:func:`type_key`) and attributes match: a struct class
    in place of the one :func:`attrs.make_class` would build, and for an enum, a tuple of one
    class per variant (``cls()`` for a unit variant, ``cls(payload)`` else, each with a
    ``__tag__``), so decoded enum values are instances of those instead of ``SumValue``.
    """

    def __init__(self, schema: ModuleSchema, classes: Mapping[str, Any] | None = None) -> None:
        self._schema = schema
        self._registered: Mapping[str, Any] = classes or {}
        self._typespace = schema.typespace
        self._type_names = {typedef.ty: typedef.name for typedef in schema.types}
        #: typespace index -> (to_typed, to_plain) of a type there, built on first use
        self._refs: dict[int, tuple[_Conv, _Conv]] = {}
        self._classes: dict[int, type[Row]] = {}
        self._inline: dict[sats.AlgebraicType, tuple[_Conv, _Conv]] = {}
        self._tables: dict[str, TableRows] = {}

    def __repr__(self) -> str:
        return f"<RowModel tables={sorted(t.name for t in self._schema.tables)}>"

    @property
    def schema(self) -> ModuleSchema:
        return self._schema

    def table(self, name: str) -> TableRows:
        """The typed rows of table ``name`` (``LookupError`` if the schema has no such table)."""
        rows = self._tables.get(name)
        if rows is None:
            rows = self._tables[name] = self._compile_table(name)
        return rows

    def converters(self, ty: sats.AlgebraicType) -> tuple[_Conv, _Conv]:
        """``(to_typed, to_plain)`` for values of ``ty`` (each ``None`` when no conversion is
        needed): from the codec's form to the typed form and back."""
        return self._convs(ty)

    def class_of(self, ty: sats.AlgebraicType) -> type[Row] | None:
        """The generated class of a struct type (a ref to a named product), if it is one."""
        if isinstance(ty, sats.RefType):
            self._convs(ty)
            return self._classes.get(ty.index)
        return None

    # --- compiling ------------------------------------------------------------------------------

    def _compile_table(self, name: str) -> TableRows:
        table = self._schema.table(name)
        elements = table.row_type.elements
        columns = tuple(e.name for e in elements)
        to_typed = self._convs(sats.RefType(table.product_type_ref))[0]
        cls = self._classes.get(table.product_type_ref)
        if cls is None or to_typed is None:  # a table without columns
            cls = _make_class(name, columns)
            to_typed = self._struct(cls, table.row_type, [])[0]
        make_typed: Callable[[Any], Any] = to_typed  # type: ignore[assignment]
        convs = [self._convs(e.algebraic_type, e.name or name)[0] for e in elements]
        # The row type without field names decodes to a tuple: no dict is built per row.
        unnamed = sats.ProductType(
            tuple(sats.ProductElement(None, e.algebraic_type) for e in elements)
        )
        decode_tuple = sats.compile(unnamed, self._typespace).decode
        decode: Callable[[bytes], Any]
        if not any(convs):

            def decode(data: bytes) -> Any:
                return cls(*decode_tuple(data))

        else:
            steps = tuple(convs)

            def decode(data: bytes) -> Any:
                return cls(
                    *[
                        value if conv is None else conv(value)
                        for conv, value in zip(steps, decode_tuple(data), strict=True)
                    ]
                )

        def typed(value: Any) -> Any:
            return value if isinstance(value, cls) else make_typed(value)

        primary_key = table.primary_key[0] if len(table.primary_key) == 1 else None
        unique = {c.columns[0] for c in table.constraints if len(c.columns) == 1}
        if primary_key is not None:
            unique.add(primary_key)
        return TableRows(
            name,
            cls,
            tuple(cls.__columns__),
            tuple(cls.__columns__.values()),
            decode,
            typed,
            primary_key,
            tuple(sorted(unique)),
        )

    def _convs(self, ty: sats.AlgebraicType, hint: str = "Struct") -> tuple[_Conv, _Conv]:
        """The converters of ``ty``; ``hint`` names the class of an inline struct type (the
        column, field or variant it appears in)."""
        typespace = self._typespace
        if isinstance(ty, sats.RefType):
            return self._ref(ty.index)
        if sats.special_kind(ty, typespace) not in (None, "option"):
            return None, None  # Identity, Timestamp, ScheduleAt, ...: the codec's own classes
        if isinstance(ty, sats.PrimitiveType):
            return None, None
        if isinstance(ty, sats.ArrayType):
            if typespace.resolve(ty.elem) == sats.U8:
                return None, None  # bytes
            return _array(*self._convs(ty.elem, hint))
        if isinstance(ty, sats.ProductType):
            if not ty.elements:
                return None, None
            inline = self._inline.get(ty)
            if inline is not None:
                return inline
            convs = [self._convs(e.algebraic_type, e.name or hint) for e in ty.elements]
            if any(e.name is None for e in ty.elements):
                inline = _tuple(convs)
            else:  # one class per inline struct type, named after where it first appears
                cls = self._registered_class(type_key(ty), ty.names)
                inline = self._struct(cls or _make_class(hint, ty.names), ty, convs)
            self._inline[ty] = inline
            return inline
        if isinstance(ty, sats.SumType):
            if ty.is_option:
                return _option(*self._convs(ty.variants[0].algebraic_type, hint))
            convs = [self._convs(v.algebraic_type, v.name or hint) for v in ty.variants]
            variants = self._registered.get(type_key(ty)) if self._registered else None
            if variants is not None and len(variants) == len(ty.variants):
                units = [
                    isinstance(r := self._typespace.resolve(v.algebraic_type), sats.ProductType)
                    and not r.elements
                    for v in ty.variants
                ]
                return _variant_classes(ty, tuple(variants), units, convs)
            return _sum(convs)
        raise TypeError(f"not a SATS type: {ty!r}")  # pragma: no cover - sats validated it

    def _ref(self, index: int) -> tuple[_Conv, _Conv]:
        done = self._refs.get(index)
        if done is not None:
            return done
        ty = self._typespace[index]
        named_product = (
            isinstance(ty, sats.ProductType)
            and ty.elements
            and all(e.name is not None for e in ty.elements)
            and sats.special_kind(ty, self._typespace) is None
        )
        if not named_product:
            if isinstance(ty, sats.RefType):
                return self._ref(ty.index)
            # A recursive type needs a cell: conversions call through it once it is filled.
            cell: list[tuple[_Conv, _Conv]] = []
            self._refs[index] = (
                lambda value: _through(cell, 0, value),
                lambda value: _through(cell, 1, value),
            )
            result = self._convs(ty)
            cell.append(result)
            self._refs[index] = result
            return result
        assert isinstance(ty, sats.ProductType)
        name = self._type_names.get(index) or self._table_name_of(index) or f"Type{index}"
        cls = self._registered_class(type_key(ty, index), ty.names) or _make_class(name, ty.names)
        self._classes[index] = cls
        cell2: list[tuple[_Conv, _Conv]] = []
        self._refs[index] = (
            lambda value: _through(cell2, 0, value),
            lambda value: _through(cell2, 1, value),
        )
        convs = [self._convs(e.algebraic_type, e.name or name) for e in ty.elements]
        result = self._struct(cls, ty, convs)
        cell2.append(result)
        self._refs[index] = result
        return result

    def _registered_class(self, key: str, columns: tuple[str | None, ...]) -> type[Row] | None:
        """The registered class for ``key`` if its attributes are the ones the columns make."""
        cls = self._registered.get(key) if self._registered else None
        if (
            isinstance(cls, type)
            and issubclass(cls, Row)
            and tuple(cls.__columns__.values()) == _attribute_names(columns)
        ):
            return cls
        return None

    def _table_name_of(self, index: int) -> str | None:
        for table in self._schema.tables:
            if table.product_type_ref == index:
                return table.name
        return None

    @staticmethod
    def _struct(
        cls: type[Row], ty: sats.ProductType, convs: list[tuple[_Conv, _Conv]]
    ) -> tuple[_Conv, _Conv]:
        names = tuple(e.name for e in ty.elements)
        attributes = tuple(cls.__columns__.values())
        typed_steps = tuple((name, conv[0]) for name, conv in zip(names, convs, strict=True))
        plain_steps = tuple(
            (name, attribute, conv[1])
            for name, attribute, conv in zip(names, attributes, convs, strict=True)
        )

        def to_typed(value: Any) -> Any:
            if isinstance(value, cls):
                return value
            if isinstance(value, Mapping):
                return cls(
                    *[
                        value[name] if conv is None else conv(value[name])
                        for name, conv in typed_steps
                    ]
                )
            return cls(  # a tuple or list by position
                *[
                    item if step[1] is None else step[1](item)
                    for step, item in zip(typed_steps, value, strict=True)
                ]
            )

        def to_plain(value: Any) -> Any:
            if not isinstance(value, cls):
                return value
            return {
                name: getattr(value, attribute) if conv is None else conv(getattr(value, attribute))
                for name, attribute, conv in plain_steps
            }

        cls.__to_plain__ = to_plain
        return to_typed, to_plain


def _through(cell: list[tuple[_Conv, _Conv]], which: int, value: Any) -> Any:
    conv = cell[0][which]
    return value if conv is None else conv(value)


def _array(typed: _Conv, plain: _Conv) -> tuple[_Conv, _Conv]:
    def to_typed(value: Any) -> Any:
        return tuple(value) if typed is None else tuple([typed(item) for item in value])

    def to_plain(value: Any) -> Any:
        if not isinstance(value, tuple):
            return value
        return list(value) if plain is None else [plain(item) for item in value]

    return to_typed, to_plain


def _tuple(convs: list[tuple[_Conv, _Conv]]) -> tuple[_Conv, _Conv]:
    if not any(typed or plain for typed, plain in convs):
        return None, None
    typed_steps = tuple(conv[0] for conv in convs)
    plain_steps = tuple(conv[1] for conv in convs)

    def to_typed(value: Any) -> Any:
        return tuple(
            [item if c is None else c(item) for c, item in zip(typed_steps, value, strict=True)]
        )

    def to_plain(value: Any) -> Any:
        return tuple(
            [item if c is None else c(item) for c, item in zip(plain_steps, value, strict=True)]
        )

    return to_typed, to_plain


def _option(typed: _Conv, plain: _Conv) -> tuple[_Conv, _Conv]:
    if typed is None and plain is None:
        return None, None

    def convert(conv: _Conv, value: Any) -> Any:
        if value is None or conv is None:
            return value
        if isinstance(value, sats.Some):  # Option<Option<T>>: some(x) decodes as Some(x)
            return sats.Some(value.value if value.value is None else conv(value.value))
        return conv(value)

    return (lambda value: convert(typed, value)), (lambda value: convert(plain, value))


def _sum(convs: list[tuple[_Conv, _Conv]]) -> tuple[_Conv, _Conv]:
    if not any(typed or plain for typed, plain in convs):
        return None, None

    def convert(which: int, value: Any) -> Any:
        if not isinstance(value, sats.SumValue) or not 0 <= value.tag < len(convs):
            return value
        conv = convs[value.tag][which]
        return value if conv is None else sats.SumValue(value.tag, value.name, conv(value.value))

    return (lambda value: convert(0, value)), (lambda value: convert(1, value))


def _variant_classes(
    ty: sats.SumType,
    classes: tuple[Any, ...],
    units: list[bool],
    convs: list[tuple[_Conv, _Conv]],
) -> tuple[_Conv, _Conv]:
    """Converters between ``SumValue`` (the codec's form) and one registered class per variant."""
    names = [v.name for v in ty.variants]
    by_class = {cls: tag for tag, cls in enumerate(classes)}

    def to_typed(value: Any) -> Any:
        if not isinstance(value, sats.SumValue) or not 0 <= value.tag < len(classes):
            return value
        if units[value.tag]:
            return classes[value.tag]()
        conv = convs[value.tag][0]
        return classes[value.tag](value.value if conv is None else conv(value.value))

    def to_plain(value: Any) -> Any:
        tag = by_class.get(type(value))
        if tag is None:
            return value  # a SumValue already (or a wrong value the encoder names)
        if units[tag]:
            return sats.SumValue(tag, names[tag], ())
        conv = convs[tag][1]
        payload = value.value
        return sats.SumValue(tag, names[tag], payload if conv is None else conv(payload))

    return to_typed, to_plain


# --- one model per schema ----------------------------------------------------------------------

_models_by_id: dict[int, tuple[ModuleSchema, RowModel]] = {}
_models_by_content: dict[str, RowModel] = {}
_registered_classes: dict[str, Mapping[str, Any]] = {}


def schema_digest(schema: ModuleSchema) -> str:
    """The SHA-256 of the schema's canonical JSON: the same schema, the same digest."""
    return hashlib.sha256(
        json.dumps(schema.to_json(), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def register_row_classes(digest: str, classes: Mapping[str, Any]) -> None:
    """Use ``classes`` (keyed by ``type_key``) for rows, structs and enums of the schema
    whose :func:`schema_digest` is ``digest`` (generated bindings call this on import, so the
    rows a connection decodes are instances of the generated classes). A model already
    compiled for that schema is dropped, so the next connection uses them. An empty mapping
    removes the registration (the runtime's own classes again)."""
    if classes:
        _registered_classes[digest] = dict(classes)
    else:
        _registered_classes.pop(digest, None)
    model = _models_by_content.pop(digest, None)
    if model is not None:
        for key in [k for k, (_s, m) in _models_by_id.items() if m is model]:
            del _models_by_id[key]


def row_model(schema: ModuleSchema) -> RowModel:
    """The :class:`RowModel` of ``schema``: compiled once per schema content (the first call
    for a new schema object hashes its JSON; later calls cost one dict lookup)."""
    found = _models_by_id.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    digest = schema_digest(schema)
    model = _models_by_content.get(digest)
    if model is None:
        model = RowModel(schema, _registered_classes.get(digest))
        _models_by_content[digest] = model
        while len(_models_by_content) > _MODEL_CACHE_SIZE:
            del _models_by_content[next(iter(_models_by_content))]
    _models_by_id[id(schema)] = (schema, model)
    while len(_models_by_id) > _MODEL_CACHE_SIZE:
        del _models_by_id[next(iter(_models_by_id))]
    return model
