"""``python -m spacetime_sched serve``: the local server from the command line."""

from __future__ import annotations

import re
import signal
import sys

import anyio
import httpx
import pytest

from spacetime_sched.cli import build_parser, load_module, main
from spacetime_sched.testing import example_module


def test_serve_defaults_to_the_quickstart_module_on_port_3000() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.module, args.backend) == (
        "127.0.0.1",
        3000,
        "spacetime_sched.testing.example_module:module",
        "asyncio",
    )


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
    assert "error: --module" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to the child")
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the test's loop; the child's varies
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
async def test_serve_runs_until_interrupted(backend: str) -> None:
    command = [sys.executable, "-m", "spacetime_sched", "serve", "--port", "0"]
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
            schema = await http.get(f"{uri}/v1/database/quickstart/schema?version=9")
            assert schema.status_code == 200
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(10):
            status = await process.wait()
            output += b"".join([chunk async for chunk in process.stdout])
    assert status == 0
    assert b"Stopping." in output
