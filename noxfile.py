"""The test matrix: every Python 3.10-3.13 on the machine x asyncio / trio, plus lint and types.

nox -s tests lint typecheck docs # everything CI runs (.ci/run)
nox -s "tests-3.12(backend='trio')"
nox -s bench                     # benchmarks beside their peers (APScheduler, the TS SDK)
nox -s plots                     # docs/img/*.png from the benchmarks' JSON results
nox -s fuzz                      # the long fuzz run (minutes); `tests` runs a bounded one
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

# nox.project.dependency_groups (reading PEP 735 [dependency-groups]) arrived in 2025.02.
nox.needs_version = ">=2025.2.9"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True
# A Python missing from the machine is skipped locally but fails on CI (nox's default).

ROOT = Path(__file__).parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
#: What a user installs to run everything the tests touch (README's first command).
PROJECT = ("-e", ".[server,brotli,trio,cli,postgres]")


def _group(*names: str) -> tuple[str, ...]:
    """The requirements of [dependency-groups] ``names``; nox resolves ``include-group`` itself,
    so this works with whatever pip the session's virtualenv has (``--group`` needs >= 25.1)."""
    return nox.project.dependency_groups(PYPROJECT, *names)


def _expose_pyenv_pythons() -> None:
    """Let pyenv's shims answer to every installed 3.10-3.13, not only the global version.

    Under pyenv, ``python3.12`` is a shim that refuses to run unless 3.12 is an active version;
    nox would then skip that part of the matrix. Naming all of them in ``PYENV_VERSION`` (the
    current one first) makes each ``python3.X`` resolve, for nox and its subprocesses.
    """
    if shutil.which("pyenv") is None:
        return
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    installed = sorted(p.name for p in Path(root, "versions").glob("3.*") if p.is_dir())
    wanted = [v for v in installed if any(v.startswith(f"{x}.") for x in PYTHONS)]
    # pyenv's shim exports the version it resolved; keep it (or the user's choice) first.
    current = (
        os.environ.get("PYENV_VERSION")
        or subprocess.run(["pyenv", "version-name"], capture_output=True, text=True).stdout.strip()
    )
    first = [v for v in current.split(":") if v]
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys([*first, *wanted]))


_expose_pyenv_pythons()
CONFORMANCE = ROOT / "tests" / "conformance"


def _install_node_packages(session: nox.Session) -> None:
    """Install the official TypeScript SDK for the conformance tests (once per checkout)."""
    if not (CONFORMANCE / "package.json").exists():
        return
    if shutil.which("npm") is None:
        session.warn("npm not found: the TypeScript SDK conformance tests will fail")
        return
    if not (CONFORMANCE / "node_modules").exists():
        lock = (CONFORMANCE / "package-lock.json").exists()
        session.run(
            "npm", "ci" if lock else "install", "--no-audit", "--no-fund",
            "--prefix", str(CONFORMANCE), external=True,
        )  # fmt: skip


@nox.session(python=PYTHONS)
@nox.parametrize("backend", ["asyncio", "trio"])
def tests(session: nox.Session, backend: str) -> None:
    """Run the whole suite with every async test on one anyio backend."""
    session.install(*PROJECT, *_group("test"))
    _install_node_packages(session)
    session.run(
        "pytest", *(session.posargs or ["-q"]),
        env={"SPACETIME_SCHED_BACKENDS": backend},
    )  # fmt: skip


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install(*_group("lint"))
    paths = ["spacetime_sched", "tests", "benchmarks", "examples", "noxfile.py", "docs/conf.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    session.install(*PROJECT, *_group("typecheck"))
    session.run("mypy", "spacetime_sched")


@nox.session(python="3.11")
def fuzz(session: nox.Session) -> None:
    """The long fuzz run: about a million inputs per target, with figures for
    docs/reliability.md (``nox -s fuzz -- --inputs 10000`` for a shorter one). The bounded
    run of the same targets is part of ``tests`` (tests/fuzz/test_fuzz.py)."""
    session.install("-e", ".[test]")
    session.run("python", "tests/fuzz/run_fuzz.py", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with their peers.

    Each prints a markdown table and writes its JSON results under ``benchmarks/results/``;
    ``nox -s plots`` draws them for docs/benchmarks.md.
    """
    # bench_scheduler.py makes its own throwaway venvs for the APScheduler peers.
    session.install(*PROJECT, *_group("test"))
    _install_node_packages(session)
    env = {"PYTHONHASHSEED": "0"}
    if os.environ.get("BENCH_QUICK"):
        env["BENCH_QUICK"] = "1"
    scripts = session.posargs or sorted(str(p) for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for script in scripts:
        session.run("python", script, env=env)


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """The documentation site (Sphinx, furo, myst), strict: any warning fails the build,
    including a docstring cross-reference that does not resolve (``nitpicky`` in docs/conf.py)."""
    session.install(*PROJECT, *_group("docs"))
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html",
        *session.posargs,
    )  # fmt: skip


@nox.session(python="3.11")
def plots(session: nox.Session) -> None:
    """Draw docs/img/*.png from benchmarks/results/*.json (``nox -s bench`` writes them)."""
    session.install(*_group("bench"))
    session.run("python", "benchmarks/plot_results.py", *session.posargs)
