"""Default GPU schedules for pooling (`vta.compiler.tir.nn.pool2d`, `global_pool`) and other
short reductions.

- A short reduction (fewer than ``ROW_MIN`` steps: a pooling window, a small image plane of
  a global pool) is computed by one thread per output, consecutive threads on consecutive
  outputs (so that they read neighbouring inputs: a window's rows are coalesced across the
  warp), its loops unrolled when the window is small (`MAX_UNROLL`).
- When an elementwise stage reads the reduction's result at its own indices and nothing
  else reads it (an average pool's division by the window size, a mean's division), both
  stages are one kernel: the thread that sums a window divides it, and the sum lives in a
  register (`fused_reduction`), never in global memory.

A global pool over a large plane (``ROW_MIN`` elements or more) is a row reduction: the
row kernel of `schedule` (a block per (n, c), a cross-thread tree in shared memory). So is
a short one of at least 16 steps with fewer than `FEW_OUTPUTS` outputs (a global pool over
7×7 planes), with a warp per output: a thread each would leave most of the GPU idle, and
their reads (a plane apart) would not coalesce.
"""

from __future__ import annotations

import dataclasses
import math

from vta.compiler.tir.expr import Add, Expr, IntImm, Max, Min, Mul, Sub, Var, children, free_vars, rebuild
from vta.compiler.tir.scalar import dtype_of
from vta.compiler.tir.schedule import Schedule, ScheduleError
from vta.compiler.tir.stmt import (
    Block,
    BlockRealize,
    Buffer,
    BufferLoad,
    BufferRegion,
    BufferStore,
    Cast,
    For,
    Range,
    Stmt,
)
from vta.compiler.tir.transform import replace_stmt, walk_stmt

from .launch import WARP
from .primitives import (
    THREADS,
    VECTOR,
    bind,
    cross_thread_reduce,
    loads,
    merge_stages,
    next_pow2,
    perfect_nest,
    reduction_parts,
    thread_per_element,
)

MAX_UNROLL = 64  # a window of at most this many taps is unrolled
FEW_OUTPUTS = 1 << 16  # a thread per output fills a quarter of an H100/H200 (132 SMs × 2048 threads) at most


def _short_reduction(st: Stmt, row_min: int, long: bool = False) -> tuple[list[For], list[For], BlockRealize] | None:
    """(spatial loops, reduction loops, block) of a stage that is a perfect nest of its spatial
    loops, then fewer than ``row_min`` steps of reduction loops (with ``long``: at least that
    many), around one reduction block."""
    got = perfect_nest(st)
    if got is None:
        return None
    loops, real = got
    blk = real.block
    if blk.init is None or reduction_parts(blk) is None or list(real.iter_values) != [f.var for f in loops]:
        return None
    kinds = [iv.kind for iv in blk.iter_vars]
    ns = kinds.count("S")
    if kinds != ["S"] * ns + ["R"] * (len(kinds) - ns) or ns == len(kinds) or ns == 0:
        return None
    if not all(isinstance(f.extent, IntImm) for f in loops):
        return None
    red = loops[ns:]
    if (math.prod(f.extent.value for f in red) >= row_min) != long:  # type: ignore[attr-defined]
        return None
    return loops[:ns], red, real


def _reads(blk: Block, buf: object) -> list[BufferLoad]:
    from vta.compiler.tir.expr import children

    out: list[BufferLoad] = []

    def visit(e: object) -> None:
        if isinstance(e, BufferLoad) and e.buffer is buf:
            out.append(e)
        for k in children(e):  # type: ignore[arg-type]
            visit(k)

    for s in walk_stmt(blk.body):
        if isinstance(s, BufferStore):
            visit(s.value)
            for i in s.indices:
                visit(i)
    return out


def _consumer(sch: Schedule, st: Stmt, buf: object, spatial: list[For]) -> bool:
    """Whether stage ``st`` is an elementwise nest over the same extents as ``spatial`` that
    reads ``buf`` only at its own iterators, and no other block reads ``buf``."""
    got = perfect_nest(st)
    if got is None:
        return False
    loops, real = got
    blk = real.block
    if blk.init is not None or any(iv.kind == "R" for iv in blk.iter_vars) or \
            [getattr(f.extent, "value", None) for f in loops] != [f.extent.value for f in spatial]:  # type: ignore[attr-defined]
        return False
    if list(real.iter_values) != [f.var for f in loops]:
        return False
    own = tuple(iv.var for iv in blk.iter_vars)
    loads = _reads(blk, buf)
    if not loads or any(tuple(ld.indices) != own for ld in loads):
        return False
    readers = [b for b in walk_stmt(sch.func.body) if isinstance(b, Block) and b is not blk and
               any(r.buffer is buf for r in b.reads) and not (isinstance(b.body, BufferStore) and b.body.buffer is buf)]
    return not readers


def _unroll(sch: Schedule, red: list[Var]) -> None:
    if math.prod(sch._loop(v).extent.value for v in red) <= MAX_UNROLL:  # type: ignore[attr-defined]
        for v in red:
            sch.unroll(v)


def _scalar_local(sch: Schedule, buf: Buffer) -> None:
    """Replace the intermediate ``buf`` by a one-element ``local`` buffer: valid where each
    iteration of the loop around its writer and its reader writes the element it then reads
    (as the merged stages of `fused_reduction` do), so that no iteration sees another's."""
    one = Buffer(f"{buf.name}_local", (IntImm(1),), buf.dtype, "local")
    zero = (IntImm(0),)

    def e(x: Expr) -> Expr:
        if isinstance(x, BufferLoad) and x.buffer is buf:
            return BufferLoad(one, zero)
        kids = children(x)
        return rebuild(x, tuple(e(k) for k in kids)) if kids else x

    def st(s: Stmt) -> Stmt | None:
        if isinstance(s, BufferStore):
            if s.buffer is buf:
                return BufferStore(one, e(s.value), zero)
            return BufferStore(s.buffer, e(s.value), tuple(e(i) for i in s.indices))
        return None

    def regions(rs: tuple[BufferRegion, ...]) -> tuple[BufferRegion, ...]:
        return tuple(BufferRegion(one, (Range(IntImm(0), IntImm(1)),)) if r.buffer is buf else r for r in rs)

    def fn(x: Stmt) -> Stmt | None:
        if isinstance(x, Block) and any(r.buffer is buf for r in (*x.reads, *x.writes)):
            return dataclasses.replace(x, reads=regions(x.reads), writes=regions(x.writes), body=replace_stmt(x.body, st),
                                       init=replace_stmt(x.init, st) if x.init is not None else None)
        return None

    sch.func = dataclasses.replace(sch.func, body=replace_stmt(sch.func.body, fn),
                                   allocs=tuple(one if b is buf else b for b in sch.func.allocs))
    sch.trace.append(f"# {buf.name} -> {one.name}, one register per thread")


def _float_counts(sch: Schedule, block: str) -> None:
    """In ``block``, a float conversion of integer sums, differences and products (an average
    pool's window size, ``(min(y0 + kh, H) - max(y0, 0)) · (...)``) converts each term and
    computes in float instead: exact, the terms being small integers (coordinates and sizes
    of an image, below 2^24), and it keeps LLVM from turning ``max(2·y - 1, 0)`` of a
    non-negative ``y`` into a saturating subtraction (``llvm.usub.sat``), which the code
    generator's NVPTX check (`codegen.check_declarations`) refuses."""
    def push(x: Expr, dt: str) -> Expr:
        if isinstance(x, (Add, Sub, Mul, Min, Max)):
            return type(x)(push(x.a, dt), push(x.b, dt))
        return Cast(dt, x)

    def e(x: Expr) -> Expr:
        if isinstance(x, Cast) and x.dtype == "float32" and isinstance(x.value, (Add, Sub, Mul, Min, Max)) and \
                (dtype_of(x.value) or "int64").startswith("int"):
            return push(x.value, x.dtype)
        kids = children(x)
        return rebuild(x, tuple(e(k) for k in kids)) if kids else x

    def fn(x: Stmt) -> Stmt | None:
        if isinstance(x, Block) and x.name == block and isinstance(x.body, BufferStore):
            st = x.body
            return dataclasses.replace(x, body=BufferStore(st.buffer, e(st.value), st.indices))
        return None

    sch.func = dataclasses.replace(sch.func, body=replace_stmt(sch.func.body, fn))


def fused_reduction(sch: Schedule, k: int, row_min: int) -> bool:
    """Stage ``k`` (a reduction) and stage ``k + 1`` (its elementwise consumer) as one kernel;
    False (``sch`` untouched) when they are not such a pair. A short reduction: a thread per
    output, the accumulator in a register. A long one (``row_min`` steps or more: a global
    pool over a large plane): a block per output, `cross_thread_reduce` over its threads,
    then the consumer on the thread that holds the result."""
    from .lower import stages

    sts = stages(sch.func)
    if k + 1 >= len(sts):
        return False
    long = False
    got = _short_reduction(sts[k], row_min)
    if got is None:
        got, long = _short_reduction(sts[k], row_min, long=True), True
    if got is None:
        return False
    spatial, red, real = got
    buf = real.block.body.buffer  # type: ignore[attr-defined]
    if buf not in sch.func.allocs or not _consumer(sch, sts[k + 1], buf, spatial):
        return False
    n = math.prod(f.extent.value for f in red)  # type: ignore[attr-defined]
    threads = min(THREADS, next_pow2(n))
    if not long and _warp_per_output(spatial, red, real):
        long, threads = True, WARP
    trial = Schedule(sch.func)
    try:
        outer = merge_stages(trial, k, 2, len(spatial))
        if long:
            cross_thread_reduce(trial, real.block.name, threads, VECTOR)
            f = trial.fuse(*outer) if len(outer) > 1 else outer[0]
            bind(trial, f, "blockIdx.x")
        else:
            thread_per_element(trial, outer, THREADS)
        _scalar_local(trial, buf)
        _float_counts(trial, perfect_nest(sts[k + 1])[1].block.name)  # type: ignore[index]
        if not long:
            _unroll(trial, [f.var for f in red])
    except ScheduleError:
        return False
    sch.func, sch.trace = trial.func, sch.trace + trial.trace
    return True


def _warp_per_output(spatial: list[For], red: list[For], real: BlockRealize) -> bool:
    """Whether a short reduction gets a warp per output instead of a thread: few outputs (a
    thread each would leave most of the GPU idle) of at least half a warp's length each,
    reducing one input (a pool, a mean: not a product of two, as a convolution's)."""
    n = math.prod(f.extent.value for f in red)  # type: ignore[attr-defined]
    parts = reduction_parts(real.block)
    one_input = parts is not None and len(loads(parts[1])) == 1
    return one_input and n >= WARP // 2 and math.prod(f.extent.value for f in spatial) < FEW_OUTPUTS  # type: ignore[attr-defined]


def short_reduction(sch: Schedule, k: int, row_min: int) -> bool:
    """Stage ``k`` as a short reduction, a thread per output, its loops unrolled when the
    window is small (a warp per output when `_warp_per_output`); False (untouched) when it
    is not one."""
    from .lower import stages

    got = _short_reduction(stages(sch.func)[k], row_min)
    if got is None:
        return False
    spatial, red, real = got
    rv = {v for iv, e in zip(real.block.iter_vars, real.iter_values) if iv.kind == "R" for v in free_vars(e)}
    if any(f.var in rv for f in spatial):
        return False
    trial = Schedule(sch.func)
    try:
        if _warp_per_output(spatial, red, real):
            cross_thread_reduce(trial, real.block.name, WARP, VECTOR)
            f = trial.fuse(*[x.var for x in spatial]) if len(spatial) > 1 else spatial[0].var
            bind(trial, f, "blockIdx.x")
        else:
            thread_per_element(trial, [f.var for f in spatial], THREADS)
            _unroll(trial, [f.var for f in red])
    except ScheduleError:
        return False
    sch.func, sch.trace = trial.func, sch.trace + trial.trace
    return True


__all__ = ["MAX_UNROLL", "fused_reduction", "short_reduction"]
