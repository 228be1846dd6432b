"""``spacetime-sched serve``: the local server from the command line (Ctrl-C: tests/test_cli.py)."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from spacetime_sched._cli import DEFAULT_MODULE, load_module_file
from spacetime_sched.cli import build_parser, load_module, main
from spacetime_sched.testing import example_module


def test_serve_defaults_to_the_quickstart_module_on_port_3000() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.file, args.module, args.backend) == (
        "127.0.0.1",
        3000,
        None,  # then DEFAULT_MODULE
        None,
        "asyncio",
    )
    assert DEFAULT_MODULE == "spacetime_sched.testing.example_module:module"


MODULE_FILE = """
from spacetime_sched import sats
from spacetime_sched.testing import Module

def make_module():
    module = Module("notes")
    module.table("note", [("text", sats.STRING)])
    return module
"""


def test_load_module_file_takes_a_module_or_make_module(tmp_path: Path) -> None:
    factory = tmp_path / "notes.py"
    factory.write_text(MODULE_FILE, encoding="utf-8")
    assert load_module_file(factory).name == "notes"
    variable = tmp_path / "var.py"
    variable.write_text(MODULE_FILE + "\nmodule = make_module()\n", encoding="utf-8")
    assert load_module_file(variable).name == "notes"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "defines neither `module` (a Module) nor `make_module()`"),
        ("module = 42\n", "module is a int, not a spacetime_sched.testing.Module"),
        ("raise RuntimeError('boom')\n", "running it raised RuntimeError: boom"),
    ],
)
def test_load_module_file_explains_a_bad_file(tmp_path: Path, source: str, message: str) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_module_file(path)
    with pytest.raises(ValueError, match="expected an existing Python file"):
        load_module_file(tmp_path / "missing.py")


def test_load_module_takes_a_module_or_a_factory() -> None:
    assert load_module("spacetime_sched.testing.example_module:module") is example_module.module
    made = load_module("spacetime_sched.testing.example_module:make_module")
    assert made.name == "quickstart"
    assert made is not example_module.module


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "expected 'package.module:attribute'"),
        ("no_such_package_xyz:module", "cannot import 'no_such_package_xyz'"),
        ("spacetime_sched.testing.example_module:nope", "has no attribute 'nope'"),
        ("spacetime_sched.testing.example_module:__name__", "is a str, not a"),
    ],
)
def test_load_module_explains_a_bad_spec(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_module(spec)


def test_a_bad_module_spec_exits_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--module", "nope"]) == 2
    assert "error: --module" in capsys.readouterr().err
    assert main(["serve", "x.py", "--module", "a:b"]) == 2
    assert "give MODULE.py or --module, not both" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to the child")
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the test's loop; the child's varies
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
async def test_serve_runs_a_module_file_until_sigterm(backend: str, tmp_path: Path) -> None:
    module_file = tmp_path / "notes.py"
    module_file.write_text(MODULE_FILE, encoding="utf-8")
    command = [sys.executable, "-m", "spacetime_sched", "serve", str(module_file), "--port", "0"]
    command += ["--backend", backend]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        output = b""
        with anyio.fail_after(20):
            while b"Press Ctrl-C" not in output:
                output += await process.stdout.receive()
        match = re.search(rb"at (http://127\.0\.0\.1:\d+)", output)
        assert match is not None, output
        uri = match.group(1).decode()
        async with httpx.AsyncClient(verify=False) as http:
            assert (await http.get(f"{uri}/v1/ping")).status_code == 200
            schema = await http.get(f"{uri}/v1/database/notes/schema?version=9")
            assert schema.status_code == 200
            assert [t["name"] for t in schema.json()["tables"]] == ["note"]
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            status = await process.wait()
            output += b"".join([chunk async for chunk in process.stdout])
    assert status == 0
    assert b"Stopping." in output
