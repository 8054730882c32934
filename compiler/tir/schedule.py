"""Schedules: checked transformations of a `PrimFunc`'s loop nest that keep its results.

A `Schedule` holds the current function and a trace of the primitives applied, which
prints as Python that replays them (`Schedule.trace_str`). Loops are referred to by
their loop variables (what `get_loops` returns); blocks by name. Every primitive checks
that it is legal and raises `ScheduleError` naming the loop or block when it is not.

Primitives so far: `split`, `fuse`, `reorder`, `parallel`, `vectorize`, `unroll`, `bind`,
`annotate`. (compute_at, cache_read/write, blockize, tensorize and the rest build on these.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from vta.isa.errors import VTAError

from .expr import Expr, IntImm, Var, and_, free_vars
from .simplify import simplify
from .stmt import Block, BlockRealize, For, PrimFunc, Stmt
from .transform import replace_stmt, substitute_stmt, walk_stmt


THREAD_AXES = ("blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x", "threadIdx.y", "threadIdx.z", "vthread")


class ScheduleError(VTAError):
    """A schedule primitive that cannot be applied here, and why."""


class Schedule:
    """Transforms ``func`` step by step; ``func`` is always the current result."""

    def __init__(self, func: PrimFunc) -> None:
        self.func = func
        self.trace: list[str] = []
        self._blocks = 0

    # ---- lookup ---------------------------------------------------------------------
    def get_block(self, name: str) -> str:
        """The block called ``name`` (its name is its handle)."""
        names = [s.name for s in walk_stmt(self.func.body) if isinstance(s, Block)]
        if name not in names:
            raise ScheduleError(f"{self.func.name} has no block {name!r}; blocks: {', '.join(names) or 'none'}")
        handle = f"b{self._blocks}"
        self._blocks += 1
        self.trace.append(f"{handle} = sch.get_block({name!r})")
        self._handles = getattr(self, "_handles", {})
        self._handles[name] = handle
        return name

    def get_loops(self, block: str) -> list[Var]:
        """The loops around ``block``, outermost first."""
        loops = self._loops_above(block)
        names = ", ".join(v.name for v in loops)
        handle = getattr(self, "_handles", {}).get(block, repr(block))
        self.trace.append(f"{names}{',' if len(loops) == 1 else ''} = sch.get_loops({handle})" if loops else
                          f"sch.get_loops({handle})")
        return loops

    def _loops_above(self, block: str) -> list[Var]:
        def find(s: Stmt, path: list[Var]) -> list[Var] | None:
            if isinstance(s, Block) and s.name == block:
                return path
            if isinstance(s, For):
                return find(s.body, path + [s.var])
            for child in _children(s):
                got = find(child, path)
                if got is not None:
                    return got
            return None

        got = find(self.func.body, [])
        if got is None:
            raise ScheduleError(f"{self.func.name} has no block {block!r}")
        return got

    def _loop(self, var: Var) -> For:
        for s in walk_stmt(self.func.body):
            if isinstance(s, For) and s.var is var:
                return s
        raise ScheduleError(f"loop {var.name} is not in {self.func.name} (was it split or fused away?)")

    def _fresh(self, base: str) -> Var:
        taken = {s.var.name for s in walk_stmt(self.func.body) if isinstance(s, For)}
        taken |= {p.name for p in self.func.params}
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        return Var(name)

    def _replace_loop(self, var: Var, new: Stmt) -> None:
        body = replace_stmt(self.func.body, lambda s: new if isinstance(s, For) and s.var is var else None)
        self.func = PrimFunc(self.func.name, self.func.params, _simplify_bindings(body, {}), self.func.attrs)

    # ---- primitives -----------------------------------------------------------------
    def split(self, loop: Var, factors: Sequence[int | None]) -> list[Var]:
        """Split ``loop`` into ``len(factors)`` nested loops, outermost first. One factor may
        be None (inferred). When the factors' product exceeds the extent, the blocks inside
        are predicated to the original range."""
        f = self._loop(loop)
        if not isinstance(f.extent, IntImm):
            raise ScheduleError(f"split {loop.name}: the extent {f.extent} is not a constant")
        n = f.extent.value
        if len(factors) < 2:
            raise ScheduleError(f"split {loop.name}: give at least two factors, got {list(factors)}")
        if sum(x is None for x in factors) > 1:
            raise ScheduleError(f"split {loop.name}: at most one factor may be None, got {list(factors)}")
        if any(x is not None and (not isinstance(x, int) or x < 1) for x in factors):
            raise ScheduleError(f"split {loop.name}: factors are positive integers (or one None), got {list(factors)}")
        known = math.prod(x for x in factors if x is not None)
        fs = [x if x is not None else -(-n // known) for x in factors]
        total = math.prod(fs)
        if total < n:
            raise ScheduleError(f"split {loop.name}: factors {fs} cover {total} iterations, the loop has {n}")
        vars_ = [self._fresh(f"{loop.name}_{i}") for i in range(len(fs))]
        # each new loop var must be distinct from the others too
        for i in range(1, len(vars_)):
            while vars_[i].name in {v.name for v in vars_[:i]}:
                vars_[i] = Var(vars_[i].name + "_")
        fused: Expr = IntImm(0)
        for v, k in zip(vars_, fs):
            fused = fused * k + v
        body = substitute_stmt(f.body, {loop: fused})
        if total > n:
            body = _predicate(body, fused < n)
        for v, k in reversed(list(zip(vars_, fs))):
            body = For(v, IntImm(k), body)
        self._replace_loop(loop, body)
        self.trace.append(f"{', '.join(v.name for v in vars_)} = sch.split({loop.name}, factors={list(factors)})")
        return vars_

    def fuse(self, *loops: Var) -> Var:
        """Fuse perfectly nested loops (each the whole body of the one before) into one."""
        if len(loops) < 2:
            raise ScheduleError(f"fuse needs at least two loops, got {len(loops)}")
        fors = [self._loop(v) for v in loops]
        for outer, inner in zip(fors, fors[1:]):
            if outer.body is not inner:
                raise ScheduleError(f"fuse: loop {inner.var.name} is not the whole body of loop {outer.var.name}; "
                                    "only perfectly nested, adjacent loops fuse")
        for f in fors:
            if not isinstance(f.extent, IntImm):
                raise ScheduleError(f"fuse: loop {f.var.name} has a non-constant extent {f.extent}")
        extents = [f.extent.value for f in fors]  # type: ignore[attr-defined]
        v = self._fresh("_".join(x.name for x in loops) + "_fused")
        mapping = {}
        inner_size = 1
        for f, n in reversed(list(zip(fors, extents))):
            mapping[f.var] = (v // inner_size) % n if f is not fors[0] else v // inner_size
            inner_size *= n
        body = substitute_stmt(fors[-1].body, mapping)
        self._replace_loop(loops[0], For(v, IntImm(math.prod(extents)), body))
        self.trace.append(f"{v.name} = sch.fuse({', '.join(x.name for x in loops)})")
        return v

    def reorder(self, *loops: Var) -> None:
        """Put ``loops`` in the given order (outermost first). They must lie on one chain of
        perfectly nested loops; loops of the chain that are not named keep their places."""
        if len(set(loops)) != len(loops):
            raise ScheduleError(f"reorder: a loop is named twice in {[v.name for v in loops]}")
        fors = [self._loop(v) for v in loops]
        # the chain from the outermost named loop down through single-loop bodies
        chain: list[For] = []
        top = next(f for f in self._chain_order(fors))
        s: Stmt = top
        while isinstance(s, For):
            chain.append(s)
            if all(f in chain for f in fors):
                break
            s = s.body
        missing = [f.var.name for f in fors if f not in chain]
        if missing:
            raise ScheduleError(f"reorder: loop(s) {', '.join(missing)} are not perfectly nested under loop "
                                f"{top.var.name} (a loop's body must be exactly the next loop)")
        named = {f.var for f in fors}
        order = iter(loops)
        new_vars = [next(order) if f.var in named else f.var for f in chain]
        by_var = {f.var: f for f in chain}
        body = chain[-1].body
        for v in reversed(new_vars):
            old = by_var[v]
            body = For(v, old.extent, body, old.kind, old.thread, old.annotations)
        self._replace_loop(chain[0].var, body)
        self.trace.append(f"sch.reorder({', '.join(v.name for v in loops)})")

    def _set_kind(self, loop: Var, kind: str, thread: str | None = None) -> None:
        f = self._loop(loop)
        if kind in ("parallel", "vectorized", "thread_binding"):
            for s in walk_stmt(f.body):
                if isinstance(s, BlockRealize):
                    for iv, v in zip(s.block.iter_vars, s.iter_values):
                        if iv.kind == "R" and loop in free_vars(v):
                            what = {"parallel": "parallelize", "vectorized": "vectorize",
                                    "thread_binding": f"bind to {thread}"}[kind]
                            raise ScheduleError(f"cannot {what} loop {loop.name}: it drives reduction iterator "
                                                f"{iv.var.name} of block {s.block.name}, whose steps depend on "
                                                "each other")
        self._replace_loop(loop, dataclasses.replace(f, kind=kind, thread=thread))

    def parallel(self, loop: Var) -> None:
        """Run ``loop``'s iterations on parallel threads (spatial loops only)."""
        self._set_kind(loop, "parallel")
        self.trace.append(f"sch.parallel({loop.name})")

    def vectorize(self, loop: Var) -> None:
        """Run ``loop`` as vector lanes (spatial loops only; constant extent)."""
        if not isinstance(self._loop(loop).extent, IntImm):
            raise ScheduleError(f"cannot vectorize loop {loop.name}: its extent is not a constant")
        self._set_kind(loop, "vectorized")
        self.trace.append(f"sch.vectorize({loop.name})")

    def unroll(self, loop: Var) -> None:
        """Unroll ``loop`` completely when code is generated."""
        self._set_kind(loop, "unrolled")
        self.trace.append(f"sch.unroll({loop.name})")

    def bind(self, loop: Var, thread: str) -> None:
        """Map ``loop`` to a GPU thread axis (``blockIdx.x`` ... ``threadIdx.z``, ``vthread``)."""
        if thread not in THREAD_AXES:
            raise ScheduleError(f"bind {loop.name}: thread axis {thread!r} is not one of {', '.join(THREAD_AXES)}")
        bound = {s.thread for s in walk_stmt(self.func.body) if isinstance(s, For) and s.thread}
        if thread in bound and thread != "vthread":
            raise ScheduleError(f"bind {loop.name}: {thread} is already bound to another loop")
        self._set_kind(loop, "thread_binding", thread)
        self.trace.append(f"sch.bind({loop.name}, {thread!r})")

    def annotate(self, target: Var | str, key: str, value: object) -> None:
        """Attach ``key = value`` to a loop (a Var) or a block (its name), for later passes."""
        if not isinstance(value, (int, float, str, bool)):
            raise ScheduleError(f"annotate: value {value!r} must be an int, float, str or bool")
        if isinstance(target, Var):
            f = self._loop(target)
            self._replace_loop(target, dataclasses.replace(f, annotations=(*f.annotations, (key, value))))
            self.trace.append(f"sch.annotate({target.name}, {key!r}, {value!r})")
            return
        self._loops_above(target)  # checks the block exists

        def ann(s: Stmt) -> Stmt | None:
            if isinstance(s, Block) and s.name == target:
                return dataclasses.replace(s, annotations=(*s.annotations, (key, value)))
            return None

        self.func = PrimFunc(self.func.name, self.func.params, replace_stmt(self.func.body, ann), self.func.attrs)
        self.trace.append(f"sch.annotate({target!r}, {key!r}, {value!r})")

    def _chain_order(self, fors: list[For]) -> list[For]:
        """The given loops, outermost first (by nesting in the function)."""
        depth = {}
        for s in walk_stmt(self.func.body):
            if isinstance(s, For):
                depth[s.var] = len(depth)
        return sorted(fors, key=lambda f: depth[f.var])

    # ---- output ---------------------------------------------------------------------
    def trace_str(self) -> str:
        """The primitives applied so far, as Python that replays them on ``sch``."""
        return "\n".join(self.trace)


def _children(s: Stmt) -> tuple[Stmt, ...]:
    from .stmt import SeqStmt

    if isinstance(s, SeqStmt):
        return s.stmts
    if isinstance(s, (For,)):
        return (s.body,)
    if isinstance(s, BlockRealize):
        return (s.block,)
    if isinstance(s, Block):
        return (s.body,)
    return ()


def _predicate(s: Stmt, cond: Expr) -> Stmt:
    """Every block realized inside ``s`` additionally requires ``cond``."""
    import dataclasses

    def add(x: Stmt) -> Stmt | None:
        if isinstance(x, BlockRealize):
            pred = cond if isinstance(x.predicate, IntImm) and x.predicate.value == 1 else and_(x.predicate, cond)
            return dataclasses.replace(x, predicate=pred)
        return None

    return replace_stmt(s, add)


def _simplify_bindings(s: Stmt, ranges: dict[Var, tuple[int, int]]) -> Stmt:
    """Simplify block bindings and predicates with the ranges of the loops around them."""
    import dataclasses

    if isinstance(s, For):
        inner = dict(ranges)
        if isinstance(s.extent, IntImm):
            inner[s.var] = (0, s.extent.value - 1)
        body = _simplify_bindings(s.body, inner)
        return s if body is s.body else dataclasses.replace(s, body=body)
    if isinstance(s, BlockRealize):
        return dataclasses.replace(s, iter_values=tuple(simplify(v, ranges) for v in s.iter_values),
                                   predicate=simplify(s.predicate, ranges))
    from .stmt import SeqStmt

    if isinstance(s, SeqStmt):
        return SeqStmt(tuple(_simplify_bindings(x, ranges) for x in s.stmts))
    return s
