"""Region inference: which part of a buffer the blocks under a loop touch, as ranges
whose bounds are expressions of the loops outside it (what compute_at copies)."""

from __future__ import annotations

from .expr import Expr, IntImm, Var, substitute
from .simplify import linear_form, simplify
from .stmt import Block, BlockRealize, Buffer, BufferLoad, BufferStore, For, Range, SeqStmt, Stmt
from .transform import walk_stmt


def _accesses(block: Block, buffer: Buffer, write: bool) -> list[tuple[Expr, ...]]:
    """Index tuples of every load (or store) of ``buffer`` in the block's body and init."""
    out: list[tuple[Expr, ...]] = []
    from .expr import children

    def loads(e: Expr) -> None:
        if isinstance(e, BufferLoad) and e.buffer is buffer:
            out.append(e.indices)
        for k in children(e):
            loads(k)

    for part in (block.init, block.body):
        if part is None:
            continue
        for s in walk_stmt(part):
            if isinstance(s, BufferStore):
                if write and s.buffer is buffer:
                    out.append(s.indices)
                if not write:
                    loads(s.value)
                    for i in s.indices:
                        loads(i)
    return out


def touched_region(scope: Stmt, buffer: Buffer, write: bool) -> tuple[Range, ...]:
    """The hull of ``buffer`` elements that blocks inside ``scope`` read (or write), as
    ranges over the variables free in ``scope`` (the loops outside it). A dimension whose
    index is not affine in the loops inside is taken whole."""
    lo: list[Expr | None] = [None] * buffer.ndim
    ext: list[int | None] = [None] * buffer.ndim
    full = [False] * buffer.ndim

    def visit(s: Stmt, inner: dict[Var, int]) -> None:
        if isinstance(s, For):
            n = s.extent.value if isinstance(s.extent, IntImm) else None
            visit(s.body, {**inner, s.var: n} if n is not None else {**inner, s.var: -1})
            return
        if isinstance(s, BlockRealize) and not s.block.iter_vars and not isinstance(s.block.body, BufferStore):
            visit(s.block.body, inner)  # a blockized nest: look inside
            return
        if isinstance(s, BlockRealize):
            binding = dict(zip((iv.var for iv in s.block.iter_vars), s.iter_values))
            ranges = {v: (0, n - 1) for v, n in inner.items() if n > 0}
            for idx in _accesses(s.block, buffer, write):
                for d, e in enumerate(idx):
                    _extend(d, simplify(substitute(e, binding), ranges), inner)
            return
        if isinstance(s, SeqStmt):
            for child in s.stmts:
                visit(child, inner)
            return
        from .intrin import IntrinCall

        if isinstance(s, IntrinCall):
            written = s.intrin.written()
            for r, p in zip(s.regions, s.intrin.desc.params):
                if r.buffer is buffer and (not write or p in written):
                    lead = buffer.ndim - p.ndim
                    ranges = {v: (0, n - 1) for v, n in inner.items() if n > 0}
                    for d, g in enumerate(r.region):
                        _extend(d, simplify(g.min, ranges), inner)
                        if d >= lead:  # an intrinsic operand dimension: the whole extent
                            _extend(d, simplify(g.min + g.extent - 1, ranges), inner)

    def _extend(d: int, e: Expr, inner: dict[Var, int]) -> None:
        lin = linear_form(e)
        if lin is None or any(inner.get(v, 0) < 0 for v in lin.coeffs):
            full[d] = True
            return
        base: Expr = IntImm(lin.const)
        span = 0
        for v, c in lin.coeffs.items():
            if v in inner:  # varies inside the scope over range(inner[v])
                span += abs(c) * (inner[v] - 1)
                if c < 0:
                    base = base + c * (inner[v] - 1)
            else:
                base = base + v * c
        base = simplify(base)
        if lo[d] is None:
            lo[d], ext[d] = base, span + 1
        elif not (simplify(lo[d] - base) == IntImm(0) and ext[d] == span + 1):  # type: ignore[operator]
            diff = simplify(base - lo[d])  # type: ignore[operator]
            if isinstance(diff, IntImm):  # same shape, shifted by a constant: take the hull
                new_lo = lo[d] if diff.value >= 0 else base
                hi = max(diff.value + span + 1, ext[d])  # type: ignore[type-var]
                ext[d] = hi - min(0, diff.value)
                lo[d] = simplify(new_lo)  # type: ignore[arg-type]
            else:
                full[d] = True

    visit(scope, {})
    out = []
    for d in range(buffer.ndim):
        if full[d] or lo[d] is None:
            out.append(Range(IntImm(0), buffer.shape[d]))
        else:
            out.append(Range(lo[d], IntImm(ext[d])))  # type: ignore[arg-type]
    return tuple(out)


def touches(scope: Stmt, buffer: Buffer, write: bool) -> bool:
    """Whether a block or intrinsic call inside ``scope`` reads (or writes) ``buffer`` (when
    nothing does, `touched_region` has nothing to bound and gives the whole buffer)."""
    from .intrin import IntrinCall

    for s in walk_stmt(scope):
        if isinstance(s, Block) and any(r.buffer is buffer for r in (s.writes if write else s.reads)):
            return True
        if write and isinstance(s, BufferStore) and s.buffer is buffer:
            return True
        if isinstance(s, IntrinCall):
            written = s.intrin.written()
            if any(r.buffer is buffer and (not write or p in written) for r, p in zip(s.regions, s.intrin.desc.params)):
                return True
    return False


class RegionError(ValueError):
    """Accesses whose hull has no fixed size in dimension ``dim``."""

    def __init__(self, dim: int) -> None:
        super().__init__(f"dimension {dim}")
        self.dim = dim


def common_loops(paths: list[tuple[For, ...]]) -> tuple[For, ...]:
    """The loops every one of ``paths`` (loop chains from the root) starts with."""
    common = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(common), len(path)) and common[n] is path[n]:
            n += 1
        common = common[:n]
    return common


def hull(scope: Stmt, buffers: list[Buffer], ndim: int) -> list[tuple[Expr, int]]:
    """For each of the first ``ndim`` dimensions, the smallest range (its min as an
    expression of the loops outside ``scope``, a constant extent) holding every read and write
    of ``buffers`` inside ``scope``; `RegionError` names a dimension where the accesses are
    not a fixed-size window."""
    out: list[tuple[Expr, int]] = []
    for d in range(ndim):
        mins, ends = [], []
        for b in buffers:
            for write in (False, True):
                r = touched_region(scope, b, write)[d]
                if isinstance(r.extent, IntImm) and touches(scope, b, write):
                    mins.append(simplify(r.min))
                    ends.append(simplify(r.min + r.extent))
        if not mins:
            raise RegionError(d)
        base = mins[0]
        diffs = [simplify(m - base) for m in mins] + [simplify(e - base) for e in ends]
        if not all(isinstance(x, IntImm) for x in diffs):
            raise RegionError(d)
        lo = min(x.value for x in diffs[: len(mins)])  # type: ignore[attr-defined]
        hi = max(x.value for x in diffs[len(mins):])  # type: ignore[attr-defined]
        out.append((simplify(base + lo), hi - lo))
    return out
