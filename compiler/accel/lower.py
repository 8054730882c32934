"""Accelerator lowering: a scheduled loop-IR function becomes an instruction stream, a uop
image and a DRAM layout (`AccelKernel`), for any valid config.

What the lowering expects (what `vta.compiler.accel.schedules` produces, and what a user
schedule must look like):

- scratchpad buffers (scopes ``inp``, ``wgt``, ``acc``) whose two innermost dimensions are
  one element of that buffer (``batch × block_in`` and so on), global buffers the same;
- loop nests whose leaf is one of: a copy block from a global buffer into a scratchpad
  (LOAD; a ``select(cond, src, c)`` value pads with ``c``), a copy from ``acc`` to a
  global buffer (STORE, narrowing to the output width or at full width), a block storing
  0 into ``acc`` (GEMM reset), a tensorized GEMM (`IntrinCall`), or an elementwise
  ``acc`` block whose value is a chain of ALU operations (MIN, MAX, ADD, SHR as a floor
  division by a power of two, MUL; operands immediates or ``acc`` entries);
- every other loop is a *host* loop: unrolled at compile time into the stream.

Scratchpad placement: each buffer (with the buffers aliased to it: an elementwise stage
writing in place over its only input) lives in a box, the region touched under its
*allocation loop* (the innermost loop enclosing all its uses), and gets ``slots``
rotating copies of that box, so that consecutive iterations of the allocation loop use
different entries and their loads, computation and stores overlap (virtual threads).
Dependency tokens come from the entries each instruction touches (`stream`).

Micro-kernels are generated per compute leaf: up to two loops of the nest (the longest)
fold into the instruction's ``iter_out``/``iter_in`` with their index steps as factors;
the others are enumerated as micro-ops. Kernels are cached by their micro-ops.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from vta.compiler.tir.expr import (
    Add, Expr, FloorDiv, IntImm, Max, Min, Mul, Select, Sub, Var, children, free_vars, substitute,
)
from vta.compiler.tir.intrin import IntrinCall
from vta.compiler.tir.ops import IMM_MAX, IMM_MIN
from vta.compiler.tir.simplify import Linear, linear_form, simplify
from vta.compiler.tir.stmt import (
    Block, BlockRealize, Buffer, BufferLoad, BufferStore, Cast, For, PrimFunc, SeqStmt, Stmt,
)
from vta.compiler.tir.transform import walk_stmt
from vta.isa import AluOp, Config, Insn, MemType, Opcode, Program, Segment
from vta.isa.errors import VTAError
from vta.isa.program import DTYPE_BITS
from vta.isa.spec import IMM_BITS, PAD_BITS

from .npeval import np_eval
from .stream import Footprint, Stream

SCRATCH = {"inp": MemType.INP, "wgt": MemType.WGT, "acc": MemType.ACC}


class LoweringError(VTAError):
    """The function cannot become accelerator instructions; the message names the block or buffer."""


# ---- placement ---------------------------------------------------------------------------------

@dataclass
class Placement:
    """Where a group of aliased scratchpad buffers lives."""

    buffers: list[Buffer]
    mem: MemType
    alloc: For | None = None
    box: list[tuple[Expr, int]] = field(default_factory=list)  # outer dims: (min, extent)
    slots: int = 1
    base: int = 0
    # per instance, while lowering
    count: int = 0
    cur_base: int = 0
    cur_min: list[int] = field(default_factory=list)

    @property
    def entries(self) -> int:
        return math.prod(e for _, e in self.box)

    @property
    def strides(self) -> list[int]:
        out, acc = [], 1
        for _, e in reversed(self.box):
            out.append(acc)
            acc *= e
        return out[::-1]


def _leaves(s: Stmt, path: tuple[For, ...] = ()):  # type: ignore[no-untyped-def]
    """(loops above, leaf) for every block realize and intrinsic call."""
    if isinstance(s, For):
        yield from _leaves(s.body, path + (s,))
    elif isinstance(s, SeqStmt):
        for x in s.stmts:
            yield from _leaves(x, path)
    elif _transparent(s):
        yield from _leaves(s.block.body, path)  # type: ignore[attr-defined]
    elif isinstance(s, (BlockRealize, IntrinCall)):
        yield path, s


def _transparent(s: Stmt) -> bool:
    """A blockized nest (a block without iterators around loops): lowered as its contents."""
    return isinstance(s, BlockRealize) and not s.block.iter_vars and not isinstance(s.block.body, BufferStore)


def _buffers_of(leaf: Stmt) -> set[Buffer]:
    if isinstance(leaf, IntrinCall):
        return {r.buffer for r in leaf.regions}
    blk = leaf.block  # type: ignore[attr-defined]
    return {r.buffer for r in (*blk.reads, *blk.writes)}


def _chain(s: For) -> tuple[list[For], Stmt | None]:
    """The perfect loop chain from ``s`` and its leaf, or (loops, None) if it branches."""
    loops = []
    while isinstance(s, For) or _transparent(s):
        if isinstance(s, For):
            loops.append(s)
            s = s.body  # type: ignore[assignment]
        else:
            s = s.block.body  # type: ignore[attr-defined]
    return loops, (s if isinstance(s, (BlockRealize, IntrinCall)) else None)


def _ext(f: For) -> int:
    if not isinstance(f.extent, IntImm):
        raise LoweringError(f"loop {f.var.name}: extent {f.extent} is not a constant")
    return f.extent.value


# ---- affine index forms ------------------------------------------------------------------------

def _at(lin: Linear, env: dict[Var, int], nest: set[Var]) -> tuple[int, dict[Var, int]]:
    """``lin`` with host loops bound: the constant and the coefficient of each nest loop."""
    const, coeffs = lin.const, {}
    for v, c in lin.coeffs.items():
        if v in nest:
            coeffs[v] = c
        elif v in env:
            const += c * env[v]
        else:
            raise LoweringError(f"loop variable {v.name} has no value where it is used")
    return const, coeffs


@dataclass
class _Form:
    """An entry or DRAM element index: constant plus a coefficient per nest loop."""

    const: int
    coeffs: dict[Var, int]


# ---- the result --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentSpec:
    name: str
    addr: int
    dtype: str
    shape: tuple[int, ...]
    output: bool


@dataclass
class AccelKernel:
    """A lowered function: its instructions, uop image and DRAM layout (one segment per
    global buffer, then the uop image), ready to become a `Program` with data."""

    name: str
    config: Config
    insns: list[Insn]
    segments: list[SegmentSpec]
    uops: np.ndarray
    uop_addr: int
    params: tuple[str, ...]
    stats: dict[str, int]

    def program(self, *arrays: np.ndarray, **named: np.ndarray) -> Program:
        """The program with input data: arrays in parameter order, or by name; outputs start at 0."""
        data = dict(zip(self.params, arrays)) | named
        segs = []
        for s in self.segments:
            v = data.get(s.name)
            if v is None:
                if not s.output:
                    raise ValueError(f"{self.name}: no data for input {s.name}")
                v = np.zeros(s.shape, np.int64)
            v = np.asarray(v)
            if tuple(v.shape) != s.shape:
                raise ValueError(f"{self.name}: {s.name} has shape {s.shape}, the array {tuple(v.shape)}")
            segs.append(Segment(s.name, s.addr, s.dtype, v, s.output))
        if len(self.uops):
            segs.append(Segment("uops", self.uop_addr, "uop", self.uops))
        return Program(self.config, list(self.insns), segs)

    def outputs(self) -> list[str]:
        return [s.name for s in self.segments if s.output]


# ---- lowering ----------------------------------------------------------------------------------

class _Lowering:
    def __init__(self, func: PrimFunc, config: Config, slots: int) -> None:
        self.func, self.config, self.slots = func, config, slots
        self.stream = Stream(config)
        self.place: dict[Buffer, Placement] = {}
        self.by_alloc: dict[int, list[Placement]] = {}
        self.sites: dict[int, object] = {}  # per leaf: its indices with the bindings substituted
        # the lowering asks for the same expressions at every unrolled iteration: memoized by identity
        self._lin: dict[int, tuple[Expr, Linear]] = {}
        self._load_memo: dict[int, tuple[Expr, list[BufferLoad]]] = {}
        self.jit: dict[tuple, tuple] = {}  # type: ignore[type-arg]  # micro-kernels by signature
        self._pad_memo: dict[object, tuple] = {}  # type: ignore[type-arg]
        self._ranges = {f.var: (0, _ext(f) - 1) for f in walk_stmt(func.body) if isinstance(f, For)}
        self._lane_memo: dict[tuple, tuple] = {}  # type: ignore[type-arg]
        self.seg_elem: dict[Buffer, int] = {}   # DRAM byte address of each global buffer
        self.written: set[Buffer] = set()
        self._plan_dram()
        self._plan_scratch()

    # ---- DRAM layout ----
    def _plan_dram(self) -> None:
        cfg = self.config
        align = max([64] + [cfg.elem_bytes(m) for m in MemType])
        addr = 0
        self.globals = [b for b in (*self.func.params, *self.func.allocs) if b.scope == "global"]
        for b in self.globals:
            if b.dtype not in DTYPE_BITS:
                raise LoweringError(f"buffer {b.name}: dtype {b.dtype} cannot live in accelerator DRAM")
            shape = [d.value for d in b.shape if isinstance(d, IntImm)]
            if len(shape) != b.ndim:
                raise LoweringError(f"buffer {b.name}: shape {b.shape} is not constant")
            self.seg_elem[b] = addr
            addr += -(-math.prod(shape) * DTYPE_BITS[b.dtype] // 8 // align) * align
        self.dram_end = addr

    def _elem_addr(self, b: Buffer, mem: MemType) -> int:
        """DRAM element index of ``b``'s first element as ``mem`` elements (checking the element shape)."""
        cfg = self.config
        shape = tuple(d.value for d in b.shape[-2:])  # type: ignore[attr-defined]
        if b.ndim < 2 or shape != cfg.elem_shape(mem)[-2:] or DTYPE_BITS.get(b.dtype) != cfg.elem_width(mem):
            raise LoweringError(f"buffer {b.name} ({b.dtype}, innermost dimensions {shape}) does not hold "
                                f"{mem.name} elements of {cfg.name}: {cfg.elem_shape(mem)} values of "
                                f"{cfg.elem_width(mem)} bits")
        return self.seg_elem[b] // cfg.elem_bytes(mem)

    # ---- scratchpad placement ----
    def _plan_scratch(self) -> None:
        cfg = self.config
        scratch = [b for b in self.func.allocs if b.scope in SCRATCH]
        for b in self.func.allocs:
            if b.scope not in SCRATCH and b.scope != "global":
                raise LoweringError(f"buffer {b.name}: scope {b.scope} has no place on the accelerator")
        groups: dict[Buffer, Placement] = {}
        for b in scratch:
            mem = SCRATCH[b.scope]
            want = cfg.elem_shape(mem)[-2:]
            got = tuple(d.value if isinstance(d, IntImm) else None for d in b.shape[-2:])
            if b.ndim < 3 or got != want:
                raise LoweringError(f"buffer {b.name} ({b.scope}): its innermost dimensions {got} must be one "
                                    f"{b.scope} element {want} of {cfg.name}, after at least one outer dimension")
            groups[b] = Placement([b], mem)
        leaves = list(_leaves(self.func.body))
        for b, p in self._aliases(scratch, leaves):
            groups[p].buffers.append(b)
            groups[b] = groups[p]
        for p in {id(p): p for p in groups.values()}.values():
            self._box(p, leaves)
        used = {m: 0 for m in SCRATCH.values()}
        for p in {id(p): p for p in groups.values()}.values():
            instances = 1 if p.alloc is None else math.prod(_ext(f) for f in self._path_to(p.alloc, leaves))
            p.slots = max(1, min(self.slots, instances))
            p.base = used[p.mem]
            used[p.mem] += p.entries * p.slots
            self.by_alloc.setdefault(id(p.alloc), []).append(p)
        for mem, n in used.items():
            depth = cfg.depth(mem)
            if n > depth:
                parts = ", ".join(f"{'/'.join(b.name for b in p.buffers)} {p.slots}x{p.entries}"
                                  for p in {id(p): p for p in groups.values()}.values() if p.mem == mem)
                raise LoweringError(f"the {mem.name.lower()} buffer of {cfg.name} has {depth} entries; this "
                                    f"schedule needs {n} ({parts}): use smaller tiles or fewer slots")
        self.place = groups

    def _aliases(self, scratch: list[Buffer], leaves: list) -> list[tuple[Buffer, Buffer]]:  # type: ignore[type-arg]
        """(b, a): the elementwise acc stage writing ``b`` reads ``a`` at its own index, and
        nothing else reads ``a``, so ``b`` can overwrite ``a`` in place."""
        out = []
        readers: dict[Buffer, int] = {}
        for _, leaf in leaves:
            if isinstance(leaf, IntrinCall):
                written = leaf.intrin.written()
                for r, p in zip(leaf.regions, leaf.intrin.desc.params):
                    if p not in written:
                        readers[r.buffer] = readers.get(r.buffer, 0) + 1
            else:
                for r in leaf.block.reads:
                    readers[r.buffer] = readers.get(r.buffer, 0) + 1
        for _, leaf in leaves:
            if isinstance(leaf, IntrinCall):
                if leaf.intrin.kind == "alu":
                    d, a = leaf.regions[0], leaf.regions[1]
                    if d.buffer is not a.buffer and d.buffer in scratch and a.buffer in scratch and \
                            readers.get(a.buffer, 0) == 1 and d.buffer.shape == a.buffer.shape and \
                            tuple(str(g.min) for g in d.region) == tuple(str(g.min) for g in a.region):
                        out.append((d.buffer, a.buffer))
                continue
            if not isinstance(leaf.block.body, BufferStore):
                continue
            st = leaf.block.body
            if st.buffer.scope != "acc" or st.buffer not in scratch:
                continue
            src = _chain_source(st.value)
            if src is not None and src.buffer is not st.buffer and src.buffer.scope == "acc" and \
                    src.buffer in scratch and tuple(src.indices) == tuple(st.indices) and \
                    readers.get(src.buffer, 0) == 1 and src.buffer.shape == st.buffer.shape:
                out.append((st.buffer, src.buffer))
        return out

    def _path_to(self, f: For, leaves: list) -> tuple[For, ...]:  # type: ignore[type-arg]
        for path, _ in leaves:
            if f in path:
                return path[: path.index(f) + 1]
        return (f,)

    def _box(self, p: Placement, leaves: list) -> None:  # type: ignore[type-arg]
        from vta.compiler.tir.region import RegionError, common_loops, hull

        paths = [path for path, leaf in leaves if _buffers_of(leaf) & set(p.buffers)]
        if not paths:
            raise LoweringError(f"buffer {p.buffers[0].name} is never used")
        common = common_loops(paths)
        # allocate at the innermost common loop that is a host loop (not inside a leaf's own chain)
        while common and _chain(common[-1])[1] is not None:
            common = common[:-1]
        p.alloc = common[-1] if common else None
        scope: Stmt = p.alloc.body if p.alloc is not None else self.func.body
        b0 = p.buffers[0]
        try:
            p.box = hull(scope, p.buffers, b0.ndim - 2)
        except RegionError as e:
            raise LoweringError(f"buffer {b0.name}: the region its stages touch in dimension {e.dim} does not have "
                                "a fixed size") from None

    def _new_instances(self, f: For | None, env: dict[Var, int]) -> None:
        for p in self.by_alloc.get(id(f), []):
            p.cur_base = p.base + (p.count % p.slots) * p.entries
            p.count += 1
            p.cur_min = [int(np_eval(m, env)) for m, _ in p.box]

    # ---- walking ----
    def run(self) -> AccelKernel:
        self._new_instances(None, {})
        self._stmt(self.func.body, {})
        insns = self.stream.finish()
        cfg = self.config
        ub = cfg.uop_bits // 8
        align = max(64, ub)
        uop_addr = -(-self.dram_end // align) * align
        for idx, off in self.stream.uop_refs:
            insns[idx].dram_base = uop_addr // ub + off
        uops = self.stream.uop_image()
        segs = []
        for b in self.globals:
            shape = tuple(d.value for d in b.shape)  # type: ignore[attr-defined]
            segs.append(SegmentSpec(b.name, self.seg_elem[b], b.dtype, shape, b in self.written))
        counts = {op.name.lower(): sum(1 for i in insns if i.opcode == op) for op in Opcode}
        stats = {"insns": len(insns), **counts, "syncs": self.stream.syncs, "uop_loads": self.stream.uop_loads,
                 "uops": len(uops), "kernels": len(self.stream.kernels)}
        return AccelKernel(self.func.name, cfg, insns, segs, uops, uop_addr,
                           tuple(b.name for b in self.func.params), stats)

    def _stmt(self, s: Stmt, env: dict[Var, int]) -> None:
        if isinstance(s, SeqStmt):
            for x in s.stmts:
                self._stmt(x, env)
        elif isinstance(s, For):
            loops, leaf = _chain(s)
            if leaf is not None and not any(id(f) in self.by_alloc for f in loops):
                self._leaf(loops, leaf, env)
                return
            for i in range(_ext(s)):
                inner = {**env, s.var: i}
                self._new_instances(s, inner)
                self._stmt(s.body, inner)
        elif _transparent(s):
            self._stmt(s.block.body, env)  # type: ignore[attr-defined]
        elif isinstance(s, (BlockRealize, IntrinCall)):
            self._leaf([], s, env)
        else:
            raise LoweringError(f"cannot lower a {type(s).__name__} statement to accelerator instructions")

    def _leaf(self, loops: list[For], leaf: Stmt, env: dict[Var, int]) -> None:
        if isinstance(leaf, IntrinCall):
            self._call(loops, leaf, env)
            return
        assert isinstance(leaf, BlockRealize)
        blk = leaf.block
        if not (isinstance(leaf.predicate, IntImm) and leaf.predicate.value == 1):
            raise LoweringError(f"block {blk.name} is predicated ({leaf.predicate}): lowering needs whole tiles")
        if not isinstance(blk.body, BufferStore) or blk.init is not None:
            raise LoweringError(f"block {blk.name} must be a single store without init to lower")
        st = blk.body
        site = self.sites.get(id(leaf))
        if site is None:
            bind = dict(zip((iv.var for iv in blk.iter_vars), leaf.iter_values))
            site = self.sites[id(leaf)] = (tuple(simplify(substitute(i, bind)) for i in st.indices),
                                           _subst_loads(st.value, bind))
        idx, value = site  # type: ignore[misc]
        dst = st.buffer
        loads = self._loads(value)
        if dst.scope in SCRATCH and any(ld.buffer.scope == "global" for ld in loads):
            self._load(loops, f"block {blk.name}", dst, idx, value, env)
        elif dst.scope == "global":
            src = value.value if isinstance(value, Cast) and value.dtype == dst.dtype else value
            if not (isinstance(src, BufferLoad) and src.buffer.scope == "acc"):
                raise LoweringError(f"block {blk.name} writes global {dst.name} from {value}; only a copy "
                                    "from the acc scratchpad becomes a STORE")
            self._store(loops, f"block {blk.name}", dst, idx, src, env)
        elif dst.scope == "acc" and isinstance(value, IntImm) and value.value == 0:
            self._compute(loops, blk.name, env, dst, idx, None, [], reset=True)
        elif dst.scope == "acc":
            self._alu(loops, blk, dst, idx, value, env)
        else:
            raise LoweringError(f"block {blk.name} (stores to {dst.name} in scope {dst.scope}) is not a copy, "
                                "reset, GEMM or ALU stage")

    # ---- index forms ----
    def _linear(self, e: Expr, what: str) -> Linear:
        """The affine form of ``e``, simplified with every loop's range."""
        hit = self._lin.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
        lin = linear_form(simplify(e, self._ranges))
        if lin is None:
            raise LoweringError(f"{what}: index {e} is not affine in the loops")
        self._lin[id(e)] = (e, lin)
        return lin

    def _loads(self, e: Expr) -> list[BufferLoad]:
        hit = self._load_memo.get(id(e))
        if hit is None or hit[0] is not e:
            hit = self._load_memo[id(e)] = (e, _loads(e))
        return hit[1]

    def _entry(self, b: Buffer, idx: tuple[Expr, ...], env: dict[Var, int], nest: set[Var], what: str) -> _Form:
        p = self.place.get(b)
        if p is None:
            raise LoweringError(f"{what}: {b.name} is not a scratchpad buffer of this function")
        const, coeffs = p.cur_base, {}
        for d, (stride, e) in enumerate(zip(p.strides, idx[:-2])):
            c0, cs = _at(self._linear(e, what), env, nest)
            const += (c0 - p.cur_min[d]) * stride
            for v, c in cs.items():
                coeffs[v] = coeffs.get(v, 0) + c * stride
        return _Form(const, {v: c for v, c in coeffs.items() if c})

    def _dram(self, b: Buffer, mem: MemType, idx: tuple[Expr, ...], env: dict[Var, int], nest: set[Var],
              what: str) -> _Form:
        const, coeffs = self._elem_addr(b, mem), {}
        shape = [d.value for d in b.shape[:-2]]  # type: ignore[attr-defined]
        stride = 1
        for d in reversed(range(len(shape))):
            c0, cs = _at(self._linear(idx[d], what), env, nest)
            const += c0 * stride
            for v, c in cs.items():
                coeffs[v] = coeffs.get(v, 0) + c * stride
            stride *= shape[d]
        return _Form(const, {v: c for v, c in coeffs.items() if c})

    def _lanes(self, loops: list[For], idx: tuple[Expr, ...], mem: MemType, what: str) -> list[For]:
        """The loops without the two that run over one element's lanes (checked)."""
        key = (id(idx), mem, tuple(id(f) for f in loops))
        hit = self._lane_memo.get(key)
        if hit is not None and hit[0] is idx:
            return hit[1]
        rest = self._lanes_of(loops, idx, mem, what)
        self._lane_memo[key] = (idx, rest)
        return rest

    def _lanes_of(self, loops: list[For], idx: tuple[Expr, ...], mem: MemType, what: str) -> list[For]:
        lane_shape = self.config.elem_shape(mem)[-2:]
        lanes = []
        for e, n in zip(idx[-2:], lane_shape):
            f = next((f for f in loops if f.var is e), None) if isinstance(e, Var) else None
            if f is not None and _ext(f) == n:
                lanes.append(f)
            elif not (n == 1 and isinstance(e, IntImm) and e.value == 0):
                raise LoweringError(f"{what}: the innermost two indices {tuple(map(str, idx[-2:]))} must run over "
                                    f"a whole {mem.name.lower()} element {lane_shape}")
        rest = [f for f in loops if f not in lanes]
        lane_vars = {f.var for f in lanes}
        for e in idx[:-2]:
            if free_vars(e) & lane_vars:
                raise LoweringError(f"{what}: an outer index {e} moves with the element's lanes")
        return rest

    def _call(self, loops: list[For], call: IntrinCall, env: dict[Var, int]) -> None:
        """A tensorized leaf: GEMM, DMA or ALU intrinsic (its lanes are implicit)."""
        kind, name = call.intrin.kind, call.intrin.name
        if kind == "gemm":
            self._gemm(loops, call, env)
            return
        site = self.sites.get(id(call))
        if site is None:  # each region as the index of its element's first lane
            site = self.sites[id(call)] = tuple(
                (r.buffer, tuple(g.min for g in r.region[:-2]) + (IntImm(0), IntImm(0))) for r in call.regions)
        (b0, i0), *rest = site  # type: ignore[misc]
        if kind == "load":
            b1, i1 = rest[0]
            self._load(loops, name, b0, i0, BufferLoad(b1, i1), env, lanes=False)
        elif kind == "store":
            b1, i1 = rest[0]
            self._store(loops, name, b0, i0, BufferLoad(b1, i1), env, lanes=False)
        elif kind == "alu":
            op = {"min": AluOp.MIN, "max": AluOp.MAX, "add": AluOp.ADD, "mul": AluOp.MUL, "shr": AluOp.SHR}[
                call.intrin.op]  # type: ignore[index]
            a = rest[0]
            if self.place.get(a[0]) is not self.place.get(b0) or tuple(map(str, a[1])) != tuple(map(str, i0)):
                self._compute(loops, name, env, b0, i0, a, [(AluOp.MOV, None)], lanes=False)
            if call.scalars:
                value = int(np_eval(call.scalars[0], env))  # type: ignore[arg-type]
                if op == AluOp.SHR:
                    if value <= 0 or value & (value - 1):
                        raise LoweringError(f"{name}: divisor {value} is not a power of two")
                    value = value.bit_length() - 1
                self._compute(loops, name, env, b0, i0, None, [(op, _imm(value, name))], lanes=False)
            else:
                self._compute(loops, name, env, b0, i0, rest[1], [(op, None)], lanes=False)
        else:
            raise LoweringError(f"intrinsic {name} ({kind}) has no accelerator lowering")

    # ---- compute: GEMM, reset, ALU ----
    def _gemm(self, loops: list[For], call: IntrinCall, env: dict[Var, int]) -> None:
        by_scope = {r.buffer.scope: r for r in call.regions}
        if set(by_scope) != {"acc", "inp", "wgt"}:
            raise LoweringError(f"intrinsic {call.intrin.name} is not the accelerator's GEMM")
        nest = {f.var for f in loops}
        forms = []
        for sc in ("acc", "inp", "wgt"):
            r = by_scope[sc]
            forms.append(self._entry(r.buffer, tuple(g.min for g in r.region), env, nest, call.intrin.name))
        self._emit_kernel(loops, forms, Opcode.GEMM, reset=False)

    def _compute(self, loops: list[For], what: str, env: dict[Var, int], dst: Buffer, idx: tuple[Expr, ...],
                 src: tuple[Buffer, tuple[Expr, ...]] | None, ops: list[tuple[AluOp, int | None]],
                 reset: bool = False, lanes: bool = True) -> None:
        rest = self._lanes(loops, idx, MemType.ACC, what) if lanes else loops
        nest = {f.var for f in rest}
        d = self._entry(dst, idx, env, nest, what)
        if reset:
            self._emit_kernel(rest, [d, _Form(0, {}), _Form(0, {})], Opcode.GEMM, reset=True)
            return
        s = self._entry(src[0], src[1], env, nest, what) if src is not None else _Form(0, {})
        for op, imm in ops:
            self._emit_kernel(rest, [d, s if imm is None else _Form(0, {}), _Form(0, {})], Opcode.ALU,
                              alu=(op, imm))

    def _alu(self, loops: list[For], blk: Block, dst: Buffer, idx: tuple[Expr, ...], value: Expr,
             env: dict[Var, int]) -> None:
        ops, leaf = _alu_chain(value, dst, blk.name, self.config.acc_width)
        for ld in self._loads(value):
            if ld.buffer.scope != "acc" or tuple(map(str, ld.indices[-2:])) != tuple(map(str, idx[-2:])):
                raise LoweringError(f"block {blk.name}: operand {ld} must be an acc entry at the same lanes as "
                                    f"the result {dst.name}{list(map(str, idx))}")
        same = self.place.get(leaf.buffer) is self.place.get(dst) and \
            tuple(map(str, leaf.indices)) == tuple(map(str, idx))
        if not same:  # copy the source over first, then work in place
            self._compute(loops, blk.name, env, dst, idx, (leaf.buffer, leaf.indices), [(AluOp.MOV, None)])
        for op, operand in ops:
            if isinstance(operand, BufferLoad):
                self._compute(loops, blk.name, env, dst, idx, (operand.buffer, operand.indices), [(op, None)])
            else:
                self._compute(loops, blk.name, env, dst, idx, None, [(op, operand)])

    def _emit_kernel(self, loops: list[For], forms: list[_Form], opcode: Opcode, reset: bool = False,
                     alu: tuple[AluOp, int | None] | None = None) -> None:
        exts = tuple(_ext(f) for f in loops)
        signature = (exts, tuple((fm.const, tuple(fm.coeffs.get(f.var, 0) for f in loops)) for fm in forms),
                     opcode, reset, alu is not None and alu[1] is None)
        kernel = self.jit.get(signature)
        if kernel is None:
            kernel = self.jit[signature] = self._kernel(exts, signature[1], opcode, alu, reset)
        uops, (n_out, f_out), (n_in, f_in), footprint = kernel
        base = self.stream.kernel_base(uops)
        end = base + len(uops)
        if opcode == Opcode.GEMM:
            insn = Insn.gemm(base, end, n_out, n_in, (f_out[0], f_in[0]), (f_out[1], f_in[1]), (f_out[2], f_in[2]),
                             reset)
        else:
            op, imm = alu  # type: ignore[misc]
            insn = Insn.alu(op, base, end, n_out, n_in, (f_out[0], f_in[0]), (f_out[1], f_in[1]), imm)
        self.stream.emit(insn, footprint)

    def _kernel(self, exts: tuple[int, ...], forms: tuple, opcode: Opcode,  # type: ignore[type-arg]
                alu: tuple[AluOp, int | None] | None, reset: bool) -> tuple:  # type: ignore[type-arg]
        """Generate a micro-kernel: (uops, outer loop, inner loop, footprint). The two longest
        loops with non-negative steps fold into the instruction; the others become micro-ops."""
        foldable = [i for i, n in enumerate(exts) if n > 1 and all(c[i] >= 0 for _, c in forms)]
        fold = sorted(sorted(foldable, key=lambda i: -exts[i])[:2])
        rest = [i for i in range(len(exts)) if i not in fold]
        grids = np.meshgrid(*[np.arange(exts[i]) for i in rest], indexing="ij") if rest else []
        cols = []
        for const, coeffs in forms:
            col = np.full(max(1, math.prod(exts[i] for i in rest)), const, np.int64)
            for g, i in zip(grids, rest):
                col = col + coeffs[i] * g.reshape(-1)
            cols.append(col)
        uops = np.stack(cols, axis=1)
        iters = [(exts[i], [c[i] for _, c in forms]) for i in fold]
        while len(iters) < 2:
            iters.insert(0, (1, [0, 0, 0]))
        return uops, iters[0], iters[1], self._compute_footprint(uops, iters, opcode, alu, reset)

    def _compute_footprint(self, uops: np.ndarray, iters: list, opcode: Opcode,  # type: ignore[type-arg]
                           alu: tuple[AluOp, int | None] | None, reset: bool) -> Footprint:
        def hull(k: int) -> tuple[int, int]:
            span = sum((n - 1) * f[k] for n, f in iters)
            return int(uops[:, k].min()), int(uops[:, k].max()) + span + 1

        out = [(MemType.ACC, *hull(0), True)]
        if opcode == Opcode.GEMM and not reset:
            out += [(MemType.INP, *hull(1), False), (MemType.WGT, *hull(2), False)]
        elif alu is not None and alu[1] is None:
            out.append((MemType.ACC, *hull(1), False))
        return tuple(out)

    # ---- DMA ----
    def _copy_dims(self, loops: list[For], sram: _Form, dram: _Form, padded: set[Var]) -> tuple:  # type: ignore[type-arg]
        """Split the copy's loops into x (contiguous elements), y (rows) and the rest."""
        dims = [(f, _ext(f), dram.coeffs.get(f.var, 0), sram.coeffs.get(f.var, 0)) for f in loops if _ext(f) > 1]
        x: list = [1, 1, 1, None]  # type: ignore[type-arg]  # extent, dram step, sram step, the loop if padded
        if dims and dims[-1][2] == 1 and dims[-1][3] == 1:
            f, e, _, _ = dims.pop()
            x = [e, 1, 1, f if f.var in padded else None]
            while dims and x[3] is None and dims[-1][0].var not in padded and dims[-1][2] == x[0] and \
                    dims[-1][3] == x[0]:
                x[0] *= dims.pop()[1]
        y = [1, 0, x[0], None]
        if dims and dims[-1][3] == x[0]:
            f, e, dc, sc = dims.pop()
            y = [e, dc, sc, f if f.var in padded else None]
            while dims and y[3] is None and dims[-1][0].var not in padded and dims[-1][2] == y[1] * y[0] and \
                    dims[-1][3] == y[2] * y[0]:
                y[0] *= dims.pop()[1]
        for f, *_ in dims:
            if f.var in padded:
                raise LoweringError(f"copy loop {f.var.name}: padding must be on the two innermost copied "
                                    "dimensions")
        return x, y, dims

    def _load(self, loops: list[For], what: str, dst: Buffer, idx: tuple[Expr, ...], value: Expr,
              env: dict[Var, int], lanes: bool = True) -> None:
        cond, pad_value = None, 0
        src = value
        if isinstance(src, Select):
            if not isinstance(src.f, IntImm):
                raise LoweringError(f"{what}: the padding value {src.f} is not a constant")
            cond, pad_value, src = src.cond, src.f.value, src.t
        if not (isinstance(src, BufferLoad) and src.buffer.scope == "global"):
            raise LoweringError(f"{what}: a load into {dst.name} must copy a global buffer, got {value}")
        if not -(1 << 7) <= pad_value < (1 << 7):
            raise LoweringError(f"{what}: padding value {pad_value} does not fit the 8-bit pad field")
        mem = SCRATCH[dst.scope]
        rest = self._lanes(loops, idx, mem, what) if lanes else loops
        if lanes and tuple(map(str, src.indices[-2:])) != tuple(map(str, idx[-2:])):
            raise LoweringError(f"{what}: {src.buffer.name}'s lanes must be copied as they are")
        nest = {f.var for f in rest}
        sram = self._entry(dst, idx, env, nest, what)
        dram = self._dram(src.buffer, mem, src.indices, env, nest, what)
        padded = (free_vars(cond) & nest) if cond is not None else set()
        x, y, others = self._copy_dims(rest, sram, dram, padded)
        pad_limit = (1 << PAD_BITS) - 1
        for vals in itertools.product(*[range(e) for _, e, _, _ in others]):
            s0 = sram.const + sum(v * sc for v, (_, _, _, sc) in zip(vals, others))
            d0 = dram.const + sum(v * dc for v, (_, _, dc, _) in zip(vals, others))
            t = b = lft = r = 0
            if cond is not None:
                t, b, lft, r = self._pads(cond, env, rest, others, vals, x, y, what)
                if max(t, b, lft, r) > pad_limit:
                    raise LoweringError(f"{what}: padding ({t}, {b}, {lft}, {r}) exceeds {pad_limit} "
                                        "entries on a side: use smaller tiles")
            ny, nx = y[0] - t - b, x[0] - lft - r
            insn = Insn.load(mem, s0, d0 + t * y[1] + lft, ny, nx, y[1], (t, b, lft, r), pad_value)
            self.stream.emit(insn, ((mem, s0, s0 + y[0] * x[0], True),))

    def _pads(self, cond: Expr, env: dict[Var, int], rest: list[For], others: list, vals: tuple,  # type: ignore[type-arg]
              x: list, y: list, what: str) -> tuple[int, int, int, int]:  # type: ignore[type-arg]
        """(top, bottom, left, right) padding of one LOAD: where ``cond`` is false around the data."""
        hosts = self._pad_memo.get(id(cond))
        if hosts is None or hosts[0] is not cond:
            hosts = self._pad_memo[id(cond)] = (cond, tuple(sorted(free_vars(cond), key=lambda v: v.uid)))
        key = (id(cond), tuple(env.get(v) for v in hosts[1]), vals, x[0], y[0])
        hit = self._pad_memo.get(key)
        if hit is None:
            hit = self._pad_memo[key] = self._pads_of(cond, env, rest, others, vals, x, y, what)
        return hit

    def _pads_of(self, cond: Expr, env: dict[Var, int], rest: list[For], others: list, vals: tuple,  # type: ignore[type-arg]
                 x: list, y: list, what: str) -> tuple[int, int, int, int]:  # type: ignore[type-arg]
        local: dict[Var, int | np.ndarray] = dict(env)
        for f in rest:
            local[f.var] = 0
        for (f, *_), v in zip(others, vals):
            local[f.var] = v
        if y[3] is not None:
            local[y[3].var] = np.arange(y[0])[:, None]
        if x[3] is not None:
            local[x[3].var] = np.arange(x[0])[None, :]
        mask = np.broadcast_to(np.asarray(np_eval(cond, local), bool), (y[0], x[0]))
        rows, cols = mask.any(axis=1), mask.any(axis=0)
        if not rows.any():
            raise LoweringError(f"{what}: a copied tile lies entirely in the padding")
        if not np.array_equal(mask, np.outer(rows, cols)):
            raise LoweringError(f"{what}: the padded area is not a border around a rectangle")
        ry, rx = np.flatnonzero(rows), np.flatnonzero(cols)
        if len(ry) != ry[-1] - ry[0] + 1 or len(rx) != rx[-1] - rx[0] + 1:
            raise LoweringError(f"{what}: the data inside the padding is not contiguous")
        return int(ry[0]), int(y[0] - 1 - ry[-1]), int(rx[0]), int(x[0] - 1 - rx[-1])

    def _store(self, loops: list[For], what: str, dst: Buffer, idx: tuple[Expr, ...], src: BufferLoad,
               env: dict[Var, int], lanes: bool = True) -> None:
        cfg = self.config
        bits = DTYPE_BITS.get(dst.dtype)
        mem = MemType.OUT if bits == cfg.out_width else MemType.ACC if bits == cfg.acc_width else None
        if mem is None:
            raise LoweringError(f"{what}: {dst.name} is {dst.dtype}; a STORE writes {cfg.out_width}-bit "
                                f"outputs or {cfg.acc_width}-bit accumulators")
        rest = self._lanes(loops, src.indices, MemType.ACC, what) if lanes else loops
        if lanes and tuple(map(str, src.indices[-2:])) != tuple(map(str, idx[-2:])):
            raise LoweringError(f"{what}: lanes must be stored as they are")
        nest = {f.var for f in rest}
        sram = self._entry(src.buffer, src.indices, env, nest, what)
        dram = self._dram(dst, mem, idx, env, nest, what)
        x, y, others = self._copy_dims(rest, sram, dram, set())
        self.written.add(dst)
        for vals in itertools.product(*[range(e) for _, e, _, _ in others]):
            s0 = sram.const + sum(v * sc for v, (_, _, _, sc) in zip(vals, others))
            d0 = dram.const + sum(v * dc for v, (_, _, dc, _) in zip(vals, others))
            insn = Insn.store(s0, d0, y[0], x[0], y[1], mem)
            self.stream.emit(insn, ((MemType.ACC, s0, s0 + y[0] * x[0], False),))


# ---- expression helpers ------------------------------------------------------------------------

def _subst_loads(e: Expr, bind: dict[Var, Expr]) -> Expr:
    if isinstance(e, BufferLoad):
        return BufferLoad(e.buffer, tuple(simplify(substitute(i, bind)) for i in e.indices))
    kids = children(e)
    if not kids:
        return substitute(e, bind)
    from vta.compiler.tir.expr import rebuild

    return rebuild(e, tuple(_subst_loads(k, bind) for k in kids))


def _loads(e: Expr) -> list[BufferLoad]:
    if isinstance(e, BufferLoad):
        return [e]
    return [x for k in children(e) for x in _loads(k)]


def _chain_source(e: Expr) -> BufferLoad | None:
    """The load an ALU chain starts from (its leftmost non-constant leaf)."""
    while not isinstance(e, BufferLoad):
        kids = [k for k in children(e) if not isinstance(k, IntImm)]
        if not kids:
            return None
        e = kids[0]
    return e


_ALU_OF = {Min: AluOp.MIN, Max: AluOp.MAX, Add: AluOp.ADD, Mul: AluOp.MUL}


def _imm(v: int, what: str) -> int:
    if not IMM_MIN <= v <= IMM_MAX:
        raise LoweringError(f"{what}: constant {v} does not fit the ALU's {IMM_BITS}-bit immediate")
    return v


def _alu_chain(value: Expr, dst: Buffer, what: str,
               acc_bits: int) -> tuple[list[tuple[AluOp, int | BufferLoad]], BufferLoad]:
    """``value`` as a start load and the ALU operations applied to it in order (casts to the
    accumulator width, ``acc_bits``, are what every ALU step does anyway)."""
    if isinstance(value, Cast) and value.dtype == dst.dtype:  # the STORE narrows
        value = value.value
    ops: list[tuple[AluOp, int | BufferLoad]] = []
    e = value
    while not isinstance(e, BufferLoad):
        if isinstance(e, Cast):
            if DTYPE_BITS.get(e.dtype) != acc_bits:
                raise LoweringError(f"block {what}: a cast to {e.dtype} inside the computation; only the result "
                                    "may narrow")
            e = e.value
            continue
        if isinstance(e, FloorDiv) and isinstance(e.b, IntImm):
            k = e.b.value
            if k <= 0 or k & (k - 1):
                raise LoweringError(f"block {what}: division by {k}; the ALU divides by powers of two (SHR)")
            ops.append((AluOp.SHR, k.bit_length() - 1))
            e = e.a
            continue
        if isinstance(e, Sub) and isinstance(e.b, IntImm):
            ops.append((AluOp.ADD, _imm(-e.b.value, what)))
            e = e.a
            continue
        op = _ALU_OF.get(type(e))
        if op is None:
            raise LoweringError(f"block {what}: {e} is not an ALU operation (min, max, add, mul, // 2^k)")
        a, b = e.a, e.b  # type: ignore[attr-defined]
        if isinstance(a, IntImm) or (isinstance(a, BufferLoad) and not isinstance(b, (IntImm, BufferLoad))):
            a, b = b, a
        if isinstance(b, IntImm):
            ops.append((op, _imm(b.value, what)))
        elif isinstance(b, BufferLoad):
            ops.append((op, b))
        else:
            raise LoweringError(f"block {what}: both operands of {e} are computed; the ALU needs one to be a "
                                "constant or an acc entry")
        e = a
    return ops[::-1], e


def lower(func: PrimFunc, config: Config, slots: int = 2) -> AccelKernel:
    """Lower the scheduled ``func`` for ``config``; ``slots`` copies of each scratchpad tile
    rotate across iterations of its allocation loop (2: double buffering)."""
    if slots < 1:
        raise LoweringError(f"slots must be at least 1, got {slots}")
    return _Lowering(func, config, slots).run()
