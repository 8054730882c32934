"""Lowering of a scheduled function to the form the GPU code generator emits.

1. Each stage is checked to be a kernel (`launch.launch_of`), and each ``shared`` buffer
   to be used by one stage (shared memory lives as long as a kernel).
2. ``shared`` buffers are compacted to the tile one thread block touches (the region under
   the innermost loop holding all their accesses: `tir.compact`).
3. Every loop bound to a thread axis gets that axis's variable (one `Var` per axis and
   stage): the loops bound to ``threadIdx.x`` in a kernel all mean "this thread's x index".
4. ``local`` buffers are per thread: each is compacted to what one thread touches, with
   the block and thread indices held fixed (`localize`). A thread's 8×8 accumulator tile,
   written at rows ``yi·16 + threadIdx.y`` of a 128-row block tile, becomes an 8×8 array
   indexed by ``yi``: strides common to every access are divided out.
"""

from __future__ import annotations

import dataclasses
import math

from vta.compiler.cpu.codegen import CodegenError
from vta.compiler.tir.compact import compact
from vta.compiler.tir.expr import Expr, IntImm, Var, children, rebuild, substitute
from vta.compiler.tir.simplify import Linear, linear_form, simplify
from vta.compiler.tir.stmt import (
    Block,
    BlockRealize,
    Buffer,
    BufferLoad,
    BufferRegion,
    BufferStore,
    For,
    PrimFunc,
    Range,
    SeqStmt,
    Stmt,
)
from vta.compiler.tir.transform import replace_stmt, substitute_stmt, walk_stmt

from .launch import Launch, launch_of


def stages(func: PrimFunc) -> list[Stmt]:
    """The function's root statements: one kernel each, launched in order."""
    return list(func.body.stmts) if isinstance(func.body, SeqStmt) else [func.body]


def kernel_name(func: PrimFunc, k: int) -> str:
    """The name of stage ``k``'s kernel."""
    return func.name if len(stages(func)) == 1 else f"{func.name}_k{k}"


def launches(func: PrimFunc) -> list[Launch]:
    """Each stage's launch, in order (checks that every stage is a kernel)."""
    return [launch_of(st, f"stage {k} of {func.name}") for k, st in enumerate(stages(func))]


def lower(func: PrimFunc) -> PrimFunc:
    """``func`` checked and rewritten for the GPU code generator (see the module docstring)."""
    launches(func)
    _check_scopes(func)
    func = compact(func, scopes=("shared",))
    body = [_canonical_threads(st) for st in stages(func)]
    func = dataclasses.replace(func, body=body[0] if len(body) == 1 else SeqStmt(tuple(body)))
    for buf in [b for b in func.allocs if b.scope == "local"]:
        func = localize(func, buf)
    return func


def _check_scopes(func: PrimFunc) -> None:
    for b in func.allocs:
        if b.scope not in ("global", "shared", "local"):
            raise CodegenError(f"buffer {b.name} is in the accelerator scope {b.scope!r}; the GPU has global, shared "
                               "and local memory")
    for b in func.params:
        if b.scope != "global":
            raise CodegenError(f"parameter {b.name} is in scope {b.scope!r}; parameters live in global memory")
    users: dict[Buffer, list[int]] = {}
    for k, st in enumerate(stages(func)):
        for buf in buffers_of(st):
            if buf.scope == "shared":
                users.setdefault(buf, []).append(k)
    for buf, ks in users.items():
        if len(ks) > 1:
            raise CodegenError(f"shared buffer {buf.name} is used by stages {', '.join(map(str, ks))} of {func.name}; "
                               "shared memory lives within one kernel (use a global buffer between stages)")


def buffers_of(s: Stmt) -> set[Buffer]:
    """Every buffer that ``s`` stores to or loads from."""
    out: set[Buffer] = set()
    for x in walk_stmt(s):
        if isinstance(x, BufferStore):
            out.add(x.buffer)
            for e in (x.value, *x.indices):
                out |= _loaded(e)
    return out


def _loaded(e: Expr) -> set[Buffer]:
    out = {e.buffer} if isinstance(e, BufferLoad) else set()
    for k in children(e):
        out |= _loaded(k)
    return out


def axis_var(axis: str) -> Var:
    """A fresh variable for a thread axis (``threadIdx.x`` → ``threadIdx_x``)."""
    return Var(axis.replace(".", "_"))


def _canonical_threads(stage: Stmt) -> Stmt:
    """``stage`` with every loop bound to an axis using that axis's one variable."""
    canon: dict[str, Var] = {}

    def fn(s: Stmt) -> Stmt | None:
        if isinstance(s, For) and s.kind == "thread_binding" and s.thread != "vthread":
            v = canon.setdefault(s.thread, axis_var(s.thread))  # type: ignore[arg-type]
            body = substitute_stmt(s.body, {s.var: v})
            return dataclasses.replace(s, var=v, body=replace_stmt(body, fn))
        return None

    return replace_stmt(stage, fn)


# ---- per-thread compaction of local buffers -------------------------------------------

def localize(func: PrimFunc, buf: Buffer) -> PrimFunc:
    """``func`` with the local buffer ``buf`` shrunk to what one thread touches (unchanged
    when its accesses are not affine windows of a fixed size)."""
    accesses: list[tuple[Linear, ...]] = []
    inner: dict[Var, int] = {}
    _collect(func.body, buf, {}, {}, accesses, inner)
    if not accesses:
        return func
    plan = []
    for d in range(buf.ndim):
        p = _window([a[d] for a in accesses], inner)
        if p is None:
            return func
        plan.append(p)
    shape = tuple(ext for _, _, ext in plan)
    if shape == tuple(x.value for x in buf.shape if isinstance(x, IntImm)):
        return func
    small = Buffer(buf.name, shape, buf.dtype, buf.scope)
    body = _rewrite(func.body, buf, small, plan, {})
    return dataclasses.replace(func, body=body, allocs=tuple(small if b is buf else b for b in func.allocs))


def _index_forms(idx: tuple[Expr, ...], binding: dict[Var, Expr]) -> tuple[Linear, ...] | None:
    out = []
    for i in idx:
        lin = linear_form(simplify(substitute(i, binding)))
        if lin is None:
            return None
        out.append(lin)
    return tuple(out)


def _loads_of(e: Expr, buf: Buffer) -> list[BufferLoad]:
    out = [e] if isinstance(e, BufferLoad) and e.buffer is buf else []
    for k in children(e):
        out += _loads_of(k, buf)
    return out


def _collect(s: Stmt, buf: Buffer, binding: dict[Var, Expr], loops: dict[Var, int],
             out: list[tuple[Linear, ...] | None], inner: dict[Var, int]) -> None:
    """Every access of ``buf`` as affine forms in the loop variables (None where one is not
    affine); ``inner`` gets the extents of the serial loops (thread-bound ones are fixed
    per thread, so they are not among them)."""
    if isinstance(s, For):
        if s.kind == "thread_binding":
            _collect(s.body, buf, binding, loops, out, inner)
            return
        n = s.extent.value if isinstance(s.extent, IntImm) else -1
        inner[s.var] = n
        _collect(s.body, buf, binding, {**loops, s.var: n}, out, inner)
        return
    if isinstance(s, SeqStmt):
        for x in s.stmts:
            _collect(x, buf, binding, loops, out, inner)
        return
    if isinstance(s, BlockRealize):
        b = {**binding, **{iv.var: substitute(v, binding) for iv, v in zip(s.block.iter_vars, s.iter_values)}}
        _collect(s.block, buf, b, loops, out, inner)
        return
    if isinstance(s, Block):
        for part in (s.init, s.body):
            if part is not None:
                _collect(part, buf, binding, loops, out, inner)
        return
    if isinstance(s, BufferStore):
        idxs = [ld.indices for e in (s.value, *s.indices) for ld in _loads_of(e, buf)]
        if s.buffer is buf:
            idxs.append(s.indices)
        for idx in idxs:
            out.append(_index_forms(idx, binding))


def _window(forms: list[Linear | None], inner: dict[Var, int]) -> tuple[Linear, int, int] | None:
    """(base, stride, extent) of one dimension: every access is ``base + stride·k`` for ``k``
    in ``range(extent)``, ``base`` the same affine form of the fixed variables (block and
    thread indices, loops around every access) for all of them; None when not so."""
    if any(f is None for f in forms):
        return None
    fixed: dict[Var, int] | None = None
    lo, hi, g = None, None, 0
    for f in forms:
        own = {v: c for v, c in f.coeffs.items() if v not in inner}  # type: ignore[union-attr]
        if fixed is None:
            fixed = own
        elif own != fixed:
            return None
        a = b = f.const  # type: ignore[union-attr]
        for v, c in f.coeffs.items():  # type: ignore[union-attr]
            if v in inner:
                n = inner[v]
                if n < 0:
                    return None
                g = math.gcd(g, abs(c))
                a, b = a + min(0, c * (n - 1)), b + max(0, c * (n - 1))
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    for f in forms:
        g = math.gcd(g, f.const - lo)  # type: ignore[union-attr,operator]
    g = g or 1
    base = Linear(dict(fixed or {}), lo)  # type: ignore[arg-type]
    return base, g, (hi - lo) // g + 1  # type: ignore[operator]


def _rebased(idx: tuple[Expr, ...], binding: dict[Var, Expr], plan: list[tuple[Linear, int, int]]) -> tuple[Expr, ...]:
    forms = _index_forms(idx, binding)
    assert forms is not None  # _collect saw every access affine
    out = []
    for f, (base, g, _) in zip(forms, plan):
        d = f + base.scale(-1)
        out.append(Linear({v: c // g for v, c in d.coeffs.items()}, d.const // g).to_expr())
    return tuple(out)


def _rewrite(s: Stmt, old: Buffer, new: Buffer, plan: list[tuple[Linear, int, int]], binding: dict[Var, Expr]) -> Stmt:
    """``s`` with every access of ``old`` an access of ``new`` at its rebased index (written
    in the loop variables: the block iterators' bindings substituted)."""
    if isinstance(s, For):
        body = _rewrite(s.body, old, new, plan, binding)
        return s if body is s.body else dataclasses.replace(s, body=body)
    if isinstance(s, SeqStmt):
        return SeqStmt(tuple(_rewrite(x, old, new, plan, binding) for x in s.stmts))
    if isinstance(s, BlockRealize):
        b = {**binding, **{iv.var: substitute(v, binding) for iv, v in zip(s.block.iter_vars, s.iter_values)}}
        blk = _rewrite(s.block, old, new, plan, b)
        return s if blk is s.block else dataclasses.replace(s, block=blk)  # type: ignore[arg-type]
    if isinstance(s, Block):
        if not any(r.buffer is old for r in (*s.reads, *s.writes)) and old not in buffers_of(s):
            return s

        def region(rs: tuple[BufferRegion, ...]) -> tuple[BufferRegion, ...]:
            return tuple(BufferRegion(new, tuple(Range(IntImm(0), d) for d in new.shape)) if r.buffer is old else r
                         for r in rs)

        init = _rewrite(s.init, old, new, plan, binding) if s.init is not None else None
        return dataclasses.replace(s, reads=region(s.reads), writes=region(s.writes), init=init,
                                   body=_rewrite(s.body, old, new, plan, binding))
    if isinstance(s, BufferStore):
        def e(x: Expr) -> Expr:
            if isinstance(x, BufferLoad) and x.buffer is old:
                return BufferLoad(new, _rebased(x.indices, binding, plan))
            kids = children(x)
            return rebuild(x, tuple(e(k) for k in kids)) if kids else x

        idx = tuple(e(i) for i in s.indices)
        if s.buffer is old:
            return BufferStore(new, e(s.value), _rebased(s.indices, binding, plan))
        return BufferStore(s.buffer, e(s.value), idx)
    return s


__all__ = ["axis_var", "buffers_of", "kernel_name", "launches", "localize", "lower", "stages"]
