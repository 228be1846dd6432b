"""A token saved to a file, so the next connection comes back as the same identity.

The file holds ``{"identity": "<hex>", "token": "<jwt>"}`` and is readable by its owner only
(mode 0600). It is written atomically: a temporary file next to it is filled, flushed to disk
and renamed over the old one, so a crash never leaves half a token behind. File I/O runs in a
worker thread (:func:`anyio.to_thread.run_sync`) and never blocks the event loop.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import anyio
import anyio.to_thread

from .._errors import ConfigurationError

__all__ = ["CredentialsFile"]


class CredentialsFile:
    """Load and save the token of one identity at ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"CredentialsFile({str(self.path)!r})"

    async def load(self) -> str | None:
        """The saved token, or ``None`` when there is no file yet."""
        apath = anyio.Path(self.path)
        try:
            text = await apath.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return _parse(text, self.path)

    async def save(self, identity_hex: str, token: str) -> None:
        """Atomically replace the file with this identity's token (mode 0600)."""
        data = json.dumps({"identity": identity_hex, "token": token}) + "\n"
        await anyio.to_thread.run_sync(_write_private_atomically, self.path, data)


def _parse(text: str, path: Path) -> str:
    stripped = text.strip()
    try:
        token = json.loads(stripped)["token"] if stripped.startswith("{") else stripped
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"credentials file {str(path)!r}: expected JSON with a 'token' field"
        ) from None
    if not isinstance(token, str) or not token:
        raise ConfigurationError(f"credentials file {str(path)!r}: the token is empty")
    return token


def _write_private_atomically(path: Path, data: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL + mode 0600 at creation: the token is never readable by others, not even briefly.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
