"""Which async library is running us: the one place that asks.

anyio hides the backend almost everywhere; the few places that must know (the virtual clock's
asyncio-only settling, the local server's hypercorn entry point, the demo's banner) ask here
instead of probing the event loop each in its own way.
"""

from __future__ import annotations

import asyncio
from typing import Literal

__all__ = ["Backend", "current_backend"]

Backend = Literal["asyncio", "trio"]


def current_backend() -> Backend:
    """``"asyncio"`` or ``"trio"``: the async library running the calling task.

    Like anyio's ``current_async_library`` but without sniffio: anyio runs only on asyncio and
    trio, so a thread with no running asyncio loop inside async code is trio. Call it from async
    code only; outside any event loop it answers ``"trio"``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "asyncio"
