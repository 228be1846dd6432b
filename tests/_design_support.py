"""The harness that runs the design document's snippets (tests/test_design_document.py).

The document (``tests/design/design-document.md``, a verbatim copy) is the API users copy. Its
snippets run **as written**, with exactly these changes, and nothing else:

Substitutions in the snippet text (:data:`SUBSTITUTIONS`):

1. ``spacetimedb_sdk`` -> ``spacetime_sched``: the document's package name is this project's.
2. ``"ws://localhost:3000"`` -> the LocalServer's own ``ws://127.0.0.1:<port>``: the tests start a
   server on a free port instead of assuming one on 3000. (The database needs no substitution:
   the server serves :func:`design_module` under the document's own name, ``game_server``.)

What the harness supplies around the text:

3. The imports the document leaves out (:func:`prelude`): every public name of
   ``spacetime_sched``, ``time``, and ``datetime``/``timedelta``/``timezone`` from ``datetime``.
   Snippets that do import (``from spacetimedb_sdk import ...``) still run their own import.
4. Names a snippet uses but the document never defines (``duration1``, ``future_timestamp``,
   ``client``, ...): each test passes them as ``givens``, named and explained there.
5. Top-level ``await`` (the document's ``await scheduler.start()``) is compiled with
   ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and awaited in the test's own task, on asyncio or trio.
6. Three blocks are outlines, not code (the two "Key Classes" listings of ``- name: type`` lines
   and the ``async def call_reducer_async(...)`` signature with no body, a syntax error as
   written). :func:`outline` and :func:`signature_of` read them, and the tests check that the
   names, fields and signature they list exist.
7. The TypeScript parity block holds TypeScript and Python side by side; its Python half
   (after ``// Python``) runs like any other snippet.

Every value a bare expression statement computes (``ScheduleAt.at_time(datetime.now())  #
datetime``) is kept in :attr:`Run.values`, and everything printed in :attr:`Run.output`, so the
tests can check what the document says each line does.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

import spacetime_sched
from spacetime_sched import sats
from spacetime_sched.testing import LocalServer, Module, ReducerContext

DOCUMENT = Path(__file__).resolve().parent / "design" / "design-document.md"

#: The document's database name, served as is.
DATABASE = "game_server"
#: The document's server URI, replaced by the running LocalServer's.
DOCUMENT_URI = '"ws://localhost:3000"'

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{2,4} (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Snippet:
    """One code block of the document: the heading above it, its language and its text."""

    heading: str
    language: str
    code: str


def blocks() -> list[Snippet]:
    """Every fenced block of the document, in order, with the nearest heading above it."""
    text = DOCUMENT.read_text(encoding="utf-8")
    headings = [(m.start(), m[1].strip()) for m in _HEADING.finditer(text)]
    found = []
    for match in _FENCE.finditer(text):
        heading = [h for start, h in headings if start < match.start()][-1]
        found.append(Snippet(heading, match[1], match[2]))
    return found


def python_snippets() -> dict[str, Snippet]:
    """The document's Python, by heading: every ``python`` block, and the Python half of the
    TypeScript parity block (headings are unique among these)."""
    found: dict[str, Snippet] = {}
    for block in blocks():
        if block.language == "python":
            code = block.code
        elif block.language == "typescript" and "// Python" in block.code:
            code = block.code.split("// Python", 1)[1].lstrip("\n")
        else:
            continue
        assert block.heading not in found, f"two Python blocks under {block.heading!r}"
        found[block.heading] = Snippet(block.heading, "python", code)
    return found


def snippet(heading: str) -> str:
    return python_snippets()[heading].code


# --- running a snippet ------------------------------------------------------------------------


SUBSTITUTIONS: tuple[tuple[str, str], ...] = (("spacetimedb_sdk", "spacetime_sched"),)


def prepare(code: str, uri: str | None = None) -> str:
    """The snippet's text with the documented substitutions (1 and 2) applied."""
    for old, new in SUBSTITUTIONS:
        code = code.replace(old, new)
    if DOCUMENT_URI in code:
        assert uri is not None, "this snippet names the server: pass the LocalServer's uri"
        code = code.replace(DOCUMENT_URI, repr(uri.replace("http://", "ws://", 1)))
    return code


def prelude() -> dict[str, Any]:
    """The imports the document's snippets assume (supplied item 3)."""
    import datetime as _dt
    import time

    names = {name: getattr(spacetime_sched, name) for name in spacetime_sched.__all__}
    names.update(time=time, datetime=_dt.datetime, timedelta=_dt.timedelta, timezone=_dt.timezone)
    return names


@dataclass
class Run:
    """What running a snippet left behind."""

    namespace: dict[str, Any]
    output: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.namespace[name]


_VALUES = "__snippet_values__"


def _keep_expression_values(tree: ast.Module) -> ast.Module:
    """Turn each top-level bare expression (other than a call of ``print``) into
    ``__snippet_values__.append(expr)``, so its value can be checked."""
    body: list[ast.stmt] = []
    for statement in tree.body:
        is_print = (
            isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name)
            and statement.value.func.id == "print"
        )
        if isinstance(statement, ast.Expr) and not is_print:
            keep = ast.parse(f"{_VALUES}.append(None)").body[0]
            assert isinstance(keep, ast.Expr)
            assert isinstance(keep.value, ast.Call)
            keep.value.args = [statement.value]
            statement = ast.copy_location(keep, statement)
        body.append(statement)
    tree.body = body
    return ast.fix_missing_locations(tree)


async def run(code: str, givens: dict[str, Any] | None = None, *, uri: str | None = None) -> Run:
    """Run a snippet as written (after :func:`prepare`), in a namespace of :func:`prelude` and
    ``givens``; top-level ``await`` is awaited here."""
    namespace = prelude() | dict(givens or {})
    values: list[Any] = []
    namespace[_VALUES] = values
    tree = _keep_expression_values(ast.parse(prepare(code, uri)))
    compiled = compile(tree, "<design-document>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = eval(compiled, namespace)  # the document's own code, nothing else
        if result is not None:  # a coroutine: the snippet has a top-level await
            await result
    del namespace[_VALUES]
    return Run(namespace, out.getvalue().splitlines(), values)


def split_at(code: str, line_start: str) -> tuple[str, str]:
    """``code`` cut before its first line starting with ``line_start``: (before, from there)."""
    lines = code.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(line_start))
    return "".join(lines[:index]), "".join(lines[index:])


# --- outlines and signatures (supplied item 6) ------------------------------------------------


def outline(code: str) -> dict[str, list[str]]:
    """A "Key Classes" listing as ``{class name: [member lines]}``: ``class X:`` starts a class,
    ``- name: type`` and ``- method()`` lines are its members (comments dropped)."""
    classes: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in code.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("class ") and line.endswith(":"):
            current = classes.setdefault(line[len("class ") : -1], [])
        elif line.startswith("- "):
            current.append(line[2:].strip())
    return classes


def signature_of(code: str, name: str) -> ast.AsyncFunctionDef | ast.FunctionDef:
    """The ``def`` of ``name`` in ``code``, read with an ellipsis standing in for the body the
    document leaves out (it has only a comment there)."""
    start = code.index(f"def {name}(")
    start = code.rfind("\n", 0, start) + 1
    header = code[start:].splitlines()[0].strip()
    tree = ast.parse(header + " ...")
    function = tree.body[0]
    assert isinstance(function, (ast.AsyncFunctionDef, ast.FunctionDef))
    return function


# --- the server ---------------------------------------------------------------------------------

#: The reducers the document's snippets call, with the argument types their calls imply.
REDUCERS: dict[str, list[tuple[str, sats.AlgebraicType]]] = {
    "send_notification": [("user", sats.STRING), ("message", sats.STRING)],
    "cleanup_expired_data": [],
    "daily_backup": [],
    "cleanup": [],
    "heartbeat": [],
    "reminder": [("user", sats.STRING)],
    "cleanup_expired_sessions": [],
    "send_welcome_message": [("user", sats.STRING)],
    "process_analytics": [("options", sats.product(("batch_size", sats.U32)))],
}
#: Not in the document: a reducer that always fails, to show the document's error callback.
FAILING_REDUCER = "flaky_job"


def design_module() -> Module:
    """A module with every reducer the document calls; each records its call in ``call_log``
    (reducer name, arguments as text, the reducer's timestamp)."""
    module = Module(DATABASE)
    module.table(
        "call_log",
        [("id", sats.U64), ("reducer", sats.STRING), ("args", sats.STRING), ("at", sats.TIMESTAMP)],
        primary_key="id",
        auto_inc="id",
        public=True,
    )

    def recorder(name: str) -> Callable[..., None]:
        def record(ctx: ReducerContext, *args: Any) -> None:
            ctx.db.call_log.insert({"reducer": name, "args": repr(args), "at": ctx.timestamp})

        record.__name__ = name
        return record

    for name, params in REDUCERS.items():
        module.reducer(name=name, params=params)(recorder(name))

    @module.reducer(name=FAILING_REDUCER, params=[("reason", sats.STRING)])
    def flaky_job(ctx: ReducerContext, reason: str) -> None:
        raise RuntimeError(reason)

    return module


@asynccontextmanager
async def design_server() -> AsyncIterator[LocalServer]:
    async with LocalServer(design_module(), database=DATABASE) as server:
        yield server


def builder(server: LocalServer, *, auto_start: bool = True) -> Any:
    """The document's builder chain, pointed at ``server`` (the harness's own connections)."""
    return (
        spacetime_sched.ModernSpacetimeDBClient.builder()
        .with_uri(server.ws_uri)
        .with_module_name(DATABASE)
        .with_scheduling(auto_start=auto_start, max_concurrent_executions=5)
    )


def calls(server: LocalServer) -> list[tuple[str, str]]:
    """``(reducer, repr(args))`` of every call the server ran, in order."""
    rows = sorted(server.host.table("call_log").rows(), key=lambda row: row["id"])
    return [(row["reducer"], row["args"]) for row in rows]


async def wait_for_call(server: LocalServer, reducer: str) -> str:
    """Wait (10 s at most) until ``reducer`` has run on the server; its arguments as text."""
    with anyio.fail_after(10):
        while True:
            for name, args in calls(server):
                if name == reducer:
                    return args
            await anyio.sleep(0.01)
