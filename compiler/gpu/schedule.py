"""Default GPU schedules for the host operator library (`vta.compiler.tir.nn`).

- Elementwise intermediates are inlined into their consumers first (where a consumer
  reads each element once: a fused chain becomes one kernel, a softmax's exponent is
  recomputed by the sum and the division instead of stored).
- Functions whose stages all work row by row (softmax, layer normalization: every stage's
  outer loops cover the rows of a reduction over the innermost axes) become one kernel
  with one thread block per row (`_row_kernel`): reductions are cross-thread tree
  reductions in shared memory (`primitives.cross_thread_reduce`), elementwise stages
  stride over the row with the block's threads, per-row statistics live in shared memory.
- Otherwise each stage is its own kernel:
  - a matmul-shaped reduction (``Y[..., i, j] += A[..., i, k] · B[..., k, j]``) gets a
    tiled schedule (`_matmul`): a block per output tile, A and B tiles staged through
    shared memory by all its threads for each step along k, each thread accumulating a
    register tile (rows and columns ``16`` apart, so that shared-memory reads are free of
    bank conflicts and global writes coalesce);
  - a float32 NCHW convolution (`conv.schedule_conv2d`): dense ones tiled through shared
    memory with a register tile per thread, their padding stage inlined into the tile copy;
    depthwise, grouped and few-channel ones a thread per output, the window unrolled;
  - a reduction whose result one elementwise stage reads at its own indices (an average
    pool's division, a mean's): both stages one kernel (`pool.fused_reduction`), a thread per
    output with the sum in a register, or a block per output for a long reduction (a
    global pool over a large plane);
  - a reduction over long innermost axes: a block per output, `cross_thread_reduce`;
  - a short reduction (a pooling window): a thread per output, the window unrolled
    (`pool.short_reduction`);
  - any other stage (elementwise, short reductions): one thread per output element, in
    blocks of `THREADS`.
"""

from __future__ import annotations

import dataclasses
import math

from vta.compiler.tir.expr import And, Expr, IntImm, Mul, Var, and_, free_vars
from vta.compiler.tir.schedule import Schedule, ScheduleError
from vta.compiler.tir.stmt import Block, BlockRealize, BufferLoad, BufferStore, Cast, For, PrimFunc, Stmt
from vta.compiler.tir.transform import replace_stmt, walk_stmt

from .conv import schedule_conv2d
from .pool import fused_reduction, short_reduction
from .primitives import (
    THREADS,
    UNROLL_STEPS,
    VECTOR,
    bind,
    cooperative_fetch,
    cross_thread_reduce,
    loads,
    merge_stages,
    next_pow2,
    perfect_nest,
    reduction_parts,
    thread_per_element,
)

ROW_MIN = 64  # a reduction at least this long gets a thread block of its own
SM_COUNT = 132  # an H100/H200: a matmul tile is chosen to give at least this many blocks
MATMUL_TILES = ((128, 128, 16), (64, 64, 16), (32, 32, 16))  # (rows, columns, k step) of a block tile, largest first
MATMUL_THREADS = (16, 16)  # (y, x) threads of a matmul block
SHARED_SCALARS = 1024  # a per-row intermediate up to this many elements per block goes to shared memory


def default_schedule(func: PrimFunc) -> PrimFunc:
    """``func`` scheduled for the GPU (see the module docstring)."""
    sch = Schedule(func)
    _inline_elementwise(sch)
    if _row_kernel(sch):
        return sch.func
    # each stage once, in order; a schedule may remove another stage (a convolution inlines its
    # padding into its shared-memory copy), so look for the next unscheduled stage afresh
    while True:
        todo = [k for k, st in enumerate(_stages(sch)) if not _bound(st)]
        if not todo:
            return sch.func
        _stage(sch, todo[0])
        if len([st for st in _stages(sch) if not _bound(st)]) >= len(todo):
            raise ScheduleError(f"no default GPU schedule bound stage {todo[0]} of {sch.func.name}")


def _bound(st: Stmt) -> bool:
    """Whether the stage is scheduled already (a loop of it is bound to a GPU axis)."""
    return any(isinstance(s, For) and s.kind == "thread_binding" for s in walk_stmt(st))


def _stages(sch: Schedule) -> list[Stmt]:
    from .lower import stages

    return stages(sch.func)


def _reduce_loops(loops: list[For], real: BlockRealize) -> list[For]:
    rv = {v for iv, e in zip(real.block.iter_vars, real.iter_values) if iv.kind == "R" for v in free_vars(e)}
    return [f for f in loops if f.var in rv]


def _extents(loops: list[For]) -> list[int] | None:
    if not all(isinstance(f.extent, IntImm) for f in loops):
        return None
    return [f.extent.value for f in loops]  # type: ignore[attr-defined]


# ---- inlining -------------------------------------------------------------------------

def _inline_elementwise(sch: Schedule) -> None:
    """Inline each elementwise intermediate whose every consumer reads each element once."""
    changed = True
    while changed:
        changed = False
        for st in _stages(sch):
            got = perfect_nest(st)
            if got is None or got[1].block.init is not None:
                continue
            blk = got[1].block
            if any(iv.kind == "R" for iv in blk.iter_vars) or not isinstance(blk.body, BufferStore):
                continue
            buf = blk.body.buffer
            if buf not in sch.func.allocs or not _read_once(sch.func.body, buf, blk):
                continue
            try:
                trial = Schedule(sch.func)
                trial.compute_inline(blk.name)
            except ScheduleError:
                continue
            sch.func = trial.func
            sch.trace.append(f"sch.compute_inline({blk.name!r})")
            changed = True
            break


def _read_once(body: Stmt, buf: object, producer: Block) -> bool:
    """Whether every block reading ``buf`` indexes it with all of its own iterators (so it
    reads each element at most once: inlining then recomputes nothing)."""
    readers = 0
    for s in walk_stmt(body):
        if not isinstance(s, Block) or s is producer:
            continue
        own = {iv.var for iv in s.iter_vars}
        for x in walk_stmt(s.body):
            if isinstance(x, BufferStore):
                for ld in loads(x.value):
                    if ld.buffer is buf:
                        readers += 1
                        used = set().union(*(free_vars(i) for i in ld.indices)) if ld.indices else set()
                        if not own <= used:
                            return False
    return readers > 0


# ---- one kernel per stage ---------------------------------------------------------------

def _stage(sch: Schedule, k: int) -> None:
    got = perfect_nest(_stages(sch)[k])
    if got is None:
        raise ScheduleError(f"no default GPU schedule for stage {k} of {sch.func.name}: it is not a perfect loop nest "
                            "around one block")
    loops, real = got
    red = _reduce_loops(loops, real)
    name = real.block.name
    if red:
        if _matmul(sch, name) or schedule_conv2d(sch, name) or fused_reduction(sch, k, ROW_MIN):
            return
        ext = _extents(red)
        if ext is not None and loops[-len(red):] == red and math.prod(ext) >= ROW_MIN:
            spatial = [f.var for f in loops[:-len(red)]]
            cross_thread_reduce(sch, name, min(THREADS, next_pow2(math.prod(ext))), VECTOR)
            _bind_blocks(sch, spatial)
            return
    if red and short_reduction(sch, k, ROW_MIN):
        return
    spatial = [f.var for f in loops if f not in red]
    if loops[:len(spatial)] != [f for f in loops if f not in red]:
        raise ScheduleError(f"no default GPU schedule for block {name}: its spatial loops are not its outer loops")
    thread_per_element(sch, spatial, THREADS, VECTOR)


def _bind_blocks(sch: Schedule, loops: list[Var]) -> None:
    """The loops fused and bound to blockIdx.x (a single block when there are none)."""
    if not loops:
        return
    f = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    bind(sch, f, "blockIdx.x")


# ---- matmul -------------------------------------------------------------------------------

def _operand(e: object) -> BufferLoad | None:
    if isinstance(e, Cast):
        e = e.value
    return e if isinstance(e, BufferLoad) else None


def matmul_operands(sch: Schedule, block: str) -> tuple[int, int] | None:
    """The read indices of A and B when ``block`` is ``Y[..., i, j] += A[.., i, k] · B[.., k, j]``
    over loops ``(..., i, j, k)`` that bind its iterators in order; None otherwise."""
    real = next((s for s in walk_stmt(sch.func.body) if isinstance(s, BlockRealize) and s.block.name == block), None)
    if real is None:
        return None
    blk = real.block
    parts = reduction_parts(blk)
    loops = sch._loops_above(block)
    if parts is None or parts[0] != "sum" or not isinstance(parts[1], Mul) or len(loops) != len(blk.iter_vars) or \
            list(real.iter_values) != loops or len(loops) < 3:
        return None
    ivs = blk.iter_vars
    if [iv.kind for iv in ivs] != ["S"] * (len(ivs) - 1) + ["R"]:
        return None
    vi, vj, vr = ivs[-3].var, ivs[-2].var, ivs[-1].var
    a, b = _operand(parts[1].a), _operand(parts[1].b)
    if a is None or b is None:
        return None

    def uses(ld: BufferLoad) -> set[Var]:
        return set().union(*(free_vars(i) for i in ld.indices))

    if vj in uses(a) or vi in uses(b):
        a, b = b, a
    if not ({vi, vr} <= uses(a) and vj not in uses(a) and {vj, vr} <= uses(b) and vi not in uses(b)):
        return None
    reads = [r.buffer for r in blk.reads]
    if a.buffer is b.buffer or a.buffer not in reads or b.buffer not in reads:
        return None
    return reads.index(a.buffer), reads.index(b.buffer)


def matmul_tile(batch: int, m: int, n: int) -> tuple[int, int, int]:
    """The largest block tile of `MATMUL_TILES` that still gives `SM_COUNT` blocks (the
    smallest when none does)."""
    for bm, bn, bk in MATMUL_TILES:
        if batch * -(-m // bm) * -(-n // bn) >= SM_COUNT:
            return bm, bn, bk
    return MATMUL_TILES[-1]


def _matmul(sch: Schedule, block: str) -> bool:
    ops = matmul_operands(sch, block)
    if ops is None:
        return False
    *batch, i, j, k = sch._loops_above(block)
    m, n, kk = (sch._loop(v).extent.value for v in (i, j, k))  # type: ignore[attr-defined]
    if min(m, n, kk) < 16:
        return False
    nb = math.prod(sch._loop(v).extent.value for v in batch)  # type: ignore[attr-defined]
    bm, bn, bk = matmul_tile(nb, m, n)
    ty_n, tx_n = MATMUL_THREADS
    rm, rn = bm // ty_n, bn // tx_n
    blk = next(s for s in walk_stmt(sch.func.body) if isinstance(s, Block) and s.name == block)
    a_buf, b_buf = blk.reads[ops[0]].buffer, blk.reads[ops[1]].buffer
    by, yi, ty = sch.split(i, [None, rm, ty_n])
    bx, xi, tx = sch.split(j, [None, rn, tx_n])
    ko, ki = sch.split(k, [None, bk])
    sch.reorder(*batch, by, bx, ko, ty, tx, ki, yi, xi)
    out = sch.cache_write(block, 0, "local")
    sch.reverse_compute_at(out, bx)
    init = sch.decompose_reduction(block, ko)
    _drop_stale_conditions(sch, init)
    for src in (a_buf, b_buf):
        reads = [r.buffer for r in next(s for s in walk_stmt(sch.func.body)
                                        if isinstance(s, Block) and s.name == block).reads]
        cache = sch.cache_read(block, reads.index(src), "shared")
        sch.compute_at(cache, ko)
        for v in cooperative_fetch(sch, cache, ko, MATMUL_THREADS):
            sch.unroll(v)
    # the write-out: the same rows and columns per thread as the compute
    *_, a0, a1 = sch.get_loops(out)
    a0o, a0i = sch.split(a0, [rm, ty_n])
    a1o, a1i = sch.split(a1, [rn, tx_n])
    sch.reorder(a0i, a1i, a0o, a1o)
    *_, ty0, tx0, yi0, xi0 = sch.get_loops(init)
    for y, x, r0, r1 in ((ty, tx, yi, xi), (ty0, tx0, yi0, xi0), (a0i, a1i, a0o, a1o)):
        bind(sch, y, "threadIdx.y")
        bind(sch, x, "threadIdx.x")
        sch.unroll(r0)
        sch.unroll(r1)
    sch.unroll(ki)
    if batch:
        bz = sch.fuse(*batch) if len(batch) > 1 else batch[0]
        bind(sch, bz, "blockIdx.z")
    bind(sch, by, "blockIdx.y")
    bind(sch, bx, "blockIdx.x")
    return True


def _drop_stale_conditions(sch: Schedule, block: str) -> None:
    """Drop the conjuncts of ``block``'s predicate over variables no loop around it binds.
    (`Schedule.decompose_reduction` copies the update's predicate, reduction-loop bounds
    included, onto the init block it makes; there those loops do not exist.)"""
    around = set(sch._loops_above(block))

    def conjuncts(e: Expr) -> list[Expr]:
        return conjuncts(e.a) + conjuncts(e.b) if isinstance(e, And) else [e]

    def fix(s: Stmt) -> Stmt | None:
        if isinstance(s, BlockRealize) and s.block.name == block:
            keep = [c for c in conjuncts(s.predicate) if free_vars(c) <= around]
            pred: Expr = IntImm(1)
            for c in keep:
                pred = c if isinstance(pred, IntImm) else and_(pred, c)
            return dataclasses.replace(s, predicate=pred)
        return None

    sch.func = dataclasses.replace(sch.func, body=replace_stmt(sch.func.body, fix))


# ---- row kernels --------------------------------------------------------------------------

def _row_prefix(loops: list[For], rows: int) -> int | None:
    """How many outer loops cover exactly ``rows`` iterations (None when no prefix does)."""
    ext = _extents(loops)
    if ext is None:
        return None
    p, n = 0, 1
    while p < len(ext) and n < rows:
        n *= ext[p]
        p += 1
    return p if n == rows and p > 0 else None


def _row_kernel(sch: Schedule) -> bool:
    """Schedule a multi-stage row-wise function as one kernel, a block per row (see the
    module docstring); False (``sch`` untouched) when the function is not one."""
    sts = _stages(sch)
    if len(sts) < 2:
        return False
    nests = [perfect_nest(st) for st in sts]
    if any(x is None for x in nests):
        return False
    rows, length = None, 0
    for loops, real in nests:  # type: ignore[misc]
        red = _reduce_loops(loops, real)
        ext = _extents(red)
        if red and ext is not None and loops[-len(red):] == red:
            sp = _extents(loops[:-len(red)])
            if sp is None:
                return False
            if rows is None:
                rows = math.prod(sp)
            length = max(length, math.prod(ext))
    if rows is None or rows < 2 or length < ROW_MIN:
        return False
    threads = min(THREADS, next_pow2(length))
    trial = Schedule(sch.func)
    prefixes = []
    try:
        for k in range(len(sts)):
            loops, real = perfect_nest(_stages(trial)[k])  # type: ignore[misc]
            red = _reduce_loops(loops, real)
            p = _row_prefix(loops, rows)
            if p is None or (red and (p != len(loops) - len(red) or loops[p:] != red)):
                return False
            prefixes.append(_extents(loops[:p]))
            if red:
                if reduction_parts(real.block) is None:
                    return False
                cross_thread_reduce(trial, real.block.name, threads, VECTOR)
                continue
            rest = [f.var for f in loops[p:]]
            n = math.prod(_extents(loops[p:]) or [0])
            if rest and n > 1:
                c = trial.fuse(*rest) if len(rest) > 1 else rest[0]
                if n % VECTOR == 0 and n >= 32 * VECTOR:  # neighbouring elements per thread: vector accesses
                    c, vi = trial.split(c, [None, VECTOR])
                    trial.vectorize(vi)
                co, ci = trial.split(c, [None, threads])
                bind(trial, ci, "threadIdx.x")
                if trial._loop(co).extent.value <= UNROLL_STEPS:  # type: ignore[attr-defined]
                    trial.unroll(co)  # LLVM then reuses the row's loads of the reductions before
        if any(x != prefixes[0] for x in prefixes):
            return False
        outer = merge_stages(trial, 0, len(sts), len(prefixes[0]))  # type: ignore[arg-type]
        r = trial.fuse(*outer) if len(outer) > 1 else outer[0]
        bind(trial, r, "blockIdx.x")
    except ScheduleError:
        return False
    _shared_per_row(trial)
    sch.func, sch.trace = trial.func, sch.trace + trial.trace
    return True


def _shared_per_row(sch: Schedule) -> None:
    """Move each global intermediate that a block touches only a small slice of to shared memory."""
    from vta.compiler.tir.compact import compact

    for buf in [b for b in sch.func.allocs if b.scope == "global"]:
        trial = Schedule(sch.func)
        trial.set_scope(buf.name, "shared")
        small = next(b for b in compact(trial.func, scopes=("shared",)).allocs if b.name == buf.name)
        if math.prod(d.value for d in small.shape) <= SHARED_SCALARS:  # type: ignore[attr-defined]
            sch.func = trial.func
            sch.trace.append(f"sch.set_scope({buf.name!r}, 'shared')")


__all__ = ["MATMUL_THREADS", "MATMUL_TILES", "ROW_MIN", "THREADS", "default_schedule", "matmul_operands",
           "matmul_tile"]
