"""A PostgreSQL database for this test run: found, or started, created, and dropped at the end.

The server is ``SPACETIME_SCHED_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). If it cannot be reached, a throwaway server is
started from the installed binaries (``initdb``/``pg_ctl`` on ``PATH`` or under
``/usr/lib/postgresql/*/bin``) in a temporary directory; if there are none, PostgreSQL tests are
skipped with the reason, except under ``CI=true``, where they fail. Each run creates its own
database (``spacetime_sched_test_<random>``), which :func:`finish` drops; each test uses a fresh
PostgreSQL schema inside it (:func:`fresh_schema`).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

_state: dict[str, Any] = {}


def _reachable(dsn: str) -> str | None:
    """None if ``dsn`` answers ``SELECT 1``, else why not."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def _binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_throwaway(why: str) -> str:
    """Start a server from the installed binaries; its DSN. Raises RuntimeError with reasons."""
    bin_dir = _binaries()
    if bin_dir is None:
        raise RuntimeError(f"no PostgreSQL reachable ({why}) and no pg_ctl/initdb installed")
    directory = Path(tempfile.mkdtemp(prefix="spacetime_sched_pg_"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        if shutil.which("runuser") is None:
            raise RuntimeError(f"no PostgreSQL reachable ({why}); as root, runuser is needed")
        shutil.chown(directory, user="postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = directory / "data", _free_port()
    subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory}"
    # The server's output goes to a log file (-l): a pipe would be held open by the server
    # after pg_ctl returns, and waiting for its end would never finish.
    log = str(directory / "server.log")
    subprocess.run(
        [
            *prefix,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            log,
            "-w",
            "start",
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _state["throwaway"] = (prefix, bin_dir, data, directory)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def server_dsn() -> str:
    """The DSN of a reachable server (skips, or fails under CI=true, if there is none)."""
    if "server" not in _state:
        dsn = os.environ.get("SPACETIME_SCHED_PG_DSN", DEFAULT_DSN)
        why = _reachable(dsn)
        if why is None:
            _state["server"] = dsn
        else:
            try:
                _state["server"] = _start_throwaway(why)
            except (RuntimeError, OSError, subprocess.CalledProcessError, LookupError) as exc:
                _state["server"] = None
                _state["reason"] = f"PostgreSQL tests need a server: {exc}"
    if _state["server"] is None:
        if os.environ.get("CI") == "true":
            pytest.fail(_state["reason"])
        pytest.skip(_state["reason"])
    return str(_state["server"])


def database_dsn() -> str:
    """The DSN of this run's own database (created on first use)."""
    if "database" not in _state:
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        server = server_dsn()
        name = f"spacetime_sched_test_{secrets.token_hex(4)}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        params = conninfo_to_dict(server)
        params["dbname"] = name
        _state["database"] = (name, make_conninfo("", **params))
    return str(_state["database"][1])


def fresh_schema() -> str:
    """A schema name no other test uses."""
    return f"t_{secrets.token_hex(6)}"


def finish() -> None:
    """Drop this run's database and stop a throwaway server (called once, at the end)."""
    if "database" in _state:
        import psycopg
        from psycopg import sql

        name, _ = _state.pop("database")
        with psycopg.connect(_state["server"], autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    if "throwaway" in _state:
        prefix, bin_dir, data, directory = _state.pop("throwaway")
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)
