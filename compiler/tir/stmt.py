"""Buffers, statements and functions of the loop IR.

The shape follows TensorIR: a `PrimFunc` takes `Buffer` parameters; its body nests
`For` loops (always from 0, ``kind`` says how they run) around `BlockRealize`s. A
`Block` is the unit schedules work on: iteration variables that are spatial (``S``) or
reductions (``R``), bound to expressions of the surrounding loops; the regions it reads
and writes; an optional ``init`` that runs before the first reduction step; and the body.

Buffers have a ``scope``: ``global`` (DRAM) or an accelerator scratchpad (``inp``,
``wgt``, ``acc``, ``uop``), or ``local`` for host temporaries. Values in buffers have a
dtype (``int8``, ``int32``, ``float32``, ...); index expressions are plain integers.
All nodes are immutable; ``==`` compares structure, with each `Var` and `Buffer` equal
only to itself (`structural_equal` compares up to renaming).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from vta.isa import MemType

from .expr import Expr, ExprLike, IntImm, Var, as_expr

DTYPES = ("int4", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64", "bool")
# The accelerator's scratchpads are its on-chip memory types (OUT only names a store's narrowing).
SCRATCHPADS = tuple(m.name.lower() for m in MemType if m != MemType.OUT)
SCOPES = ("global", *SCRATCHPADS, "local", "shared")
LOOP_KINDS = ("serial", "parallel", "vectorized", "unrolled", "thread_binding")
ITER_KINDS = ("S", "R")  # spatial, reduction

_ids = itertools.count()


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return dtype


@dataclass(frozen=True, eq=False, repr=False)
class Buffer:
    """A multi-dimensional array: ``name``, ``shape`` (expressions), ``dtype``, ``scope``."""

    name: str
    shape: tuple[Expr, ...]
    dtype: str = "int32"
    scope: str = "global"
    uid: int = -1

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"buffer name {self.name!r} is not an identifier")
        object.__setattr__(self, "shape", tuple(as_expr(d) for d in self.shape))
        check_dtype(self.dtype)
        if self.scope not in SCOPES:
            raise ValueError(f"buffer {self.name}: scope {self.scope!r} is not one of {', '.join(SCOPES)}")
        for i, d in enumerate(self.shape):
            if isinstance(d, IntImm) and d.value <= 0:
                raise ValueError(f"buffer {self.name}: dimension {i} has extent {d.value}; extents are positive")
        if self.uid < 0:
            object.__setattr__(self, "uid", next(_ids))

    def __eq__(self, o: object) -> bool:
        return self is o

    def __hash__(self) -> int:
        return hash(("Buffer", self.uid))

    def __repr__(self) -> str:
        return f"Buffer({self.name!r}, {tuple(str(d) for d in self.shape)}, {self.dtype!r}, {self.scope!r})"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index: ExprLike | slice | tuple) -> BufferLoad | BufferRegion:
        """``B[i, j]`` is a load; ``B[0:4, j]`` (any slice) is a region."""
        idx = index if isinstance(index, tuple) else (index,)
        if len(idx) != self.ndim:
            raise IndexError(f"buffer {self.name} has {self.ndim} dimensions, indexed with {len(idx)}")
        if any(isinstance(i, slice) for i in idx):
            return BufferRegion.of(self, idx)
        return BufferLoad(self, tuple(as_expr(i) for i in idx))


@dataclass(frozen=True, repr=False)
class BufferLoad(Expr):
    """The value of ``buffer[indices]``."""

    buffer: Buffer
    indices: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != self.buffer.ndim:
            raise IndexError(f"load from {self.buffer.name}: {len(self.indices)} indices for "
                             f"{self.buffer.ndim} dimensions")

    def __repr__(self) -> str:
        return f"BufferLoad({self.buffer.name}, {[str(i) for i in self.indices]})"

    def children(self) -> tuple[Expr, ...]:
        return self.indices

    def rebuild(self, kids: tuple[Expr, ...]) -> Expr:
        return BufferLoad(self.buffer, kids)


@dataclass(frozen=True, repr=False)
class Cast(Expr):
    """``value`` converted to ``dtype`` (integers: wrap to the width; to float: exact or nearest)."""

    dtype: str
    value: Expr

    def __post_init__(self) -> None:
        check_dtype(self.dtype)

    def __repr__(self) -> str:
        return f"Cast({self.dtype!r}, {self.value!r})"

    def children(self) -> tuple[Expr, ...]:
        return (self.value,)

    def rebuild(self, kids: tuple[Expr, ...]) -> Expr:
        return Cast(self.dtype, kids[0])


@dataclass(frozen=True)
class Range:
    """``[min, min + extent)``."""

    min: Expr
    extent: Expr


@dataclass(frozen=True)
class BufferRegion:
    """A rectangular part of a buffer, one `Range` per dimension."""

    buffer: Buffer
    region: tuple[Range, ...]

    @staticmethod
    def of(buffer: Buffer, idx: Sequence[ExprLike | slice]) -> BufferRegion:
        ranges = []
        for d, i in enumerate(idx):
            if isinstance(i, slice):
                if i.step not in (None, 1):
                    raise ValueError(f"buffer {buffer.name}: region slices take no step")
                lo = as_expr(0 if i.start is None else i.start)
                hi = buffer.shape[d] if i.stop is None else as_expr(i.stop)
                ranges.append(Range(lo, hi - lo if not (isinstance(hi, IntImm) and isinstance(lo, IntImm))
                                    else IntImm(hi.value - lo.value)))
            else:
                ranges.append(Range(as_expr(i), IntImm(1)))
        return BufferRegion(buffer, tuple(ranges))

    @staticmethod
    def full(buffer: Buffer) -> BufferRegion:
        return BufferRegion(buffer, tuple(Range(IntImm(0), d) for d in buffer.shape))


def as_region(r: BufferRegion | BufferLoad) -> BufferRegion:
    """A region from a region or a single-element load."""
    if isinstance(r, BufferRegion):
        return r
    if isinstance(r, BufferLoad):
        return BufferRegion(r.buffer, tuple(Range(i, IntImm(1)) for i in r.indices))
    raise TypeError(f"a block reads and writes buffer regions, not {type(r).__name__} {r!r}")


# ---- statements ------------------------------------------------------------------

class Stmt:
    """Base of every statement."""

    __slots__ = ()

    def __str__(self) -> str:
        from .printer import stmt_str

        return stmt_str(self)


@dataclass(frozen=True, repr=False)
class BufferStore(Stmt):
    """``buffer[indices] = value``."""

    buffer: Buffer
    value: Expr
    indices: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != self.buffer.ndim:
            raise IndexError(f"store to {self.buffer.name}: {len(self.indices)} indices for "
                             f"{self.buffer.ndim} dimensions")


@dataclass(frozen=True, repr=False)
class SeqStmt(Stmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True, repr=False)
class For(Stmt):
    """``for var in range(extent)``, run as ``kind`` (``thread_binding`` names its ``thread``)."""

    var: Var
    extent: Expr
    body: Stmt
    kind: str = "serial"
    thread: str | None = None
    annotations: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in LOOP_KINDS:
            raise ValueError(f"loop {self.var.name}: kind {self.kind!r} is not one of {', '.join(LOOP_KINDS)}")
        if (self.kind == "thread_binding") != (self.thread is not None):
            raise ValueError(f"loop {self.var.name}: a thread name goes with kind 'thread_binding' only")
        if isinstance(self.extent, IntImm) and self.extent.value <= 0:
            raise ValueError(f"loop {self.var.name}: extent {self.extent.value}; extents are positive")


@dataclass(frozen=True, repr=False)
class IterVar:
    """A block's iteration variable: ``var`` over ``range(extent)``, spatial or reduction."""

    var: Var
    extent: Expr
    kind: str = "S"

    def __post_init__(self) -> None:
        if self.kind not in ITER_KINDS:
            raise ValueError(f"block iterator {self.var.name}: kind {self.kind!r} is not 'S' (spatial) or 'R' "
                             "(reduction)")


@dataclass(frozen=True, repr=False)
class Block(Stmt):
    """A unit of computation with its iteration domain and the regions it touches."""

    name: str
    iter_vars: tuple[IterVar, ...]
    reads: tuple[BufferRegion, ...]
    writes: tuple[BufferRegion, ...]
    body: Stmt
    init: Stmt | None = None
    alloc_buffers: tuple[Buffer, ...] = ()
    annotations: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"block name {self.name!r} is not an identifier")
        for f in ("reads", "writes"):  # a load B[i, j] stands for the one-element region
            object.__setattr__(self, f, tuple(as_region(r) for r in getattr(self, f)))
        if self.init is not None and not any(iv.kind == "R" for iv in self.iter_vars):
            raise ValueError(f"block {self.name}: an init part needs a reduction iterator")


@dataclass(frozen=True, repr=False)
class BlockRealize(Stmt):
    """A block placed in the loop nest: ``iter_values`` bind its iterators, under ``predicate``."""

    iter_values: tuple[Expr, ...]
    predicate: Expr
    block: Block

    def __post_init__(self) -> None:
        if len(self.iter_values) != len(self.block.iter_vars):
            raise ValueError(f"block {self.block.name}: {len(self.iter_values)} values for "
                             f"{len(self.block.iter_vars)} iterators")


@dataclass(frozen=True, repr=False)
class Evaluate(Stmt):
    """An expression evaluated for its effect (e.g. an intrinsic call); ``0`` is a no-op."""

    value: Expr


@dataclass(frozen=True, repr=False)
class PrimFunc:
    """A function over buffers: ``params`` in order, ``body`` the loop nest."""

    name: str
    params: tuple[Buffer, ...]
    body: Stmt
    attrs: tuple[tuple[str, object], ...] = field(default=())
    allocs: tuple[Buffer, ...] = ()  # intermediate buffers (scratchpads, caches) the body uses

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"function name {self.name!r} is not an identifier")
        names = [b.name for b in (*self.params, *self.allocs)]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"function {self.name}: buffer name(s) used twice: {', '.join(sorted(dup))}")

    def __str__(self) -> str:
        from .printer import func_str

        return func_str(self)


def seq(*stmts: Stmt) -> Stmt:
    """Statements in order (a single one stands alone; nested sequences are flattened)."""
    flat: list[Stmt] = []
    for s in stmts:
        flat.extend(s.stmts if isinstance(s, SeqStmt) else (s,))
    return flat[0] if len(flat) == 1 else SeqStmt(tuple(flat))
