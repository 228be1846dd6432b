"""Finding Node and the official TypeScript SDK for the conformance tests.

Without them the tests skip, except when ``CI`` is set: there they fail, because CI must run
them. Set-up: ``npm ci --prefix tests/conformance`` (nox does it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

CONFORMANCE_DIR = Path(__file__).parent / "conformance"
SDK_PACKAGE = CONFORMANCE_DIR / "node_modules" / "spacetimedb" / "package.json"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under ``CI``, saying why the SDK tests cannot run."""
    reason = f"TypeScript SDK conformance cannot run: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, and CI must run the conformance tests)")
    pytest.skip(reason)


def find_node() -> str:
    """The ``node`` executable, once the SDK is installed; otherwise skip (fail under CI)."""
    node = shutil.which("node")
    if node is None:
        unavailable("`node` is not on PATH (Node 20+ is needed)")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < 20:
        unavailable(f"Node {version} is too old or unknown; the SDK needs Node 20+")
    if not SDK_PACKAGE.exists():
        unavailable("the SDK is not installed; run `npm ci --prefix tests/conformance`")
    return node
