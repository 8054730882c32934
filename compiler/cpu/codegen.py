"""Loop IR to LLVM IR for the host CPU.

A `PrimFunc` becomes one internal ``void @name_sK(ptr p0, ..., ptr pN, i64 begin, i64 end)``
per root statement (stage): one pointer per parameter and per intermediate buffer
(row-major, dense, the buffer's dtype), and the range of the stage's outer loop this call
runs (a ``parallel`` outer loop is split among threads by the caller; otherwise the range
is unused). The caller calls entry points ``void @name(ptr argv, i64 begin, i64 end)``
(``argv`` holds the pointers), one per group of consecutive serial stages and one per
group of row-aligned parallel stages, in order (`groups`, `stage_info`).

Semantics follow the reference interpreter (`tir.interp`): blocks bind their iterators,
a predicate guards the block, an init part runs when every reduction iterator is 0;
stores convert to the buffer's dtype (integers wrap, floats round); ``//`` and ``%`` are
floor division and remainder (the divisor's sign), except that ``//`` is true division on
floats (``fmod`` is C's remainder); a
``select`` whose branches read memory evaluates only the branch it takes. Loop kinds:
``unrolled`` loops are unrolled here, ``vectorized`` and serial inner loops are left to
LLVM's loop vectorizer (the optimizer runs at -O3), ``parallel`` applies to the outer
loop only.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

from llvmlite import ir
from vta.compiler.tir.expr import (
    Add, And, BinOp, Cmp, Expr, FloorDiv, FloorMod, IntImm, Max, Min, Mul, Not, Or, Select, Sub, Var, children, substitute,
)
from vta.compiler.tir.intrin import IntrinCall
from vta.compiler.tir.scalar import FLOATS, Call, FloatImm, dtype_of
from vta.compiler.tir.stmt import (
    Block, BlockRealize, Buffer, BufferLoad, BufferStore, Cast, Evaluate, For, PrimFunc, SeqStmt, Stmt,
)
from vta.isa.errors import VTAError

from . import mathfn
from .groups import groups, stages
from .lanes import in_bounds, lane_chunks, vector_lanes, within_slack

I1, I8, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(64)
PTR = ir.PointerType()
_TYPES: dict[str, ir.Type] = {"int8": I8, "uint8": I8, "int16": ir.IntType(16), "int32": ir.IntType(32), "int64": I64,
                              "float16": ir.HalfType(), "float32": ir.FloatType(), "float64": ir.DoubleType(),
                              "bool": I1}
MAX_STRIDE = 4  # lanes at most this many elements apart load contiguously and shuffle (further: gather)
_UNROLL_LIMIT = 64  # an ``unrolled`` loop longer than this stays a loop


class CodegenError(VTAError):
    """The function uses something the CPU code generator does not handle; names it."""


def llvm_type(dtype: str) -> ir.Type:
    if dtype == "float16":  # half arithmetic would call compiler-rt helpers the JIT cannot resolve
        raise CodegenError("float16 is not supported by the CPU backend (compute in float32)")
    if dtype not in _TYPES:
        raise CodegenError(f"dtype {dtype} has no CPU representation")
    return _TYPES[dtype]


def _mem_type(dtype: str) -> ir.Type:
    return I8 if dtype == "bool" else llvm_type(dtype)


def _is_float(dtype: str) -> bool:
    return dtype in FLOATS


def _has_load(e: Expr) -> bool:
    return isinstance(e, BufferLoad) or any(_has_load(k) for k in children(e))


@dataclass
class _Ctx:
    env: dict[Var, ir.Value] = field(default_factory=dict)


class _Gen:
    def __init__(self, func: PrimFunc) -> None:
        self.func = func
        self.module = ir.Module(name=func.name)
        # "local" buffers live on the stack of each stage (small, register-promotable tiles);
        # the others are pointer parameters
        self.buffers = list(func.params) + [b for b in func.allocs if b.scope != "local"]
        self.locals = [b for b in func.allocs if b.scope == "local"]
        self.scratch = {b for b in func.allocs if b.scope != "local"}  # allocated with `lanes.SLACK` to spare
        self.vector_loops: list[ir.MDValue] = []
        self.ranges: dict[Var, tuple[int, int]] = {}  # the constant-extent loops around (to prove reads in bounds)
        self.lanes = 0  # inside a loop emitted as vectors: its lane count
        self.mask: ir.Value | None = None  # there: the lanes a load may touch (None: all)
        self.binding: dict[Var, Expr] = {}  # there: the block iterators' values, in terms of the loops
        self.lane_ranges: dict[Var, tuple[int, int]] = {}
        self.affine: dict[Var, tuple[ir.Value, int]] = {}  # there: index variables as (lane-0 value, step per lane)
        self._accumulate: Expr | None = None
        self._contract: tuple[Expr, ...] = ()
        for b in (*self.buffers, *self.locals):
            if not all(isinstance(d, IntImm) for d in b.shape):
                raise CodegenError(f"buffer {b.name}: shape {tuple(map(str, b.shape))} is not constant")
    def _begin(self, name: str, stage: Stmt) -> None:
        fnty = ir.FunctionType(ir.VoidType(), [PTR] * len(self.buffers) + [I64, I64])
        self.fn = ir.Function(self.module, fnty, name=name)
        self.fn.linkage = "internal"
        for a, b in zip(self.fn.args, self.buffers):
            a.name = b.name
            a.add_attribute("noalias")
        self.fn.args[-2].name, self.fn.args[-1].name = "begin", "end"
        self.ptr = dict(zip(self.buffers, self.fn.args))
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        for buf in self.locals:
            n = 1
            for d in buf.shape:
                n *= d.value  # type: ignore[attr-defined]
            self.ptr[buf] = self.b.alloca(_mem_type(buf.dtype), size=n, name=buf.name)
        self.outer = stage if isinstance(stage, For) and stage.kind == "parallel" else None

    # ---- statements -------------------------------------------------------------------
    def run(self) -> ir.Module:
        fns = []
        for k, stage in enumerate(stages(self.func)):
            self._begin(f"{self.func.name}_s{k}", stage)
            self.stmt(stage, _Ctx())
            self.b.ret_void()
            fns.append(self.fn)
        for g in groups(self.func):
            self._entry(g.name, [fns[k] for k in g.members])
        return self.module

    def _entry(self, name: str, fns: list[ir.Function]) -> None:
        """``void @name(ptr argv, i64 begin, i64 end)``: the stages ``fns`` in order on the pointers in ``argv``."""
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR, I64, I64]), name=name)
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        argv, lo, hi = fn.args
        ptrs = [b.load(b.gep(argv, [ir.Constant(I64, k)], source_etype=PTR), typ=PTR, name=buf.name)
                for k, buf in enumerate(self.buffers)]
        for f in fns:
            b.call(f, [*ptrs, lo, hi])
        b.ret_void()

    def stmt(self, s: Stmt, cx: _Ctx) -> None:
        if isinstance(s, SeqStmt):
            for x in s.stmts:
                self.stmt(x, cx)
        elif isinstance(s, For):
            self.loop(s, cx)
        elif isinstance(s, BlockRealize):
            self.realize(s, cx)
        elif isinstance(s, Block):
            self.block(s, cx)
        elif isinstance(s, BufferStore):
            self.store(s, cx)
        elif isinstance(s, Evaluate):
            pass
        elif isinstance(s, IntrinCall):
            raise CodegenError(f"intrinsic {s.intrin.name} runs on the accelerator, not the CPU")
        else:
            raise CodegenError(f"cannot generate CPU code for a {type(s).__name__}")

    def loop(self, s: For, cx: _Ctx) -> None:
        if s is self.outer:
            lo, hi = self.fn.args[-2], self.fn.args[-1]
        else:
            lo, hi = ir.Constant(I64, 0), self.index(s.extent, cx)
        if not self.lanes and s is not self.outer and vector_lanes(s, self.ranges):
            self.vector_loop(s, cx)
            return
        if isinstance(s.extent, IntImm):
            self.ranges[s.var] = (0, s.extent.value - 1)
        if s.kind == "unrolled" and isinstance(s.extent, IntImm) and s.extent.value <= _UNROLL_LIMIT \
                and s is not self.outer:
            for i in range(s.extent.value):
                cx.env[s.var] = ir.Constant(I64, i)
                self.stmt(s.body, cx)
            cx.env.pop(s.var, None)
            self.ranges.pop(s.var, None)
            return
        b = self.b
        pre = b.block
        head = self.fn.append_basic_block(f"{s.var.name}.head")
        body = self.fn.append_basic_block(f"{s.var.name}.body")
        done = self.fn.append_basic_block(f"{s.var.name}.done")
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64, name=s.var.name)
        i.add_incoming(lo, pre)
        b.cbranch(b.icmp_signed("<", i, hi), body, done)
        b.position_at_end(body)
        cx.env[s.var] = i
        self.stmt(s.body, cx)
        nxt = b.add(i, ir.Constant(I64, 1))
        i.add_incoming(nxt, b.block)
        latch = b.branch(head)
        if s.kind == "vectorized":  # ask LLVM to vectorize this loop (and not unroll it away first)
            marker = self.module.add_metadata([ir.MetaDataString(self.module, f"vta.vectorize.{len(self.vector_loops)}")])
            latch.set_metadata("llvm.loop", marker)
            self.vector_loops.append(marker)
        b.position_at_end(done)
        cx.env.pop(s.var, None)
        self.ranges.pop(s.var, None)

    def vector_loop(self, s: For, cx: _Ctx) -> None:
        """The loop's body on vectors of ``extent`` lanes (`lanes.vector_lanes` admitted it), in
        power-of-two chunks (vectors LLVM splits into whole registers)."""
        try:
            for start, width in lane_chunks(s.extent.value):  # type: ignore[attr-defined]
                self.lanes = width
                self.affine = {s.var: (ir.Constant(I64, start), 1)}
                self.lane_ranges = {s.var: (start, start + width - 1)}
                self.stmt(s.body, cx)
        finally:
            self.lanes, self.affine, self.mask, self.binding, self.lane_ranges = 0, {}, None, {}, {}

    def realize(self, s: BlockRealize, cx: _Ctx) -> None:
        if self.lanes:  # iterators that step evenly across lanes are kept as (base, step)
            self.binding = {iv.var: substitute(v, self.binding) for iv, v in zip(s.block.iter_vars, s.iter_values)}
            for iv, v in zip(s.block.iter_vars, s.iter_values):
                lin = self.lane_form(v, cx)
                if lin is None:
                    cx.env[iv.var] = self.index(v, cx)
                    self.affine.pop(iv.var, None)
                else:
                    self.affine[iv.var] = lin
            pred = self.value(s.predicate, cx, "bool") if not _is_true(s.predicate) else None
            if pred is not None and isinstance(pred.type, ir.VectorType):  # lanes differ: a masked block
                outer = self.mask
                self.mask = pred if outer is None else self.b.and_(self.splat(outer), pred)
                try:
                    self.block(s.block, cx)
                finally:
                    self.mask = outer
                return
            with self.b.if_then(pred) if pred is not None else _nothing():
                self.block(s.block, cx)
            return
        values = [self.index(v, cx) for v in s.iter_values]
        pred = s.predicate
        if isinstance(pred, IntImm) and pred.value == 1:
            self.block(s.block, cx, values)
            return
        with self.b.if_then(self.value(pred, cx, "bool")):
            self.block(s.block, cx, values)

    def block(self, blk: Block, cx: _Ctx, values: list[ir.Value] | None = None) -> None:
        if blk.alloc_buffers:
            raise CodegenError(f"block {blk.name}: block-local buffers are not supported on the CPU; "
                               "declare them on the function")
        for iv, v in zip(blk.iter_vars, values or []):
            cx.env[iv.var] = v
        if blk.init is not None:
            first: ir.Value = ir.Constant(I1, 1)
            for iv, v in zip(blk.iter_vars, values or []):
                if iv.kind == "R":
                    first = self.b.and_(first, self.b.icmp_signed("==", v, ir.Constant(I64, 0)))
            with self.b.if_then(first):
                self.stmt(blk.init, cx)
        self.stmt(blk.body, cx)

    def store(self, s: BufferStore, cx: _Ctx) -> None:
        # a float32 accumulation (``Y[i] = Y[i] + ...``) may be reassociated and contracted to
        # fused multiply-adds: LLVM then vectorizes reductions and uses FMA; other arithmetic
        # (float64 included: asked for where the exact order matters) keeps its order
        self._accumulate = s.value if s.buffer.dtype == "float32" and _is_accumulate(s) else None
        self._contract = ()
        v = self.convert(self.value(s.value, cx, s.buffer.dtype), dtype_of(s.value) or s.buffer.dtype,
                         s.buffer.dtype)
        if s.buffer.dtype == "bool":
            v = self.b.zext(v, self.ty("int8", v))
        if self.lanes:
            self.vstore(s.buffer, s.indices, v, cx)
            return
        self.b.store(v, self.address(s.buffer, s.indices, cx))

    # ---- vectors (inside a loop emitted as vectors) -------------------------------------
    def intrinsic(self, name: str, ty: ir.Type, nargs: int = 1) -> ir.Function:
        """The overload of LLVM intrinsic ``name`` on ``ty`` (a float or a vector of floats)."""
        elem = ty.element if isinstance(ty, ir.VectorType) else ty
        suffix = {"float": "f32", "double": "f64"}[str(elem)]
        full = f"{name}.v{ty.count}{suffix}" if isinstance(ty, ir.VectorType) else f"{name}.{suffix}"
        fn = self.module.globals.get(full)
        return fn if fn is not None else ir.Function(self.module, ir.FunctionType(ty, [ty] * nargs), name=full)

    def ty(self, dtype: str, like: ir.Value) -> ir.Type:
        """The LLVM type of ``dtype``, as a vector when ``like`` is one."""
        t = llvm_type(dtype)
        return ir.VectorType(t, like.type.count) if isinstance(like.type, ir.VectorType) else t

    def splat(self, v: ir.Value) -> ir.Value:
        """``v`` in every lane (a vector stays as it is)."""
        if isinstance(v.type, ir.VectorType):
            return v
        vt = ir.VectorType(v.type, self.lanes)
        one = self.b.insert_element(ir.Constant(vt, ir.Undefined), v, ir.Constant(ir.IntType(32), 0))
        return self.b.shuffle_vector(one, ir.Constant(vt, ir.Undefined),
                                     ir.Constant(ir.VectorType(ir.IntType(32), self.lanes), [0] * self.lanes))

    def iota(self, step: int) -> ir.Value:
        return ir.Constant(ir.VectorType(I64, self.lanes), [k * step for k in range(self.lanes)])

    def match(self, *vs: ir.Value) -> tuple[ir.Value, ...]:
        """The values as vectors when any of them is one (lane-invariant ones broadcast)."""
        if not any(isinstance(v.type, ir.VectorType) for v in vs):
            return vs
        return tuple(self.splat(v) for v in vs)

    def lane_form(self, e: Expr, cx: _Ctx) -> tuple[ir.Value, int] | None:
        """An index expression as (its value in lane 0, its step per lane) when it steps
        evenly; None when it does not (it is then computed as a vector)."""
        b = self.b
        if isinstance(e, IntImm):
            return ir.Constant(I64, e.value), 0
        if isinstance(e, Var) and e in self.affine:
            return self.affine[e]
        if isinstance(e, (Add, Sub)):
            x, y = self.lane_form(e.a, cx), self.lane_form(e.b, cx)
            if x is None or y is None:
                return None
            if isinstance(e, Add):
                return b.add(x[0], y[0]), x[1] + y[1]
            return b.sub(x[0], y[0]), x[1] - y[1]
        if isinstance(e, Mul):
            x, y = self.lane_form(e.a, cx), self.lane_form(e.b, cx)
            if x is None or y is None:
                return None
            if isinstance(e.b, IntImm) or isinstance(e.a, IntImm):
                k = e.b.value if isinstance(e.b, IntImm) else e.a.value  # type: ignore[attr-defined]
                lin = x if isinstance(e.b, IntImm) else y
                return b.mul(lin[0], ir.Constant(I64, k)), lin[1] * k
            if x[1] == 0 and y[1] == 0:
                return b.mul(x[0], y[0]), 0
            return None
        v = self.index(e, cx)
        return (v, 0) if not isinstance(v.type, ir.VectorType) else None

    def vaddress(self, buf: Buffer, indices: tuple[Expr, ...], cx: _Ctx) -> tuple[ir.Value, int | None]:
        """(address of lane 0, element step per lane), or (a vector of element offsets, None)."""
        if buf not in self.ptr:
            raise CodegenError(f"buffer {buf.name} is neither a parameter nor an intermediate of {self.func.name}")
        forms = [self.lane_form(i, cx) for i in indices]
        strides, n = [], 1
        for d in reversed(range(buf.ndim)):
            strides.insert(0, n)
            n *= buf.shape[d].value  # type: ignore[attr-defined]
        et = _mem_type(buf.dtype)
        if all(f is not None for f in forms):
            off: ir.Value = ir.Constant(I64, 0)
            step = 0
            for (base, st), k in zip(forms, strides):  # type: ignore[misc]
                off = self.b.add(off, self.b.mul(base, ir.Constant(I64, k)))
                step += st * k
            return self.b.gep(self.ptr[buf], [off], source_etype=et), step
        offs: ir.Value = self.splat(ir.Constant(I64, 0))
        for i, k in zip(indices, strides):
            offs = self.b.add(offs, self.b.mul(self.splat(self.index(i, cx)), self.splat(ir.Constant(I64, k))))
        return offs, None

    def _lane_ptrs(self, buf: Buffer, at: ir.Value, step: int | None) -> list[ir.Value]:
        et, b = _mem_type(buf.dtype), self.b
        if step is None:
            return [b.gep(self.ptr[buf], [b.extract_element(at, ir.Constant(I64, k))], source_etype=et)
                    for k in range(self.lanes)]
        return [b.gep(at, [ir.Constant(I64, k * step)], source_etype=et) for k in range(self.lanes)]

    def vload(self, buf: Buffer, indices: tuple[Expr, ...], cx: _Ctx) -> ir.Value:
        at, step = self.vaddress(buf, indices, cx)
        et, b = _mem_type(buf.dtype), self.b
        if step is not None and 1 < step <= MAX_STRIDE and self.lanes > 1:
            return self.strided_load(buf, at, step)
        if self.mask is not None and not self.lanes_in_bounds(buf, indices) and not \
                (buf in self.scratch and within_slack(BufferLoad(buf, indices), self.binding, self.all_ranges())):
            return self.masked_load(buf, at, step)
        if step == 0:
            return b.load(at, typ=et)
        vt = ir.VectorType(et, self.lanes)
        if step == 1:
            return b.load(b.bitcast(at, vt.as_pointer()), typ=vt, align=max(1, _bits(buf.dtype) // 8))
        out = ir.Constant(vt, ir.Undefined)
        for k, p in enumerate(self._lane_ptrs(buf, at, step)):
            out = b.insert_element(out, b.load(p, typ=et), ir.Constant(I64, k))
        return out

    def strided_load(self, buf: Buffer, at: ir.Value, step: int) -> ir.Value:
        """Lanes ``step`` elements apart as one contiguous masked load of ``lanes × step``
        elements (only each lane's own element enabled, and only the lanes of ``self.mask``)
        and a shuffle: no gather, and nothing past the last lane's element is touched."""
        b, et, n = self.b, _mem_type(buf.dtype), self.lanes
        wide = n * step
        i32 = ir.IntType(32)
        vi1 = ir.VectorType(I1, wide)
        mask: ir.Value = ir.Constant(vi1, [int(j % step == 0) for j in range(wide)])
        if self.mask is not None:
            lanes = self.splat(self.mask)
            spread = b.shuffle_vector(lanes, ir.Constant(lanes.type, ir.Undefined),
                                      ir.Constant(ir.VectorType(i32, wide), [j // step for j in range(wide)]))
            mask = b.and_(spread, mask)
        vt = ir.VectorType(et, wide)
        fn = self._declare(f"llvm.masked.load.v{wide}{_type_suffix(et)}.p0", vt, [PTR, i32, vi1, vt])
        got = b.call(fn, [b.bitcast(at, PTR), ir.Constant(i32, max(1, _bits(buf.dtype) // 8)), mask, ir.Constant(vt, None)])
        return b.shuffle_vector(got, ir.Constant(vt, ir.Undefined),
                                ir.Constant(ir.VectorType(i32, n), [k * step for k in range(n)]))

    def masked_load(self, buf: Buffer, at: ir.Value, step: int | None) -> ir.Value:
        """The lanes of ``self.mask`` loaded (contiguous: a masked load; else a masked
        gather), the others zero; no other lane's address is touched."""
        b, et, n = self.b, _mem_type(buf.dtype), self.lanes
        vt, mask = ir.VectorType(et, n), self.splat(self.mask)  # type: ignore[arg-type]
        align, zero = ir.Constant(ir.IntType(32), max(1, _bits(buf.dtype) // 8)), ir.Constant(vt, None)
        sfx = _type_suffix(et)
        if step == 1:
            fn = self._declare(f"llvm.masked.load.v{n}{sfx}.p0", vt, [PTR, ir.IntType(32), mask.type, vt])
            return b.call(fn, [b.bitcast(at, PTR), align, mask, zero])
        ptrs = ir.Constant(ir.VectorType(PTR, n), ir.Undefined)
        for k, p in enumerate(self._lane_ptrs(buf, at, step)):
            ptrs = b.insert_element(ptrs, b.bitcast(p, PTR), ir.Constant(I64, k))
        fn = self._declare(f"llvm.masked.gather.v{n}{sfx}.v{n}p0", vt, [ptrs.type, ir.IntType(32), mask.type, vt])
        return b.call(fn, [ptrs, align, mask, zero])

    def _declare(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        fn = self.module.globals.get(name)
        return fn if fn is not None else ir.Function(self.module, ir.FunctionType(ret, args), name=name)

    def vstore(self, buf: Buffer, indices: tuple[Expr, ...], v: ir.Value, cx: _Ctx) -> None:
        at, step = self.vaddress(buf, indices, cx)
        b = self.b
        v = self.splat(v)
        # only the lanes of the mask (a masked store or scatter), except into a stack tile where
        # every lane has its own place: the masked-off lanes' values are never read from there
        if self.mask is not None and not (buf.scope == "local" and self.lanes_in_bounds(buf, indices)):
            self.masked_store(buf, at, step, v)
            return
        if step == 1:
            b.store(v, b.bitcast(at, v.type.as_pointer()), align=max(1, _bits(buf.dtype) // 8))
            return
        for k, p in enumerate(self._lane_ptrs(buf, at, step)):  # in lane order: the last lane's store wins
            b.store(b.extract_element(v, ir.Constant(I64, k)), p)

    def all_ranges(self) -> dict[Var, tuple[int, int]]:
        return {**self.ranges, **self.lane_ranges}

    def lanes_in_bounds(self, buf: Buffer, indices: tuple[Expr, ...]) -> bool:
        """Whether ``buf[indices]`` is inside the buffer in every lane, masked-off ones included."""
        return in_bounds(BufferLoad(buf, indices), self.binding, self.all_ranges())

    def masked_store(self, buf: Buffer, at: ir.Value, step: int | None, v: ir.Value) -> None:
        b, et, n = self.b, _mem_type(buf.dtype), self.lanes
        mask, i32 = self.splat(self.mask), ir.IntType(32)  # type: ignore[arg-type]
        align = ir.Constant(i32, max(1, _bits(buf.dtype) // 8))
        sfx = _type_suffix(et)
        if step == 1:
            fn = self._declare(f"llvm.masked.store.v{n}{sfx}.p0", ir.VoidType(), [v.type, PTR, i32, mask.type])
            b.call(fn, [v, b.bitcast(at, PTR), align, mask])
            return
        ptrs = ir.Constant(ir.VectorType(PTR, n), ir.Undefined)
        for k, p in enumerate(self._lane_ptrs(buf, at, step)):
            ptrs = b.insert_element(ptrs, b.bitcast(p, PTR), ir.Constant(I64, k))
        fn = self._declare(f"llvm.masked.scatter.v{n}{sfx}.v{n}p0", ir.VoidType(), [v.type, ptrs.type, i32, mask.type])
        b.call(fn, [v, ptrs, align, mask])

    # ---- expressions ------------------------------------------------------------------
    def address(self, buf: Buffer, indices: tuple[Expr, ...], cx: _Ctx) -> ir.Value:
        return self.b.gep(self.ptr[buf], [self.offset(buf, indices, cx)], source_etype=_mem_type(buf.dtype))

    def offset(self, buf: Buffer, indices: tuple[Expr, ...], cx: _Ctx) -> ir.Value:
        """The row-major element offset of ``buf[indices]``."""
        if buf not in self.ptr:
            raise CodegenError(f"buffer {buf.name} is neither a parameter nor an intermediate of {self.func.name}")
        off: ir.Value | None = None
        stride = 1
        for d in reversed(range(buf.ndim)):
            term = self.index(indices[d], cx)
            if stride != 1:
                term = self.b.mul(term, ir.Constant(I64, stride))
            off = term if off is None else self.b.add(off, term)
            stride *= buf.shape[d].value  # type: ignore[attr-defined]
        return off if off is not None else ir.Constant(I64, 0)

    def index(self, e: Expr, cx: _Ctx) -> ir.Value:
        v = self.value(e, cx, "int64")
        return self.convert(v, dtype_of(e) or "int64", "int64")

    def convert(self, v: ir.Value, src: str, dst: str) -> ir.Value:
        """``v`` of dtype ``src`` as ``dst`` (the interpreter's cast: ints wrap, floats round)."""
        if src == dst:
            return v
        b, st, dt = self.b, self.ty(src, v), self.ty(dst, v)
        if _is_float(src) and _is_float(dst):
            return b.fpext(v, dt) if _bits(dst) > _bits(src) else b.fptrunc(v, dt)
        if _is_float(src):
            if dst == "bool":
                return b.fcmp_unordered("!=", v, ir.Constant(st, 0.0))
            wide = b.fptosi(v, I64)  # toward zero, then wrap to the width
            return wide if dst == "int64" else b.trunc(wide, dt)
        if _is_float(dst):
            return b.uitofp(v, dt) if src in ("uint8", "bool") else b.sitofp(v, dt)
        if dst == "bool":
            return b.icmp_signed("!=", v, ir.Constant(st, 0))
        if _bits(dst) > _bits(src):
            return b.zext(v, dt) if src in ("uint8", "bool") else b.sext(v, dt)
        return b.trunc(v, dt) if _bits(dst) < _bits(src) else v

    def value(self, e: Expr, cx: _Ctx, want: str) -> ir.Value:
        """``e`` computed in its own dtype (``want`` for untyped constants)."""
        b = self.b
        dt = dtype_of(e) or want
        if isinstance(e, IntImm):
            return ir.Constant(llvm_type(dt), float(e.value) if _is_float(dt) else e.value)
        if isinstance(e, FloatImm):
            return ir.Constant(llvm_type(e.dtype), e.value)
        if isinstance(e, Var):
            if e in self.affine:
                base, step = self.affine[e]
                return base if step == 0 else self.b.add(self.splat(base), self.iota(step))
            if e not in cx.env:
                raise CodegenError(f"variable {e.name} has no value here")
            return cx.env[e]
        if isinstance(e, BufferLoad) and self.lanes:
            v = self.vload(e.buffer, e.indices, cx)
            return b.trunc(v, self.ty("bool", v)) if e.buffer.dtype == "bool" else v
        if isinstance(e, BufferLoad):
            v = b.load(self.address(e.buffer, e.indices, cx), typ=_mem_type(e.buffer.dtype))
            return b.trunc(v, I1) if e.buffer.dtype == "bool" else v
        if isinstance(e, Cast):
            src = dtype_of(e.value) or e.dtype
            return self.convert(self.value(e.value, cx, src), src, e.dtype)
        if isinstance(e, Call):
            return self.call(e, cx)
        if isinstance(e, Cmp):
            ot = _operand_type(e.a, e.b)
            x, y = self.value(e.a, cx, ot), self.value(e.b, cx, ot)
            x, y = self.match(self.convert(x, dtype_of(e.a) or ot, ot), self.convert(y, dtype_of(e.b) or ot, ot))
            if _is_float(ot):
                return b.fcmp_ordered(e.op, x, y)
            return b.icmp_unsigned(e.op, x, y) if ot == "uint8" else b.icmp_signed(e.op, x, y)
        if isinstance(e, (And, Or)):
            x, y = self.match(self.value(e.a, cx, "bool"), self.value(e.b, cx, "bool"))
            return b.and_(x, y) if isinstance(e, And) else b.or_(x, y)
        if isinstance(e, Not):
            return b.not_(self.value(e.a, cx, "bool"))
        if isinstance(e, Select):
            return self.select(e, cx, dt)
        if isinstance(e, BinOp):
            if e is self._accumulate and isinstance(e.b, Mul):
                self._contract = (e.b,)
            x = self.convert(self.value(e.a, cx, dt), dtype_of(e.a) or dt, dt)
            y = self.convert(self.value(e.b, cx, dt), dtype_of(e.b) or dt, dt)
            return self.binop(e, *self.match(x, y), dt)
        raise CodegenError(f"cannot generate CPU code for {e!r}")

    def binop(self, e: BinOp, x: ir.Value, y: ir.Value, dt: str) -> ir.Value:
        b = self.b
        if _is_float(dt):
            if isinstance(e, (Min, Max)) and e is self._accumulate:  # a form the loop vectorizer reduces
                name = "llvm.minnum" if isinstance(e, Min) else "llvm.maxnum"
                return b.call(self.intrinsic(name, x.type, 2), [x, y])
            if isinstance(e, (Min, Max)):
                return b.select(b.fcmp_ordered("<" if isinstance(e, Min) else ">", x, y), x, y)
            if isinstance(e, FloorMod):  # the divisor's sign, as Python's %
                r = b.frem(x, y)
                zero = ir.Constant(x.type, 0.0)
                adjust = b.and_(b.fcmp_unordered("!=", r, zero),
                                b.icmp_signed("!=", b.fcmp_ordered("<", r, zero), b.fcmp_ordered("<", y, zero)))
                return b.select(adjust, b.fadd(r, y), r)
            op = {Add: b.fadd, Sub: b.fsub, Mul: b.fmul, FloorDiv: b.fdiv}[type(e)]
            return op(x, y, flags=_FAST if e is self._accumulate or e in self._contract else ())
        if isinstance(e, (Min, Max)):
            cmp = b.icmp_unsigned if dt == "uint8" else b.icmp_signed
            return b.select(cmp("<" if isinstance(e, Min) else ">", x, y), x, y)
        if isinstance(e, (Add, Sub, Mul)):
            return {Add: b.add, Sub: b.sub, Mul: b.mul}[type(e)](x, y)
        zero = ir.Constant(x.type, 0)
        if dt == "uint8":
            return b.udiv(x, y) if isinstance(e, FloorDiv) else b.urem(x, y)
        q, r = b.sdiv(x, y), b.srem(x, y)
        # floor semantics: adjust when the remainder is nonzero and its sign differs from the divisor's
        adjust = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("!=", b.icmp_signed("<", r, zero),
                                                                      b.icmp_signed("<", y, zero)))
        if isinstance(e, FloorDiv):
            return b.select(adjust, b.sub(q, ir.Constant(x.type, 1)), q)
        return b.select(adjust, b.add(r, y), r)

    def select(self, e: Select, cx: _Ctx, dt: str) -> ir.Value:
        b = self.b
        cond = self.value(e.cond, cx, "bool")
        if isinstance(cond.type, ir.VectorType):  # lanes differ: both branches on vectors
            return self.vselect(e, cond, cx, dt)
        if not (_has_load(e.t) or _has_load(e.f)):
            t = self.convert(self.value(e.t, cx, dt), dtype_of(e.t) or dt, dt)
            f = self.convert(self.value(e.f, cx, dt), dtype_of(e.f) or dt, dt)
            return b.select(*self.match(cond, t, f))
        with b.if_else(cond) as (then, other):  # only the branch taken reads memory
            with then:
                t = self.convert(self.value(e.t, cx, dt), dtype_of(e.t) or dt, dt)
                t_block = b.block
            with other:
                f = self.convert(self.value(e.f, cx, dt), dtype_of(e.f) or dt, dt)
                f_block = b.block
        if t.type != f.type:  # one branch lane-invariant: broadcast it where it was computed
            with b.goto_block(t_block if not isinstance(t.type, ir.VectorType) else f_block):
                if not isinstance(t.type, ir.VectorType):
                    b.position_before(t_block.terminator)
                    t = self.splat(t)
                else:
                    b.position_before(f_block.terminator)
                    f = self.splat(f)
        phi = b.phi(t.type)
        phi.add_incoming(t, t_block)
        phi.add_incoming(f, f_block)
        return phi

    def vselect(self, e: Select, cond: ir.Value, cx: _Ctx, dt: str) -> ir.Value:
        """A lane-varying select: each branch computed for all lanes, its loads masked to the
        lanes that take it unless they are provably in bounds."""
        b, outer = self.b, self.mask
        ranges = {**self.ranges, **self.lane_ranges}
        vals = []
        for branch, taken in ((e.t, cond), (e.f, b.not_(cond))):
            if _has_load(branch) and not in_bounds(branch, self.binding, ranges):
                self.mask = taken if outer is None else b.and_(outer, taken)
            vals.append(self.convert(self.value(branch, cx, dt), dtype_of(branch) or dt, dt))
            self.mask = outer
        return b.select(*self.match(cond, *vals))

    def call(self, e: Call, cx: _Ctx) -> ir.Value:
        b = self.b
        if not _is_float(e.dtype):
            raise CodegenError(f"{e.op} computes in floating point, not {e.dtype}")
        args = [self.convert(self.value(a, cx, e.dtype), dtype_of(a) or e.dtype, e.dtype) for a in e.args]
        args = list(self.match(*args))
        ty = args[0].type if args else llvm_type(e.dtype)
        if e.op in ("exp", "sigmoid") and e.dtype == "float32":  # inline, so loops around it vectorize
            x = args[0] if e.op == "exp" else b.fneg(args[0])
            ex = mathfn.exp_f32(b, x, self.intrinsic)
            return ex if e.op == "exp" else b.fdiv(ir.Constant(ty, 1.0), b.fadd(ir.Constant(ty, 1.0), ex))
        intrinsic = {"exp": "llvm.exp", "log": "llvm.log", "sqrt": "llvm.sqrt", "abs": "llvm.fabs",
                     "floor": "llvm.floor", "ceil": "llvm.ceil", "round": "llvm.roundeven", "sin": "llvm.sin",
                     "cos": "llvm.cos", "pow": "llvm.pow"}
        if e.op in intrinsic:
            fn = self.intrinsic(intrinsic[e.op], ty, 2 if e.op == "pow" else 1)
            return b.call(fn, args)
        if e.op == "fmod":
            return b.frem(args[0], args[1])
        if e.op == "sigmoid":
            ex = b.call(self.intrinsic("llvm.exp", ty), [b.fneg(args[0])])
            return b.fdiv(ir.Constant(ty, 1.0), b.fadd(ir.Constant(ty, 1.0), ex))
        if e.op == "rsqrt":
            return b.fdiv(ir.Constant(ty, 1.0), b.call(self.intrinsic("llvm.sqrt", ty), args))
        if e.op in ("erf", "tanh") and e.dtype == "float32":  # inline too (rational approximations)
            return mathfn.erf_f32(b, args[0]) if e.op == "erf" else mathfn.tanh_f32(b, args[0], self.intrinsic)
        # float64 tanh and erf come from the C math library
        name = {"float32": f"{e.op}f", "float64": e.op}.get(e.dtype)
        if name is None:
            raise CodegenError(f"{e.op} is not available in {e.dtype}")
        sty = llvm_type(e.dtype)
        fn = self.module.globals.get(name) or ir.Function(self.module, ir.FunctionType(sty, [sty]), name=name)
        if not isinstance(ty, ir.VectorType):
            return b.call(fn, args)
        out = ir.Constant(ty, ir.Undefined)  # one call per lane
        for k in range(ty.count):
            out = b.insert_element(out, b.call(fn, [b.extract_element(args[0], ir.Constant(I64, k))]),
                                   ir.Constant(I64, k))
        return out


_FAST = ("reassoc", "contract")


def _is_accumulate(s: BufferStore) -> bool:
    """Whether ``s`` is ``B[idx] = B[idx] + e`` (or max, min: the update of a reduction)."""
    v = s.value
    return isinstance(v, (Add, Max, Min)) and isinstance(v.a, BufferLoad) and v.a.buffer is s.buffer and \
        all(_same(x, y) for x, y in zip(v.a.indices, s.indices))


def _same(a: Expr, b: Expr) -> bool:
    """Identical index expressions (the same variables, not merely equal up to renaming)."""
    if a is b:
        return True
    if type(a) is not type(b) or isinstance(a, Var):
        return False
    if isinstance(a, IntImm):
        return a.value == b.value  # type: ignore[attr-defined]
    if isinstance(a, BinOp):
        return _same(a.a, b.a) and _same(a.b, b.b)  # type: ignore[attr-defined]
    return False


def _type_suffix(t: ir.Type) -> str:
    return {"float": "f32", "double": "f64"}.get(str(t), str(t))  # i8, i16, i32, i64


def _is_true(e: Expr) -> bool:
    return isinstance(e, IntImm) and e.value == 1


@contextlib.contextmanager
def _nothing():  # type: ignore[no-untyped-def]
    yield


def _bits(dtype: str) -> int:
    return {"bool": 1, "int8": 8, "uint8": 8, "int16": 16, "int32": 32, "int64": 64, "float16": 16,
            "float32": 32, "float64": 64}[dtype]


def _operand_type(a: Expr, b: Expr) -> str:
    ta, tb = dtype_of(a), dtype_of(b)
    if ta is None and tb is None:
        return "int64"
    if ta is None or tb is None:
        return ta or tb  # type: ignore[return-value]
    if ta == tb:
        return ta
    if _is_float(ta) or _is_float(tb):
        raise CodegenError(f"comparison of {ta} with {tb}: insert a cast")
    return ta if _bits(ta) >= _bits(tb) else tb


def stage_info(func: PrimFunc) -> list[tuple[str, int | None, int]]:
    """(entry point, extent of its ``parallel`` outer loop or None, its work), in call order."""
    return [(g.name, g.extent, g.work) for g in groups(func)]


def generate(func: PrimFunc) -> str:
    """LLVM IR text (host-independent) for ``func``, one function per stage (`stage_info`);
    `jit.compile_cpu` adds the target and compiles it. A ``vectorized`` loop's back edge
    carries loop metadata that enables LLVM's vectorizer on it (written into the text here:
    a loop ID must refer to itself, which llvmlite's metadata builder cannot express)."""
    gen = _Gen(func)
    text = str(gen.run())
    if not gen.vector_loops:
        return text
    ids = [int(x) for x in re.findall(r"^!(\d+) = ", text, flags=re.MULTILINE)]
    enable = max(ids, default=0) + 1
    lines = []
    for line in text.splitlines():
        m = re.match(r'^(!\d+) = !\{\s*!"vta\.vectorize\.\d+"\s*\}$', line)
        lines.append(f"{m.group(1)} = distinct !{{{m.group(1)}, !{enable}, !{enable + 1}}}" if m else line)
    lines.append(f'!{enable} = !{{!"llvm.loop.vectorize.enable", i1 true}}')
    lines.append(f'!{enable + 1} = !{{!"llvm.loop.unroll.disable"}}')  # vectorize first; the full unroller would not
    return "\n".join(lines) + "\n"


__all__ = ["CodegenError", "generate", "llvm_type", "stage_info", "stages"]
