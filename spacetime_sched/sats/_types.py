"""The SATS type system: :class:`AlgebraicType` and its kinds, :class:`Typespace`, constructors.

Types are small frozen attrs classes, so they hash and compare by structure; that is what lets
:func:`spacetime_sched.sats.compile` cache one compiled codec per type. Their JSON form is the
one SpacetimeDB's ``/schema?version=9`` endpoint writes (``{"U32": []}``, ``{"Array": T}``,
``{"Product": {"elements": [...]}}``, ``{"Sum": {"variants": [...]}}``, ``{"Ref": n}``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from .._errors import DecodeError, SatsError

__all__ = [
    "AlgebraicType",
    "ArrayType",
    "PrimitiveType",
    "ProductElement",
    "ProductType",
    "RefType",
    "SumType",
    "SumVariant",
    "Typespace",
    "array",
    "option",
    "product",
    "result",
    "sum",
    "SpecialKind",
    "special_kind",
    "MAX_DEPTH",
]

#: The deepest nesting any codec handles, in levels (each product, sum, option, array or ref is
#: one): a type nested deeper is refused when read from JSON or compiled, and a value of a
#: recursive type may recurse this many levels at most. Python's own stack would otherwise be
#: the limit, and a stack overflow is neither an error we can name nor always recoverable.
MAX_DEPTH: Final = 128

#: Primitive names exactly as SATS-JSON spells them, in ``AlgebraicType`` enum order.
PRIMITIVE_NAMES: Final = (
    "String",
    "Bool",
    "I8",
    "U8",
    "I16",
    "U16",
    "I32",
    "U32",
    "I64",
    "U64",
    "I128",
    "U128",
    "I256",
    "U256",
    "F32",
    "F64",
)

IDENTITY_TAG: Final = "__identity__"
CONNECTION_ID_TAG: Final = "__connection_id__"
TIMESTAMP_TAG: Final = "__timestamp_micros_since_unix_epoch__"
TIME_DURATION_TAG: Final = "__time_duration_micros__"
UUID_TAG: Final = "__uuid__"


class AlgebraicType:
    """Base class of every SATS type. Build types with the module constants and constructors
    (``sats.U32``, ``sats.array(T)``, ``sats.product(("x", T), ...)``) or read them from a schema
    with :meth:`from_json`."""

    __slots__ = ()

    @staticmethod
    def from_json(obj: Any) -> AlgebraicType:
        """Read a type in SATS-JSON (the form of a ``/schema?version=9`` typespace entry)."""
        return _type_from_json(obj, "type")

    def to_json(self) -> Any:
        """Write the type back in SATS-JSON."""
        raise NotImplementedError  # every concrete kind overrides this

    def __str__(self) -> str:
        return describe(self)


@attrs.frozen(slots=True, cache_hash=True, repr=False)
class PrimitiveType(AlgebraicType):
    """``Bool``, ``I8`` .. ``U256``, ``F32``, ``F64`` or ``String`` (``name`` as in SATS-JSON)."""

    name: str = attrs.field(validator=attrs.validators.in_(PRIMITIVE_NAMES))

    def to_json(self) -> Any:
        return {self.name: []}

    def __repr__(self) -> str:
        return f"sats.{_CONSTANT_NAMES[self.name]}"


@attrs.frozen(slots=True, cache_hash=True)
class ArrayType(AlgebraicType):
    """``Array<elem>``; ``Array<U8>`` is a byte string."""

    elem: AlgebraicType

    def to_json(self) -> Any:
        return {"Array": self.elem.to_json()}


@attrs.frozen(slots=True, cache_hash=True)
class ProductElement:
    """One field of a product: an optional ``name`` and its type."""

    name: str | None
    algebraic_type: AlgebraicType

    def to_json(self) -> Any:
        return {"name": _name_json(self.name), "algebraic_type": self.algebraic_type.to_json()}


def _element_tuple(items: Iterable[ProductElement]) -> tuple[ProductElement, ...]:
    return tuple(items)


@attrs.frozen(slots=True, cache_hash=True)
class ProductType(AlgebraicType):
    """A struct or tuple: fields in declaration order. The empty product is the unit type."""

    elements: tuple[ProductElement, ...] = attrs.field(converter=_element_tuple)

    def to_json(self) -> Any:
        return {"Product": {"elements": [e.to_json() for e in self.elements]}}

    @property
    def is_unit(self) -> bool:
        return not self.elements

    @property
    def names(self) -> tuple[str | None, ...]:
        return tuple(e.name for e in self.elements)


@attrs.frozen(slots=True, cache_hash=True)
class SumVariant:
    """One variant of a sum: an optional ``name`` and its payload type (unit for none)."""

    name: str | None
    algebraic_type: AlgebraicType

    def to_json(self) -> Any:
        return {"name": _name_json(self.name), "algebraic_type": self.algebraic_type.to_json()}


def _variant_tuple(items: Iterable[SumVariant]) -> tuple[SumVariant, ...]:
    return tuple(items)


@attrs.frozen(slots=True, cache_hash=True)
class SumType(AlgebraicType):
    """A tagged union: the BSATN tag byte is the variant's index (so at most 256 variants)."""

    variants: tuple[SumVariant, ...] = attrs.field(converter=_variant_tuple)

    def __attrs_post_init__(self) -> None:
        if len(self.variants) > 256:
            raise SatsError(f"a sum type has at most 256 variants, got {len(self.variants)}")

    def to_json(self) -> Any:
        return {"Sum": {"variants": [v.to_json() for v in self.variants]}}

    @property
    def is_option(self) -> bool:
        """``some(T) | none``: the shape SpacetimeDB gives ``Option<T>``."""
        v = self.variants
        return (
            len(v) == 2
            and v[0].name == "some"
            and v[1].name == "none"
            and v[1].algebraic_type == UNIT
        )


@attrs.frozen(slots=True, cache_hash=True)
class RefType(AlgebraicType):
    """A reference to entry ``index`` of a :class:`Typespace` (how schemas share and recurse)."""

    index: int

    def to_json(self) -> Any:
        return {"Ref": self.index}


def _type_tuple(items: Iterable[AlgebraicType]) -> tuple[AlgebraicType, ...]:
    return tuple(items)


@attrs.frozen(slots=True, cache_hash=True)
class Typespace:
    """The numbered types of a module schema; :class:`RefType` points into it."""

    types: tuple[AlgebraicType, ...] = attrs.field(converter=_type_tuple)

    @classmethod
    def from_json(cls, obj: Any) -> Typespace:
        """Read ``{"types": [...]}`` (the ``typespace`` of a ``?version=9`` schema)."""
        if not isinstance(obj, Mapping) or not isinstance(obj.get("types"), list):
            raise DecodeError(f'typespace: expected {{"types": [...]}}, got {_show(obj)}')
        return cls(_type_from_json(t, f"types[{i}]") for i, t in enumerate(obj["types"]))

    def to_json(self) -> Any:
        return {"types": [t.to_json() for t in self.types]}

    def __getitem__(self, index: int) -> AlgebraicType:
        return self.types[index]

    def __len__(self) -> int:
        return len(self.types)

    def resolve(self, ty: AlgebraicType) -> AlgebraicType:
        """Follow :class:`RefType` links until a non-reference type (``ty`` itself if it is
        not a ref). Raises :class:`SatsError` for a dangling or self-referential ref."""
        return resolve(ty, self)


def resolve(ty: AlgebraicType, typespace: Typespace | None) -> AlgebraicType:
    """Follow refs in ``typespace`` (which may be ``None`` when ``ty`` contains no refs)."""
    seen: list[int] = []
    while type(ty) is RefType:
        if typespace is None:
            raise SatsError(f"type refers to Ref({ty.index}) but no typespace was given")
        if ty.index in seen:
            raise SatsError(f"Ref({ty.index}) refers to itself through {seen}")
        if not 0 <= ty.index < len(typespace.types):
            raise SatsError(
                f"Ref({ty.index}) is outside the typespace (it has {len(typespace.types)} types)"
            )
        seen.append(ty.index)
        ty = typespace.types[ty.index]
    return ty


# --- special types, recognised structurally ----------------------------------------------------

#: The kinds :func:`special_kind` reports.
SpecialKind = str

_SPECIAL_PRODUCTS: Final = {
    IDENTITY_TAG: ("identity", "U256"),
    CONNECTION_ID_TAG: ("connection_id", "U128"),
    TIMESTAMP_TAG: ("timestamp", "I64"),
    TIME_DURATION_TAG: ("time_duration", "I64"),
    UUID_TAG: ("uuid", "U128"),
}


def special_kind(ty: AlgebraicType, typespace: Typespace | None = None) -> SpecialKind | None:
    """``"identity"``, ``"connection_id"``, ``"timestamp"``, ``"time_duration"``, ``"uuid"``,
    ``"schedule_at"``, ``"option"`` or ``None`` for an ordinary type.

    Like SpacetimeDB, this looks only at the shape: a product with the single magic field
    (``__identity__: U256``, ...), ``ScheduleAt`` = sum ``Interval(TimeDuration)``,
    ``Time(Timestamp)`` in that order, ``Option`` = sum ``some(T)``, ``none``.
    """
    ty = resolve(ty, typespace)
    if type(ty) is ProductType:
        if len(ty.elements) != 1:
            return None
        (element,) = ty.elements
        found = _SPECIAL_PRODUCTS.get(element.name or "")
        if found is None:
            return None
        kind, inner = found
        payload = resolve(element.algebraic_type, typespace)
        return kind if payload == PrimitiveType(inner) else None
    if type(ty) is SumType:
        if ty.is_option:
            return "option"
        v = ty.variants
        if (
            len(v) == 2
            and v[0].name == "Interval"
            and v[1].name == "Time"
            and special_kind(v[0].algebraic_type, typespace) == "time_duration"
            and special_kind(v[1].algebraic_type, typespace) == "timestamp"
        ):
            return "schedule_at"
    return None


# --- constants and constructors ----------------------------------------------------------------

BOOL: Final = PrimitiveType("Bool")
I8: Final = PrimitiveType("I8")
U8: Final = PrimitiveType("U8")
I16: Final = PrimitiveType("I16")
U16: Final = PrimitiveType("U16")
I32: Final = PrimitiveType("I32")
U32: Final = PrimitiveType("U32")
I64: Final = PrimitiveType("I64")
U64: Final = PrimitiveType("U64")
I128: Final = PrimitiveType("I128")
U128: Final = PrimitiveType("U128")
I256: Final = PrimitiveType("I256")
U256: Final = PrimitiveType("U256")
F32: Final = PrimitiveType("F32")
F64: Final = PrimitiveType("F64")
STRING: Final = PrimitiveType("String")
BYTES: Final = ArrayType(U8)
UNIT: Final = ProductType(())

_CONSTANT_NAMES: Final = {name: name.upper() for name in PRIMITIVE_NAMES}

IDENTITY: Final = ProductType((ProductElement(IDENTITY_TAG, U256),))
CONNECTION_ID: Final = ProductType((ProductElement(CONNECTION_ID_TAG, U128),))
TIMESTAMP: Final = ProductType((ProductElement(TIMESTAMP_TAG, I64),))
TIME_DURATION: Final = ProductType((ProductElement(TIME_DURATION_TAG, I64),))
UUID: Final = ProductType((ProductElement(UUID_TAG, U128),))
SCHEDULE_AT: Final = SumType((SumVariant("Interval", TIME_DURATION), SumVariant("Time", TIMESTAMP)))


def array(elem: AlgebraicType) -> ArrayType:
    """``Array<elem>`` (``array(U8)`` is the same as ``BYTES``)."""
    return ArrayType(_check_type(elem, "array element"))


def option(payload: AlgebraicType) -> SumType:
    """``Option<payload>``: the sum ``some(payload) | none``."""
    return SumType((SumVariant("some", _check_type(payload, "option payload")), _NONE))


def result(ok: AlgebraicType, err: AlgebraicType) -> SumType:
    """``Result<ok, err>``: the sum ``ok(ok) | err(err)``."""
    return SumType(
        (SumVariant("ok", _check_type(ok, "ok")), SumVariant("err", _check_type(err, "err")))
    )


def product(*fields: Any) -> ProductType:
    """A product from ``("name", type)`` pairs (a name may be ``None``), or from one list of
    them: ``product(("id", U64), ("name", STRING))`` == ``product([("id", U64), ...])``."""
    pairs = _pairs(fields, "product")
    return ProductType(ProductElement(name, ty) for name, ty in pairs)


def sum(*variants: Any) -> SumType:
    """A sum from ``("Name", type)`` pairs, or a bare ``"Name"`` for a unit variant:
    ``sum("Red", "Green", ("Rgb", U32))``."""
    pairs = _pairs(
        tuple((v, UNIT) if isinstance(v, str) else v for v in _flatten_one(variants)), "sum"
    )
    return SumType(SumVariant(name, ty) for name, ty in pairs)


_NONE: Final = SumVariant("none", UNIT)


def _flatten_one(items: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(items) == 1 and isinstance(items[0], list):
        return tuple(items[0])
    return items


def _pairs(items: tuple[Any, ...], what: str) -> list[tuple[str | None, AlgebraicType]]:
    pairs = []
    for i, item in enumerate(_flatten_one(items)):
        if not (isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2):
            raise TypeError(f"{what}: item {i} must be a (name, type) pair, got {item!r}")
        name, ty = item
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{what}: item {i} name must be a str or None, got {name!r}")
        pairs.append((name, _check_type(ty, f"{what} item {i}")))
    return pairs


def _check_type(ty: object, what: str) -> AlgebraicType:
    if not isinstance(ty, AlgebraicType):
        raise TypeError(f"{what}: expected an AlgebraicType, got {type(ty).__name__} {ty!r}")
    return ty


# --- SATS-JSON of types ------------------------------------------------------------------------

_PRIMITIVES_BY_NAME: Final = {name: PrimitiveType(name) for name in PRIMITIVE_NAMES}


def _name_json(name: str | None) -> Any:
    return {"none": []} if name is None else {"some": name}


def _show(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_from_json(obj: Any, path: str, depth: int = 1) -> AlgebraicType:
    if depth > MAX_DEPTH:
        raise DecodeError(f"{path}: the type nests deeper than {MAX_DEPTH} levels (sats.MAX_DEPTH)")
    if not isinstance(obj, Mapping) or len(obj) != 1:
        raise DecodeError(
            f'{path}: expected a one-key object such as {{"U32": []}}, got {_show(obj)}'
        )
    ((kind, body),) = obj.items()
    primitive = _PRIMITIVES_BY_NAME.get(kind)
    if primitive is not None:
        return primitive
    if kind == "Array":
        return ArrayType(_type_from_json(body, f"{path}.Array", depth + 1))
    if kind == "Ref":
        if type(body) is not int or body < 0:
            raise DecodeError(f"{path}.Ref: expected a non-negative int, got {_show(body)}")
        return RefType(body)
    if kind == "Product":
        items = _members(body, "elements", f"{path}.Product")
        return ProductType(
            ProductElement(*_member(m, f"{path}.Product.elements[{i}]", depth))
            for i, m in enumerate(items)
        )
    if kind == "Sum":
        items = _members(body, "variants", f"{path}.Sum")
        return SumType(
            SumVariant(*_member(m, f"{path}.Sum.variants[{i}]", depth)) for i, m in enumerate(items)
        )
    raise DecodeError(f"{path}: unknown algebraic type kind {kind!r}")


def _members(body: Any, key: str, path: str) -> Iterable[Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get(key), list):
        raise DecodeError(f'{path}: expected {{"{key}": [...]}}, got {_show(body)}')
    members: list[Any] = body[key]
    return members


def _member(obj: Any, path: str, depth: int) -> tuple[str | None, AlgebraicType]:
    if not isinstance(obj, Mapping) or "algebraic_type" not in obj:
        raise DecodeError(
            f'{path}: expected {{"name": ..., "algebraic_type": ...}}, got {_show(obj)}'
        )
    return _name_from_json(obj.get("name"), f"{path}.name"), _type_from_json(
        obj["algebraic_type"], f"{path}.algebraic_type", depth + 1
    )


def _name_from_json(obj: Any, path: str) -> str | None:
    # The schema writes Option<String> as {"some": "x"} / {"none": []}; accept bare forms too.
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Mapping) and len(obj) == 1:
        ((tag, value),) = obj.items()
        if tag == "some" and isinstance(value, str):
            return value
        if tag == "none":
            return None
    raise DecodeError(f'{path}: expected {{"some": "<name>"}} or {{"none": []}}, got {_show(obj)}')


# --- human-readable type names (used in error messages) ---------------------------------------


def describe(ty: AlgebraicType) -> str:
    """A short readable spelling: ``u32``, ``String``, ``Array<u8>``, ``Option<String>``,
    ``Identity``, ``(x: f32, y: f32)``, ``Red | Green | Rgb(u32)``, ``Ref(3)``."""
    kind = special_kind(ty) if type(ty) is not RefType else None
    if kind == "option":
        assert type(ty) is SumType
        return f"Option<{describe(ty.variants[0].algebraic_type)}>"
    if kind is not None:
        return _SPECIAL_DISPLAY[kind]
    if type(ty) is PrimitiveType:
        return ty.name if ty.name in ("Bool", "String") else ty.name.lower()
    if type(ty) is ArrayType:
        return f"Array<{describe(ty.elem)}>"
    if type(ty) is RefType:
        return f"Ref({ty.index})"
    if type(ty) is ProductType:
        fields = ", ".join(
            describe(e.algebraic_type)
            if e.name is None
            else f"{e.name}: {describe(e.algebraic_type)}"
            for e in ty.elements
        )
        return f"({fields})"
    if type(ty) is SumType:
        return " | ".join(
            f"{v.name or '#' + str(i)}"
            + ("" if v.algebraic_type == UNIT else f"({describe(v.algebraic_type)})")
            for i, v in enumerate(ty.variants)
        )
    return repr(ty)


_SPECIAL_DISPLAY: Final = {
    "identity": "Identity",
    "connection_id": "ConnectionId",
    "timestamp": "Timestamp",
    "time_duration": "TimeDuration",
    "uuid": "Uuid",
    "schedule_at": "ScheduleAt",
}
