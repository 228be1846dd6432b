"""What the encoders accept besides the canonical Python value of each SATS type.

Shared by the BSATN and SATS-JSON compilers so both accept exactly the same inputs. These are
the slow, careful paths: compiled codecs try the canonical value first (``type(v) is dict``,
``type(v) is Timestamp``, ...) and only call in here for the other accepted forms and to word
the error when a value does not fit.
"""

from __future__ import annotations

import datetime as _dt
import uuid as _uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._errors import SpacetimeSchedError
from .._identity import ConnectionId, Identity
from .._time import ScheduleAt, ScheduleAtInterval, ScheduleAtTime, TimeDuration, Timestamp
from ._fail import Fail, show
from ._values import Some, SumValue

#: (min, max) of every integer primitive.
INT_RANGES: Final = {
    "I8": (-(2**7), 2**7 - 1),
    "U8": (0, 2**8 - 1),
    "I16": (-(2**15), 2**15 - 1),
    "U16": (0, 2**16 - 1),
    "I32": (-(2**31), 2**31 - 1),
    "U32": (0, 2**32 - 1),
    "I64": (-(2**63), 2**63 - 1),
    "U64": (0, 2**64 - 1),
    "I128": (-(2**127), 2**127 - 1),
    "U128": (0, 2**128 - 1),
    "I256": (-(2**255), 2**255 - 1),
    "U256": (0, 2**256 - 1),
}


def check_int(kind: str, value: Any) -> int:
    """``value`` as a plain int in the range of ``kind`` (``"U32"``, ...), else :class:`Fail`."""
    lo, hi = INT_RANGES[kind]
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Fail(f"expected {kind.lower()} (an int), got {show(value)}")
        value = int(value)
    if not lo <= value <= hi:
        raise Fail(f"expected {kind.lower()} in {lo}..{hi}, got {value}")
    checked: int = value
    return checked


def check_float(kind: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Fail(f"expected {kind.lower()} (a float or int), got {show(value)}")
    try:
        return float(value)
    except OverflowError:
        raise Fail(f"expected {kind.lower()}, got an int too large for a float: {value}") from None


def check_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise Fail(f"expected Bool (True or False), got {show(value)}")
    return value


def check_str(value: Any) -> str:
    if type(value) is not str:
        if not isinstance(value, str):
            raise Fail(f"expected String (a str), got {show(value)}")
        value = str(value)
    checked: str = value
    return checked


def to_bytes(value: Any) -> bytes:
    """bytes, bytearray, memoryview, or a sequence of ints 0..255."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, Sequence) and not isinstance(value, str):
        for i, item in enumerate(value):
            try:
                check_int("U8", item)
            except Fail as fail:
                fail.segments.append(f"[{i}]")
                raise
        return bytes(value)
    raise Fail(f"expected bytes (bytes, bytearray or memoryview), got {show(value)}")


def product_values(value: Any, names: tuple[str | None, ...]) -> Sequence[Any]:
    """The field values of a product in declaration order: from a mapping by name (all fields
    named), or a tuple/list by position; ``None`` and empty containers are the unit value."""
    n = len(names)
    if n == 0:
        if value is None or (isinstance(value, (tuple, list, Mapping)) and len(value) == 0):
            return ()
        raise Fail(f"expected the unit value (), got {show(value)}")
    if isinstance(value, Mapping):
        if None in names:
            raise Fail(
                f"this product has unnamed fields; give a tuple of {n} values, not a mapping"
            )
        missing = [name for name in names if name not in value]
        if missing:
            raise Fail(f"missing field {missing[0]!r} (fields: {', '.join(map(str, names))})")
        if len(value) != n:
            extra = next(key for key in value if key not in names)
            raise Fail(f"unknown field {extra!r} (fields: {', '.join(map(str, names))})")
        return [value[name] for name in names]
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise Fail(f"expected {n} fields, got a {type(value).__name__} of {len(value)}")
        return value
    what = "a mapping by field name or a tuple" if None not in names else "a tuple"
    raise Fail(f"expected {what} of {n} fields, got {show(value)}")


def sum_parts(
    value: Any, names: tuple[str | None, ...], tags: Mapping[str, int], unit: tuple[bool, ...]
) -> tuple[int, Any]:
    """``(tag, payload)`` of a sum value given as ``SumValue``, ``{"Name": payload}``,
    ``(tag_or_name, payload)`` or a bare variant name (unit variants only)."""
    if type(value) is SumValue:
        tag = value.tag
        if type(tag) is not int or not 0 <= tag < len(names):
            raise Fail(f"SumValue tag {tag!r} is not a variant index 0..{len(names) - 1}")
        if value.name is not None and value.name != names[tag]:
            raise Fail(
                f"SumValue tag {tag} is variant {names[tag]!r}, but its name is {value.name!r}"
            )
        return tag, value.value
    if isinstance(value, str):
        tag = variant_tag(value, tags)
        if not unit[tag]:
            raise Fail(f"variant {value!r} has a payload; give {{{value!r}: payload}}")
        return tag, ()
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise Fail(f"expected a one-key mapping {{'Variant': payload}}, got {show(value)}")
        ((key, payload),) = value.items()
        return variant_tag(key, tags), payload
    if isinstance(value, (tuple, list)) and len(value) == 2:
        key, payload = value
        if type(key) is int:
            if not 0 <= key < len(names):
                raise Fail(f"unknown sum tag {key} (variants: {variant_list(names)})")
            return key, payload
        return variant_tag(key, tags), payload
    raise Fail(
        "expected a sum value: SumValue, {'Variant': payload}, (tag_or_name, payload) or a "
        f"unit variant name; got {show(value)}"
    )


def variant_tag(name: Any, tags: Mapping[str, int]) -> int:
    tag = tags.get(name) if isinstance(name, str) else None
    if tag is None:
        raise Fail(f"unknown variant {name!r} (variants: {', '.join(tags)})")
    return tag


def variant_list(names: tuple[str | None, ...]) -> str:
    return ", ".join(name if name is not None else f"#{i}" for i, name in enumerate(names))


def option_payload(value: Any) -> tuple[bool, Any]:
    """``(is_some, payload)`` of an Option value: ``None``, ``Some(x)`` or a plain value (which
    means ``some(value)``; a ``SumValue`` is a payload too, since the payload may be a sum)."""
    if value is None:
        return False, None
    if type(value) is Some:
        return True, value.value
    return True, value


def _wrap(exc: Exception) -> Fail:
    fail = Fail(str(exc))
    fail.__cause__ = exc
    return fail


def timestamp_micros(value: Any) -> int:
    if type(value) is Timestamp:
        return value.micros_since_epoch
    if isinstance(value, _dt.datetime):
        try:
            return Timestamp.from_datetime(value).micros_since_epoch
        except (SpacetimeSchedError, TypeError, ValueError, OverflowError) as exc:
            raise _wrap(exc) from None
    raise Fail(f"expected Timestamp (or a datetime), got {show(value)}")


def duration_micros(value: Any) -> int:
    if type(value) is TimeDuration:
        return value.micros
    if isinstance(value, _dt.timedelta):
        try:
            return TimeDuration.from_timedelta(value).micros
        except (SpacetimeSchedError, TypeError, ValueError, OverflowError) as exc:
            raise _wrap(exc) from None
    raise Fail(f"expected TimeDuration (or a timedelta), got {show(value)}")


def schedule_at_parts(value: Any) -> tuple[int, int]:
    """``(tag, micros)``: tag 0 = Interval, 1 = Time."""
    if type(value) is ScheduleAtInterval:
        return 0, value.value.micros
    if type(value) is ScheduleAtTime:
        return 1, value.value.micros_since_epoch
    if type(value) is Timestamp or isinstance(value, _dt.datetime):
        return 1, timestamp_micros(value)
    if type(value) is TimeDuration or isinstance(value, _dt.timedelta):
        return 0, duration_micros(value)
    if isinstance(value, ScheduleAt):  # a subclass we do not know; trust its tag
        return value.tag, schedule_at_parts(value.value)[1]  # type: ignore[attr-defined]
    raise Fail(
        "expected ScheduleAt (ScheduleAt.Interval/ScheduleAt.Time, a Timestamp or "
        f"datetime, a TimeDuration or timedelta), got {show(value)}"
    )


def identity_int(value: Any) -> int:
    if type(value) is Identity:
        return value.value
    if isinstance(value, str):
        try:
            return Identity.from_hex(value).value
        except (TypeError, ValueError) as exc:
            raise _wrap(exc) from None
    if isinstance(value, int) and not isinstance(value, bool):
        return check_int("U256", value)
    raise Fail(f"expected Identity (or an int, or 64 hex digits), got {show(value)}")


def connection_id_int(value: Any) -> int:
    if type(value) is ConnectionId:
        return value.value
    if isinstance(value, str):
        try:
            return ConnectionId.from_hex(value).value
        except (TypeError, ValueError) as exc:
            raise _wrap(exc) from None
    if isinstance(value, int) and not isinstance(value, bool):
        return check_int("U128", value)
    raise Fail(f"expected ConnectionId (or an int, or 32 hex digits), got {show(value)}")


def uuid_int(value: Any) -> int:
    if isinstance(value, _uuid.UUID):
        return value.int
    if isinstance(value, str):
        try:
            return _uuid.UUID(value).int
        except ValueError as exc:
            raise _wrap(exc) from None
    if isinstance(value, int) and not isinstance(value, bool):
        return check_int("U128", value)
    raise Fail(f"expected uuid.UUID (or an int), got {show(value)}")
