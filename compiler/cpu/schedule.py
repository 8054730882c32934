"""Default CPU schedules for the host operator library: reductions get their init hoisted
out of the reduction loops (so inner loops are branch-free) and their last spatial loop
moved innermost (contiguous, so it vectorizes), and each stage runs its outermost spatial
loop in parallel."""

from __future__ import annotations

from vta.compiler.tir.expr import IntImm
from vta.compiler.tir.schedule import Schedule, ScheduleError
from vta.compiler.tir.stmt import Block, For, PrimFunc, SeqStmt
from vta.compiler.tir.transform import walk_stmt


def default_schedule(func: PrimFunc) -> PrimFunc:
    sch = Schedule(func)
    for blk in [s for s in walk_stmt(func.body) if isinstance(s, Block) and s.init is not None]:
        loops = sch._loops_above(blk.name)
        realize_vars = _reduction_loops(sch, blk.name)
        spatial = [v for v in loops if v not in realize_vars]
        reduce_ = [v for v in loops if v in realize_vars]
        # the last spatial loop innermost: a contiguous, vectorizable inner loop
        if spatial and reduce_ and loops.index(spatial[-1]) < loops.index(reduce_[-1]):
            try:
                sch.reorder(*reduce_, spatial[-1])
            except ScheduleError:
                pass
        loops = sch._loops_above(blk.name)
        first = next((v for v in loops if v in realize_vars), None)
        if first is not None:
            try:
                sch.decompose_reduction(blk.name, first)
            except ScheduleError:
                pass
    body = sch.func.body
    for st in (body.stmts if isinstance(body, SeqStmt) else (body,)):  # each stage's outer loop, when spatial
        if isinstance(st, For) and isinstance(st.extent, IntImm) and st.extent.value > 1 and \
                _iterations(st) >= PARALLEL_MIN:
            try:
                sch.parallel(st.var)
            except ScheduleError:
                pass
    return sch.func


PARALLEL_MIN = 1 << 18  # loop iterations below which a thread pool's dispatch costs more than it saves


def _iterations(s: object) -> int:
    """Innermost-body executions of a loop nest (the longest path through its sequences)."""
    if isinstance(s, For):
        return (s.extent.value if isinstance(s.extent, IntImm) else 1) * _iterations(s.body)
    if isinstance(s, SeqStmt):
        return sum(_iterations(x) for x in s.stmts)
    return 1


def _reduction_loops(sch: Schedule, block: str) -> set:  # type: ignore[type-arg]
    from vta.compiler.tir.expr import free_vars
    from vta.compiler.tir.stmt import BlockRealize

    out = set()
    for s in walk_stmt(sch.func.body):
        if isinstance(s, BlockRealize) and s.block.name == block:
            for iv, v in zip(s.block.iter_vars, s.iter_values):
                if iv.kind == "R":
                    out |= free_vars(v)
    return out
