"""Buffer compaction: an intermediate buffer shrinks to the region its accesses touch under
the innermost loop that holds all of them, and every access is rebased to that region (what
a cache stage needs before it can live on the stack: `cache_write(..., "local")` makes a
buffer of the whole output, of which one tile is live at a time)."""

from __future__ import annotations

import dataclasses

from .expr import Expr, IntImm
from .intrin import IntrinCall
from .region import RegionError, common_loops, hull
from .schedule import _rename_buffer
from .simplify import simplify
from .stmt import Block, BlockRealize, Buffer, BufferRegion, For, PrimFunc, Range, SeqStmt, Stmt
from .transform import replace_stmt


def _paths(s: Stmt, buf: Buffer, path: tuple[For, ...] = ()) -> list[tuple[For, ...]]:
    if isinstance(s, For):
        return _paths(s.body, buf, path + (s,))
    if isinstance(s, SeqStmt):
        return [p for x in s.stmts for p in _paths(x, buf, path)]
    if isinstance(s, BlockRealize):
        b = s.block
        if any(r.buffer is buf for r in (*b.reads, *b.writes)):
            return [path]
        return _paths(b.body, buf, path) if not (b.body is None) else []
    if isinstance(s, IntrinCall):
        return [path] if any(r.buffer is buf for r in s.regions) else []
    return []


def compact(func: PrimFunc, scopes: tuple[str, ...] = ("local",)) -> PrimFunc:
    """``func`` with its intermediate buffers of ``scopes`` compacted."""
    for buf in [b for b in func.allocs if b.scope in scopes]:
        func = _compact_one(func, buf)
    return func


def _compact_one(func: PrimFunc, buf: Buffer) -> PrimFunc:
    paths = _paths(func.body, buf)
    if not paths:
        return func
    common = common_loops(paths)
    scope: Stmt = common[-1].body if common else func.body
    try:
        box = hull(scope, [buf], buf.ndim)
    except RegionError:
        return func
    mins = [m for m, _ in box]
    exts = [e for _, e in box]
    if tuple(exts) == tuple(d.value for d in buf.shape if isinstance(d, IntImm)):  # type: ignore[attr-defined]
        return func
    small = Buffer(buf.name, tuple(exts), buf.dtype, buf.scope)

    def rebase(idx: tuple[Expr, ...]) -> tuple[Expr, ...]:
        return tuple(simplify(i - m) for i, m in zip(idx, mins))

    def fn(x: Stmt) -> Stmt | None:
        if isinstance(x, Block) and any(r.buffer is buf for r in (*x.reads, *x.writes)):
            nb = _rename_buffer(x, buf, small, reads=True, writes=True)
            nb = _rebase_block(nb, small, rebase)
            return nb
        return None

    body = replace_stmt(func.body, fn)
    return dataclasses.replace(func, body=body, allocs=tuple(small if b is buf else b for b in func.allocs))


def _rebase_block(blk: Block, buf: Buffer, rebase) -> Block:  # type: ignore[no-untyped-def]
    """Every access of ``buf`` in ``blk`` (loads, stores, regions) at ``rebase(indices)``: the
    block's iterators are substituted by their bindings first by the caller's realize, so
    rebasing works on the block's own index expressions, which refer to the iterators; the
    region mins are expressions of the loops outside, valid because the iterators equal
    their bindings."""
    from .expr import children, rebuild
    from .stmt import BufferLoad, BufferStore

    def e(x: Expr) -> Expr:
        if isinstance(x, BufferLoad) and x.buffer is buf:
            return BufferLoad(buf, rebase(tuple(e(i) for i in x.indices)))
        kids = children(x)
        return rebuild(x, tuple(e(k) for k in kids)) if kids else x

    def st(s: Stmt) -> Stmt | None:
        if isinstance(s, BufferStore):
            idx = tuple(e(i) for i in s.indices)
            return BufferStore(s.buffer, e(s.value), rebase(idx) if s.buffer is buf else idx)
        return None

    def regions(rs: tuple[BufferRegion, ...]) -> tuple[BufferRegion, ...]:
        return tuple(BufferRegion(buf, tuple(Range(m, g.extent) for m, g in zip(rebase(tuple(g.min for g in r.region)),
                                                                              r.region))) if r.buffer is buf else r
                     for r in rs)

    return dataclasses.replace(blk, body=replace_stmt(blk.body, st),
                               init=replace_stmt(blk.init, st) if blk.init is not None else None,
                               reads=regions(blk.reads), writes=regions(blk.writes))
