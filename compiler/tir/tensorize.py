"""Structural matching of a loop nest against a tensor intrinsic's semantics.

The nest under the chosen loop must be a perfect chain of loops, with the same extents as
the intrinsic's, around one block without init or predicate whose body has the same
shape as the intrinsic's body: the same operations and casts, buffers of the same
scope and dtype, and indices that move with the loops as the intrinsic's do (in the
buffers' innermost dimensions; outer dimensions must stay fixed inside the nest). The
result is the region of each matched buffer, one per intrinsic parameter.
"""

from __future__ import annotations

from .expr import Expr, IntImm, Var, children, free_vars, substitute
from .intrin import TensorIntrin
from .simplify import simplify
from .stmt import BlockRealize, Buffer, BufferLoad, BufferRegion, BufferStore, Cast, For, Range, Stmt


class TensorizeMismatch(Exception):
    """Why a nest does not match (the schedule turns it into a ScheduleError)."""


def _chain(s: Stmt) -> tuple[list[For], BlockRealize]:
    loops = []
    while isinstance(s, For):
        loops.append(s)
        s = s.body
    if not isinstance(s, BlockRealize):
        raise TensorizeMismatch(f"the nest must be loops around a single block, found {type(s).__name__}")
    return loops, s


class _Matcher:
    def __init__(self, inner: set[Var], bind_b: dict[Var, Expr], bind_d: dict[Var, Expr],
                 scalars: tuple[Var, ...] = ()) -> None:
        self.inner, self.bind_b, self.bind_d = inner, bind_b, bind_d
        self.scalars: dict[Var, Expr | None] = dict.fromkeys(scalars)
        self.bufs: dict[Buffer, Buffer] = {}       # intrinsic buffer -> matched buffer
        self.base: dict[Buffer, list[Expr]] = {}   # intrinsic buffer -> region minimum of the matched one

    def buffer(self, b: Buffer, d: Buffer, idx_b: tuple[Expr, ...], idx_d: tuple[Expr, ...]) -> None:
        if (b.scope, b.dtype) != (d.scope, d.dtype):
            raise TensorizeMismatch(f"buffer {b.name} is {b.dtype} in scope {b.scope}; the intrinsic's {d.name} "
                                    f"is {d.dtype} in scope {d.scope}")
        if self.bufs.setdefault(d, b) is not b:
            raise TensorizeMismatch(f"the intrinsic's {d.name} would be both {self.bufs[d].name} and {b.name}")
        lead = len(idx_b) - len(idx_d)
        if lead < 0:
            raise TensorizeMismatch(f"buffer {b.name} has {len(idx_b)} dimensions, the intrinsic's {d.name} "
                                    f"{len(idx_d)}")
        base: list[Expr] = []
        for dim, e in enumerate(idx_b):
            eb = simplify(substitute(e, self.bind_b))
            if dim < lead:
                if free_vars(eb) & self.inner:
                    raise TensorizeMismatch(f"buffer {b.name} dimension {dim}: index {eb} moves inside the nest; "
                                            "only the innermost dimensions may")
                base.append(eb)
                continue
            ed = simplify(substitute(idx_d[dim - lead], self.bind_d))
            off = simplify(eb - ed)
            if free_vars(off) & self.inner:
                raise TensorizeMismatch(f"buffer {b.name} dimension {dim}: index {eb} does not move like the "
                                        f"intrinsic's {ed}")
            base.append(off)
        old = self.base.setdefault(d, base)
        if any(simplify(x - y) != IntImm(0) for x, y in zip(old, base)):
            raise TensorizeMismatch(f"buffer {b.name} is accessed at two different places in the nest")

    def expr(self, b: Expr, d: Expr) -> None:
        if isinstance(d, Var) and d in self.scalars:  # a constant of the call, fixed inside the nest
            eb = simplify(substitute(b, self.bind_b))
            if free_vars(eb) & self.inner or any(isinstance(x, BufferLoad) for x in _walk(eb)):
                raise TensorizeMismatch(f"{eb} is not constant inside the nest, as the intrinsic's {d.name} must be")
            old = self.scalars[d]
            if old is not None and simplify(old - eb) != IntImm(0):
                raise TensorizeMismatch(f"the intrinsic's {d.name} would be both {old} and {eb}")
            self.scalars[d] = eb
            return
        if isinstance(b, BufferLoad) and isinstance(d, BufferLoad):
            self.buffer(b.buffer, d.buffer, b.indices, d.indices)
            return
        if type(b) is not type(d):
            raise TensorizeMismatch(f"expression {b} does not match the intrinsic's {d}")
        if isinstance(b, Cast) and b.dtype != d.dtype:  # type: ignore[attr-defined]
            raise TensorizeMismatch(f"cast to {b.dtype} where the intrinsic casts to {d.dtype}")  # type: ignore[attr-defined]
        if isinstance(b, IntImm) and b != d:
            raise TensorizeMismatch(f"constant {b} where the intrinsic has {d}")
        if getattr(b, "op", None) != getattr(d, "op", None):
            raise TensorizeMismatch(f"expression {b} does not match the intrinsic's {d}")
        kb, kd = children(b), children(d)
        if len(kb) != len(kd):
            raise TensorizeMismatch(f"expression {b} does not match the intrinsic's {d}")
        for x, y in zip(kb, kd):
            self.expr(x, y)


def _walk(e: Expr):  # type: ignore[no-untyped-def]
    yield e
    for k in children(e):
        yield from _walk(k)


def match(nest: For, intrin: TensorIntrin) -> tuple[BufferRegion, ...]:
    """The regions the intrinsic would be applied to, or `TensorizeMismatch` saying why not."""
    return match_call(nest, intrin)[0]


def match_call(nest: For, intrin: TensorIntrin) -> tuple[tuple[BufferRegion, ...], tuple[Expr, ...]]:
    """The regions and scalar values of the call that would replace ``nest``."""
    loops, realize = _chain(nest)
    dloops, drealize = _chain(intrin.desc.body)
    if len(loops) != len(dloops):
        raise TensorizeMismatch(f"{len(loops)} loops under {nest.var.name}; the intrinsic has {len(dloops)}")
    for x, y in zip(loops, dloops):
        if simplify(x.extent) != simplify(y.extent):
            raise TensorizeMismatch(f"loop {x.var.name} has extent {x.extent}; the intrinsic's loop {y.var.name} "
                                    f"has {y.extent}")
    blk, dblk = realize.block, drealize.block
    if blk.init is not None:
        raise TensorizeMismatch(f"block {blk.name} has an init part: decompose_reduction it first")
    if not (isinstance(realize.predicate, IntImm) and realize.predicate.value == 1):
        raise TensorizeMismatch(f"block {blk.name} is predicated ({realize.predicate}): the tiles must be whole")
    rename = {y.var: x.var for x, y in zip(loops, dloops)}
    bind_b = dict(zip((iv.var for iv in blk.iter_vars), realize.iter_values))
    bind_d = {iv.var: substitute(v, rename) for iv, v in zip(dblk.iter_vars, drealize.iter_values)}
    m = _Matcher({x.var for x in loops}, bind_b, bind_d, intrin.scalars)
    if not (isinstance(blk.body, BufferStore) and isinstance(dblk.body, BufferStore)):
        raise TensorizeMismatch(f"block {blk.name}'s body is not a single store like the intrinsic's")
    m.buffer(blk.body.buffer, dblk.body.buffer, blk.body.indices, dblk.body.indices)
    m.expr(blk.body.value, dblk.body.value)
    regions = []
    for p in intrin.desc.params:
        if p not in m.bufs:
            raise TensorizeMismatch(f"nothing in the nest matches the intrinsic's {p.name}")
        b, base = m.bufs[p], m.base[p]
        lead = b.ndim - p.ndim
        regions.append(BufferRegion(b, tuple(Range(x, IntImm(1) if d < lead else p.shape[d - lead])
                                             for d, x in enumerate(base))))
    missing = [v.name for v, x in m.scalars.items() if x is None]
    if missing:
        raise TensorizeMismatch(f"nothing in the nest gives the intrinsic's {', '.join(missing)}")
    return tuple(regions), tuple(m.scalars[v] for v in intrin.scalars)  # type: ignore[misc]
