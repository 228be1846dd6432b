"""The local server's limits: every input it accepts is bounded, like a real server's.

=========================  ======================  ============================================
limit                      default                 as in SpacetimeDB
=========================  ======================  ============================================
``max_body_bytes``         2 MiB                   axum's ``DefaultBodyLimit`` on ``/call`` and
                                                   ``/sql`` (only publishing disables it:
                                                   ``crates/standalone/src/subcommands/start.rs``)
``max_json_depth``         128                     serde_json's recursion limit
``max_outbox_messages``    16384                   ``CLIENT_CHANNEL_CAPACITY``
                                                   (``crates/core/src/client/client_connection.rs``)
``close_timeout``          1 s                     the close handshake timeout (250 ms there)
=========================  ======================  ============================================

A body over ``max_body_bytes`` is answered 413 without being read further; JSON nested deeper
than ``max_json_depth`` is a 400. A WebSocket client with ``max_outbox_messages`` messages
waiting (it reads too slowly, or not at all) is disconnected with close code 1013 and a reason;
other clients are not affected.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ..._errors import HttpStatusError
from ._subscriptions import DEFAULT_OUTBOX_MESSAGES

__all__ = ["ServerLimits", "parse_json_body"]


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"ServerLimits.{attribute.name} must be a positive number, got {value!r}")


@attrs.frozen
class ServerLimits:
    """Bounds on what one request or one client may make the local server hold."""

    max_body_bytes: int = attrs.field(default=2 * 1024 * 1024, validator=_positive)
    max_json_depth: int = attrs.field(default=128, validator=_positive)
    max_outbox_messages: int = attrs.field(default=DEFAULT_OUTBOX_MESSAGES, validator=_positive)
    close_timeout: float = attrs.field(default=1.0, validator=_positive)


def _too_deep(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests arrays and objects deeper than ``limit`` (an iterative walk,
    linear in the size of ``value``)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def parse_json_body(data: bytes, limits: ServerLimits, what: str) -> Any:
    """``data`` as JSON, or :class:`HttpStatusError` 400 saying why it is not acceptable."""
    if not data.strip():
        raise HttpStatusError(400, f"{what}: the body is empty; send JSON")
    too_deep = HttpStatusError(
        400, f"{what}: JSON nested deeper than {limits.max_json_depth} levels"
    )
    try:
        value = json.loads(data)
    except RecursionError:  # deeper than Python's own limit: certainly too deep
        raise too_deep from None
    except ValueError as exc:
        raise HttpStatusError(400, f"{what}: the body is not JSON: {exc}") from None
    brackets = data.count(b"[") + data.count(b"{")  # fewer than the limit: cannot be too deep
    if brackets > limits.max_json_depth and _too_deep(value, limits.max_json_depth):
        raise too_deep
    return value
