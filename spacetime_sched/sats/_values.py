"""Python values that have no built-in counterpart: :class:`SumValue` and :class:`Some`."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Some", "SumValue"]


@attrs.frozen(slots=True)
class SumValue:
    """A value of a sum type (other than Option and ScheduleAt, which have their own values).

    ``tag`` is the variant index (the BSATN tag byte), ``name`` the variant name (``None`` for an
    unnamed variant) and ``value`` the payload (``()`` for a unit variant)::

        >>> SumValue(1, "Green", ())
        SumValue(tag=1, name='Green', value=())

    Encoders trust ``tag``; if ``name`` is given it must match the variant at that tag.
    """

    tag: int
    name: str | None
    value: Any = ()


@attrs.frozen(slots=True)
class Some:
    """An explicit ``some(value)`` of an Option.

    A plain Python value already means ``some(value)`` and ``None`` means ``none``; ``Some`` is
    needed only for nested options, where ``Some(None)`` is ``some(none)``. Decoding an
    ``Option<Option<T>>`` gives ``Some(x)`` for ``some(x)`` so that ``some(none)`` survives.
    """

    value: Any
