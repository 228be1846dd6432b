"""Running user callbacks that may be plain functions or coroutine functions.

Every hook of the library (scheduler result and error callbacks, row callbacks, lifecycle hooks
of the local server's modules) accepts either kind. They all go through :func:`call_callback`, so
a callback behaves the same wherever it is registered.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["call_callback", "call_callback_logged", "call_callbacks_logged"]


async def call_callback(callback: Callable[..., Any], *args: Any) -> Any:
    """Call ``callback(*args)``; if it returns an awaitable, await it. Returns its result.

    Exceptions propagate: the caller decides what a failing callback means.
    """
    result = callback(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def call_callback_logged(
    callback: Callable[..., Any], *args: Any, logger: logging.Logger, what: str
) -> None:
    """Call a sync or async callback and log, never raise, an exception it raises.

    ``what`` completes the log message ("callback %r raised for <what>"), e.g. ``"schedule 'x'"``.
    Cancellation is not an :class:`Exception` and always propagates.
    """
    try:
        await call_callback(callback, *args)
    except Exception:
        logger.exception("callback %r raised for %s (ignored)", callback, what)


async def call_callbacks_logged(
    callbacks: Sequence[Callable[..., Any]],
    calls: Iterable[tuple[Any, ...]],
    *,
    logger: logging.Logger,
    what: str,
) -> None:
    """For each argument tuple in ``calls``, call every callback with it, in order, as
    :func:`call_callback_logged` would: sync or async, an exception logged, never raised.

    The batch form for hot paths (the client cache calls row callbacks for thousands of rows):
    a plain function costs one call, not two coroutines.
    """
    for args in calls:
        for callback in callbacks:
            try:
                result = callback(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("callback %r raised for %s (ignored)", callback, what)
