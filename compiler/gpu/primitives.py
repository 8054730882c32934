"""Schedule helpers the GPU needs beyond `vta.compiler.tir.schedule` (each works on a
`Schedule` and records itself in its trace as a comment-free call line):

- `bind`: like `Schedule.bind`, but an axis may be bound by several loops of a function
  (a kernel's copy, compute and write-out phases each have a ``threadIdx.x`` loop; the
  stages of a function each bind ``blockIdx.x``), never by a loop inside another bound
  to it. (`Schedule.bind` allows each axis once per function.)
- `cooperative_fetch`: the copy nest that `compute_at` placed for a ``shared`` cache,
  spread over the block's threads (fused, split by the thread extents, bound).
- `cross_thread_reduce`: a reduction over its innermost loops computed by one thread
  block: each thread accumulates a strided share into a ``shared`` array, a tree halves
  it (one barrier a level, which the code generator places), thread 0 writes the result.
  The schedule primitives cannot express it (`bind` refuses a loop that drives a
  reduction iterator, and there is no rfactor); it is a rewrite of the recognizable
  pattern ``Y[v] = op(Y[v], f(v, r))`` with ``op`` one of ``+``, ``max``, ``min``.
- `merge_stages`: consecutive root stages whose outer loops have the same extent and are
  row-aligned (`row_aligned_shared`) as one stage under one loop, so that
  they become one kernel (a softmax's max, sum and normalization per row in one block).
"""

from __future__ import annotations

import dataclasses
import math

from vta.compiler.cpu.groups import row_regions, same_slices
from vta.compiler.tir.expr import Add, Expr, IntImm, Max, Min, Var, and_, free_vars, substitute
from vta.compiler.tir.scalar import FloatImm
from vta.compiler.tir.schedule import THREAD_AXES, Schedule, ScheduleError
from vta.compiler.tir.simplify import linear_form, simplify
from vta.compiler.tir.stmt import (
    Block,
    BlockRealize,
    Buffer,
    BufferLoad,
    BufferStore,
    For,
    IterVar,
    SeqStmt,
    Stmt,
    as_region,
    seq,
)
from vta.compiler.tir.transform import replace_stmt, substitute_stmt, walk_stmt

from .lower import buffers_of, stages


def bind(sch: Schedule, loop: Var, axis: str) -> None:
    """Bind ``loop`` to the GPU ``axis`` (see the module docstring)."""
    if axis not in THREAD_AXES or axis == "vthread":
        raise ScheduleError(f"bind {loop.name}: thread axis {axis!r} is not one of "
                            f"{', '.join(a for a in THREAD_AXES if a != 'vthread')}")
    f = sch._loop(loop)
    for s in walk_stmt(sch.func.body):
        if isinstance(s, For) and s.kind == "thread_binding" and s.thread == axis and \
                (any(x is f for x in walk_stmt(s.body)) or any(x.var is s.var for x in walk_stmt(f.body)
                                                                if isinstance(x, For))):
            raise ScheduleError(f"bind {loop.name}: it is nested with loop {s.var.name}, already bound to {axis}")
    sch._set_kind(loop, "thread_binding", axis)
    sch.trace.append(f"gpu.bind(sch, {loop.name}, {axis!r})")


def cooperative_fetch(sch: Schedule, block: str, at: Var, threads: tuple[int, int]) -> list[Var]:
    """Spread the copy nest of ``block`` (below loop ``at``, where `compute_at` put it) over
    ``threads`` = (y, x) threads; returns the serial loops left to each thread. When the last
    two dimensions divide by the thread counts, each is split (x threads along the last,
    y along the one before: the indices stay affine, so the shared buffer compacts to the
    tile); otherwise the loops are fused and split ``[None, y, x]``. Either way consecutive
    threads copy consecutive elements."""
    loops = sch.get_loops(block)
    own = loops[loops.index(at) + 1:]
    if not own:
        raise ScheduleError(f"cooperative_fetch: block {block} has no loops of its own below {at.name}")
    ty, tx = threads
    ext = [sch._loop(v).extent for v in own]
    if len(own) >= 2 and all(isinstance(e, IntImm) for e in ext[-2:]) and \
            ext[-1].value % tx == 0 and ext[-2].value % ty == 0:  # type: ignore[attr-defined]
        c_o, c_i = sch.split(own[-1], [None, tx])
        r_o, r_i = sch.split(own[-2], [None, ty])
        sch.reorder(*own[:-2], r_o, c_o, r_i, c_i)
        serial = [*own[:-2], r_o, c_o]
        fy, fx = r_i, c_i
    else:
        f = sch.fuse(*own) if len(own) > 1 else own[0]
        fo, fy, fx = sch.split(f, [None, ty, tx])
        serial = [fo]
    if ty > 1:
        bind(sch, fy, "threadIdx.y")
    if tx > 1:
        bind(sch, fx, "threadIdx.x")
    sch.trace.append(f"# cooperative_fetch({block!r}, {at.name}, {threads})")
    return serial


# ---- cross-thread reduction -------------------------------------------------------------

THREADS = 256  # threads per block of an elementwise kernel or a cross-thread reduction
VECTOR = 4  # neighbouring elements per thread and step (one 16-byte access of float32)

REDUCE_OPS = {Add: "sum", Max: "max", Min: "min"}
UNROLL_STEPS = 16  # a thread's share of a cross-thread reduction is unrolled up to this many steps


def reduction_parts(blk: Block) -> tuple[str, Expr, Expr] | None:
    """(op, value, init) of a reduction block ``Y[v] = op(Y[v], value)`` with ``init``, or None."""
    body = blk.body
    if blk.init is None or not isinstance(body, BufferStore) or not isinstance(blk.init, BufferStore):
        return None
    v = body.value
    op = REDUCE_OPS.get(type(v))
    if op is None or not isinstance(v.a, BufferLoad) or v.a.buffer is not body.buffer or \
            tuple(v.a.indices) != tuple(body.indices) or blk.init.buffer is not body.buffer:
        return None
    return op, v.b, blk.init.value


def identity(op: str, dtype: str) -> Expr:
    """The identity of the reduction ``op`` in ``dtype``."""
    if op == "sum":
        return FloatImm(0.0, dtype) if dtype.startswith("float") else IntImm(0)
    if dtype.startswith("float"):
        return FloatImm(float("-inf") if op == "max" else float("inf"), dtype)
    bits = {"int8": 8, "uint8": 8, "int16": 16, "int32": 32, "int64": 64}[dtype]
    if dtype == "uint8":
        return IntImm(0 if op == "max" else 255)
    return IntImm(-(1 << (bits - 1)) if op == "max" else (1 << (bits - 1)) - 1)


def _combine(op: str, a: Expr, b: Expr) -> Expr:
    return a + b if op == "sum" else Max(a, b) if op == "max" else Min(a, b)


def _realize_of(sch: Schedule, block: str) -> BlockRealize:
    for s in walk_stmt(sch.func.body):
        if isinstance(s, BlockRealize) and s.block.name == block:
            return s
    raise ScheduleError(f"{sch.func.name} has no block {block!r}")


def cross_thread_reduce(sch: Schedule, block: str, threads: int, vector: int = 1) -> str:
    """Compute the reduction ``block`` with ``threads`` (a power of two) threads of a block
    (see the module docstring); returns the name of its shared partial-results buffer.
    Its reduction loops must be the innermost loops around it and drive nothing but its
    reduction iterators. With ``vector`` > 1 dividing the reduction's length (at least
    a warp's worth of steps long), each thread takes ``vector`` neighbouring elements a step
    (unrolled: LLVM merges them into one vector load); a thread's steps are unrolled when
    there are at most `UNROLL_STEPS` of them, so that all its loads are in flight at once."""
    if threads < 2 or threads & (threads - 1):
        raise ScheduleError(f"cross_thread_reduce {block}: {threads} threads is not a power of two above 1")
    real = _realize_of(sch, block)
    blk = real.block
    parts = reduction_parts(blk)
    if parts is None:
        raise ScheduleError(f"cross_thread_reduce: block {block} is not Y[v] = op(Y[v], value) with op +, max or min")
    op, value, init = parts
    loops = sch._loops_above(block)
    rvars = {v for iv, e in zip(blk.iter_vars, real.iter_values) if iv.kind == "R" for v in free_vars(e)}
    svars = {v for iv, e in zip(blk.iter_vars, real.iter_values) if iv.kind == "S" for v in free_vars(e)}
    red = [v for v in loops if v in rvars]
    if not red or loops[-len(red):] != red or rvars & svars:
        raise ScheduleError(f"cross_thread_reduce: the reduction loops of {block} must be its innermost loops and "
                            "drive only its reduction iterators")
    k = sch.fuse(*red) if len(red) > 1 else red[0]
    real = _realize_of(sch, block)
    blk = real.block
    kloop = sch._loop(k)
    if kloop.body is not real or not isinstance(kloop.extent, IntImm):
        raise ScheduleError(f"cross_thread_reduce: the reduction loop of {block} must hold only the block")
    n = kloop.extent.value
    out = blk.body.buffer  # type: ignore[attr-defined]
    taken = {b.name for b in (*sch.func.params, *sch.func.allocs)}
    name = f"{out.name}_red"
    while name in taken:
        name += "_"
    part = Buffer(name, (threads,), out.dtype, "shared")
    spatial = [(iv, e) for iv, e in zip(blk.iter_vars, real.iter_values) if iv.kind == "S"]
    reduce_ = [(iv, e) for iv, e in zip(blk.iter_vars, real.iter_values) if iv.kind == "R"]

    def thread_block(bname: str, t: Var, body_of, reduce_iters: tuple[tuple[IterVar, Expr], ...] = (),
                     pred: Expr | None = None) -> BlockRealize:
        vt = Var("vt")
        ivs = [IterVar(iv.var, iv.extent, "S") for iv, _ in spatial] + [IterVar(vt, IntImm(threads))]
        vals: list[Expr] = [e for _, e in spatial] + [t]
        for iv, e in reduce_iters:
            ivs.append(iv)
            vals.append(e)
        store = body_of(vt)
        reads = tuple(as_region(ld) for ld in loads(store.value))
        b = Block(bname, tuple(ivs), reads, (as_region(BufferLoad(store.buffer, store.indices)),), store)
        return BlockRealize(tuple(vals), IntImm(1) if pred is None else pred, b)

    # each thread's share: elements k = (ko * threads + t) * vec + vi, vi < vec
    vec = vector if vector > 1 and n % vector == 0 and n >= 32 * vector else 1
    t0, ko, vi = Var("tx"), Var("ko"), Var("vi")
    vko, vvi = Var("vko"), Var("vvi")
    outer = -(-n // (threads * vec))

    def element(step: Expr, t: Expr, lane: Expr) -> Expr:
        return (step * threads + t) * vec + lane if vec > 1 else step * threads + t

    def partial(vt: Var) -> BufferStore:
        rmap = {iv.var: substitute(e, {k: element(vko, vt, vvi)}) for iv, e in reduce_}
        return BufferStore(part, _combine(op, BufferLoad(part, (vt,)), substitute(value, rmap)), (vt,))

    kval = element(ko, t0, vi)
    pred = substitute(real.predicate, {k: kval})
    if outer * threads * vec != n:
        pred = (kval < n) if isinstance(pred, IntImm) and pred.value == 1 else and_(pred, kval < n)
    init_rz = thread_block(f"{block}_rf_init", t0, lambda vt: BufferStore(part, identity(op, out.dtype), (vt,)))
    iters = ((IterVar(vko, IntImm(outer), "R"), ko),) + (((IterVar(vvi, IntImm(vec), "R"), vi),) if vec > 1 else ())
    acc: Stmt = thread_block(f"{block}_rf", t0, partial, iters, pred)
    if vec > 1:
        acc = For(vi, IntImm(vec), acc, "unrolled")
    steps = For(ko, IntImm(outer), acc, "unrolled" if outer <= UNROLL_STEPS else "serial")
    stmts: list[Stmt] = [For(t0, IntImm(threads), seq(init_rz, steps), "thread_binding", "threadIdx.x")]
    half = threads // 2
    while half >= 1:
        t = Var(f"tx{half}")
        rz = thread_block(f"{block}_tree{half}", t, lambda vt, h=half: BufferStore(
            part, _combine(op, BufferLoad(part, (vt,)), BufferLoad(part, (vt + h,))), (vt,)))
        stmts.append(For(t, IntImm(half), rz, "thread_binding", "threadIdx.x"))
        half //= 2
    tw = Var("tx0")
    final = _combine(op, init, BufferLoad(part, (IntImm(0),)))
    store = BufferStore(out, final, blk.body.indices)  # type: ignore[attr-defined]
    wblk = Block(block, tuple(IterVar(iv.var, iv.extent, "S") for iv, _ in spatial),
                 tuple(as_region(ld) for ld in loads(final)), blk.writes, store)
    wpred = substitute(real.predicate, {k: IntImm(0)})
    stmts.append(For(tw, IntImm(1), BlockRealize(tuple(e for _, e in spatial), wpred, wblk),
                     "thread_binding", "threadIdx.x"))
    new = seq(*stmts)
    sch.func = dataclasses.replace(sch.func, body=replace_stmt(sch.func.body, lambda s: new if s is kloop else None),
                                   allocs=(*sch.func.allocs, part))
    sch.trace.append(f"# cross_thread_reduce({block!r}, {threads}, {vec}) -> {part.name}")
    return part.name


def loads(e: Expr) -> list[BufferLoad]:
    """Every load in ``e``, in order."""
    from vta.compiler.tir.expr import children

    out = [e] if isinstance(e, BufferLoad) else []
    for c in children(e):
        out += loads(c)
    return out


# ---- stages into one kernel ---------------------------------------------------------------

def merge_stages(sch: Schedule, first: int, count: int, depth: int = 1) -> list[Var]:
    """Stages ``first`` .. ``first + count - 1`` as one stage: their ``depth`` outer loops (of the
    same extents, row-aligned at each level) become one nest running the bodies in order;
    returns the nest's loop variables, outermost first."""
    sts = stages(sch.func)
    group = sts[first:first + count]
    if len(group) != count or count < 2:
        raise ScheduleError(f"merge_stages: stages {first}..{first + count - 1} are not {count} stages")
    level: list[Stmt] = list(group)
    head_vars: list[Var] = []
    for d in range(depth):
        if not all(isinstance(x, For) for x in level):
            raise ScheduleError(f"merge_stages: the stages do not all have {depth} outer loops")
        for x, a in enumerate(level):
            for b in level[x + 1:]:
                if not row_aligned_shared(a, b):  # type: ignore[arg-type]
                    raise ScheduleError(f"merge_stages: loop {b.var.name} is not row-aligned with loop "  # type: ignore[attr-defined]
                                        f"{a.var.name}: their iterations touch other rows of the buffers they share")
        head = level[0]
        head_vars.append(head.var)  # type: ignore[attr-defined]
        level = [x.body if x is head else substitute_stmt(x.body, {x.var: head.var})  # type: ignore[attr-defined]
                 for x in level]
    body = seq(*level)
    for v, outer in reversed(list(zip(head_vars, _chain(group[0], depth)))):
        body = dataclasses.replace(outer, body=body)
    rest = [*sts[:first], body, *sts[first + count:]]
    sch.func = dataclasses.replace(sch.func, body=rest[0] if len(rest) == 1 else SeqStmt(tuple(rest)))
    sch.trace.append(f"# merge_stages({first}, {count}, {depth}) -> {', '.join(v.name for v in head_vars)}")
    return head_vars


def _chain(s: Stmt, depth: int) -> list[For]:
    out = []
    for _ in range(depth):
        out.append(s)
        s = s.body  # type: ignore[attr-defined]
    return out  # type: ignore[return-value]


def row_aligned_shared(a: For, b: For) -> bool:
    """Whether ``a`` and ``b`` may run row by row, interleaved (`vta.compiler.cpu.groups.row_aligned`),
    judged on the buffers that one writes and both touch: a buffer only one of them uses
    (the shared partial sums of its reduction, rewritten by every iteration before it is
    read) does not tie their iterations together."""
    if not (isinstance(a.extent, IntImm) and isinstance(b.extent, IntImm)) or a.extent.value != b.extent.value:
        return False
    row = Var("row")
    written = {x.buffer for st in (a, b) for x in walk_stmt(st) if isinstance(x, BufferStore)}
    for buf in written & buffers_of(a) & buffers_of(b):
        regions = row_regions((a, b), buf, row)
        if not same_slices(regions):
            return False
        # different rows touch disjoint slices: the slice's flat offset is c·row + d, its span at most c
        # (d may hold the variables of loops around both, fixed while ``row`` runs)
        flat: Expr = IntImm(0)
        span, stride = 1, 1
        for r, n in reversed(list(zip(regions[0], buf.shape))):
            if not (isinstance(r.extent, IntImm) and isinstance(n, IntImm)):
                return False
            flat = flat + r.min * stride
            span += (r.extent.value - 1) * stride
            stride *= n.value
        lin = linear_form(simplify(flat))
        if lin is None or lin.coeffs.get(row, 0) < span:  # (other terms: the loops outside, the same for both)
            return False
    return True


def perfect_nest(st: Stmt) -> tuple[list[For], BlockRealize] | None:
    """The perfectly nested loops of a stage and the one block at the bottom, or None."""
    loops = []
    while isinstance(st, For):
        loops.append(st)
        st = st.body
    return (loops, st) if isinstance(st, BlockRealize) else None


def thread_per_element(sch: Schedule, loops: list[Var], threads: int, vector: int = 1) -> None:
    """``loops`` fused, a thread per iteration in blocks of up to ``threads`` (a multiple of
    the 32-thread warp), consecutive threads on consecutive iterations. With ``vector`` > 1
    and an extent it divides (of at least a warp's worth), each thread takes ``vector``
    neighbouring iterations, unrolled: with aligned pointers LLVM merges their contiguous
    loads and stores into vector ones (``ld.global.v4.f32``)."""
    f = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    n = sch._loop(f).extent.value  # type: ignore[attr-defined]
    if vector > 1 and n % vector == 0 and n >= 32 * vector:
        f, vi = sch.split(f, [None, vector])
        sch.vectorize(vi)
        n //= vector
    bx, tx = sch.split(f, [None, min(threads, -(-n // 32) * 32)])
    bind(sch, bx, "blockIdx.x")
    bind(sch, tx, "threadIdx.x")


def try_inline(sch: Schedule, block: str) -> bool:
    """Inline ``block`` into its consumers when `compute_inline` allows it; otherwise leave the
    schedule as it was (the inlining is tried on a copy). True when it was inlined."""
    trial = Schedule(sch.func)
    try:
        trial.compute_inline(block)
    except ScheduleError:
        return False
    sch.func = trial.func
    sch.trace.append(f"sch.compute_inline({block!r})")
    return True


def next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


__all__ = [
    "THREADS",
    "UNROLL_STEPS",
    "VECTOR",
    "bind",
    "cooperative_fetch",
    "cross_thread_reduce",
    "identity",
    "loads",
    "merge_stages",
    "next_pow2",
    "perfect_nest",
    "reduction_parts",
    "row_aligned_shared",
    "thread_per_element",
    "try_inline",
]
