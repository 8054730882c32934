"""Operator definitions as loop-IR functions: dense, and conv2d in the packed layout (more to come)."""

from __future__ import annotations

from .expr import IntImm, Var, and_, select
from .simplify import simplify
from .stmt import Block, BlockRealize, Buffer, BufferStore, Cast, For, IterVar, PrimFunc, Stmt


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
                  acc_dtype: str = "int32") -> PrimFunc:
    """2-D convolution in the accelerator's packed layout, ``blocks = (bn, bi, bo)``
    (batch, block_in, block_out of a config):

    - data ``D[n // bn, c // bi, y, x, n % bn, c % bi]``;
    - weights ``Wt[o // bo, c_g // bi, ky, kx, o % bo, c_g % bi]`` (c_g: channel within the group);
    - output ``Out[n // bn, o // bo, oy, ox, n % bn, o % bo]``.

    Padding reads as 0. Each group's input and output channels must be whole blocks.
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
    sp = [("n0", batch // bn), ("o0", out_ch // bo), ("y", oh), ("x", ow), ("n1", bn), ("o1", bo)]
    rd = [("c0", cin_g // bi), ("ky", kernel), ("kx", kernel), ("c1", bi)]
    loops = [(Var(name), n) for name, n in sp + rd]
    ivs = [IterVar(Var(f"v{name}"), IntImm(n), "S") for name, n in sp] + \
          [IterVar(Var(f"v{name}"), IntImm(n), "R") for name, n in rd]
    n0, o0, y, x, n1, o1, c0, ky, kx, c1 = (iv.var for iv in ivs)
    cblk = o0 // (cout_g // bo) * (cin_g // bi) + c0 if groups > 1 else c0
    iy, ix = simplify(y * stride + ky - pad), simplify(x * stride + kx - pad)
    inside = and_(and_(iy >= 0, iy < h), and_(ix >= 0, ix < w)) if pad else IntImm(1)
    value = select(inside, Cast(acc_dtype, d[n0, cblk, iy, ix, n1, c1]), 0) if pad else \
        Cast(acc_dtype, d[n0, cblk, iy, ix, n1, c1])  # type: ignore[index]
    store = (n0, o0, y, x, n1, o1)
    block = Block(
        "conv2d", tuple(ivs),
        reads=(out[store], d[n0, cblk, iy, ix, n1, c1], wt[o0, c0, ky, kx, o1, c1]),  # type: ignore[index]
        writes=(out[store],),  # type: ignore[index]
        init=BufferStore(out, IntImm(0), store),
        body=BufferStore(out, out[store] + value * Cast(acc_dtype, wt[o0, c0, ky, kx, o1, c1]), store),  # type: ignore[index,operator]
    )
    return PrimFunc("conv2d", (d, wt, out),
                    _nest(loops, BlockRealize(tuple(v for v, _ in loops), IntImm(1), block)))
