"""Operator definitions as loop-IR functions.

- `dense` (plain layout), `dense_packed` and `batch_matmul_packed`, `conv2d_packed`
  (stride, padding, groups) in the accelerator's blocked layout;
- `Epilogue`: what follows the accumulation in one accelerator kernel: a per-channel
  int32 bias, the requantization recipe (multiply, rounding add, shift, zero point,
  clip) and ReLU, each step an elementwise integer expression;
- `elementwise_packed`: add/multiply of two accumulator-layout tensors (residual adds).

Every expression wraps to the accumulator width where the accelerator's ALU does, so
the reference interpreter computes exactly what the hardware will.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vta.isa.spec import IMM_BITS

from .expr import Expr, FloorDiv, IntImm, Var, and_, max_, min_, select
from .simplify import simplify
from .stmt import Block, BlockRealize, Buffer, BufferStore, Cast, For, IterVar, PrimFunc, Stmt, seq

IMM_MIN, IMM_MAX = -(1 << (IMM_BITS - 1)), (1 << (IMM_BITS - 1)) - 1  # the ALU's signed immediate
ROUND_SHIFT = IMM_BITS - 1  # the longest shift whose rounding constant 2^(shift-1) fits the immediate


def _nest(loops: list[tuple[Var, int]], body: Stmt) -> Stmt:
    for v, n in reversed(loops):
        body = For(v, IntImm(n), body)
    return body


def dense(m: int, n: int, k: int, in_dtype: str = "int8", acc_dtype: str = "int32") -> PrimFunc:
    """``C[i, j] = Σ_r acc(A[i, r]) · acc(W[j, r])``: A is (m, k), W is (n, k), C is (m, n)."""
    a = Buffer("A", (m, k), in_dtype)
    w = Buffer("W", (n, k), in_dtype)
    c = Buffer("C", (m, n), acc_dtype)
    i, j, r = Var("i"), Var("j"), Var("k")
    vi, vj, vr = Var("vi"), Var("vj"), Var("vk")
    block = Block(
        "dense",
        (IterVar(vi, IntImm(m)), IterVar(vj, IntImm(n)), IterVar(vr, IntImm(k), "R")),
        reads=(c[vi, vj], a[vi, vr], w[vj, vr]),  # type: ignore[arg-type]
        writes=(c[vi, vj],),  # type: ignore[arg-type]
        init=BufferStore(c, IntImm(0), (vi, vj)),
        body=BufferStore(c, c[vi, vj] + Cast(acc_dtype, a[vi, vr]) * Cast(acc_dtype, w[vj, vr]),  # type: ignore[operator]
                         (vi, vj)),
    )
    return PrimFunc("dense", (a, w, c), _nest([(i, m), (j, n), (r, k)], BlockRealize((i, j, r), IntImm(1), block)))


def conv2d_packed(batch: int, in_ch: int, h: int, w: int, out_ch: int, kernel: int, stride: int = 1, pad: int = 0,
                  groups: int = 1, blocks: tuple[int, int, int] = (1, 16, 16), in_dtype: str = "int8",
                  acc_dtype: str = "int32", pad_value: int = 0) -> PrimFunc:
    """2-D convolution in the accelerator's packed layout, ``blocks = (bn, bi, bo)``
    (batch, block_in, block_out of a config):

    - data ``D[n // bn, c // bi, y, x, n % bn, c % bi]``;
    - weights ``Wt[o // bo, c_g // bi, ky, kx, o % bo, c_g % bi]`` (c_g: channel within the group);
    - output ``Out[n // bn, o // bo, oy, ox, n % bn, o % bo]``.

    Padding reads as ``pad_value`` (an asymmetric-quantized input's zero point). Each group's
    input and output channels must be whole blocks.
    """
    bn, bi, bo = blocks
    for what, total, blk in (("batch", batch, bn), ("input channels", in_ch, bi), ("output channels", out_ch, bo)):
        if total % blk:
            raise ValueError(f"conv2d_packed: {what} {total} is not a multiple of the block {blk}")
    if in_ch % groups or out_ch % groups:
        raise ValueError(f"conv2d_packed: {groups} groups do not divide {in_ch} input and {out_ch} output channels")
    cin_g, cout_g = in_ch // groups, out_ch // groups
    if cin_g % bi or cout_g % bo:
        raise ValueError(f"conv2d_packed: a group has {cin_g} input and {cout_g} output channels, not whole blocks "
                         f"of {bi} and {bo}")
    if kernel < 1 or stride < 1 or pad < 0:
        raise ValueError(f"conv2d_packed: kernel {kernel}, stride {stride}, pad {pad} (kernel, stride >= 1; pad >= 0)")
    oh, ow = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"conv2d_packed: a {kernel}x{kernel} kernel does not fit a padded {h}x{w} input")
    d = Buffer("D", (batch // bn, in_ch // bi, h, w, bn, bi), in_dtype)
    wt = Buffer("Wt", (out_ch // bo, cin_g // bi, kernel, kernel, bo, bi), in_dtype)
    out = Buffer("Out", (batch // bn, out_ch // bo, oh, ow, bn, bo), acc_dtype)
    stages: list[Stmt] = []
    allocs: list[Buffer] = []
    src = d
    if pad:  # a padding stage: the accelerator's input DMA does it on the fly
        src = Buffer("Dp", (batch // bn, in_ch // bi, h + 2 * pad, w + 2 * pad, bn, bi), in_dtype)
        stages.append(_pad_stage(d, src, pad, pad_value))
        allocs.append(src)
    if kernel == 1 and stride > 1:  # a subsampling stage: the DMA reads only the pixels used
        sub = Buffer("Ds", (batch // bn, in_ch // bi, oh, ow, bn, bi), in_dtype)
        stages.append(_subsample_stage(src, sub, stride))
        allocs.append(sub)
        src, stride = sub, 1
    sp = [("n0", batch // bn), ("o0", out_ch // bo), ("y", oh), ("x", ow), ("n1", bn), ("o1", bo)]
    rd = [("c0", cin_g // bi), ("ky", kernel), ("kx", kernel), ("c1", bi)]
    loops = [(Var(name), n) for name, n in sp + rd]
    ivs = [IterVar(Var(f"v{name}"), IntImm(n), "S") for name, n in sp] + \
          [IterVar(Var(f"v{name}"), IntImm(n), "R") for name, n in rd]
    n0, o0, y, x, n1, o1, c0, ky, kx, c1 = (iv.var for iv in ivs)
    cblk = o0 // (cout_g // bo) * (cin_g // bi) + c0 if groups > 1 else c0
    iy, ix = simplify(y * stride + ky), simplify(x * stride + kx)
    value = Cast(acc_dtype, src[n0, cblk, iy, ix, n1, c1])  # type: ignore[index]
    store = (n0, o0, y, x, n1, o1)
    block = Block(
        "conv2d", tuple(ivs),
        reads=(out[store], src[n0, cblk, iy, ix, n1, c1], wt[o0, c0, ky, kx, o1, c1]),  # type: ignore[index]
        writes=(out[store],),  # type: ignore[index]
        init=BufferStore(out, IntImm(0), store),
        body=BufferStore(out, out[store] + value * Cast(acc_dtype, wt[o0, c0, ky, kx, o1, c1]), store),  # type: ignore[index,operator]
    )
    stages.append(_nest(loops, BlockRealize(tuple(v for v, _ in loops), IntImm(1), block)))
    return PrimFunc("conv2d", (d, wt, out), seq(*stages), allocs=tuple(allocs))


def _subsample_stage(d: Buffer, ds: Buffer, stride: int) -> Stmt:
    """``Ds[.., y, x, ..] = D[.., y * stride, x * stride, ..]``."""
    loops = [Var(n) for n in ("n0", "c0", "y", "x", "n1", "c1")]
    ivs = [IterVar(Var(f"v{v.name}"), ds.shape[i]) for i, v in enumerate(loops)]
    n0, c0, y, x, n1, c1 = (iv.var for iv in ivs)
    src = d[n0, c0, y * stride, x * stride, n1, c1]  # type: ignore[index,operator]
    blk = Block("subsample", tuple(ivs), reads=(src,), writes=(ds[n0, c0, y, x, n1, c1],),  # type: ignore[index]
                body=BufferStore(ds, src, (n0, c0, y, x, n1, c1)))
    return _nest([(v, ds.shape[i].value) for i, v in enumerate(loops)],  # type: ignore[attr-defined]
                 BlockRealize(tuple(loops), IntImm(1), blk))


def _pad_stage(d: Buffer, dp: Buffer, pad: int, value: int = 0) -> Stmt:
    """``Dp[.., y, x, ..] = D[.., y - pad, x - pad, ..]`` inside the input, ``value`` in the border."""
    h, w = d.shape[2].value, d.shape[3].value  # type: ignore[attr-defined]
    loops = [Var(n) for n in ("n0", "c0", "y", "x", "n1", "c1")]
    ivs = [IterVar(Var(f"v{v.name}"), dp.shape[i]) for i, v in enumerate(loops)]
    n0, c0, y, x, n1, c1 = (iv.var for iv in ivs)
    inside = and_(and_(y >= pad, y < h + pad), and_(x >= pad, x < w + pad))
    src = d[n0, c0, y - pad, x - pad, n1, c1]  # type: ignore[index,operator]
    blk = Block("pad", tuple(ivs), reads=(src,), writes=(dp[n0, c0, y, x, n1, c1],),  # type: ignore[index]
                body=BufferStore(dp, select(inside, src, value), (n0, c0, y, x, n1, c1)))
    return _nest([(v, dp.shape[i].value) for i, v in enumerate(loops)],  # type: ignore[attr-defined]
                 BlockRealize(tuple(loops), IntImm(1), blk))


def dense_packed(m: int, n: int, k: int, blocks: tuple[int, int, int] = (1, 16, 16), in_dtype: str = "int8",
                 acc_dtype: str = "int32") -> PrimFunc:
    """``C = A · Wᵀ`` in the blocked layout, ``blocks = (bn, bi, bo)``: ``A[m // bn, k // bi, bn, bi]``,
    ``W[n // bo, k // bi, bo, bi]``, ``C[m // bn, n // bo, bn, bo]``."""
    return batch_matmul_packed(0, m, n, k, blocks, in_dtype, acc_dtype)


def batch_matmul_packed(batches: int, m: int, n: int, k: int, blocks: tuple[int, int, int] = (1, 16, 16),
                        in_dtype: str = "int8", acc_dtype: str = "int32") -> PrimFunc:
    """``C[g] = A[g] · W[g]ᵀ`` for ``g < batches`` in the blocked layout (a leading batch
    dimension on each buffer); ``batches = 0`` is plain dense, without that dimension."""
    bn, bi, bo = blocks
    for what, total, blk in (("rows", m, bn), ("reduction", k, bi), ("columns", n, bo)):
        if total % blk:
            raise ValueError(f"dense_packed: {what} {total} is not a multiple of the block {blk}")
    lead = (batches,) if batches else ()
    a = Buffer("A", (*lead, m // bn, k // bi, bn, bi), in_dtype)
    w = Buffer("W", (*lead, n // bo, k // bi, bo, bi), in_dtype)
    c = Buffer("C", (*lead, m // bn, n // bo, bn, bo), acc_dtype)
    sp = ([("g", batches)] if batches else []) + [("i0", m // bn), ("j0", n // bo), ("i1", bn), ("j1", bo)]
    rd = [("k0", k // bi), ("k1", bi)]
    loops = [(Var(name), size) for name, size in sp + rd]
    ivs = [IterVar(Var(f"v{name}"), IntImm(size), "S") for name, size in sp] + \
          [IterVar(Var(f"v{name}"), IntImm(size), "R") for name, size in rd]
    vs = [iv.var for iv in ivs]
    g = tuple(vs[:1]) if batches else ()
    i0, j0, i1, j1, k0, k1 = vs[len(g):]
    store = (*g, i0, j0, i1, j1)
    block = Block(
        "dense", tuple(ivs),
        reads=(c[store], a[(*g, i0, k0, i1, k1)], w[(*g, j0, k0, j1, k1)]),  # type: ignore[index]
        writes=(c[store],),  # type: ignore[index]
        init=BufferStore(c, IntImm(0), store),
        body=BufferStore(c, c[store] + Cast(acc_dtype, a[(*g, i0, k0, i1, k1)]) *  # type: ignore[index,operator]
                         Cast(acc_dtype, w[(*g, j0, k0, j1, k1)]), store),  # type: ignore[index]
    )
    name = "batch_matmul" if batches else "dense"
    return PrimFunc(name, (a, w, c), _nest(loops, BlockRealize(tuple(v for v, _ in loops), IntImm(1), block)))


_RANGES = {"int8": (-128, 127), "int16": (-(1 << 15), (1 << 15) - 1), "int4": (-8, 7)}


@dataclass(frozen=True)
class Epilogue:
    """The elementwise steps after accumulation, in this order: add a per-channel int32
    ``bias``; requantize, ``(x · multiplier + 2^(shift-1)) >> shift`` (the rounding add only
    when ``shift > 0``; ``multiplier = 1`` is the pure power-of-two mode); add
    ``zero_point``; ReLU (clip at the zero point from below); clip to ``out_dtype``'s range
    and narrow. Each step wraps to 32 bits like the accelerator's ALU.

    Shifts up to 31 are allowed: past 15 (where the rounding constant no longer fits the
    ALU's 16-bit immediate) the shift runs in two steps, a floor shift by ``shift - 15``,
    then the rounding add of 2^14 and a shift by 15 (rounding the floor-shifted value;
    `reference` computes exactly this)."""

    bias: bool = False
    multiplier: int = 1
    shift: int = 0
    zero_point: int = 0
    relu: bool = False
    out_dtype: str = "int8"
    per_channel: bool = False  # the multiplier is per output channel (a ``Mult`` parameter), not ``multiplier``

    def __post_init__(self) -> None:
        if not IMM_MIN <= self.multiplier <= IMM_MAX:
            raise ValueError(f"epilogue: multiplier {self.multiplier} does not fit the ALU's signed {IMM_BITS}-bit "
                             "immediate")
        if not 0 <= self.shift <= 31:
            raise ValueError(f"epilogue: shift {self.shift} is outside 0..31")
        if self.out_dtype not in (*_RANGES, "int32"):
            raise ValueError(f"epilogue: out_dtype {self.out_dtype!r} is not one of {', '.join((*_RANGES, 'int32'))}")
        lo, hi = _RANGES.get(self.out_dtype, (IMM_MIN, IMM_MAX))
        if not lo <= self.zero_point <= hi:
            raise ValueError(f"epilogue: zero point {self.zero_point} is outside {self.out_dtype}'s range")

    @property
    def _steps(self) -> tuple[int, int]:
        """(floor pre-shift, rounding shift)."""
        return (self.shift - ROUND_SHIFT, ROUND_SHIFT) if self.shift > ROUND_SHIFT else (0, self.shift)

    def expr(self, x: Expr, bias: Expr | None, acc_dtype: str = "int32", mult: Expr | None = None) -> Expr:
        """The epilogue applied to accumulator value ``x``; ``bias`` is its channel's
        *folded* bias (`fold_bias`), which carries the multiplier (and, for shifts up to 15,
        the rounding constant), so the accelerator runs one operation fewer:
        ``(x·m + (b·m + 2^(s-1))) >> s`` equals ``((x + b)·m + 2^(s-1)) >> s`` in 32-bit
        wrapping arithmetic."""
        pre, rnd = self._steps
        if self.per_channel:
            if mult is None:
                raise ValueError("epilogue: a per-channel multiplier needs the multiplier value")
            x = Cast(acc_dtype, x * mult)
        elif self.multiplier != 1:
            x = Cast(acc_dtype, x * self.multiplier)
        if self.bias:
            if bias is None:
                raise ValueError("epilogue: a bias step needs the bias value")
            x = Cast(acc_dtype, x + bias)
        if pre:
            x = FloorDiv(x, IntImm(1 << pre))
        if rnd and (pre or not self.bias):
            x = Cast(acc_dtype, x + (1 << (rnd - 1)))
        if rnd:
            x = FloorDiv(x, IntImm(1 << rnd))
        if self.zero_point:
            x = Cast(acc_dtype, x + self.zero_point)
        lo, hi = _RANGES.get(self.out_dtype, (None, None))
        if self.relu:
            lo = self.zero_point if lo is None else max(lo, self.zero_point)
        if lo is not None:
            x = max_(x, lo)
        if hi is not None:
            x = min_(x, hi)
        return Cast(self.out_dtype, x)

    def fold_bias(self, bias: np.ndarray, mult: np.ndarray | None = None) -> np.ndarray:
        """The int32 values the kernel's ``Bias`` parameter holds: ``b·m`` (``mult``: the
        per-channel multipliers) plus the rounding constant ``2^(shift-1)`` when the shift is
        one step, wrapped."""
        pre, rnd = self._steps
        m = mult.astype(np.int64) if self.per_channel and mult is not None else self.multiplier
        v = bias.astype(np.int64) * m + ((1 << (rnd - 1)) if rnd and not pre else 0)
        return (((v + (1 << 31)) % (1 << 32)) - (1 << 31)).astype(np.int32)

    def reference(self, acc: np.ndarray, bias: np.ndarray | None = None, mult: np.ndarray | None = None) -> np.ndarray:
        """The same recipe in numpy on int64 values (``bias`` raw and ``mult`` per channel, each
        broadcasting against ``acc``)."""
        def wrap(v: np.ndarray) -> np.ndarray:
            return ((v + (1 << 31)) % (1 << 32)) - (1 << 31)

        pre, rnd = self._steps
        x = acc.astype(np.int64)
        if self.bias:
            x = wrap(x + bias)
        if self.per_channel:
            x = wrap(x * mult)
        elif self.multiplier != 1:
            x = wrap(x * self.multiplier)
        if pre:
            x = x >> pre
        if rnd:
            x = wrap(x + (1 << (rnd - 1))) >> rnd
        if self.zero_point:
            x = wrap(x + self.zero_point)
        lo, hi = _RANGES.get(self.out_dtype, (None, None))
        if self.relu:
            lo = self.zero_point if lo is None else max(lo, self.zero_point)
        if lo is not None:
            x = np.maximum(x, lo)
        if hi is not None:
            x = np.minimum(x, hi)
        return x.astype({"int8": np.int8, "int16": np.int16, "int4": np.int8, "int32": np.int32}[self.out_dtype])


def with_epilogue(func: PrimFunc, epilogue: Epilogue, channel_dim: int = 1) -> PrimFunc:
    """``func`` (last parameter: its int32 output in a blocked layout ``(..., bn, bo)``)
    followed by ``epilogue``: the output becomes an intermediate ``Acc``; new parameters are
    ``Bias[C // bo, bn, bo]`` (when the epilogue has a bias: the values of
    `Epilogue.fold_bias`, the same for each batch row), ``Mult`` of the same shape (per-channel
    multipliers) and the result ``Q``.
    ``channel_dim`` is the output dimension that counts channel blocks."""
    out = func.params[-1]
    acc = Buffer("Acc", out.shape, out.dtype)
    q = Buffer("Q", out.shape, epilogue.out_dtype)
    body = _rename_param(func.body, out, acc)
    ivs = [IterVar(Var(f"v{d}"), out.shape[d]) for d in range(out.ndim)]
    vs = tuple(iv.var for iv in ivs)
    params = list(func.params[:-1])
    reads = [acc[vs]]
    channel_vectors = {}
    for name, wanted in (("Bias", epilogue.bias), ("Mult", epilogue.per_channel)):
        if wanted:
            vec = Buffer(name, (out.shape[channel_dim], out.shape[-2], out.shape[-1]), out.dtype)
            channel_vectors[name] = vec[vs[channel_dim], vs[-2], vs[-1]]
            params.append(vec)
            reads.append(channel_vectors[name])
    value = epilogue.expr(acc[vs], channel_vectors.get("Bias"), out.dtype, channel_vectors.get("Mult"))  # type: ignore[arg-type]
    blk = Block("epilogue", tuple(ivs), reads=tuple(reads), writes=(q[vs],),  # type: ignore[arg-type]
                body=BufferStore(q, value, vs))  # type: ignore[arg-type]
    loops = [(Var(f"e{d}"), out.shape[d].value) for d in range(out.ndim)]  # type: ignore[attr-defined]
    stage = _nest(loops, BlockRealize(tuple(v for v, _ in loops), IntImm(1), blk))
    return dataclasses.replace(func, params=(*params, q), body=seq(body, stage), allocs=(*func.allocs, acc))


def _rename_param(s: Stmt, old: Buffer, new: Buffer) -> Stmt:
    from .schedule import _rename_buffer
    from .transform import replace_stmt

    return replace_stmt(s, lambda x: _rename_buffer(x, old, new, True, True) if isinstance(x, Block) else None)


def elementwise_packed(op: str, shape: tuple[int, ...], dtype: str = "int32") -> PrimFunc:
    """``C = A op B`` (``op``: add, multiply, min, max) on tensors of ``shape`` in the
    accumulator layout (innermost two dimensions: batch, block_out), wrapping to ``dtype``."""
    fns = {"add": lambda a, b: Cast(dtype, a + b), "multiply": lambda a, b: Cast(dtype, a * b), "min": min_,
           "max": max_}
    if op not in fns:
        raise ValueError(f"elementwise_packed: op {op!r} is not one of {', '.join(fns)}")
    a, b, c = (Buffer(n, shape, dtype) for n in "ABC")
    ivs = [IterVar(Var(f"v{d}"), IntImm(n)) for d, n in enumerate(shape)]
    vs = tuple(iv.var for iv in ivs)
    blk = Block(op, tuple(ivs), reads=(a[vs], b[vs]), writes=(c[vs],),  # type: ignore[arg-type]
                body=BufferStore(c, fns[op](a[vs], b[vs]), vs))  # type: ignore[arg-type]
    loops = [(Var(f"i{d}"), n) for d, n in enumerate(shape)]
    return PrimFunc(op, (a, b, c), _nest(loops, BlockRealize(tuple(v for v, _ in loops), IntImm(1), blk)))
