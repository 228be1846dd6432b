"""The SQL the local server understands: ``SELECT * FROM t [WHERE col = literal [AND ...]]``.

That is the shape of subscription queries the SDKs send. Keywords are case-insensitive,
identifiers may be double-quoted, and a column may be qualified (``t.col``, ``SELECT t.* ...``).
Literals: integers, ``'strings'`` (``''`` escapes a quote), ``true``/``false``, ``0x...`` hex
(for Identity and ConnectionId columns; also ``X'...'``), and ``:sender``, the caller's
identity. Anything else is rejected with a :class:`SqlError` that says what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ... import sats
from ..._errors import SqlError
from ..._identity import ConnectionId, Identity
from ..._time import Timestamp
from ._module import Table

__all__ = ["Query", "SqlError", "parse_query", "split_statements", "untyped_json"]


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<hexstr>[xX]'[0-9a-fA-F]*')
      | (?P<hex>0[xX][0-9a-fA-F]+)
      | (?P<number>[+-]?\d+)
      | (?P<param>:[A-Za-z_]\w*)
      | (?P<quoted>"(?:[^"]|"")+")
      | (?P<word>[A-Za-z_]\w*)
      | (?P<symbol><>|!=|<=|>=|[*=.;,()<>])
    )""",
    re.VERBOSE,
)


def _tokens(sql: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = sql.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise SqlError(
                f"unexpected text at offset {position}: {text[position : position + 20]!r}"
            )
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


@attrs.frozen
class _Literal:
    kind: str
    text: str


@attrs.frozen
class Query:
    """A parsed ``SELECT *`` over one table with column equality conditions."""

    sql: str
    table: Table
    conditions: tuple[tuple[str, Any], ...]
    uses_sender: bool

    def matches(self, row: Mapping[str, Any], sender: Identity | None = None) -> bool:
        for column, value in self.conditions:
            if isinstance(value, _Literal):  # :sender
                if row[column] != sender:
                    return False
            elif row[column] != value:
                return False
        return True


class _Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = _tokens(sql)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise SqlError(f"unexpected end of query: {self.sql!r}")
        self.position += 1
        return token

    def keyword(self, word: str) -> None:
        kind, text = self.take()
        if kind != "word" or text.upper() != word:
            raise SqlError(f"expected {word}, got {text!r} in {self.sql!r}")

    def symbol(self, symbol: str) -> None:
        kind, text = self.take()
        if kind != "symbol" or text != symbol:
            raise SqlError(f"expected {symbol!r}, got {text!r} in {self.sql!r}")

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].upper() == word

    def at_symbol(self, symbol: str) -> bool:
        return self.peek() == ("symbol", symbol)

    def identifier(self) -> str:
        kind, text = self.take()
        if kind == "quoted":
            return text[1:-1].replace('""', '"')
        if kind == "word":
            return text
        raise SqlError(f"expected a name, got {text!r} in {self.sql!r}")


def parse_query(sql: str, tables: Mapping[str, Table]) -> Query:
    """Parse one ``SELECT`` against ``tables``; raise :class:`SqlError` when it is not one."""
    parser = _Parser(sql)
    parser.keyword("SELECT")
    qualifier = None
    if not parser.at_symbol("*"):
        qualifier = parser.identifier()
        parser.symbol(".")
    parser.symbol("*")
    parser.keyword("FROM")
    name = parser.identifier()
    table = tables.get(name)
    if table is None:
        raise SqlError(f"no such table: `{name}`. If the table exists, it may be private.")
    alias = name
    if parser.at_keyword("AS"):
        parser.take()
        alias = parser.identifier()
    elif _is_name(parser.peek()) and not parser.at_keyword("WHERE"):
        alias = parser.identifier()
    if qualifier is not None and qualifier not in (name, alias):
        raise SqlError(f"`{qualifier}.*` does not name the table `{name}` in {sql!r}")
    conditions: list[tuple[str, Any]] = []
    uses_sender = False
    if parser.at_keyword("WHERE"):
        parser.take()
        while True:
            column = parser.identifier()
            if parser.at_symbol("."):
                parser.take()
                if column not in (name, alias):
                    raise SqlError(f"`{column}` is not the table `{name}` in {sql!r}")
                column = parser.identifier()
            if column not in table.columns:
                raise SqlError(f"table `{name}` has no column `{column}`")
            parser.symbol("=")
            kind, text = parser.take()
            if kind == "param":
                if text != ":sender":
                    raise SqlError(f"unknown parameter {text} (only :sender exists)")
                uses_sender = True
                conditions.append((column, _Literal(kind, text)))
            else:
                conditions.append((column, _literal(table, column, kind, text)))
            if not parser.at_keyword("AND"):
                break
            parser.take()
    if parser.at_symbol(";"):
        parser.take()
    if parser.peek() is not None:
        raise SqlError(
            f"unsupported SQL {sql!r}: the local test server runs only "
            "SELECT * FROM <table> [WHERE <column> = <literal> [AND ...]]"
        )
    return Query(sql, table, tuple(conditions), uses_sender)


def _is_name(token: tuple[str, str] | None) -> bool:
    return token is not None and token[0] in ("word", "quoted")


def _literal(table: Table, column: str, kind: str, text: str) -> Any:
    ty = table.column_type(column)
    where = f"`{table.name}.{column}` ({sats.describe(ty)})"
    try:
        if kind == "string":
            value: Any = text[1:-1].replace("''", "'")
        elif kind == "number":
            value = int(text)
        elif kind in ("hex", "hexstr"):
            digits = text[2:] if kind == "hex" else text[2:-1]
            if ty == sats.IDENTITY:
                return Identity.from_hex(digits.rjust(64, "0"))
            if ty == sats.CONNECTION_ID:
                return ConnectionId.from_hex(digits.rjust(32, "0"))
            value = int(digits, 16) if kind == "hex" else bytes.fromhex(digits)
        elif kind == "word" and text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            raise SqlError(f"expected a literal to compare with {where}, got {text!r}")
        if ty == sats.IDENTITY and isinstance(value, str):
            return Identity.from_hex(value)
        if ty == sats.TIMESTAMP:
            return Timestamp.parse(value) if isinstance(value, str) else Timestamp(value)
        if isinstance(value, bool) and ty != sats.BOOL:
            raise SqlError(f"{where} is not a bool column")
        codec = sats.compile(ty)
        return codec.decode(codec.encode(value, column))
    except SqlError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise SqlError(f"cannot compare {where} with {text}: {exc}") from None


def split_statements(sql: str) -> list[str]:
    """Split an SQL text on ``;`` outside quotes; empty statements are dropped."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            current.append(char)
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
            current.append(char)
        elif char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
    statements.append("".join(current))
    return [statement.strip() for statement in statements if statement.strip()]


def untyped_json(ty: sats.AlgebraicType, typed: Any, typespace: sats.Typespace | None) -> Any:
    """Typed SATS-JSON (products as objects, sums as ``{"Name": v}``) in the untyped form the
    SQL endpoint writes: products as arrays, sums as ``[tag, payload]``."""
    if typespace is not None:
        ty = typespace.resolve(ty)
    if isinstance(ty, sats.ProductType):
        if isinstance(typed, dict):
            values = [typed[str(element.name)] for element in ty.elements]
        else:
            values = list(typed)
        return [
            untyped_json(element.algebraic_type, value, typespace)
            for element, value in zip(ty.elements, values, strict=True)
        ]
    if isinstance(ty, sats.SumType):
        ((name, payload),) = typed.items()
        for tag, variant in enumerate(ty.variants):
            if variant.name == name or str(tag) == name:
                return [tag, untyped_json(variant.algebraic_type, payload, typespace)]
        raise ValueError(f"variant {name!r} is not in {sats.describe(ty)}")
    if isinstance(ty, sats.ArrayType) and isinstance(typed, list):
        return [untyped_json(ty.elem, item, typespace) for item in typed]
    return typed
