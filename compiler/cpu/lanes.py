"""Which ``vectorized`` loops the CPU code generator turns into vector instructions itself.

A vectorized loop of constant extent whose body is straight-line (blocks and stores, no
inner loops, no reduction init) is emitted once with every lane-dependent value as an LLVM
vector of that many lanes: loads and stores whose address moves by one element per lane
become vector loads and stores, lane-invariant ones stay scalar and are broadcast, others
are gathered and scattered lane by lane. The vectorize primitive admits only spatial loops
(lanes are independent), so this is the loop's meaning. What the code generator cannot
emit as vectors (a nested loop, a reduction's init) stays a scalar loop left to LLVM's
loop vectorizer. A block guarded by a condition that differs between lanes (the tail of a
split that does not divide) is masked: its loads and stores touch only the lanes where the
condition holds. A ``select`` whose condition differs
between lanes computes both branches on vectors; where a branch reads memory that is not
provably in bounds (`in_bounds`), its reads are masked loads and gathers that touch only
the lanes taking that branch.
"""

from __future__ import annotations

from vta.compiler.tir.expr import Expr, IntImm, Select, Var, children, free_vars, substitute
from vta.compiler.tir.simplify import Ranges, bounds, simplify
from vta.compiler.tir.stmt import Block, BlockRealize, BufferLoad, BufferStore, Evaluate, For, SeqStmt, Stmt

MAX_LANES = 64  # a longer vectorized loop stays a loop


def _has_load(e: Expr) -> bool:
    return isinstance(e, BufferLoad) or any(_has_load(k) for k in children(e))


def _exprs(e: Expr):  # type: ignore[no-untyped-def]
    yield e
    for k in children(e):
        yield from _exprs(k)


class _Check:
    def __init__(self, lane: Var, ranges: Ranges) -> None:
        self.lane = lane
        self.ranges = ranges
        self.binding: dict[Var, Expr] = {}

    def varies(self, e: Expr) -> bool:
        """Whether ``e`` takes different values in different lanes."""
        return self.lane in free_vars(substitute(e, self.binding)) if self.binding else self.lane in free_vars(e)

    def stmt_ok(self, s: Stmt) -> bool:
        if isinstance(s, SeqStmt):
            return all(self.stmt_ok(x) for x in s.stmts)
        if isinstance(s, Evaluate):
            return True
        if isinstance(s, BlockRealize):
            for iv, v in zip(s.block.iter_vars, s.iter_values):
                self.binding[iv.var] = substitute(v, self.binding) if self.binding else v
            return self.stmt_ok(s.block)  # a predicate that differs between lanes masks the block
        if isinstance(s, Block):
            return s.init is None and not s.alloc_buffers and self.stmt_ok(s.body)
        if isinstance(s, BufferStore):
            return True
        return False  # a loop or anything else inside


def in_bounds(e: Expr, binding: dict[Var, Expr], ranges: Ranges) -> bool:
    """Whether every load in ``e`` is provably inside its buffer, for every value of the
    variables in ``ranges`` (block iterators substituted by their ``binding``)."""
    for ld in _exprs(e):
        if not isinstance(ld, BufferLoad):
            continue
        for i, d in zip(ld.indices, ld.buffer.shape):
            r = bounds(simplify(substitute(i, binding)), ranges)  # simplified: i0*8 + i1 - i0*8 is i1
            if r is None or not isinstance(d, IntImm) or r[0] < 0 or r[1] >= d.value:
                return False
    return True


SLACK = 64  # elements allocated past the end of a kernel's intermediate buffers (see `within_slack`)


def within_slack(buf_load: BufferLoad, binding: dict[Var, Expr], ranges: Ranges) -> bool:
    """Whether the load's flat offset stays in ``[0, size + SLACK)`` for every value of the
    variables: for an intermediate buffer (allocated with that slack) a lane may then read
    past its row, a value a masked-off lane computes and nobody keeps."""
    off: Expr = IntImm(0)
    stride = 1
    for i, d in reversed(list(zip(buf_load.indices, buf_load.buffer.shape))):
        if not isinstance(d, IntImm):
            return False
        off = off + substitute(i, binding) * stride
        stride *= d.value
    r = bounds(simplify(off), ranges)
    return r is not None and r[0] >= 0 and r[1] < stride + SLACK


def lane_chunks(extent: int) -> list[tuple[int, int]]:
    """(first lane, width) of the power-of-two vectors a loop of ``extent`` lanes is emitted as:
    28 lanes as 16 + 8 + 4."""
    out, start = [], 0
    while start < extent:
        width = 1 << ((extent - start).bit_length() - 1)
        out.append((start, width))
        start += width
    return out


def vector_lanes(loop: For, ranges: Ranges | None = None) -> int:
    """The lane count to emit ``loop`` with as vectors, or 0 to keep it a scalar loop.
    ``ranges`` bounds the enclosing loops' variables (to prove reads in bounds)."""
    if loop.kind != "vectorized" or not isinstance(loop.extent, IntImm) or not 1 < loop.extent.value <= MAX_LANES:
        return 0
    ranges = {**(ranges or {}), loop.var: (0, loop.extent.value - 1)}
    return loop.extent.value if _Check(loop.var, ranges).stmt_ok(loop.body) else 0


__all__ = ["MAX_LANES", "SLACK", "in_bounds", "lane_chunks", "vector_lanes", "within_slack"]
