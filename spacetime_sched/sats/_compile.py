"""What the BSATN and SATS-JSON compilers share: walking a SATS type into a tree of nodes.

Both compilers turn a type into the same shape of tree (bytes for ``Array<U8>``, special nodes
for Timestamp, Identity, Option, ScheduleAt and friends, forwarding cells for recursive refs);
only the nodes differ. :class:`TypeCompiler` does the walk once for both, and a codec says how
to build each kind of node by overriding its ``*_node`` hooks. Compiling runs once per
(type, typespace), so the hooks' method calls cost nothing where it matters: the nodes they
return are the codec's own closures, unchanged.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Final, Generic, TypeVar

from .._errors import SatsError
from ._fail import Fail
from ._types import (
    MAX_DEPTH,
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    RefType,
    SpecialKind,
    SumType,
    Typespace,
    resolve,
    special_kind,
)

__all__ = ["RefCell", "TypeCompiler", "enter_ref", "leave_ref"]

N = TypeVar("N")


class RefCell(Generic[N]):
    """A recursive ref's compiled target, filled in once its compilation finishes, and its
    height: how many levels of nesting one pass through the ref can add to a value."""

    __slots__ = ("height", "node")

    node: N  # set when the target's compilation finishes, before any codec can run

    def __init__(self) -> None:
        self.height = 1


#: How deep the current thread is inside recursive refs, in levels (see :func:`enter_ref`).
#: Per thread, because one compiled codec may decode in several threads at once.
_recursion = threading.local()


def enter_ref(height: int) -> None:
    """Count one pass through a recursive ref (``height`` levels).

    Only a recursive type lets the *data* choose how deep a value nests; every other type's
    nesting is bounded by the type itself (at most :data:`MAX_DEPTH` levels, checked when it
    is compiled). So the forwarding nodes of recursive refs are the one place that counts, and
    types without them pay nothing. Raises :class:`Fail` past ``MAX_DEPTH`` levels, so a
    hostile value is a decode error naming its path, never a ``RecursionError`` or a hang.
    """
    depth: int = getattr(_recursion, "depth", 0) + height
    if depth > MAX_DEPTH:
        raise Fail(
            f"the value nests deeper than {MAX_DEPTH} levels through a recursive type "
            "(sats.MAX_DEPTH)"
        )
    _recursion.depth = depth


def leave_ref(height: int) -> None:
    """Undo :func:`enter_ref` (call it in a ``finally``)."""
    _recursion.depth -= height


class TypeCompiler(ABC, Generic[N]):
    """One compilation: memoises sub-types and ties recursive refs through forwarding cells.

    A subclass implements every ``*_node`` hook; :meth:`node` does the rest.

    It also measures each type's *height* (its levels of nesting, a recursive ref counting
    one) and refuses a type nested deeper than :data:`MAX_DEPTH` levels, so neither the walk
    here nor a codec built from it can exhaust the Python stack.
    """

    def __init__(self, typespace: Typespace | None) -> None:
        self.typespace = typespace
        self.memo: dict[AlgebraicType, N] = {}
        self.heights: dict[AlgebraicType, int] = {}
        self.refs: dict[int, N] = {}
        self.pending: dict[int, RefCell[N]] = {}
        self._depth = 0  # levels above the type being compiled
        self._below = 0  # the greatest height among the children compiled so far

    def node(self, ty: AlgebraicType) -> N:
        found = self.memo.get(ty)
        if found is not None:
            self._reach(self.heights.get(ty, 1))
            return found
        self._reach(1)
        saved, self._below = self._below, 0
        self._depth += 1
        try:
            found = self._build(ty)
        finally:
            self._depth -= 1
        height = self._below + 1
        self.memo[ty] = found
        self.heights[ty] = height
        self._below = max(saved, height)
        return found

    def _reach(self, height: int) -> None:
        """A child of ``height`` levels sits at the current depth: refuse it if too deep."""
        if self._depth + height > MAX_DEPTH:
            raise SatsError(
                f"the type nests deeper than {MAX_DEPTH} levels (sats.MAX_DEPTH), "
                "which no codec accepts"
            )
        self._below = max(self._below, height)

    # --- the hooks: one per kind of node ------------------------------------------------------

    @abstractmethod
    def primitive_node(self, ty: PrimitiveType) -> N:
        """Bool, an int, a float or String."""

    @abstractmethod
    def bytes_node(self) -> N:
        """``Array<U8>``."""

    @abstractmethod
    def array_node(self, elem: N) -> N:
        """``Array<T>`` (T not U8), given T's node."""

    @abstractmethod
    def special_product_node(self, kind: SpecialKind) -> N | None:
        """The node of a special product (``"timestamp"``, ``"identity"``, ...), or ``None`` to
        compile it as an ordinary product."""

    @abstractmethod
    def product_node(self, ty: ProductType, fields: list[N]) -> N:
        """An ordinary product, given its fields' nodes."""

    @abstractmethod
    def option_node(self, payload: N, nested: bool) -> N:
        """``nested``: the payload is itself an Option, so ``some(none)`` must stay visible."""

    @abstractmethod
    def sum_node(self, ty: SumType, variants: list[N]) -> N:
        """An ordinary sum, given its variants' nodes."""

    @abstractmethod
    def schedule_at_node(self, generic: N) -> N:
        """ScheduleAt, given the node of the plain sum it is."""

    @abstractmethod
    def forward_node(self, cell: RefCell[N]) -> N:
        """A node for a ref still being compiled (a recursive type): it calls through ``cell``,
        which holds the real node (and its height) once its compilation finishes. It brackets
        the call with :func:`enter_ref` / :func:`leave_ref`, which bound the recursion."""

    # --- the walk -----------------------------------------------------------------------------

    def _build(self, ty: AlgebraicType) -> N:
        if isinstance(ty, RefType):
            return self._ref(ty)
        if isinstance(ty, PrimitiveType):
            return self.primitive_node(ty)
        if isinstance(ty, ArrayType):
            if _is_u8(ty.elem, self.typespace):
                return self.bytes_node()
            return self.array_node(self.node(ty.elem))
        kind = special_kind(ty, self.typespace)
        if isinstance(ty, ProductType):
            special = self.special_product_node(kind) if kind is not None else None
            if special is not None:
                return special
            return self.product_node(ty, [self.node(e.algebraic_type) for e in ty.elements])
        if isinstance(ty, SumType):
            variants = [self.node(v.algebraic_type) for v in ty.variants]
            if kind == "option":
                nested = special_kind(ty.variants[0].algebraic_type, self.typespace) == "option"
                return self.option_node(variants[0], nested)
            generic = self.sum_node(ty, variants)
            return self.schedule_at_node(generic) if kind == "schedule_at" else generic
        raise SatsError(f"not a SATS type: {ty!r}")

    def _ref(self, ty: RefType) -> N:
        index = ty.index
        done = self.refs.get(index)
        if done is not None:
            return done
        cell = self.pending.get(index)
        if cell is not None:
            return self.forward_node(cell)
        resolve(ty, self.typespace)  # raises for a missing typespace, a bad index, a ref loop
        assert self.typespace is not None
        cell = self.pending[index] = RefCell()
        target_type = self.typespace.types[index]
        try:
            target = self.node(target_type)
        finally:
            del self.pending[index]
        cell.node = target
        cell.height = self.heights[target_type]
        self.refs[index] = target
        return target


_U8: Final = PrimitiveType("U8")


def _is_u8(ty: AlgebraicType, typespace: Typespace | None) -> bool:
    """``Array<U8>`` is a byte string, also when its element is a ref to U8."""
    if type(ty) is RefType and typespace is not None:
        try:
            ty = resolve(ty, typespace)
        except SatsError:
            return False  # compiling the element reports the bad ref
    return ty == _U8
