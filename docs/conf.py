"""Sphinx configuration: the documentation site (``nox -s docs``, strict: a warning fails it).

Pages are the Markdown files of ``docs/`` (myst-parser); the API reference (``docs/api/``) is
autodoc over the public modules only. Like trio's docs, every public name is documented once,
under the public module that owns it, never under the private module that defines it:

* before autodoc runs, :func:`_publish` sets ``__module__`` of each public class and function to
  its public home (``spacetime_sched.scheduler._engine.ReducerScheduler`` becomes
  ``spacetime_sched.scheduler.ReducerScheduler``), so signatures and type hints link to it;
* a name re-exported by several public modules (``spacetime_sched.DbConnection`` is
  ``spacetime_sched.client.DbConnection``) is documented only under its home (:func:`_skip`);
* a cross-reference written against any public path (``:class:`spacetime_sched.Timestamp```,
  ``:class:`ReducerScheduler``` inside the scheduler) resolves to that one entry
  (:func:`_resolve`).

``nitpicky`` is on: every ``:class:``/``:meth:``/... role in a docstring must resolve.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docutils import nodes  # noqa: E402
from docutils.nodes import Node  # noqa: E402
from docutils.statemachine import StringList  # noqa: E402
from sphinx.domains.python import PythonDomain  # noqa: E402
from sphinx.util.docutils import SphinxDirective  # noqa: E402

import spacetime_sched  # noqa: E402

project = "spacetime_sched"
author = "spacetime_sched developers"
copyright = "spacetime_sched developers"
release = spacetime_sched.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "furo"
html_title = f"spacetime_sched {release}"
html_static_path: list[str] = []

myst_enable_extensions = ["colon_fence", "deflist"]
# "## Heading" in a page becomes a link target: [text](page.md#heading) resolves.
myst_heading_anchors = 4

nitpicky = True
#: Names from outside the project (no intersphinx: the build needs no network).
nitpick_ignore_regex = [
    ("py:.*", r"(anyio|attrs?|httpx|httpx_ws|httpcore|wsproto|trio)(\..*)?"),
    ("py:.*", r"(hypercorn|starlette|pytest|rich)(\..*)?"),
    ("py:.*", r"(datetime|zoneinfo|collections|typing|typing_extensions|types|enum|uuid)\..*"),
    ("py:.*", r"(sqlite3|logging|pathlib|os|io|json|decimal|fractions|contextlib|abc)\..*"),
    ("py:.*", r"(_thread|asyncio|concurrent|socket|ssl|re|random|numbers)\..*"),
    ("py:.*", r"(Path|PathLike|Decimal|Fraction|ZoneInfo|tzinfo|timedelta|datetime|date)"),
    ("py:.*", r"(Awaitable|Callable|Coroutine|Iterable|Iterator|Mapping|Sequence|Hashable)"),
    ("py:.*", r"(AsyncIterator|AsyncGenerator|Generator|MutableMapping|Set|Collection)"),
    ("py:.*", r"(TaskGroup|TaskStatus|CancelScope|Event|Lock|CapacityLimiter|Logger)"),
    ("py:.*", r"(Self|TypeAlias|Literal|Any|Final|ClassVar|ParamSpec|TypeVar|Never)"),
    ("py:.*", r"T|T_co|P|R|_T"),
    ("py:.*", r"(time|_dt|_random|random|gc)\..*"),
    # Private names in public signatures (type variables, aliases, internal classes) are shown
    # as text: they have no page, by design.
    ("py:.*", r"spacetime_sched(\.\w+)*\._\w+(\.\w+)*"),
    ("py:.*", r"(Callback|RowCallback|DurationLike|ConnectionT|F|ExpiredFire)"),
    # The local server's own internal errors (testing/_server), named in its docstrings.
    ("py:.*", r"(BadArgumentsError|NoSuchFunctionError|SqlError)"),
]

autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
    "member-order": "bysource",
    # Members inherited from private bases (Identity's from _WideUInt, the stores' from
    # StoreBase) are part of the public class; those of public or builtin bases are documented
    # on the base.
    "inherited-members": ", ".join(
        [
            *["object", "BaseException", "Exception", "ValueError", "TypeError"],
            *["RuntimeError", "LookupError", "KeyError", "OSError", "TimeoutError"],
            *["ArithmeticError", "OverflowError", "int", "str", "bytes", "tuple", "dict"],
            *["list", "frozenset", "Generic", "Protocol", "Enum", "IntEnum", "TriggerBase"],
            *["SpacetimeSchedError", "SatsError", "SchedulerError", "ClientError"],
        ]
    ),
}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True
autoclass_content = "both"

#: The public modules, subpackages first: a name's home is the first one that exports it.
PUBLIC = [
    "spacetime_sched.sats",
    "spacetime_sched.protocol",
    "spacetime_sched.client",
    "spacetime_sched.scheduler",
    "spacetime_sched.testing",
    "spacetime_sched",
]
#: id(object) -> the public module that documents it.
HOME: dict[int, str] = {}
#: Public names a module loads on first use (not in its ``__all__``: they need an extra).
LAZY = {"spacetime_sched.scheduler": ["PostgresStore"]}


def _is_private_path(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


def _publish() -> None:
    """Give each public class and function its public home (see the module docstring)."""
    for name in ("spacetime_sched", *PUBLIC):
        importlib.import_module(name)
    # Errors are defined once, in spacetime_sched._errors, and documented at the top level.
    errors = importlib.import_module("spacetime_sched._errors")
    for public in PUBLIC:
        module = sys.modules[public]
        for attr in module.__all__:
            obj = getattr(module, attr)
            # Scalars are shared objects (small ints): constants are documented where exported.
            if id(obj) in HOME or inspect.ismodule(obj) or isinstance(obj, (int, str, float)):
                continue
            if getattr(obj, "__module__", None) == errors.__name__ and public != "spacetime_sched":
                continue
            HOME[id(obj)] = public
            defined = getattr(obj, "__module__", None)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and (
                defined is not None and _is_private_path(defined)
            ):
                obj.__module__ = public
    for public, names in LAZY.items():
        for attr in names:
            obj = getattr(sys.modules[public], attr)
            HOME[id(obj)] = public
            obj.__module__ = public


_publish()

#: The module autodoc is documenting now (set from its docstring event, read by _skip).
_current_module: list[str] = [""]


def _track(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what == "module":
        _current_module[0] = name


def _skip(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Document a re-exported name only under its home module, and a class only once."""
    if what == "class" and inspect.isclass(obj) and id(obj) in HOME:
        # A class attribute naming a public class (``ScheduleAt.Interval``): a link, not a copy
        # (a copy would recurse: ``ScheduleAtInterval`` inherits ``Interval`` from ScheduleAt).
        return True
    if what != "module":
        return None
    home = HOME.get(id(obj))
    if home is not None and home != _current_module[0]:
        return True
    return None


def _locate(path: str) -> str | None:
    """The documented name of ``path`` (any public or private dotted path), or None."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        rest = parts[split:]
        owner_path = None
        for i, attr in enumerate(rest):
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                return None
            if i == 0 and id(obj) in HOME:
                owner_path = f"{HOME[id(obj)]}.{attr}"
            elif i == 0 and (inspect.isclass(obj) or inspect.isfunction(obj)):
                owner_path = f"{obj.__module__}.{obj.__qualname__}"
        if owner_path is None:
            return None
        return ".".join([owner_path, *rest[1:]])
    return None


def _resolve(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a py cross-reference written against another public (or private) path."""
    if node.get("refdomain") != "py":
        return None
    target: str = node["reftarget"].lstrip("~.")
    context = node.get("py:module") or "spacetime_sched"
    klass = node.get("py:class")
    candidates = [target]
    if klass:
        candidates.append(f"{context}.{klass}.{target}")
    candidates += [f"{context}.{target}", *(f"{public}.{target}" for public in PUBLIC)]
    domain = env.get_domain("py")
    for candidate in candidates:
        canonical = _locate(candidate)
        if canonical is None or canonical == node["reftarget"]:
            continue
        found = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
        )
        if found is None and node["reftype"] != "obj":
            # A type alias or constant named where a class is expected (type hints do that).
            found = domain.resolve_xref(
                env, node["refdoc"], app.builder, "obj", canonical, node, contnode
            )
        if found is not None:
            return found
    return None


class PublicData(SphinxDirective):
    """``.. public-data:: spacetime_sched.scheduler``: an ``autodata`` entry for each constant and
    type alias that module exports and owns.

    automodule documents only the data defined (with a ``#:`` comment) in the module itself,
    so the constants a public module re-exports from its private modules would be missing.
    """

    required_arguments = 1

    def run(self) -> list[Node]:
        module_name = self.arguments[0]
        module = sys.modules[module_name]
        lines: list[str] = []
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
                continue
            if HOME.get(id(obj), module_name) != module_name:
                continue  # documented under its home
            lines.append(f".. autodata:: {module_name}.{name}")
            if len(repr(obj)) > 100:
                lines.append("   :no-value:")
            lines.append("")
        content = StringList(lines, source=f"<public-data {module_name}>")
        container = nodes.container()
        self.state.nested_parse(content, self.content_offset, container)
        return list(container.children)


class ReExports(SphinxDirective):
    """``.. re-exports:: spacetime_sched``: a list of the names a module re-exports from another
    public module, each linked to the one place it is documented."""

    required_arguments = 1

    def run(self) -> list[Node]:
        module_name = self.arguments[0]
        module = sys.modules[module_name]
        lines = []
        for name in module.__all__:
            home = HOME.get(id(getattr(module, name)))
            if home is not None and home != module_name:
                lines.append(f"* :py:obj:`{name} <{home}.{name}>` (from :mod:`{home}`)")
        content = StringList(lines, source=f"<re-exports {module_name}>")
        container = nodes.container()
        self.state.nested_parse(content, self.content_offset, container)
        return list(container.children)


class _PythonDomain(PythonDomain):
    """The Python domain, except that a builtin class named in a type hint (``-> type``) never
    links to a project attribute that happens to share its name (``Codec.type``)."""

    def resolve_xref(
        self,
        env: Any,
        fromdocname: str,
        builder: Any,
        typ: str,
        target: str,
        node: Any,
        contnode: Any,
    ) -> Any:
        if typ == "class" and inspect.isclass(getattr(builtins, target, None)):
            return None  # left to Sphinx's builtin resolver: plain text, no warning
        return super().resolve_xref(env, fromdocname, builder, typ, target, node, contnode)


def setup(app: Any) -> None:
    app.add_domain(_PythonDomain, override=True)
    app.add_directive("public-data", PublicData)
    app.add_directive("re-exports", ReExports)
    app.connect("autodoc-process-docstring", _track)
    app.connect("autodoc-skip-member", _skip)
    app.connect("missing-reference", _resolve)
