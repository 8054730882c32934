"""How a function's stages are entered: its root statements (stages) grouped into entry
points, each one foreign call.

Consecutive serial stages share an entry point. Consecutive ``parallel`` stages share one
too when they are *row-aligned*: their outer loops have the same extent and iteration
``v`` of each touches, of every buffer another of them writes, only the slice that
iteration ``v`` of the others touches (a softmax's max, exponent, sum and division per
row). A thread then runs all of them over its chunk of rows, one dispatch for the group.
"""

from __future__ import annotations

from dataclasses import dataclass

from vta.compiler.tir.expr import IntImm, Var, free_vars, substitute
from vta.compiler.tir.region import touched_region, touches
from vta.compiler.tir.simplify import linear_form, simplify
from vta.compiler.tir.stmt import Buffer, BufferStore, For, PrimFunc, Range, SeqStmt, Stmt
from vta.compiler.tir.transform import walk_stmt


@dataclass(frozen=True)
class Group:
    """An entry point: its name, the extent of its parallel outer loop (None: serial), the
    stages it runs in order, and its work (innermost iterations, to decide on threads)."""

    name: str
    extent: int | None
    members: tuple[int, ...]
    work: int


def stages(func: PrimFunc) -> list[Stmt]:
    """The function's root statements, run in order: each becomes one LLVM function."""
    return list(func.body.stmts) if isinstance(func.body, SeqStmt) else [func.body]


def parallel_extent(st: Stmt) -> int | None:
    return st.extent.value if isinstance(st, For) and st.kind == "parallel" and isinstance(st.extent, IntImm) \
        else None


def groups(func: PrimFunc) -> list[Group]:
    """The entry points, in call order."""
    runs: list[tuple[int | None, list[int]]] = []
    sts = stages(func)
    for k, st in enumerate(sts):
        par = parallel_extent(st)
        if runs and runs[-1][0] == par and (par is None or all(row_aligned(sts[j], st) for j in runs[-1][1])):  # type: ignore[arg-type]
            runs[-1][1].append(k)
        else:
            runs.append((par, [k]))
    name = lambda j: func.name if len(runs) == 1 else f"{func.name}_g{j}"  # noqa: E731
    return [Group(name(j), par, tuple(ks), sum(iterations(sts[k]) for k in ks)) for j, (par, ks) in enumerate(runs)]


def iterations(s: object) -> int:
    """Innermost-body executions of a loop nest (the longest path through its sequences)."""
    if isinstance(s, For):
        return (s.extent.value if isinstance(s.extent, IntImm) else 1) * iterations(s.body)
    if isinstance(s, SeqStmt):
        return sum(iterations(x) for x in s.stmts)
    return 1


def _written(s: Stmt) -> set[Buffer]:
    return {x.buffer for x in walk_stmt(s) if isinstance(x, BufferStore)}


def row_aligned(a: For, b: For) -> bool:
    """Whether running ``a`` then ``b`` over a chunk of their (parallel) outer loop, chunk
    by chunk on different threads, does what running all of ``a`` then all of ``b`` does."""
    if not (isinstance(a.extent, IntImm) and isinstance(b.extent, IntImm)) or a.extent.value != b.extent.value:
        return False
    row = Var("row")
    shared = (_written(a) | _written(b))
    for buf in shared:
        regions = row_regions((a, b), buf, row)
        if len(regions) > 1 and not same_slices(regions):
            return False
        if len(regions) > 1 and not _separates(regions[0], row):
            return False
    return True


def row_regions(loops: tuple[For, ...], buf: Buffer, row: Var) -> list[tuple[Range, ...]]:
    """Every region of ``buf`` the loops' bodies read or write, with each loop's variable
    renamed ``row`` (so iteration ``row`` of each can be compared)."""
    return [tuple(Range(simplify(substitute(r.min, {st.var: row})), r.extent) for r in touched_region(st.body, buf, w))
            for st in loops for w in (False, True) if touches(st.body, buf, w)]


def same_slices(regions: list[tuple[Range, ...]]) -> bool:
    """Whether all the regions are the same slice."""
    return all(simplify(p.min - q.min) == IntImm(0) and simplify(p.extent - q.extent) == IntImm(0)
               for r in regions[1:] for p, q in zip(regions[0], r))


def _separates(region: tuple[Range, ...], row: Var) -> bool:
    """Whether different rows touch disjoint slices: one dimension starts at ``c·row + d``
    with an extent of at most ``c``, and no other depends on the row."""
    steps = []
    for r in region:
        if row not in free_vars(r.min):
            continue
        lin = linear_form(r.min)
        if lin is None or set(lin.coeffs) != {row} or not isinstance(r.extent, IntImm):
            return False
        steps.append((lin.coeffs[row], r.extent.value))
    return len(steps) == 1 and steps[0][0] >= steps[0][1] > 0


__all__ = ["Group", "groups", "iterations", "parallel_extent", "row_aligned", "row_regions", "same_slices", "stages"]
