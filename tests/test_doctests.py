"""Specification of the docstring examples: every ``>>>`` example in the package runs as written.

Each module of ``spacetime_sched`` is imported and its docstrings' examples are run with
:mod:`doctest` (exact output, no option flags), one test per module that has examples, so an
example that drifts from the code fails the normal test suite.

Not imported, by design:

* ``spacetime_sched.__main__``: importing it runs the command line (``python -m``);
* a module whose optional dependency is not installed (:data:`OPTIONAL`): importing it would
  fail for that reason alone. The test set-up installs every extra, so there its examples run
  like the others.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import spacetime_sched

#: Modules that need an optional dependency, and that dependency's import name.
OPTIONAL = {
    "spacetime_sched.scheduler._stores._postgres": "psycopg",
}
NOT_IMPORTED = {"spacetime_sched.__main__"}


def _modules() -> list[str]:
    names = ["spacetime_sched"]
    names += [
        info.name for info in pkgutil.walk_packages(spacetime_sched.__path__, "spacetime_sched.")
    ]
    return [
        name
        for name in names
        if name not in NOT_IMPORTED
        and (name not in OPTIONAL or importlib.util.find_spec(OPTIONAL[name]) is not None)
    ]


def _examples(module_name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(module_name)
    found = doctest.DocTestFinder().find(module, module_name)
    return sorted((test for test in found if test.examples), key=lambda test: test.name)


MODULES = _modules()
WITH_EXAMPLES = [name for name in MODULES if _examples(name)]


def test_the_known_examples_are_found() -> None:
    # The modules whose docstrings teach with examples today; a finder that saw none of them
    # would make the test below vacuous.
    assert {
        "spacetime_sched.sats",
        "spacetime_sched._identity",
        "spacetime_sched._time",
    } <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("module_name", WITH_EXAMPLES)
def test_docstring_examples_run_as_written(module_name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.REPORT_NDIFF)
    report: list[str] = []
    attempted = 0
    for test in _examples(module_name):
        result = runner.run(test, out=report.append, clear_globs=True)
        attempted += result.attempted
    assert attempted > 0
    assert runner.failures == 0, "".join(report)
