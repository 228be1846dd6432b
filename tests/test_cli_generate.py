"""``spacetime-sched generate``: typed bindings for a module, used against a LocalServer and
checked by ``mypy --strict`` (which must also catch a wrong argument type to a reducer).

The bindings of the quickstart module and of the module with a column of every type
(tests/_typed_support.py) are generated once per session into a temporary directory and
imported from there; their classes are registered with the row model, so the rows a
connection decodes are instances of the generated classes.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import attrs
import pytest
from _cli_support import start
from _typed_support import make_typed_module, sample_values

from spacetime_sched import (
    ConnectionId,
    Identity,
    ScheduleAt,
    TimeDuration,
    Timestamp,
    __version__,
    sats,
)
from spacetime_sched._cli import EXIT_OK, EXIT_USAGE, main
from spacetime_sched._codegen import generate_bindings
from spacetime_sched.client import DbConnection, Row, register_row_classes, row_dict, schema_digest
from spacetime_sched.client._rows import row_model, type_key
from spacetime_sched.testing import LocalServer, Module, ReducerContext, example_module

BIN = Path(sys.executable).parent


def make_edge_module() -> Module:
    """Names that are not plain identifiers or clash with the generated module's own: a table
    ``from`` with a column ``class``, a unique column ``find`` (the handle's method), a table
    ``row`` (the base class's name) and reducer parameters ``timeout`` and ``self``."""
    module = Module("edge")
    shape = sats.sum(
        ("circle", sats.F64), ("square", sats.product(("side", sats.F64))), ("none", sats.UNIT)
    )
    module.table(
        "from",
        [("class", sats.U32), ("find", sats.STRING), ("my_col", sats.option(shape))],
        primary_key="class",
        unique="find",
        public=True,
    )
    module.table("row", [("id", sats.U8), ("timestamp", sats.TIMESTAMP)], public=True)

    @module.reducer(params=[("timeout", sats.U8), ("self", sats.STRING), ("shape", shape)])
    def do_import(ctx: ReducerContext, timeout: int, self_: str, shape: Any) -> None:
        ctx.db.row.insert({"id": timeout, "timestamp": ctx.timestamp})

    return module


@attrs.frozen
class Generated:
    root: Path
    quickstart: ModuleType
    typed: ModuleType
    edge: ModuleType


def _schema_file(root: Path, name: str, schema: Any) -> Path:
    path = root / f"{name}.json"
    path.write_text(json.dumps(schema.to_json()))
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    root = tmp_path_factory.mktemp("bindings")
    modules = {
        "quickstart_bindings": example_module.make_module(),
        "typed_bindings": make_typed_module(),
        "edge_bindings": make_edge_module(),
    }
    for package, module in modules.items():
        schema_file = _schema_file(root, package, module.schema)
        status = main(["generate", "--schema", str(schema_file), "-o", str(root / package)])
        assert status == EXIT_OK
    sys.path.insert(0, str(root))
    try:
        imported = [importlib.import_module(package) for package in modules]
    finally:
        sys.path.remove(str(root))
    yield Generated(root, *imported)
    # The registration is process-wide: undo it, so other tests see the runtime's classes.
    for package, module in modules.items():
        register_row_classes(schema_digest(module.schema), {})
        del sys.modules[package]


# --- the files ---------------------------------------------------------------------------------


def test_the_package_has_a_header_saying_what_it_came_from(generated: Generated) -> None:
    text = (generated.root / "typed_bindings" / "__init__.py").read_text()
    digest = schema_digest(make_typed_module().schema)
    header = text.split('"""')[1]
    assert f"spacetime-sched {__version__}" in header
    assert f"schema file {generated.root / 'typed_bindings.json'}" in header
    assert digest in header
    assert digest == generated.typed.SCHEMA_SHA256
    assert (generated.root / "typed_bindings" / "py.typed").exists()


def test_generating_twice_gives_identical_bytes(generated: Generated, tmp_path: Path) -> None:
    schema_file = generated.root / "typed_bindings.json"
    again = tmp_path / "typed_bindings"
    assert main(["generate", "--schema", str(schema_file), "-o", str(again)]) == EXIT_OK
    first = (generated.root / "typed_bindings" / "__init__.py").read_bytes()
    assert (again / "__init__.py").read_bytes() == first


def test_the_generated_code_is_formatted_and_lint_clean(generated: Generated) -> None:
    ruff = shutil.which("ruff", path=str(BIN)) or shutil.which("ruff")
    assert ruff is not None, "ruff is a dev dependency: pip install -e '.[dev]'"
    packages = [str(p) for p in generated.root.iterdir() if p.is_dir()]
    assert len(packages) == 3
    # Run where a user's project would be: spacetime_sched installed (third-party for isort).
    done = subprocess.run(
        [ruff, "format", "--isolated", "--check", *packages],
        capture_output=True,
        text=True,
        cwd=generated.root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(
        [ruff, "check", "--isolated", "--select", "E,F,I,UP,B", *packages],
        capture_output=True,
        text=True,
        cwd=generated.root,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_types_enums_and_tables_have_the_declared_shapes(generated: Generated) -> None:
    typed = generated.typed
    assert [f.name for f in attrs.fields(typed.Everything)][:3] == ["id", "flag", "signed_tiny"]
    assert typed.Everything.__annotations__["color"] == "Color"
    assert typed.Everything.__annotations__["maybe_maybe"] == "Some | None"
    assert typed.Everything.__annotations__["path"] == "tuple[Origin, ...]"
    assert typed.Everything.__annotations__["uid"] == "uuid.UUID"
    # An enum: one class per variant (a unit variant has no payload), a union alias of them.
    assert typed.Color == typed.ColorRed | typed.ColorRgb | typed.ColorNamed
    assert [f.name for f in attrs.fields(typed.ColorRed)] == []
    assert typed.ColorRgb(typed.Rgb(1, 2, 3)).value.g == 2
    # Lifecycle and scheduled reducers are not in the facade; the others are, sorted.
    quick = generated.quickstart
    assert not hasattr(quick.Reducers, "init")
    assert not hasattr(quick.Reducers, "tick")
    assert hasattr(quick.Reducers, "add_person")


# --- used against a LocalServer ----------------------------------------------------------------


def typed_values(typed: ModuleType) -> list[Any]:
    """The sample values of every column, as the generated types hold them."""
    values = sample_values()
    by_name = dict(zip([name for name, _, _ in _columns()], values, strict=True))
    by_name.update(
        numbers=(1, 2, 3),
        words=("a", "b"),
        origin=typed.Origin(1, -1),
        path=(typed.Origin(0, 0), typed.Origin(2, 3)),
        color=typed.ColorRgb(typed.Rgb(1, 2, 3)),
        plain_color=typed.ColorRed(),
    )
    return [by_name[name] for name, _, _ in _columns()]


def _columns() -> list[tuple[str, sats.AlgebraicType, Any]]:
    from _typed_support import COLUMNS

    return COLUMNS


async def test_typed_reducers_and_rows_on_the_every_type_module(generated: Generated) -> None:
    typed = generated.typed
    seen: list[Any] = []
    async with (
        LocalServer(make_typed_module(), database="typed") as server,
        DbConnection.builder()
        .with_uri(server.uri)
        .with_database_name("typed")
        .with_connect_timeout(5)
        .build() as conn,
    ):
        bound = typed.bind(conn)
        bound.db.everything.on_insert(seen.append)
        await conn.subscribe("SELECT * FROM everything")
        await bound.reducers.put(*typed_values(typed))
        row = bound.db.everything.find(1)
        # The decoded row IS an instance of the generated class: no conversion, no copy.
        assert type(row) is typed.Everything
        assert seen == [row]
        assert row.color == typed.ColorRgb(typed.Rgb(1, 2, 3))
        assert row.plain_color == typed.ColorRed()
        assert row.origin == typed.Origin(1, -1)
        assert row.path == (typed.Origin(0, 0), typed.Origin(2, 3))
        assert row.uid == uuid.UUID(int=0xABCDEF)
        assert row.who == Identity(0x1234)
        assert row.conn_id == ConnectionId(0x42)
        assert row.when == ScheduleAt.Interval(TimeDuration(60_000_000))
        assert row.maybe_maybe == sats.Some(None)
        # The dict form is still exactly what the codec decodes (enums back to SumValue).
        assert row_dict(row)["color"] == sats.SumValue(1, "rgb", {"r": 1, "g": 2, "b": 3})
        # A generated row goes back into a reducer as it is; unique lookups are typed too.
        await bound.reducers.put_row(
            attrs.evolve(row, id=0, email="c@d", color=typed.ColorNamed("teal"))
        )
        second = bound.db.everything.email.find("c@d")
        assert second is not None
        assert second.color == typed.ColorNamed("teal")
        assert sorted(r.id for r in bound.db.everything) == [1, 2]
        assert bound.db.everything.count() == len(bound.db.everything.rows()) == 2
        updates: list[tuple[Any, Any]] = []
        bound.db.everything.on_update(lambda old, new: updates.append((old.email, new.email)))
        await bound.reducers.rename(1, "z@z")
        assert updates == [("a@b", "z@z")]
        assert bound.conn is conn
        assert await bound.schema_matches()
        assert not await generated.quickstart.bind(conn).schema_matches()  # another module's


async def test_typed_reducers_and_rows_on_the_quickstart_module(generated: Generated) -> None:
    quick = generated.quickstart
    async with (
        LocalServer(example_module.make_module(), database="quickstart") as server,
        DbConnection.builder()
        .with_uri(server.uri)
        .with_database_name("quickstart")
        .with_connect_timeout(5)
        .build() as conn,
    ):
        bound = quick.bind(conn)
        await conn.subscribe(["SELECT * FROM person", "SELECT * FROM event"])
        result = await bound.reducers.add_person("Ada", timeout=10)
        assert result.reducer == "add_person"
        (person,) = bound.db.person
        assert isinstance(person, quick.Person)
        assert person.name == "Ada"
        assert isinstance(person.created_at, Timestamp)
        at = Timestamp(1_700_000_000_000_000)
        await bound.reducers.record_event("launch", at, ScheduleAt.Time(at))
        (event,) = bound.db.event.rows()
        assert isinstance(event, quick.Event)
        assert event.at == at
        assert bound.db.person.id.find(person.id) is person
        assert await bound.schema_matches()


async def test_generate_from_a_database_matches_the_schema_file(tmp_path: Path) -> None:
    module = example_module.make_module()
    async with LocalServer(module, database="quickstart") as server:
        uri = server.uri
        argv = ["generate", "--uri", uri, "--database", "quickstart"]
        async with start([*argv, "-o", str(tmp_path / "qs")]) as command:
            status = await command.finish(seconds=60)
    assert status == EXIT_OK, command.stderr.decode()
    assert b"wrote " in command.stdout
    expected = generate_bindings(module.schema, source=f"database quickstart at {uri}")
    assert (tmp_path / "qs" / "__init__.py").read_text() == expected


# --- mypy --strict -----------------------------------------------------------------------------

GOOD = """\
from __future__ import annotations

from edge_bindings import From, MyColSquare, Row2, Square
from edge_bindings import bind as bind_edge
from quickstart_bindings import Person, bind
from typed_bindings import Color, ColorNamed, ColorRed, ColorRgb, Everything
from typed_bindings import bind as bind_typed

from spacetime_sched import ScheduleAt, Timestamp
from spacetime_sched.client import DbConnection, ReducerCallResult


def describe(color: Color) -> str:
    match color:  # exhaustive: mypy --strict reports a missing return otherwise
        case ColorRed():
            return "red"
        case ColorRgb(value=rgb):
            return f"#{rgb.r:02x}{rgb.g:02x}{rgb.b:02x}"
        case ColorNamed(value=name):
            return name


async def use(conn: DbConnection, other: DbConnection) -> list[str]:
    quick = bind(conn)
    result: ReducerCallResult = await quick.reducers.add_person("Ada", timeout=5.0)
    at = Timestamp(0)
    await quick.reducers.record_event("launch", at, ScheduleAt.Time(at))
    person: Person | None = quick.db.person.find(1)
    names = [p.name for p in quick.db.person]
    quick.db.person.on_insert(lambda p: names.append(p.name))
    quick.db.person.on_update(lambda old, new: names.append(old.name + new.name))
    typed = bind_typed(other)
    row: Everything | None = typed.db.everything.email.find("a@b")
    if row is not None:
        names.append(describe(row.color))
        names.append(str(row.origin.x + row.path[0].y))
        await typed.reducers.put_row(row)
    if person is not None and result.reducer == "add_person":
        names.append(str(person.created_at.micros_since_epoch))
    return names


async def edge(conn: DbConnection) -> Row2 | None:
    bound = bind_edge(conn)
    await bound.reducers.do_import(1, "me", MyColSquare(Square(2.0)), timeout=None)
    found: From | None = bound.db.from_.class_.find(3)
    if found is not None and found.my_col is not None:
        print(found.class_, found.find)
    return next(iter(bound.db.row), None)
"""

BAD = """\
from quickstart_bindings import bind

from spacetime_sched.client import DbConnection


async def use(conn: DbConnection) -> None:
    await bind(conn).reducers.add_person(42)
"""


def test_mypy_strict_accepts_a_program_using_the_bindings_and_catches_a_wrong_argument(
    generated: Generated, tmp_path: Path
) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "good.py",
            "bad.py",  # the bindings they import are checked as strictly (followed imports)
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"MYPYPATH": str(generated.root), "PATH": str(BIN)},
        timeout=300,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stdout + done.stderr
    (error,) = errors
    assert error.startswith('bad.py:7: error: Argument 1 to "add_person" of "Reducers"')
    assert '"int"; expected "str"' in error
    assert "[arg-type]" in error


# --- usage errors ------------------------------------------------------------------------------


def test_usage_errors_exit_2_and_say_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--uri", "http://x", "-o", str(tmp_path / "a")]) == EXIT_USAGE
    assert "--uri needs --database" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["generate", "--schema", str(bad), "-o", str(tmp_path / "a")]) == EXIT_USAGE
    assert "not valid JSON" in capsys.readouterr().err
    missing = str(tmp_path / "missing.json")
    assert main(["generate", "--schema", missing, "-o", str(tmp_path / "a")]) == EXIT_USAGE
    assert "missing.json" in capsys.readouterr().err
    argv = ["generate", "--schema", str(bad), "-o", str(tmp_path / "not-a-name")]
    assert main(argv) == EXIT_USAGE
    assert "must be a Python identifier" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["generate", "-o", str(tmp_path / "a")])  # neither --uri nor --schema
    assert exited.value.code == EXIT_USAGE


async def test_reducer_parameters_that_clash_with_python_names(generated: Generated) -> None:
    edge = generated.edge
    async with (
        LocalServer(make_edge_module(), database="edge") as server,
        DbConnection.builder()
        .with_uri(server.uri)
        .with_database_name("edge")
        .with_connect_timeout(5)
        .build() as conn,
    ):
        bound = edge.bind(conn)
        await conn.subscribe("SELECT * FROM row")
        # ``timeout_`` is the reducer's own parameter ``timeout``; ``timeout=`` the call's.
        await bound.reducers.do_import(7, "me", edge.MyColSquare(edge.Square(2.0)), timeout=5)
        (row,) = bound.db.row
        assert type(row) is edge.Row2
        assert row.id == 7


# --- the registration hook ---------------------------------------------------------------------


def test_registered_classes_replace_the_runtime_ones_when_their_attributes_match() -> None:
    module = Module("hook")
    module.table("point", [("x", sats.I32), ("y", sats.I32)], public=True)
    schema = module.schema
    built = row_model(schema).table("point").row_class
    assert built.__name__ == "Point"
    assert built.__module__ == "spacetime_sched.client.rows"

    @attrs.frozen(order=True)
    class Mine(Row):
        __columns__: ClassVar[Mapping[str, str]] = {"x": "x", "y": "y"}
        x: int
        y: int

    @attrs.frozen(order=True)
    class Wrong(Row):
        __columns__: ClassVar[Mapping[str, str]] = {"x": "x"}
        x: int

    ref = schema.table("point").product_type_ref
    register_row_classes(schema_digest(schema), {type_key(sats.UNIT, ref): Mine})
    table = row_model(schema).table("point")  # the compiled model was dropped: now Mine
    assert table.row_class is Mine
    assert table.decode(schema.table("point").row_codec.encode({"x": 1, "y": 2})) == Mine(1, 2)
    register_row_classes(schema_digest(schema), {type_key(sats.UNIT, ref): Wrong})
    assert row_model(schema).table("point").row_class.__name__ == "Point"  # ignored
    register_row_classes(schema_digest(schema), {})
