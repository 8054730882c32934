"""Tensor intrinsics: what one accelerator operation computes, as a small loop-IR
function (its semantics), and the statement that calls it in a scheduled function.

Generated from a config:

- `gemm_intrin`: ``acc[b, o] += inp[b, k] · wgt[o, k]`` over ``batch × block_out ×
  block_in``, operands in the inp/wgt/acc scratchpads;
- `load_intrin(scope)`: one DMA element from a global buffer into ``inp``, ``wgt`` or
  ``acc`` (padding is per instruction: the lowering reads it off the copy's condition);
- `store_intrin(dtype)`: one accumulator element to a global buffer, narrowed to the
  output width (``int8``) or at full width;
- `alu_intrin(op, operand)`: one ALU lane operation (min, max, add, mul, shr) on an
  accumulator element with an immediate (a *scalar* parameter of the description) or a
  second accumulator element.

`Schedule.tensorize` matches a loop nest against an intrinsic's semantics and replaces
it with an `IntrinCall` on the buffer regions (and scalar values) it found.
"""

from __future__ import annotations

from dataclasses import dataclass

from vta.isa import Config

from .expr import Expr, FloorDiv, IntImm, Max, Min, Var
from .stmt import Block, BlockRealize, Buffer, BufferRegion, BufferStore, Cast, For, IterVar, PrimFunc, Stmt


@dataclass(frozen=True)
class TensorIntrin:
    """``name`` and ``desc``: a perfect loop nest around one block, over parameter buffers
    whose scopes and dtypes a match must have. Operands are the innermost dimensions of
    the matched buffers."""

    name: str
    desc: PrimFunc
    kind: str = "gemm"  # gemm, load, store or alu: what the lowering emits
    op: str | None = None  # the ALU operation
    scalars: tuple[Var, ...] = ()  # variables of the description that stand for constants

    def written(self) -> set[Buffer]:
        """The parameters the description stores to."""
        from .transform import walk_stmt

        return {s.buffer for s in walk_stmt(self.desc.body) if isinstance(s, BufferStore)}


@dataclass(frozen=True, repr=False)
class IntrinCall(Stmt):
    """``intrin`` applied to ``regions`` (one per parameter of its description, in order)."""

    intrin: TensorIntrin
    regions: tuple[BufferRegion, ...]
    scalars: tuple[Expr, ...] = ()  # values of the intrinsic's scalar parameters


def _dtype(bits: int) -> str:
    return {4: "int4", 8: "int8", 16: "int16", 32: "int32"}[bits]


def gemm_intrin(config: Config) -> TensorIntrin:
    """The GEMM core of ``config``: one micro-op, accumulating (no reset)."""
    b, bi, bo = config.batch, config.block_in, config.block_out
    acc_t = _dtype(config.acc_width)
    inp = Buffer("inp", (b, bi), _dtype(config.inp_width), "inp")
    wgt = Buffer("wgt", (bo, bi), _dtype(config.wgt_width), "wgt")
    acc = Buffer("acc", (b, bo), acc_t, "acc")
    i, j, k = Var("b"), Var("o"), Var("k")
    vi, vj, vk = Var("vb"), Var("vo"), Var("vk")
    blk = Block("gemm", (IterVar(vi, IntImm(b)), IterVar(vj, IntImm(bo)), IterVar(vk, IntImm(bi), "R")),
                reads=(acc[vi, vj], inp[vi, vk], wgt[vj, vk]), writes=(acc[vi, vj],),  # type: ignore[arg-type]
                body=BufferStore(acc, acc[vi, vj] + Cast(acc_t, inp[vi, vk]) * Cast(acc_t, wgt[vj, vk]),  # type: ignore[operator]
                                 (vi, vj)))
    body = For(i, IntImm(b), For(j, IntImm(bo), For(k, IntImm(bi), BlockRealize((i, j, k), IntImm(1), blk))))
    return TensorIntrin(f"gemm_{b}x{bi}x{bo}", PrimFunc("gemm", (acc, inp, wgt), body))


def _element_nest(shape: tuple[int, int], body_of: object) -> Stmt:
    """Two loops over one element's lanes around a block (``body_of(vi, vj)`` gives the store)."""
    i, j, vi, vj = Var("b"), Var("o"), Var("vb"), Var("vo")
    store = body_of(vi, vj)  # type: ignore[operator]
    reads = tuple(_loads_of(store.value))
    blk = Block("elem", (IterVar(vi, IntImm(shape[0])), IterVar(vj, IntImm(shape[1]))), reads=reads,
                writes=(store.buffer[vi, vj],), body=store)
    return For(i, IntImm(shape[0]), For(j, IntImm(shape[1]), BlockRealize((i, j), IntImm(1), blk)))


def _loads_of(e: Expr) -> list:  # type: ignore[type-arg]
    from .expr import children
    from .stmt import BufferLoad

    if isinstance(e, BufferLoad):
        return [e]
    return [x for k in children(e) for x in _loads_of(k)]


_SCOPE_BITS = {"inp": "inp_width", "wgt": "wgt_width", "acc": "acc_width"}


def load_intrin(config: Config, scope: str) -> TensorIntrin:
    """One DMA element from a global buffer into scratchpad ``scope`` (inp, wgt or acc)."""
    if scope not in _SCOPE_BITS:
        raise ValueError(f"load_intrin: scope {scope!r} is not one of {', '.join(_SCOPE_BITS)}")
    mem = {"inp": (config.batch, config.block_in), "wgt": (config.block_out, config.block_in),
           "acc": (config.batch, config.block_out)}[scope]
    dt = _dtype(getattr(config, _SCOPE_BITS[scope]))
    dst, src = Buffer("dst", mem, dt, scope), Buffer("src", mem, dt)
    body = _element_nest(mem, lambda i, j: BufferStore(dst, src[i, j], (i, j)))
    return TensorIntrin(f"load_{scope}", PrimFunc(f"load_{scope}", (dst, src), body), kind="load")


def store_intrin(config: Config, dtype: str | None = None) -> TensorIntrin:
    """One accumulator element to a global buffer of ``dtype`` (default: the output width;
    the accumulator width stores at full width)."""
    dt = dtype or _dtype(config.out_width)
    if dt not in (_dtype(config.out_width), _dtype(config.acc_width)):
        raise ValueError(f"store_intrin: {dt} is neither the output nor the accumulator type of {config.name}")
    shape = (config.batch, config.block_out)
    src, dst = Buffer("src", shape, dt, "acc"), Buffer("dst", shape, dt)
    body = _element_nest(shape, lambda i, j: BufferStore(dst, src[i, j], (i, j)))
    return TensorIntrin(f"store_{dt}", PrimFunc(f"store_{dt}", (dst, src), body), kind="store")


ALU_OPS = ("min", "max", "add", "mul", "shr")


def alu_intrin(config: Config, op: str, operand: str = "imm") -> TensorIntrin:
    """One ALU operation on accumulator elements: ``dst = op(a, x)``, ``x`` an immediate
    (``operand="imm"``: the scalar ``imm``; for ``shr`` the divisor ``2^s``) or a third
    accumulator element (``operand="acc"``). The lowering works in place when ``dst`` and
    ``a`` share their entries, and copies ``a`` over first otherwise."""
    if op not in ALU_OPS:
        raise ValueError(f"alu_intrin: op {op!r} is not one of {', '.join(ALU_OPS)}")
    if operand not in ("imm", "acc") or (op == "shr" and operand == "acc"):
        raise ValueError(f"alu_intrin: operand {operand!r} for {op} (imm, or acc for min/max/add/mul)")
    at = _dtype(config.acc_width)
    shape = (config.batch, config.block_out)
    dst, a, b = Buffer("dst", shape, at, "acc"), Buffer("a", shape, at, "acc"), Buffer("b", shape, at, "acc")
    imm = Var("imm")
    fns = {"min": Min, "max": Max, "add": lambda x, y: Cast(at, x + y), "mul": lambda x, y: Cast(at, x * y),
           "shr": FloorDiv}

    def body(i: Var, j: Var) -> BufferStore:
        x = imm if operand == "imm" else b[i, j]
        return BufferStore(dst, fns[op](a[i, j], x), (i, j))  # type: ignore[operator]

    params = (dst, a) if operand == "imm" else (dst, a, b)
    name = f"alu_{op}_{operand}"
    return TensorIntrin(name, PrimFunc(name, params, _element_nest(shape, body)), kind="alu", op=op,
                        scalars=(imm,) if operand == "imm" else ())
