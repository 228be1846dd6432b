"""``conn.reducers``: the module's reducers as methods, ``await conn.reducers.add(1, 2)``.

A call is :meth:`DbConnection.call_reducer_async` under another name: the arguments are checked
and encoded with the module schema before anything is sent, ``timeout=`` works the same, and
so does the result. Typed values (rows and structs of :mod:`._rows`) are accepted wherever the
schema wants a struct, so a row read from ``conn.db`` can be passed back as it is.

A name the schema does not have raises :class:`~spacetime_sched.UnknownNameError` (an
``AttributeError`` too) listing close matches: at the attribute once the schema is known, else
at the call (which fetches the schema first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import UnknownNameError
from ..protocol import ModuleSchema
from ._results import ReducerCallResult
from ._rows import RowModel
from ._tables import close_matches

__all__ = ["ReducerCaller", "Reducers"]

Call = Callable[..., Awaitable[ReducerCallResult]]


def _check(schema: ModuleSchema, name: str, owner: object) -> None:
    names = [reducer.name for reducer in schema.reducers]
    if name not in names:
        callable_names = [r.name for r in schema.reducers if r.client_callable]
        raise UnknownNameError(
            f"the module has no reducer {name!r}" + close_matches(name, callable_names),
            name=name,
            obj=owner,
        )


class ReducerCaller:
    """One reducer: ``await caller(*args, timeout=30.0)``."""

    __slots__ = ("_name", "_reducers")

    def __init__(self, reducers: Reducers, name: str) -> None:
        self._reducers = reducers
        self._name = name

    def __repr__(self) -> str:
        return f"<reducer {self._name!r}>"

    @property
    def name(self) -> str:
        return self._name

    async def __call__(
        self,
        *args: Any,
        timeout: float | None = 30.0,
    ) -> ReducerCallResult:
        reducers = self._reducers
        model = await reducers._load()
        _check(model.schema, self._name, reducers)
        return await reducers._call(
            self._name, *_plain_args(model, self._name, args), timeout=timeout
        )


def _plain_args(model: RowModel, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Typed rows and structs in ``args`` as the dicts the encoder takes."""
    params = model.schema.reducer(name).params.elements
    if len(params) != len(args):
        return args  # the encoder says what is wrong
    plain: list[Any] = []
    for param, value in zip(params, args, strict=True):
        to_plain = model.converters(param.algebraic_type)[1]
        plain.append(value if to_plain is None else to_plain(value))
    return tuple(plain)


class Reducers:
    """``conn.reducers``: ``conn.reducers.<name>(*args, timeout=...)`` or
    ``conn.reducers["name"](...)``."""

    def __init__(
        self,
        call: Call,
        model: Callable[[], RowModel | None],
        load: Callable[[], Awaitable[RowModel]],
    ) -> None:
        self._call = call
        self._model = model
        self._load = load

    def __repr__(self) -> str:
        model = self._model()
        if model is None:
            return "<Reducers (schema not loaded yet)>"
        return f"<Reducers {sorted(r.name for r in model.schema.reducers if r.client_callable)}>"

    def __getattr__(self, name: str) -> ReducerCaller:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> ReducerCaller:
        model = self._model()
        if model is not None:
            _check(model.schema, name, self)
        return ReducerCaller(self, name)

    def __dir__(self) -> list[str]:
        model = self._model()
        names = [] if model is None else [r.name for r in model.schema.reducers]
        return sorted({*super().__dir__(), *names})
