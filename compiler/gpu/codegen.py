"""Loop IR to LLVM IR for NVIDIA GPUs (``nvptx64-nvidia-cuda``).

A lowered function (`lower.lower`) becomes one kernel per stage,
``define ptx_kernel void @name_kK(ptr addrspace(1) p0, ..., ptr addrspace(1) pN)``: one
global-memory pointer per parameter and per ``global`` intermediate buffer (row-major,
dense, in that order, the same for every kernel). Statements, expressions and dtypes are
the CPU code generator's (`vta.compiler.cpu.codegen`, subclassed here); what differs:

- a loop bound to ``blockIdx.*``/``threadIdx.*`` is the special register
  (``llvm.nvvm.read.ptx.sreg.ctaid.x``, ``tid.x``, ...), guarded by ``index < extent``
  when its extent is below the launch extent of the axis;
- a block that no loop binds to an axis the kernel launches more than one index of runs
  on index 0 of that axis only (each block instance runs once, as in the loop IR);
- every pointer parameter is ``noalias`` and ``align`` `POINTER_ALIGN` (the runtime refuses
  others), so that a thread's accesses to neighbouring elements merge into vector loads;
- ``shared`` buffers are ``addrspace(3)`` globals of the kernel, ``local`` ones are
  per-thread arrays (registers once LLVM promotes them);
- outside every ``threadIdx`` loop, a barrier (``llvm.nvvm.barrier0``) separates two
  statements of a sequence where one writes a shared or global buffer that the other
  touches, and ends each iteration of a loop whose body reads what it writes: thread
  loops' iterations are independent, so that is where threads meet. When only threads of
  the first warp ran the statements on both sides (thread loops of at most 32 along x: the
  last levels of a reduction tree), the barrier is a warp's (``bar.warp.sync``, which also
  orders their memory accesses), so the other warps go on. A barrier needed under a
  condition threads may disagree on is a `CodegenError`;
- a select between a plain load and a value without loads (a padded window's tap) is
  branch-free: the load reads at its offset clamped into the buffer, so that the side not
  taken still reads valid memory, and the taps' loads are all in flight at once (the CPU
  code generator branches around such a load);
- ``vectorized`` loops are unrolled (there are no CPU vector registers to fill), and
  ``parallel`` ones are an error;
- math: float32 ``exp``, ``sigmoid``, ``erf``, ``tanh`` and ``log`` are inline polynomials
  (`vta.compiler.cpu.mathfn`, `gpu.mathfn`); ``sqrt``, ``rsqrt``, ``abs``, ``floor``,
  ``ceil``, ``round`` and ``fmod`` are PTX instructions; anything else is a `CodegenError`
  (NVPTX has no libm: LLVM would stop the process on it).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from llvmlite import ir
from vta.compiler.cpu import mathfn
from vta.compiler.cpu.codegen import CodegenError, _Ctx, _Gen, _has_load, _mem_type, llvm_type
from vta.compiler.tir.expr import Expr, IntImm, Select
from vta.compiler.tir.intrin import IntrinCall
from vta.compiler.tir.scalar import FLOATS, Call, dtype_of
from vta.compiler.tir.stmt import BlockRealize, Buffer, BufferLoad, BufferStore, Cast, For, PrimFunc, SeqStmt, Stmt, seq
from vta.compiler.tir.transform import walk_stmt

from . import mathfn as gpu_mathfn
from .launch import BLOCK_AXES, THREAD_AXES, WARP, Launch
from .lower import buffers_of, kernel_name, launches, stages

TRIPLE = "nvptx64-nvidia-cuda"
DATA_LAYOUT = "e-p6:32:32-i64:64-i128:128-i256:256-v16:16-v32:32-n16:32:64"
I1, I32, I64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
GLOBAL = ir.PointerType(addrspace=1)
SHARED = ir.PointerType(addrspace=3)
MAX_SHARED = 48 * 1024  # bytes of static shared memory a kernel may declare
POINTER_ALIGN = 16  # bytes every kernel pointer is aligned to (cuMemAlloc gives 256; the runtime checks)
MAX_LOCAL = 1024  # elements of per-thread local arrays in one kernel (more would live in slow local memory)
_SREG = {"x": "x", "y": "y", "z": "z"}


@dataclass(frozen=True)
class KernelSpec:
    """One kernel of a compiled function: its entry name, launch, and static shared memory."""

    name: str
    launch: Launch
    shared_bytes: int

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "grid": list(self.launch.grid), "block": list(self.launch.block),
                "shared_bytes": self.shared_bytes}

    @staticmethod
    def from_dict(d: dict[str, object]) -> KernelSpec:
        grid, block = tuple(d["grid"]), tuple(d["block"])  # type: ignore[arg-type]
        return KernelSpec(str(d["name"]), Launch(grid, block), int(d["shared_bytes"]))  # type: ignore[arg-type]


class _Barrier(Stmt):
    """A barrier the code generator places at the end of a loop body (never in user IR)."""

    __slots__ = ()


@dataclass
class _Access:
    reads: set[Buffer] = field(default_factory=set)
    writes: set[Buffer] = field(default_factory=set)

    def conflicts(self, later: _Access, same_writes: bool = True) -> bool:
        """Whether ``later`` must wait for this: it reads what this wrote, writes what this
        read, or (with ``same_writes``) writes what this wrote."""
        return bool(self.writes & later.reads or self.reads & later.writes or
                    (same_writes and self.writes & later.writes))

    def __ior__(self, o: _Access) -> _Access:  # noqa: PYI034
        self.reads |= o.reads
        self.writes |= o.writes
        return self


def _bytes(buf: Buffer) -> int:
    n = 1
    for d in buf.shape:
        n *= d.value  # type: ignore[attr-defined]
    return n * {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "float16": 2, "int32": 4, "float32": 4}.get(buf.dtype, 8)


def _elements(buf: Buffer) -> int:
    n = 1
    for d in buf.shape:
        n *= d.value  # type: ignore[attr-defined]
    return n


class _GpuGen(_Gen):
    def __init__(self, func: PrimFunc) -> None:
        super().__init__(func)
        self.module.triple = TRIPLE
        self.module.data_layout = DATA_LAYOUT
        self.buffers = list(func.params) + [b for b in func.allocs if b.scope == "global"]
        self.shared = [b for b in func.allocs if b.scope == "shared"]
        self.locals = [b for b in func.allocs if b.scope == "local"]
        self.launches = launches(func)
        self.kernels: list[KernelSpec] = []
        self._access_cache: dict[int, _Access] = {}

    # ---- kernels ----------------------------------------------------------------------
    def run(self) -> ir.Module:
        for k, stage in enumerate(stages(self.func)):
            name = kernel_name(self.func, k)
            shared = self._begin_kernel(name, stage, self.launches[k])
            self.stmt(stage, _Ctx())
            self.b.ret_void()
            self.kernels.append(KernelSpec(name, self.launches[k], shared))
        return self.module

    def _begin_kernel(self, name: str, stage: Stmt, launch: Launch) -> int:
        """Start kernel ``name``; returns its static shared-memory bytes."""
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [GLOBAL] * len(self.buffers)), name=name)
        fn.calling_convention = "ptx_kernel"
        for a, buf in zip(fn.args, self.buffers):
            a.name = buf.name
            a.add_attribute("noalias")
            a.attributes.align = POINTER_ALIGN  # lets LLVM merge a thread's neighbouring accesses (ld.global.v4)
        self.fn = fn
        self.ptr: dict[Buffer, ir.Value] = dict(zip(self.buffers, fn.args))
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.outer = None
        self.ranges = {}
        self.launch = launch
        self.sreg = {axis: self._special(axis) for axis in (*BLOCK_AXES, *THREAD_AXES)}
        self.bound: set[str] = set()
        self.thread_depth = 0  # threadIdx loops around the current statement
        self.divergent = 0  # conditions around it that threads may evaluate differently
        self.guarded = False
        self.pending = _Access()  # what statements since the last barrier touched
        self.pending_wide = _Access()  # what those of them touched that threads beyond the first warp ran
        used = buffers_of(stage)
        shared = 0
        for buf in self.shared:
            if buf not in used:
                continue
            ty = ir.ArrayType(_mem_type(buf.dtype), _elements(buf))
            gv = ir.GlobalVariable(self.module, ty, name=f"{name}_{buf.name}", addrspace=3)
            gv.type = SHARED  # an opaque pointer, as the rest of the module's
            gv.linkage = "internal"
            gv.initializer = ir.Constant(ty, ir.Undefined)
            gv.align = 16
            self.ptr[buf] = gv
            shared += _bytes(buf)
        if shared > MAX_SHARED:
            raise CodegenError(f"kernel {name} declares {shared} bytes of shared memory, above the {MAX_SHARED} a "
                               "kernel may declare statically (use smaller tiles)")
        local = 0
        for buf in self.locals:
            if buf not in used:
                continue
            local += _elements(buf)
            self.ptr[buf] = self.b.alloca(_mem_type(buf.dtype), size=_elements(buf), name=buf.name)
        if local > MAX_LOCAL:
            raise CodegenError(f"kernel {name}: its local buffers hold {local} elements per thread, above "
                               f"{MAX_LOCAL} (a local buffer is per thread: index it by the thread's own tile)")
        return shared

    def _special(self, axis: str) -> ir.Value:
        if self.launch.extent(axis) == 1:
            return ir.Constant(I64, 0)
        reg = ("ctaid." if axis in BLOCK_AXES else "tid.") + _SREG[axis[-1]]
        name = f"llvm.nvvm.read.ptx.sreg.{reg}"
        fn = self.module.globals.get(name) or ir.Function(self.module, ir.FunctionType(I32, []), name=name)
        return self.b.zext(self.b.call(fn, []), I64, name=axis.replace(".", "_"))

    # ---- barriers ---------------------------------------------------------------------
    def _access(self, s: Stmt) -> _Access:
        """The shared and global buffers ``s`` reads and writes (local ones are per thread)."""
        got = self._access_cache.get(id(s))
        if got is None:
            got = _Access()
            for x in walk_stmt(s):
                if isinstance(x, BufferStore):
                    if x.buffer.scope != "local":
                        got.writes.add(x.buffer)
                    got.reads |= {b for b in _loads_in(x) if b.scope != "local"}
            self._access_cache[id(s)] = got
        return got

    def _uniform(self) -> bool:
        """Whether every thread of the block runs the current statement (outside thread loops)."""
        return self.thread_depth == 0 and self.launch.threads > 1

    def _barrier(self) -> None:
        if self.divergent:
            raise CodegenError(f"kernel {self.fn.name}: a barrier is needed under a condition that threads may "
                               "evaluate differently (a block predicate or a partial thread loop around a sequence "
                               "of thread loops); restructure the schedule")
        name = "llvm.nvvm.barrier0"
        fn = self.module.globals.get(name) or ir.Function(self.module, ir.FunctionType(ir.VoidType(), []), name=name)
        self.b.call(fn, [])
        self.pending = _Access()
        self.pending_wide = _Access()

    def _warp_barrier(self) -> None:
        """A barrier of each warp (the block's threads all reach it; each warp waits for its own)."""
        if self.divergent:
            self._barrier()  # raises: the same condition rules apply
        n = self.launch.threads
        mask = (1 << min(n, WARP)) - 1  # the lanes the block has in a warp
        name = "llvm.nvvm.bar.warp.sync"
        fn = self.module.globals.get(name) or ir.Function(self.module, ir.FunctionType(ir.VoidType(), [I32]), name=name)
        self.b.call(fn, [ir.Constant(I32, mask)])
        self.pending = _Access(set(self.pending_wide.reads), set(self.pending_wide.writes))

    def _first_warp(self, s: Stmt) -> bool:
        """Whether only threads of the block's first warp run ``s`` (every thread loop in it is
        along x, at most a warp long; a statement outside thread loops runs on thread 0)."""
        n = self.launch.threads
        if n % WARP and n > WARP:  # a partial last warp: keep to whole-block barriers
            return False
        return n <= WARP or all(x.thread == "threadIdx.x" and isinstance(x.extent, IntImm) and x.extent.value <= WARP
                                for x in walk_stmt(s) if isinstance(x, For) and x.kind == "thread_binding" and
                                x.thread in THREAD_AXES)

    # ---- statements -------------------------------------------------------------------
    def stmt(self, s: Stmt, cx: _Ctx) -> None:
        if isinstance(s, _Barrier):
            self._barrier()
        elif isinstance(s, SeqStmt) and self._uniform():
            for x in s.stmts:
                acc = self._access(x)
                narrow = self._first_warp(x)
                if self.pending.conflicts(acc):
                    if narrow and not self.pending_wide.conflicts(acc):
                        self._warp_barrier()
                    else:
                        self._barrier()
                self.stmt(x, cx)
                self.pending |= acc
                if not narrow:
                    self.pending_wide |= acc
        elif isinstance(s, IntrinCall):
            raise CodegenError(f"intrinsic {s.intrin.name} runs on the accelerator, not the GPU")
        else:
            super().stmt(s, cx)

    def loop(self, s: For, cx: _Ctx) -> None:
        if s.kind == "parallel":
            raise CodegenError(f"loop {s.var.name} is 'parallel' (CPU threads); on the GPU bind it to blockIdx or "
                               "threadIdx")
        if s.kind == "thread_binding":
            self._thread_loop(s, cx)
            return
        if s.kind == "vectorized":
            s = dataclasses.replace(s, kind="unrolled")
        if self._uniform() and _has_thread_loop(s.body):
            acc = self._access(s.body)
            if self.pending.conflicts(acc):
                self._barrier()
            carried = acc.conflicts(acc, same_writes=False)  # an iteration reads what another one writes
            if carried:
                s = dataclasses.replace(s, body=seq(s.body, _Barrier()))
            super().loop(s, cx)
            if not carried:
                self.pending |= acc
                self.pending_wide |= acc
            return
        super().loop(s, cx)

    def _thread_loop(self, s: For, cx: _Ctx) -> None:
        axis = s.thread
        assert axis is not None
        if axis == "vthread":
            raise CodegenError(f"loop {s.var.name} is bound to vthread, which the GPU backend does not lower yet")
        if not isinstance(s.extent, IntImm):
            raise CodegenError(f"loop {s.var.name} bound to {axis} has a non-constant extent")
        if axis in self.bound:
            raise CodegenError(f"loop {s.var.name} is bound to {axis} inside another loop bound to {axis}")
        n = s.extent.value
        v = self.sreg[axis]
        cx.env[s.var] = v
        self.ranges[s.var] = (0, n - 1)
        self.bound.add(axis)
        inner = axis in THREAD_AXES
        self.thread_depth += inner
        try:
            if n < self.launch.extent(axis):
                with self.b.if_then(self.b.icmp_unsigned("<", v, ir.Constant(I64, n))):
                    self.divergent += 1
                    self.stmt(s.body, cx)
                    self.divergent -= 1
            else:
                self.stmt(s.body, cx)
        finally:
            self.bound.discard(axis)
            self.thread_depth -= inner
            cx.env.pop(s.var, None)
            self.ranges.pop(s.var, None)

    def realize(self, s: BlockRealize, cx: _Ctx) -> None:
        idle = [a for a in self.launch.active() if a not in self.bound]
        if not idle or self.guarded:
            super().realize(s, cx)
            return
        cond: ir.Value = ir.Constant(I1, 1)
        for a in idle:  # each block instance runs once: on index 0 of the axes nothing binds here
            cond = self.b.and_(cond, self.b.icmp_unsigned("==", self.sreg[a], ir.Constant(I64, 0)))
        with self.b.if_then(cond):
            self.guarded = True
            self.divergent += 1
            try:
                super().realize(s, cx)
            finally:
                self.guarded = False
                self.divergent -= 1

    # ---- selects ----------------------------------------------------------------------
    def select(self, e: Select, cx: _Ctx, dt: str) -> ir.Value:
        if self.lanes or not (_speculable(e.t) and _speculable(e.f)):
            return super().select(e, cx, dt)
        cond = self.value(e.cond, cx, "bool")
        t = self.convert(self._speculative(e.t, cx, dt), dtype_of(e.t) or dt, dt)
        f = self.convert(self._speculative(e.f, cx, dt), dtype_of(e.f) or dt, dt)
        return self.b.select(cond, t, f)

    def _speculative(self, e: Expr, cx: _Ctx, dt: str) -> ir.Value:
        """``e`` (`_speculable`) computed where it may not be needed: its load clamped into its buffer."""
        if isinstance(e, Cast):
            src = dtype_of(e.value) or e.dtype
            return self.convert(self._speculative(e.value, cx, src), src, e.dtype)
        if not isinstance(e, BufferLoad):
            return self.value(e, cx, dt)
        off = self.offset(e.buffer, e.indices, cx)
        smin, smax = (self.module.globals.get(n) or ir.Function(self.module, ir.FunctionType(I64, [I64, I64]), name=n)
                      for n in ("llvm.smin.i64", "llvm.smax.i64"))
        off = self.b.call(smax, [self.b.call(smin, [off, ir.Constant(I64, _elements(e.buffer) - 1)]),
                                 ir.Constant(I64, 0)])
        mem = _mem_type(e.buffer.dtype)
        v = self.b.load(self.b.gep(self.ptr[e.buffer], [off], source_etype=mem), typ=mem)
        return self.b.trunc(v, I1) if e.buffer.dtype == "bool" else v

    # ---- math -------------------------------------------------------------------------
    def call(self, e: Call, cx: _Ctx) -> ir.Value:
        b = self.b
        if e.dtype not in FLOATS:
            raise CodegenError(f"{e.op} computes in floating point, not {e.dtype}")
        if e.dtype == "float16":
            raise CodegenError("float16 is not supported by the GPU backend yet (compute in float32)")
        args = [self.convert(self.value(a, cx, e.dtype), dtype_of(a) or e.dtype, e.dtype) for a in e.args]
        ty = llvm_type(e.dtype)
        one = ir.Constant(ty, 1.0)
        f32 = e.dtype == "float32"
        if e.op == "exp" and f32:
            return mathfn.exp_f32(b, args[0], self.intrinsic)
        if e.op == "sigmoid" and f32:
            return b.fdiv(one, b.fadd(one, mathfn.exp_f32(b, b.fneg(args[0]), self.intrinsic)))
        if e.op == "erf" and f32:
            return mathfn.erf_f32(b, args[0])
        if e.op == "tanh" and f32:
            return mathfn.tanh_f32(b, args[0], self.intrinsic)
        if e.op == "log" and f32:
            return gpu_mathfn.log_f32(b, args[0], self.intrinsic)
        native = {"sqrt": "llvm.sqrt", "abs": "llvm.fabs", "floor": "llvm.floor", "ceil": "llvm.ceil",
                  "round": "llvm.roundeven"}
        if e.op in native:
            return b.call(self.intrinsic(native[e.op], ty), args)
        if e.op == "rsqrt":
            return b.fdiv(one, b.call(self.intrinsic("llvm.sqrt", ty), args))
        if e.op == "fmod":
            return b.frem(args[0], args[1])
        raise CodegenError(f"{e.op} in {e.dtype} is not available on the GPU backend (float32 exp, log, sigmoid, erf, "
                           "tanh; sqrt, rsqrt, abs, floor, ceil, round and fmod in float32 and float64 are)")


def _loads_in(s: BufferStore) -> set[Buffer]:
    out: set[Buffer] = set()

    def visit(e: object) -> None:
        if isinstance(e, BufferLoad):
            out.add(e.buffer)
        from vta.compiler.tir.expr import children

        for k in children(e):  # type: ignore[arg-type]
            visit(k)

    for e in (s.value, *s.indices):
        visit(e)
    return out


def _speculable(e: Expr) -> bool:
    """Whether ``e`` may be computed although a select does not take it: no loads, or one plain
    load (under casts) whose indices load nothing."""
    while isinstance(e, Cast):
        e = e.value
    return not _has_load(e) or (isinstance(e, BufferLoad) and not any(_has_load(i) for i in e.indices))


def _has_thread_loop(s: Stmt) -> bool:
    return any(isinstance(x, For) and x.kind == "thread_binding" and x.thread in THREAD_AXES for x in walk_stmt(s))


# intrinsics NVPTX lowers to instructions; anything else declared would be a libcall (fatal in LLVM)
_ALLOWED = re.compile(r"llvm\.(nvvm\..*|(floor|ceil|roundeven|trunc|rint|nearbyint|fabs|sqrt|minnum|maxnum|minimum|"
                      r"maximum|fma|fmuladd|copysign|smin|smax|umin|umax|abs|ctpop|ctlz|cttz|memset|memcpy|memmove|"
                      r"[us]add\.sat|[us]sub\.sat|lifetime\.start|lifetime\.end|assume|experimental\.noalias\.scope\.decl)(\..*)?)$")


def check_declarations(ir_text: str) -> None:
    """`CodegenError` when ``ir_text`` declares a function the NVPTX backend cannot lower
    (a C library call, an unsupported intrinsic): LLVM would stop the process on it."""
    for name in re.findall(r'^declare [^@]*@"?([\w.$]+)"?\(', ir_text, flags=re.MULTILINE):
        if not _ALLOWED.match(name):
            raise CodegenError(f"the GPU code calls {name}, which has no NVPTX lowering")


def generate(func: PrimFunc) -> tuple[str, list[KernelSpec]]:
    """LLVM IR text for the lowered ``func`` (`lower.lower`) and its kernels in launch order."""
    gen = _GpuGen(func)
    text = str(gen.run())
    check_declarations(text)
    return text, gen.kernels


__all__ = ["DATA_LAYOUT", "MAX_SHARED", "TRIPLE", "KernelSpec", "check_declarations", "generate"]
