"""Specification of the packaging: one version, tools in dependency groups, README's set-up.

* The version is written once, in ``spacetime_sched/_version.py``; hatch reads it for the
  distribution's metadata and ``spacetime_sched.__version__`` re-exports it.
* The test and dev tools live in PEP 735 ``[dependency-groups]`` (nox installs them from there).
  The ``test`` and ``dev`` extras are transitional aliases kept so that
  ``pip install -e '.[test,dev]'`` still installs the tools; they must say exactly what the
  groups say.
* README's first command installs the ``trio`` extra, so the trio quickstart runs after it, and
  the ``cli`` extra, so the demo shows its live table.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any

import spacetime_sched
from spacetime_sched import _version

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test dependency group installs tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
GROUPS: dict[str, list[Any]] = PYPROJECT["dependency-groups"]


def group(name: str) -> set[str]:
    """The requirements of a dependency group, ``include-group`` entries expanded."""
    found: set[str] = set()
    for entry in GROUPS[name]:
        found |= group(entry["include-group"]) if isinstance(entry, dict) else {entry}
    return found


def test_the_version_is_written_once() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "spacetime_sched/_version.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", _version.__version__)
    assert spacetime_sched.__version__ == _version.__version__
    assert importlib.metadata.version("spacetime-sched") == spacetime_sched.__version__


def test_the_tools_are_dependency_groups() -> None:
    tools = {"pytest", "pytest-trio", "hypothesis", "ruff", "mypy", "nox"}
    named = {re.split(r"[<>=;\[ ]", req, maxsplit=1)[0] for req in group("dev")}
    assert tools <= named
    assert {"ruff>=0.6"} == group("lint")
    # mypy, and pytest because the pytest plugin is part of the package that mypy checks.
    assert {"mypy>=1.10", "pytest>=8"} == group("typecheck")
    assert group("test") | group("lint") | group("typecheck") <= group("dev")
    # Users' extras name no tool.
    for extra in ("brotli", "server", "trio", "cli"):
        assert not {re.split(r"[<>=;\[ ]", req, maxsplit=1)[0] for req in EXTRAS[extra]} & tools


def test_the_test_and_dev_extras_are_exact_aliases_of_the_groups() -> None:
    own = "spacetime-sched[brotli,server,trio,cli,postgres]"
    assert set(EXTRAS["test"]) == group("test") | {own}
    assert set(EXTRAS["dev"]) == (group("dev") - group("test")) | {"spacetime-sched[test]"}


def test_readme_first_command_installs_what_the_readme_promises() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = next(line for line in readme.splitlines() if "pip install" in line)
    installed = re.search(r"-e '\.\[([a-z,]+)\]'", first)
    assert installed is not None, first
    extras = set(installed[1].split(","))
    assert extras == {"server", "brotli", "trio", "cli"}  # cli: the demo's live table
    assert extras <= set(EXTRAS)
    # The installed distribution declares trio behind the extra (what `import trio` needs).
    requires = importlib.metadata.requires("spacetime-sched") or []
    assert any(re.fullmatch(r"""trio>=\S+; extra == ["']trio["']""", r) for r in requires)
    assert "trio.run(main)" in readme


def test_readme_test_command_is_what_ci_runs() -> None:
    # README's second command line is the project's whole check; .ci/run must run exactly it.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    second = next(line for line in readme.splitlines() if "-m nox" in line)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_nox = next(line for line in ci.splitlines() if line.startswith("python3 -m nox"))
    assert second.endswith(ci_nox), (second, ci_nox)
    # Including the strict documentation build.
    assert ci_nox.split()[-4:] == ["tests", "lint", "typecheck", "docs"]
    assert {"sphinx", "furo", "myst-parser"} <= {
        re.split(r"[<>=;\[ ]", req, maxsplit=1)[0] for req in group("docs")
    }
