"""How codec errors get their path without slowing the success path down.

Compiled encoders and decoders never build path strings while they work. When something fails,
the innermost part raises :class:`Fail` (or lets a ``struct.error``/``UnicodeDecodeError``
escape), and each enclosing product, array or sum catches it, appends its own path segment
(``.score``, ``[2]``, ``.Some``) and re-raises. The codec entry point then turns the
:class:`Fail` into the public :class:`~spacetime_sched.sats.EncodeError` or
:class:`~spacetime_sched.sats.DecodeError` with a message like
``elements[2].score: expected u32 in 0..4294967295, got -1``.
"""

from __future__ import annotations

import struct
from typing import Any

from .._errors import DecodeError, EncodeError

__all__ = ["Fail", "decode_error", "encode_error", "fail_at", "show", "with_segment"]


class Fail(Exception):
    """Internal: one codec failure, collecting path segments innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []


def show(value: Any) -> str:
    """``type value`` for messages, with long reprs cut short."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def fail_at(exc: BaseException, data: Any = None, offset: int | None = None) -> Fail:
    """``exc`` as a :class:`Fail`; a decoder failure that is not one yet becomes one here,
    where the offset of the part that failed is still known."""
    if isinstance(exc, Fail):
        return exc
    if isinstance(exc, (struct.error, IndexError)) and offset is not None:
        size = len(data) if data is not None else 0
        fail = Fail(
            f"unexpected end of input at byte {offset} (the input has {size} bytes)"
            if offset <= size
            else f"unexpected end of input (the input has {size} bytes)"
        )
    elif isinstance(exc, UnicodeDecodeError):
        where = f" at byte {offset + exc.start}" if offset is not None else ""
        fail = Fail(f"invalid UTF-8 in String{where}: {exc.reason}")
    else:
        fail = Fail(f"{type(exc).__name__}: {exc}")
    fail.__cause__ = exc
    return fail


def with_segment(
    exc: BaseException, segment: str, data: Any = None, offset: int | None = None
) -> Fail:
    """Add ``segment`` (``.name``, ``[i]``) to the path of ``exc``, converting it if needed."""
    fail = fail_at(exc, data, offset)
    fail.segments.append(segment)
    return fail


def _render(fail: Fail, label: str | None) -> str:
    path = "".join(reversed(fail.segments))
    if label:
        path = label + path
    elif path.startswith("."):
        path = path[1:]
    return f"{path}: {fail.message}" if path else fail.message


def encode_error(exc: BaseException, label: str | None) -> EncodeError:
    fail = fail_at(exc)
    error = EncodeError(_render(fail, label))
    error.__cause__ = fail.__cause__
    return error


def decode_error(exc: BaseException, label: str | None, data: Any, offset: int) -> DecodeError:
    fail = fail_at(exc, data, offset)
    error = DecodeError(_render(fail, label))
    error.__cause__ = fail.__cause__
    return error
