"""Case conversion as a SpacetimeDB 2.x server applies it to a module's names.

A 2.x module is validated with the default ``CaseConversionPolicy::SnakeCase``
(``crates/schema/src/def/validate/v9.rs``, ``convert`` and ``typespace_case_conversion``;
``crates/schema/src/def/validate/v10.rs`` picks the policy): tables, columns, reducers and
procedures become snake_case, type names PascalCase (``resolve_type_with_case``), and enum
variant names camelCase. The conversion is the ``convert_case`` crate's (0.6,
``Casing::to_case``): a name is split into words at ``_``, ``-`` and spaces (which are dropped),
at a lower-to-upper change (``aA``), between letters and digits (``a1``, ``1a``, ``A1``, ``1A``)
and before the last capital of an acronym (``HTTPServer`` -> ``HTTP`` ``Server``); the words are
then joined in the target case::

    >>> snake_case("FruitBasket"), camel_case("InProgress"), pascal_case("tick_schedule")
    ('fruit_basket', 'inProgress', 'TickSchedule')
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["camel_case", "pascal_case", "snake_case", "words"]

# One word: an acronym run (capitals not followed by a lowercase letter), a capitalised or
# lowercase run, or a run of digits. Anything else (``_``, ``-``, spaces) separates words.
_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_a-zA-Z]+")


def words(name: str) -> list[str]:
    """The words of ``name`` at convert_case's default boundaries."""
    return _WORD.findall(name)


def snake_case(name: str) -> str:
    """``Case::Snake``: lowercase words joined by ``_``."""
    return "_".join(word.lower() for word in words(name))


def camel_case(name: str) -> str:
    """``Case::Camel``: the first word lowercase, the others capitalised, joined."""
    parts = words(name)
    return "".join(
        word.lower() if i == 0 else word[:1].upper() + word[1:].lower()
        for i, word in enumerate(parts)
    )


def pascal_case(name: str) -> str:
    """``Case::Pascal``: every word capitalised, joined."""
    return "".join(word[:1].upper() + word[1:].lower() for word in words(name))
