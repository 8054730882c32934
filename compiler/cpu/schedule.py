"""Default CPU schedules for the host operator library: a reduction (matmul, conv, pooling)
gets a register tile over its two innermost spatial loops, accumulated in a local buffer
across the reduction with vectorized columns; a reduction that does not allow one gets its
last spatial loop innermost (contiguous, so it vectorizes) and its init hoisted; each
large stage runs its outermost spatial loop in parallel."""

from __future__ import annotations

from vta.compiler.tir.expr import IntImm
from vta.compiler.tir.schedule import Schedule, ScheduleError
from vta.compiler.tir.stmt import Block, For, PrimFunc, SeqStmt
from vta.compiler.tir.transform import walk_stmt


def default_schedule(func: PrimFunc) -> PrimFunc:
    sch = Schedule(func)
    for blk in [s for s in walk_stmt(func.body) if isinstance(s, Block) and s.init is not None]:
        trial = Schedule(sch.func)
        if _register_tile(trial, blk.name):
            sch = trial
        else:
            _innermost_spatial(sch, blk.name)
    body = sch.func.body
    for st in (body.stmts if isinstance(body, SeqStmt) else (body,)):  # each stage's outer loop, when spatial
        if isinstance(st, For) and isinstance(st.extent, IntImm) and st.extent.value > 1 and \
                _iterations(st) >= PARALLEL_MIN:
            try:
                sch.parallel(st.var)
            except ScheduleError:
                pass
    return sch.func


ROWS = (6, 4, 3, 2)  # register-tile rows (the second-to-last spatial loop)
COLS = (16, 8)    # register-tile columns (the last spatial loop: vector lanes); a shorter loop is taken whole
WHOLE = 32        # the longest last loop taken whole as the tile's columns


def _register_tile(sch: Schedule, block: str) -> bool:
    """A register tile for a reduction: the two innermost spatial loops split into a
    ``rows × cols`` tile accumulated in a local buffer across the whole reduction (rows
    unrolled, columns vectorized), then written out once. False when the loops do not
    allow it (the schedule is then left half-done: the caller discards it)."""
    loops = sch._loops_above(block)
    red = _reduction_loops(sch, block)
    spatial = [v for v in loops if v not in red]
    reduce_ = [v for v in loops if v in red]
    if len(spatial) < 2 or not reduce_:
        return False
    a, b = spatial[-2], spatial[-1]
    ea, eb = sch._loop(a).extent, sch._loop(b).extent
    if not (isinstance(ea, IntImm) and isinstance(eb, IntImm)):
        return False
    rows = next((r for r in ROWS if ea.value % r == 0), 1)
    cols = next((c for c in COLS if eb.value % c == 0), eb.value if eb.value <= WHOLE else 0)
    if not cols or rows * cols < 16:
        return False
    try:
        a0, a1 = sch.split(a, [None, rows])
        b0, b1 = sch.split(b, [None, cols])
        sch.reorder(*spatial[:-2], a0, b0, *reduce_, a1, b1)
        out = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(out, b0)
        sch.decompose_reduction(block, reduce_[0])
        sch.unroll(a1)
        sch.vectorize(b1)
    except ScheduleError:
        return False
    return True


def _innermost_spatial(sch: Schedule, block: str) -> None:
    """The last spatial loop innermost (contiguous, so it vectorizes) and the init hoisted."""
    loops = sch._loops_above(block)
    realize_vars = _reduction_loops(sch, block)
    spatial = [v for v in loops if v not in realize_vars]
    reduce_ = [v for v in loops if v in realize_vars]
    if spatial and reduce_ and loops.index(spatial[-1]) < loops.index(reduce_[-1]):
        try:
            sch.reorder(*reduce_, spatial[-1])
        except ScheduleError:
            pass
    loops = sch._loops_above(block)
    first = next((v for v in loops if v in realize_vars), None)
    if first is not None:
        try:
            sch.decompose_reduction(block, first)
        except ScheduleError:
            pass


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
