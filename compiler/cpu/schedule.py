"""Default CPU schedules for the host operator library: a reduction (matmul, conv, pooling)
gets a register tile (`_register_tile`), accumulated in a local buffer
across the reduction with vectorized columns; a reduction that does not allow one gets its
last spatial loop innermost (contiguous, so it vectorizes) and its init hoisted; each
stage of a function that is not tiny runs its outer spatial loops (fused until there are
enough iterations) in parallel; whether threads are used is decided per call from the work of
the group of stages (`groups`, `jit.PARALLEL_WORK`)."""

from __future__ import annotations

from vta.compiler.tir.expr import Expr, IntImm, Var, children, free_vars, substitute
from vta.compiler.tir.schedule import Schedule, ScheduleError
from vta.compiler.tir.simplify import linear_form
from vta.compiler.tir.stmt import Block, BlockRealize, BufferLoad, BufferStore, For, PrimFunc, SeqStmt
from vta.compiler.tir.transform import walk_stmt

from .groups import iterations
from .lanes import lane_chunks


def default_schedule(func: PrimFunc) -> PrimFunc:
    sch = Schedule(func)
    for blk in [s for s in walk_stmt(func.body) if isinstance(s, Block) and s.init is not None]:
        trial = Schedule(sch.func)
        if _register_tile(trial, blk.name):
            sch = trial
        else:
            _innermost_spatial(sch, blk.name)
    body = sch.func.body
    roots = body.stmts if isinstance(body, SeqStmt) else (body,)
    if any(iterations(st) >= PARALLEL_MIN for st in roots):  # every stage then, so row-aligned ones group
        for st in roots:
            if isinstance(st, For):
                _parallel_outer(sch, st)
    return sch.func


PARALLEL_CHUNKS = 8  # outer iterations a parallel loop should have (fused from the outer loops until it does)
PARALLEL_MIN = 1 << 12  # a function whose stages are all smaller stays serial (one entry point)


def _parallel_outer(sch: Schedule, st: For) -> None:
    """Run the stage's outer loop in parallel, fused with the perfectly nested loops below it
    until it has `PARALLEL_CHUNKS` iterations (a batch of 1 alone does not split)."""
    chain, n, s = [], 1, st
    while isinstance(s, For) and isinstance(s.extent, IntImm) and s.kind == "serial" and n < PARALLEL_CHUNKS:
        chain.append(s.var)
        n *= s.extent.value
        s = s.body
    if n < 2:
        return
    trial = Schedule(sch.func)
    try:
        trial.parallel(trial.fuse(*chain) if len(chain) > 1 else chain[0])
    except ScheduleError:
        return
    sch.func = trial.func


ACCUMULATORS = 16  # vector registers a register tile may hold (of 32 with AVX-512)


def _register_tile(sch: Schedule, block: str) -> bool:
    """A register tile for a reduction: the last spatial loop (the columns, vector lanes)
    and a row loop split into a ``rows × cols`` tile accumulated in a local buffer across
    the whole reduction (rows unrolled, columns vectorized), then written out once. The
    row loop is the innermost spatial loop that the column operand does not depend on (a
    convolution's output channels, a matmul's rows), so each vector load of that operand
    serves every row. False when the loops do not allow it (the schedule is then left
    half-done: the caller discards it)."""
    loops = sch._loops_above(block)
    red = _reduction_loops(sch, block)
    spatial = [v for v in loops if v not in red]
    reduce_ = [v for v in loops if v in red]
    if len(spatial) < 2 or not reduce_:
        return False
    b = spatial[-1]
    if not _steps_evenly(sch, block, b):
        return False
    a = _row_loop(sch, block, spatial[:-1], b)
    ea, eb = sch._loop(a).extent, sch._loop(b).extent
    if not (isinstance(ea, IntImm) and isinstance(eb, IntImm)):
        return False
    lanes = vector_bits() // _bits(sch, block)
    tile = _tile(ea.value, eb.value, lanes)
    if tile is None:
        return False
    rows, cols = tile
    try:
        a0, a1 = sch.split(a, [None, rows])
        b0, b1 = sch.split(b, [None, cols])
        sch.reorder(*[v for v in spatial if v not in (a, b)], a0, b0, *reduce_, a1, b1)
        out = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(out, b0)
        sch.decompose_reduction(block, reduce_[0])
        sch.unroll(a1)
        sch.vectorize(b1)
    except ScheduleError:
        return False
    return True


def _tile(rows_extent: int, cols_extent: int, lanes: int) -> tuple[int, int] | None:
    """(rows, cols): columns a divisor of the loop of at most two vectors filling the
    registers best (the larger on ties) when that fills them at least half; otherwise one
    or two whole vectors with a masked tail tile (14 as 16 with 2 lanes off: the tail's
    masked reads cost more than a divisor's partly empty registers, so only then); rows
    dividing their loop, as many as the accumulator budget allows. None when the tile would
    be under two vectors or its registers less than `MIN_FILLED` full."""
    divisors = [d for d in range(1, min(cols_extent, 2 * lanes) + 1) if cols_extent % d == 0]
    cols = max(divisors, key=lambda d: (_filled(d, cols_extent, lanes), d))
    if _filled(cols, cols_extent, lanes) < 0.5:
        cols = max([cols, lanes, *([2 * lanes] if 2 * lanes < 2 * cols_extent else [])],
                   key=lambda d: (_filled(d, cols_extent, lanes), d))
    vecs = _registers(cols, lanes)
    rows = max((r for r in range(1, min(rows_extent, ACCUMULATORS // vecs, MAX_ROWS) + 1) if rows_extent % r == 0),
               default=1)
    ok = rows * vecs >= 2 and rows * min(cols, cols_extent) >= lanes and _filled(cols, cols_extent, lanes) >= MIN_FILLED
    return (rows, cols) if ok else None


MIN_FILLED = 0.4  # a tile whose registers are emptier than this loses to the untiled loop


def _filled(cols: int, extent: int, lanes: int) -> float:
    """The share of register lanes doing work when ``extent`` columns run as tiles of ``cols``."""
    return extent / (-(-extent // cols) * _registers(cols, lanes) * lanes)


def _registers(cols: int, lanes: int) -> int:
    """Vector registers a row of ``cols`` lanes takes (emitted as power-of-two vectors: `lanes.lane_chunks`)."""
    return sum(-(-w // lanes) for _, w in lane_chunks(cols))


MAX_ROWS = 12  # an unrolled row loop longer than this costs more code than it saves


def _row_loop(sch: Schedule, block: str, candidates: list[Var], cols: Var) -> Var:
    """The innermost of ``candidates`` along which no read that moves with ``cols`` moves
    (so one vector load of it serves every row); the innermost candidate when none is."""
    moving = [ld for ld in _block_loads(sch, block) if any(cols in free_vars(i) for i in ld)]
    for v in reversed(candidates):
        if _extent(sch, v) > 1 and not any(v in free_vars(i) for ld in moving for i in ld):
            return v
    return candidates[-1]


MAX_STEP = 2  # a column operand striding further than this (a transposed matrix) is read better along the reduction


def _steps_evenly(sch: Schedule, block: str, cols: Var) -> bool:
    """Whether every read that moves with ``cols`` moves along its last dimension only, by at
    most `MAX_STEP` elements per column (vector loads, or cheap strided ones)."""
    for idx in _block_loads(sch, block):
        if not any(cols in free_vars(i) for i in idx):
            continue
        last = linear_form(idx[-1])
        if any(cols in free_vars(i) for i in idx[:-1]) or last is None or not 0 < last.coeffs.get(cols, 0) <= MAX_STEP:
            return False
    return True


def _extent(sch: Schedule, v: Var) -> int:
    e = sch._loop(v).extent
    return e.value if isinstance(e, IntImm) else 0


def _bits(sch: Schedule, block: str) -> int:
    """The bit width of the block's output element."""
    real = _realize(sch, block)
    dt = real.block.writes[0].buffer.dtype if real.block.writes else "float32"
    return {"int8": 8, "uint8": 8, "bool": 8, "int16": 16, "float16": 16, "int64": 64, "float64": 64}.get(dt, 32)


def vector_bits() -> int:
    """The host's vector register width in bits (512 with AVX-512, 256 with AVX, else 128)."""
    from .jit import host_vector_bits

    return host_vector_bits()


def _innermost_spatial(sch: Schedule, block: str) -> None:
    """The innermost loop the one that walks the block's memory contiguously (the last
    spatial loop, or the reduction when the reads run along it: a row sum stays a row sum),
    and the init hoisted."""
    loops = sch._loops_above(block)
    realize_vars = _reduction_loops(sch, block)
    spatial = [v for v in loops if v not in realize_vars]
    reduce_ = [v for v in loops if v in realize_vars]
    if spatial and reduce_ and loops.index(spatial[-1]) < loops.index(reduce_[-1]) and \
            _strided(sch, block, spatial[-1]) <= _strided(sch, block, reduce_[-1]):
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


def _realize(sch: Schedule, block: str) -> BlockRealize:
    return next(s for s in walk_stmt(sch.func.body) if isinstance(s, BlockRealize) and s.block.name == block)


def _block_loads(sch: Schedule, block: str) -> list[tuple[Expr, ...]]:
    """The indices of the block's reads (the accumulator's own excepted) in terms of the loops."""
    real = _realize(sch, block)
    binding = {iv.var: v for iv, v in zip(real.block.iter_vars, real.iter_values)}
    out = []
    for s in walk_stmt(real.block.body):
        if isinstance(s, BufferStore):
            out += [tuple(substitute(i, binding) for i in ld.indices) for ld in _loads(s.value)
                    if ld.buffer is not s.buffer and ld.indices]
    return out


def _strided(sch: Schedule, block: str, loop: Var) -> int:
    """How many of the block's reads neither stay put nor step by one element along
    ``loop``: the accesses that make it a poor innermost loop."""
    n = 0
    for idx in _block_loads(sch, block):
        if not any(loop in free_vars(i) for i in idx):
            continue  # invariant: hoisted out of the loop
        last = linear_form(idx[-1])
        n += not (last is not None and last.coeffs.get(loop) == 1 and not any(loop in free_vars(i) for i in idx[:-1]))
    return n


def _loads(e: object) -> list[BufferLoad]:
    out = [e] if isinstance(e, BufferLoad) else []
    for k in children(e):  # type: ignore[arg-type]
        out += _loads(k)
    return out


def _reduction_loops(sch: Schedule, block: str) -> set[Var]:
    out = set()
    for s in walk_stmt(sch.func.body):
        if isinstance(s, BlockRealize) and s.block.name == block:
            for iv, v in zip(s.block.iter_vars, s.iter_values):
                if iv.kind == "R":
                    out |= free_vars(v)
    return out
