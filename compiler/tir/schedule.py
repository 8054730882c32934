"""Schedules: checked transformations of a `PrimFunc`'s loop nest that keep its results.

A `Schedule` holds the current function and a trace of the primitives applied, which
prints as Python that replays them (`Schedule.trace_str`). Loops are referred to by
their loop variables (what `get_loops` returns); blocks by name. Every primitive checks
that it is legal and raises `ScheduleError` naming the loop or block when it is not.

Primitives: `split`, `fuse`, `reorder`, `parallel`, `vectorize`, `unroll`, `bind`,
`annotate`, `set_scope`, `cache_read`, `cache_write`, `compute_at` and
`reverse_compute_at` (for elementwise stages: the copies the cache primitives make,
padding, epilogues), `decompose_reduction`, `compute_inline`, `reverse_compute_inline`,
`blockize`, and `tensorize` (of a loop nest or a blockized block, against a
`TensorIntrin`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from vta.isa.errors import VTAError

from .expr import Expr, IntImm, Var, and_, children, free_vars, rebuild, substitute
from .intrin import IntrinCall, TensorIntrin
from .region import touched_region
from .simplify import simplify
from .stmt import (
    SCOPES, Block, BlockRealize, Buffer, BufferLoad, BufferRegion, BufferStore, For, IterVar, PrimFunc, Range, SeqStmt,
    Stmt, seq,
)
from .transform import replace_stmt, stmt_children, substitute_stmt, walk_stmt

THREAD_AXES = ("blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x", "threadIdx.y", "threadIdx.z", "vthread")


class ScheduleError(VTAError):
    """A schedule primitive that cannot be applied here, and why."""


class Schedule:
    """Transforms ``func`` step by step; ``func`` is always the current result."""

    def __init__(self, func: PrimFunc) -> None:
        self.func = func
        self.trace: list[str] = []
        self._handles: dict[str, str] = {}  # block name -> its variable in the trace
        self._blocks = 0  # get_block calls so far, numbering the trace's variables

    # ---- lookup ---------------------------------------------------------------------
    def get_block(self, name: str) -> str:
        """The block called ``name`` (its name is its handle)."""
        names = [s.name for s in walk_stmt(self.func.body) if isinstance(s, Block)]
        if name not in names:
            raise ScheduleError(f"{self.func.name} has no block {name!r}; blocks: {', '.join(names) or 'none'}")
        handle = f"b{self._blocks}"
        self._blocks += 1
        self.trace.append(f"{handle} = sch.get_block({name!r})")
        self._handles[name] = handle
        return name

    def get_loops(self, block: str) -> list[Var]:
        """The loops around ``block``, outermost first."""
        loops = self._loops_above(block)
        names = ", ".join(v.name for v in loops)
        handle = self._handles.get(block, repr(block))
        self.trace.append(f"{names}{',' if len(loops) == 1 else ''} = sch.get_loops({handle})" if loops else
                          f"sch.get_loops({handle})")
        return loops

    def _loops_above(self, block: str) -> list[Var]:
        def find(s: Stmt, path: list[Var]) -> list[Var] | None:
            if isinstance(s, Block) and s.name == block:
                return path
            if isinstance(s, For):
                return find(s.body, path + [s.var])
            for child in stmt_children(s):
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
        self.func = dataclasses.replace(self.func, body=_simplify_bindings(body, {}))

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
        top = self._chain_order(fors)[0]
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

        self.func = dataclasses.replace(self.func, body=replace_stmt(self.func.body, ann))
        self.trace.append(f"sch.annotate({target!r}, {key!r}, {value!r})")

    def decompose_reduction(self, block: str, loop: Var) -> str:
        """Move ``block``'s init into a new block (``<block>_init``, returned) placed just
        before ``loop``, with copies of the loops under ``loop`` that drive only spatial
        iterators. ``loop`` and everything under it keep only the update."""
        blk = self._block_node(block)
        if blk.init is None:
            raise ScheduleError(f"decompose_reduction: block {block} has no init part")
        above = self._loops_above(block)
        if loop not in above:
            raise ScheduleError(f"decompose_reduction: loop {loop.name} is not around block {block}")
        realize = next(x for x in walk_stmt(self.func.body) if isinstance(x, BlockRealize) and x.block is blk)
        reduce_vars: set[Var] = set()
        spatial_vars: set[Var] = set()
        for iv, v in zip(blk.iter_vars, realize.iter_values):
            (reduce_vars if iv.kind == "R" else spatial_vars).update(free_vars(v))
        at = above.index(loop)
        for v in above[:at]:
            if v in reduce_vars:
                raise ScheduleError(f"decompose_reduction: loop {v.name} above {loop.name} drives a reduction "
                                    f"iterator of {block}; the init would run on each of its iterations")
        copies: dict[Var, Var] = {}
        kept: list[For] = []
        for v in above[at:]:
            if v in reduce_vars and v in spatial_vars:
                raise ScheduleError(f"decompose_reduction: loop {v.name} drives both spatial and reduction "
                                    f"iterators of {block}")
            if v in spatial_vars:
                copies[v] = self._fresh(f"{v.name}_init")
                kept.append(self._loop(v))
        sp = [(iv, v) for iv, v in zip(blk.iter_vars, realize.iter_values) if iv.kind == "S"]
        init_name = f"{block}_init"
        fresh = {iv.var: Var(iv.var.name) for iv, _ in sp}  # the new block's own iterators
        renamed = substitute_stmt(dataclasses.replace(blk, reads=(), init=None, body=blk.init), fresh)
        init_blk = dataclasses.replace(renamed, name=init_name,  # type: ignore[type-var]
                                       iter_vars=tuple(IterVar(fresh[iv.var], iv.extent, "S") for iv, _ in sp))
        pred = realize.predicate
        body: Stmt = BlockRealize(tuple(substitute(v, copies) for _, v in sp), substitute(pred, copies), init_blk)
        for f in reversed(kept):
            body = For(copies[f.var], f.extent, body)
        new_blk = dataclasses.replace(blk, init=None)
        target = self._loop(loop)

        def rewrite(x: Stmt) -> Stmt | None:
            if x is target:
                return seq(body, replace_stmt(x, lambda y: new_blk if y is blk else None))
            return None

        self.func = dataclasses.replace(self.func, body=replace_stmt(self.func.body, rewrite))
        self.trace.append(f"{init_name} = sch.decompose_reduction({block!r}, {loop.name})")
        return init_name

    def tensorize(self, target: Var | str, intrin: TensorIntrin) -> None:
        """Replace the nest under (and including) loop ``target``, or the body of the
        blockized block ``target``, with a call of ``intrin``, after matching it
        structurally against the intrinsic's semantics."""
        from .tensorize import TensorizeMismatch, match_call

        if isinstance(target, str):
            blk = self._block_node(target)
            if blk.iter_vars or not isinstance(blk.body, For):
                raise ScheduleError(f"tensorize: block {target} is not a blockized loop nest (use blockize first)")
            f, old, what = blk.body, next(x for x in walk_stmt(self.func.body)
                                          if isinstance(x, BlockRealize) and x.block is blk), f"block {target}"
        else:
            f = old = self._loop(target)
            what = target.name
        try:
            regions, scalars = match_call(f, intrin)
        except TensorizeMismatch as e:
            raise ScheduleError(f"tensorize {what} with {intrin.name}: {e}") from None
        call = IntrinCall(intrin, regions, scalars)
        self.func = dataclasses.replace(self.func, body=replace_stmt(self.func.body,
                                                                       lambda x: call if x is old else None))
        self.trace.append(f"sch.tensorize({target.name if isinstance(target, Var) else repr(target)}, {intrin.name})")

    def compute_inline(self, block: str) -> None:
        """Inline the elementwise ``block`` (``B[v...] = expr``, spatial iterators only) into
        every block that reads ``B``, and remove it and its buffer. ``B`` must be an
        intermediate buffer of the function, written by this block alone."""
        blk = self._block_node(block)
        store = blk.body
        if blk.init is not None or any(iv.kind == "R" for iv in blk.iter_vars):
            raise ScheduleError(f"compute_inline: block {block} is a reduction; only elementwise blocks inline")
        if not isinstance(store, BufferStore) or tuple(store.indices) != tuple(iv.var for iv in blk.iter_vars):
            raise ScheduleError(f"compute_inline: block {block} must be one store B[{', '.join(iv.var.name for iv in blk.iter_vars)}]"
                                " = value, indexed by its iterators in order")
        buf = store.buffer
        if buf not in self.func.allocs:
            raise ScheduleError(f"compute_inline: {buf.name} is a parameter of {self.func.name}; only intermediate "
                                "buffers can be inlined away")
        writers = [x for x in walk_stmt(self.func.body) if isinstance(x, BufferStore) and x.buffer is buf]
        if len(writers) != 1:
            raise ScheduleError(f"compute_inline: {buf.name} is written by more than block {block}")
        ivars = [iv.var for iv in blk.iter_vars]

        def inline(e: Expr) -> Expr:
            if isinstance(e, BufferLoad) and e.buffer is buf:
                return substitute(store.value, dict(zip(ivars, (inline(i) for i in e.indices))))
            kids = children(e)
            return rebuild(e, tuple(inline(k) for k in kids)) if kids else e

        def consumer(x: Stmt) -> Stmt | None:
            if isinstance(x, Block) and x is not blk and any(r.buffer is buf for r in x.reads):
                def st(y: Stmt) -> Stmt | None:
                    if isinstance(y, BufferStore):
                        return BufferStore(y.buffer, inline(y.value), tuple(inline(i) for i in y.indices))
                    return None

                reads = tuple(r for r in x.reads if r.buffer is not buf) + \
                    tuple(r for r in blk.reads if all(r.buffer is not q.buffer for q in x.reads))
                return dataclasses.replace(x, reads=reads, body=replace_stmt(x.body, st),
                                           init=replace_stmt(x.init, st) if x.init is not None else None)
            return None

        stmts = list(self.func.body.stmts if isinstance(self.func.body, SeqStmt) else (self.func.body,))
        at = self._root_index(block)
        nest = stmts[at]
        s2 = nest
        while isinstance(s2, For):
            s2 = s2.body
        if not (isinstance(s2, BlockRealize) and s2.block is blk):
            raise ScheduleError(f"compute_inline: block {block} must be alone in its root-level loop nest")
        del stmts[at]
        if not stmts:
            raise ScheduleError(f"compute_inline: nothing reads {buf.name}")
        body = replace_stmt(seq(*stmts), consumer)
        self.func = dataclasses.replace(self.func, body=body, allocs=tuple(b for b in self.func.allocs if b is not buf))
        self.trace.append(f"sch.compute_inline({block!r})")

    def reverse_compute_inline(self, block: str) -> None:
        """Inline the elementwise consumer ``block`` (``C[v...] = f(B[v...], ...)``) into the
        elementwise block that produces ``B``: the producer then writes ``C`` directly, and
        ``block`` and ``B`` are removed. ``B`` must be an intermediate buffer that only
        ``block`` reads."""
        cons = self._block_node(block)
        why = _elementwise_nest_problem(self._root_nest(block), cons)
        if why:
            raise ScheduleError(f"reverse_compute_inline: block {block} {why}")
        ivars = tuple(iv.var for iv in cons.iter_vars)
        inputs = [r.buffer for r in cons.reads if r.buffer in self.func.allocs]
        if not inputs:
            raise ScheduleError(f"reverse_compute_inline: block {block} reads no intermediate buffer")
        buf = inputs[0]
        if not _reads_at(cons, buf, ivars):
            raise ScheduleError(f"reverse_compute_inline: block {block} must read {buf.name} at its own iterators")
        writers = [x for x in walk_stmt(self.func.body) if isinstance(x, Block) and
                   any(isinstance(st, BufferStore) and st.buffer is buf for st in walk_stmt(x.body))]
        readers = [x for x in walk_stmt(self.func.body) if isinstance(x, Block) and x is not cons and
                   any(r.buffer is buf for r in x.reads)]
        for prod in writers:
            if prod.init is not None or any(iv.kind == "R" for iv in prod.iter_vars) or \
                    not isinstance(prod.body, BufferStore):
                raise ScheduleError(f"reverse_compute_inline: the producer {prod.name} is a reduction; its partial "
                                    "results cannot be transformed")
        readers = [x for x in readers if x not in writers]
        if len(writers) != 1 or readers:
            raise ScheduleError(f"reverse_compute_inline: {buf.name} must be written by one block and read by "
                                f"{block} alone")
        prod = writers[0]
        st = prod.body
        out = cons.body.buffer  # type: ignore[attr-defined]
        at_idx = dict(zip(ivars, st.indices))

        def inline(e: Expr) -> Expr:
            if isinstance(e, BufferLoad) and e.buffer is buf:
                return st.value
            if isinstance(e, BufferLoad):
                return BufferLoad(e.buffer, tuple(substitute(i, at_idx) for i in e.indices))
            kids = children(e)
            return rebuild(e, tuple(inline(k) for k in kids)) if kids else substitute(e, at_idx)

        value = inline(cons.body.value)  # type: ignore[attr-defined]
        extra = tuple(BufferRegion(r.buffer, tuple(Range(substitute(g.min, at_idx), g.extent) for g in r.region))
                      for r in cons.reads if r.buffer is not buf)
        new_prod = dataclasses.replace(prod, body=BufferStore(out, value, st.indices), reads=prod.reads + extra,
                                       writes=tuple(BufferRegion(out, r.region) if r.buffer is buf else r
                                                    for r in prod.writes))
        stmts = list(self.func.body.stmts if isinstance(self.func.body, SeqStmt) else (self.func.body,))
        del stmts[self._root_index(block)]
        body = replace_stmt(seq(*stmts), lambda x: new_prod if x is prod else None)
        self.func = dataclasses.replace(self.func, body=body, allocs=tuple(b for b in self.func.allocs if b is not buf))
        self.trace.append(f"sch.reverse_compute_inline({block!r})")

    def blockize(self, loop: Var) -> str:
        """Wrap ``loop`` and everything under it in a new block (``<inner>_o``, returned)
        whose reads and writes are the regions the nest touches: the unit that block-level
        `tensorize` matches and replaces."""
        f = self._loop(loop)
        inner = [x for x in walk_stmt(f.body) if isinstance(x, Block)]
        if len(inner) != 1:
            raise ScheduleError(f"blockize: loop {loop.name} must hold exactly one block, it holds {len(inner)}")
        bufs: list[Buffer] = []
        for r in (*inner[0].reads, *inner[0].writes):
            if r.buffer not in bufs:
                bufs.append(r.buffer)
        reads = tuple(BufferRegion(b, touched_region(f, b, False)) for b in bufs
                      if any(r.buffer is b for r in inner[0].reads))
        writes = tuple(BufferRegion(b, touched_region(f, b, True)) for b in bufs
                       if any(r.buffer is b for r in inner[0].writes))
        name = f"{inner[0].name}_o"
        taken = {x.name for x in walk_stmt(self.func.body) if isinstance(x, Block)}
        while name in taken:
            name += "_"
        outer = BlockRealize((), IntImm(1), Block(name, (), reads, writes, f))
        self.func = dataclasses.replace(self.func, body=replace_stmt(self.func.body,
                                                                       lambda x: outer if x is f else None))
        self.trace.append(f"{name} = sch.blockize({loop.name})")
        return name

    def _root_nest(self, block: str) -> Stmt:
        stmts = self.func.body.stmts if isinstance(self.func.body, SeqStmt) else (self.func.body,)
        return stmts[self._root_index(block)]

    # ---- caches and placement ------------------------------------------------------
    def _block_node(self, name: str) -> Block:
        for s in walk_stmt(self.func.body):
            if isinstance(s, Block) and s.name == name:
                return s
        raise ScheduleError(f"{self.func.name} has no block {name!r}")

    def _root_index(self, name: str) -> int:
        """Index of the root-level statement containing block ``name``."""
        stmts = self.func.body.stmts if isinstance(self.func.body, SeqStmt) else (self.func.body,)
        for i, st in enumerate(stmts):
            if any(isinstance(x, Block) and x.name == name for x in walk_stmt(st)):
                return i
        raise ScheduleError(f"{self.func.name} has no block {name!r}")

    def _new_buffer(self, buf: Buffer, scope: str) -> Buffer:
        if scope not in SCOPES:
            raise ScheduleError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
        taken = {b.name for b in (*self.func.params, *self.func.allocs)}
        name, n = f"{buf.name}_{scope}", 1
        while name in taken:
            name, n = f"{buf.name}_{scope}_{n}", n + 1
        return Buffer(name, buf.shape, buf.dtype, scope)

    def cache_read(self, block: str, read_index: int, scope: str) -> str:
        """Read ``block``'s ``read_index``-th input through a copy in ``scope``. The copy is a
        new block (returned) over the whole buffer, placed first; `compute_at` moves it under
        a loop and narrows it to what is read there."""
        blk = self._block_node(block)
        if not 0 <= read_index < len(blk.reads):
            raise ScheduleError(f"cache_read: block {block} reads {len(blk.reads)} buffer(s), no index {read_index}")
        src = blk.reads[read_index].buffer
        dst = self._new_buffer(src, scope)
        copy = _copy_nest(dst.name, src, dst)
        new_blk = _rename_buffer(blk, src, dst, reads=True, writes=False)
        body = replace_stmt(self.func.body, lambda x: new_blk if x is blk else None)
        self.func = dataclasses.replace(self.func, body=seq(copy, body), allocs=(*self.func.allocs, dst))
        self.trace.append(f"{dst.name} = sch.cache_read({block!r}, {read_index}, {scope!r})")
        return dst.name

    def cache_write(self, block: str, write_index: int, scope: str) -> str:
        """Make ``block`` write its ``write_index``-th output into ``scope``, copied out by a
        new block (returned) placed after it; `reverse_compute_at` moves that copy."""
        blk = self._block_node(block)
        if not 0 <= write_index < len(blk.writes):
            raise ScheduleError(f"cache_write: block {block} writes {len(blk.writes)} buffer(s), "
                                f"no index {write_index}")
        out = blk.writes[write_index].buffer
        cache = self._new_buffer(out, scope)
        copy = _copy_nest(cache.name, cache, out)
        new_blk = _rename_buffer(blk, out, cache, reads=True, writes=True)
        stmts = list(self.func.body.stmts if isinstance(self.func.body, SeqStmt) else (self.func.body,))
        at = self._root_index(block)
        stmts[at] = replace_stmt(stmts[at], lambda x: new_blk if x is blk else None)
        stmts.insert(at + 1, copy)
        self.func = dataclasses.replace(self.func, body=seq(*stmts), allocs=(*self.func.allocs, cache))
        self.trace.append(f"{cache.name} = sch.cache_write({block!r}, {write_index}, {scope!r})")
        return cache.name

    def set_scope(self, buffer: str, scope: str) -> None:
        """Place the intermediate buffer ``buffer`` in ``scope`` (e.g. a stage's output in
        the accumulator scratchpad, or a padding stage in the input scratchpad)."""
        if scope not in SCOPES:
            raise ScheduleError(f"set_scope: scope {scope!r} is not one of {', '.join(SCOPES)}")
        old = next((b for b in self.func.allocs if b.name == buffer), None)
        if old is None:
            params = [b.name for b in self.func.params]
            why = "it is a parameter; use cache_read/cache_write" if buffer in params else "no such buffer"
            raise ScheduleError(f"set_scope: {buffer} is not an intermediate buffer of {self.func.name} ({why})")
        new = Buffer(old.name, old.shape, old.dtype, scope)

        def fn(x: Stmt) -> Stmt | None:
            if isinstance(x, Block):
                return _rename_buffer(x, old, new, reads=True, writes=True)
            if isinstance(x, IntrinCall):
                return IntrinCall(x.intrin, tuple(BufferRegion(new, r.region) if r.buffer is old else r
                                                  for r in x.regions), x.scalars)
            return None

        self.func = dataclasses.replace(self.func, body=replace_stmt(self.func.body, fn),
                                        allocs=tuple(new if b is old else b for b in self.func.allocs))
        self.trace.append(f"sch.set_scope({buffer!r}, {scope!r})")

    def compute_at(self, block: str, loop: Var) -> None:
        """Move the elementwise ``block`` (a root-level loop nest over its output, as
        cache_read makes, or a padding stage) to the start of ``loop``'s body, computing
        only the region the blocks under ``loop`` read."""
        self._move_stage(block, loop, write=False)
        self.trace.append(f"sch.compute_at({block!r}, {loop.name})")

    def reverse_compute_at(self, block: str, loop: Var) -> None:
        """Move the elementwise ``block`` (as cache_write makes, or an epilogue) to the end
        of ``loop``'s body, computing only the region the blocks under ``loop`` write of the
        buffer it reads."""
        self._move_stage(block, loop, write=True)
        self.trace.append(f"sch.reverse_compute_at({block!r}, {loop.name})")

    def _move_stage(self, block: str, loop: Var, write: bool) -> None:
        what = "reverse_compute_at" if write else "compute_at"
        stmts = list(self.func.body.stmts if isinstance(self.func.body, SeqStmt) else (self.func.body,))
        at = self._root_index(block)
        nest = stmts[at]
        blk = self._block_node(block)
        why = _elementwise_nest_problem(nest, blk)
        if why:
            raise ScheduleError(f"{what}: block {block} {why}")
        f = self._loop(loop)
        if any(x is f for x in walk_stmt(nest)):
            raise ScheduleError(f"{what}: loop {loop.name} is the block's own loop")
        order = [i for i, st in enumerate(stmts) if any(x is f for x in walk_stmt(st))][0]
        if (order < at) != write or order == at:
            rel = "after" if write else "before"
            raise ScheduleError(f"{what}: block {block} must come {rel} the nest of loop {loop.name}")
        ivars = tuple(iv.var for iv in blk.iter_vars)
        if write:  # the read (at the block's own index) that the loop's body produces
            produced = {s.buffer for s in walk_stmt(f.body) if isinstance(s, BufferStore)} | \
                {r.buffer for s in walk_stmt(f.body) if isinstance(s, IntrinCall) for r in s.regions[:1]}
            cands = [r.buffer for r in blk.reads if r.buffer in produced]
            if not cands:
                raise ScheduleError(f"{what}: nothing under loop {loop.name} writes what block {block} reads")
            cached = cands[0]
            if not _reads_at(blk, cached, ivars):
                raise ScheduleError(f"{what}: block {block} must read {cached.name} at its own iterators "
                                    f"[{', '.join(v.name for v in ivars)}]")
        else:
            cached = blk.writes[0].buffer
            if not any(r.buffer is cached for s in walk_stmt(f.body) if isinstance(s, Block) for r in s.reads) and \
                    not any(r.buffer is cached for s in walk_stmt(f.body) if isinstance(s, IntrinCall)
                            for r in s.regions):
                raise ScheduleError(f"{what}: no block under loop {loop.name} uses {cached.name}")
        region = touched_region(f.body, cached, write)
        moved = _region_nest(blk, region)
        new_loop = dataclasses.replace(f, body=seq(f.body, moved) if write else seq(moved, f.body))
        del stmts[at]
        body = replace_stmt(seq(*stmts), lambda x: new_loop if x is f else None)
        self.func = dataclasses.replace(self.func, body=_simplify_bindings(body, {}))

    def _chain_order(self, fors: list[For]) -> list[For]:
        """The given loops, outermost first (by nesting in the function)."""
        depth = {}
        for s in walk_stmt(self.func.body):
            if isinstance(s, For):
                depth[s.var] = len(depth)
        return sorted(fors, key=lambda f: depth[f.var])

    # ---- output ---------------------------------------------------------------------
    def trace_str(self) -> str:
        """The primitives applied so far, as Python that replays them on ``sch`` (tensor
        intrinsics appear by name: `replay` binds them)."""
        return "\n".join(self.trace)


def replay(func: PrimFunc, trace: str, intrinsics: Sequence[TensorIntrin] = ()) -> Schedule:
    """A new schedule of ``func`` with the primitives of ``trace`` (a `Schedule.trace_str`,
    perhaps edited by hand) applied; ``intrinsics`` are the ones it tensorizes with."""
    sch = Schedule(func)
    namespace: dict[str, object] = {"sch": sch, **{i.name: i for i in intrinsics}}
    exec(compile(trace, "<schedule trace>", "exec"), namespace)  # noqa: S102  (the user's own schedule text)
    return sch


def _copy_nest(name: str, src: Buffer, dst: Buffer) -> Stmt:
    """Loops and a block ``dst[x] = src[x]`` over the whole buffer."""
    ivs = [Var(f"v{d}") for d in range(src.ndim)]
    blk = Block(name, tuple(IterVar(iv, d) for iv, d in zip(ivs, src.shape)),
                reads=(BufferRegion(src, tuple(Range(iv, IntImm(1)) for iv in ivs)),),
                writes=(BufferRegion(dst, tuple(Range(iv, IntImm(1)) for iv in ivs)),),
                body=BufferStore(dst, src[tuple(ivs)], tuple(ivs)))  # type: ignore[arg-type]
    return _region_nest(blk, tuple(Range(IntImm(0), d) for d in src.shape))


def _elementwise_nest_problem(nest: Stmt, blk: Block) -> str | None:
    """Why ``nest`` is not a root-level nest of loops, one per iterator in order, around the
    elementwise ``blk`` writing its output at its iterators (None when it is)."""
    loops: list[For] = []
    s = nest
    while isinstance(s, For):
        loops.append(s)
        s = s.body
    if not (isinstance(s, BlockRealize) and s.block is blk):
        return "is not alone in a root-level loop nest"
    if blk.init is not None or any(iv.kind == "R" for iv in blk.iter_vars):
        return "is a reduction; only elementwise stages move"
    ivars = tuple(iv.var for iv in blk.iter_vars)
    if len(blk.writes) != 1 or not isinstance(blk.body, BufferStore) or tuple(blk.body.indices) != ivars:
        return f"must be one store at its iterators [{', '.join(v.name for v in ivars)}]"
    if tuple(s.iter_values) != tuple(f.var for f in loops) or \
            tuple(simplify(iv.extent) for iv in blk.iter_vars) != tuple(simplify(d) for d in blk.body.buffer.shape):
        return "must run over its whole output, one loop per dimension"
    return None


def _reads_at(blk: Block, buf: Buffer, ivars: tuple[Var, ...]) -> bool:
    """Whether every load of ``buf`` in ``blk`` is at exactly ``ivars``."""
    found: list[bool] = []

    def visit(e: Expr) -> None:
        if isinstance(e, BufferLoad) and e.buffer is buf:
            found.append(tuple(e.indices) == ivars)
        for k in children(e):
            visit(k)

    visit(blk.body.value)  # type: ignore[attr-defined]
    return bool(found) and all(found)


def _region_nest(blk: Block, region: tuple[Range, ...]) -> Stmt:
    """Loops over ``region`` of ``blk``'s domain around ``blk``; a region reaching past the
    end of the domain is cut at it by a predicate."""
    loops = [Var(f"ax{d}") for d in range(len(region))]
    values = [simplify(r.min + lv) for r, lv in zip(region, loops)]
    pred: Expr = IntImm(1)
    for v, r, iv in zip(values, region, blk.iter_vars):
        d = iv.extent
        if not (isinstance(d, IntImm) and isinstance(r.extent, IntImm) and
                simplify(r.min, {}) == IntImm(0) and r.extent.value <= d.value):
            pred = and_(pred, v < d) if not (isinstance(pred, IntImm)) else v < d
    body: Stmt = BlockRealize(tuple(values), pred, blk)
    for lv, r in reversed(list(zip(loops, region))):
        body = For(lv, r.extent, body)
    return body


def _rename_buffer(blk: Block, old: Buffer, new: Buffer, reads: bool, writes: bool) -> Block:
    """``blk`` with ``old`` replaced by ``new`` in its body, init and (as asked) regions."""
    from .expr import children, rebuild

    def e(x: Expr) -> Expr:
        if isinstance(x, BufferLoad) and x.buffer is old:
            return BufferLoad(new, tuple(e(i) for i in x.indices))
        kids = children(x)
        return rebuild(x, tuple(e(k) for k in kids)) if kids else x

    def st(s: Stmt) -> Stmt | None:
        if isinstance(s, BufferStore):
            buf = new if (writes and s.buffer is old) else s.buffer
            return BufferStore(buf, e(s.value), tuple(e(i) for i in s.indices))
        return None

    def regions(rs: tuple[BufferRegion, ...]) -> tuple[BufferRegion, ...]:
        return tuple(BufferRegion(new, r.region) if r.buffer is old else r for r in rs)

    return dataclasses.replace(
        blk, body=replace_stmt(blk.body, st), init=replace_stmt(blk.init, st) if blk.init is not None else None,
        reads=regions(blk.reads) if reads else blk.reads, writes=regions(blk.writes) if writes else blk.writes)


def _predicate(s: Stmt, cond: Expr) -> Stmt:
    """Every block realized inside ``s`` additionally requires ``cond``."""
    def add(x: Stmt) -> Stmt | None:
        if isinstance(x, BlockRealize):
            pred = cond if isinstance(x.predicate, IntImm) and x.predicate.value == 1 else and_(x.predicate, cond)
            return dataclasses.replace(x, predicate=pred)
        return None

    return replace_stmt(s, add)


def _simplify_bindings(s: Stmt, ranges: dict[Var, tuple[int, int]]) -> Stmt:
    """Simplify block bindings and predicates with the ranges of the loops around them."""
    if isinstance(s, For):
        inner = dict(ranges)
        if isinstance(s.extent, IntImm):
            inner[s.var] = (0, s.extent.value - 1)
        body = _simplify_bindings(s.body, inner)
        return s if body is s.body else dataclasses.replace(s, body=body)
    if isinstance(s, BlockRealize):
        return dataclasses.replace(s, iter_values=tuple(simplify(v, ranges) for v in s.iter_values),
                                   predicate=simplify(s.predicate, ranges))
    if isinstance(s, SeqStmt):
        return SeqStmt(tuple(_simplify_bindings(x, ranges) for x in s.stmts))
    return s
