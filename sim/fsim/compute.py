"""GEMM and ALU: the two-level affine uop loop, vectorized over all its micro-op
executions with numpy, with results identical to running them in order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.isa import AluOp, Config, Insn, MemType
from vta.isa.values import wrap

from ..errors import BoundsError
from .state import Scratchpads


@dataclass
class UopTrace:
    """Buffer indices touched by each micro-op execution, in execution order."""

    dst: np.ndarray
    src: np.ndarray
    wgt: np.ndarray | None


def loop_indices(insn: Insn, pads: Scratchpads, gemm: bool) -> UopTrace:
    """Indices of every micro-op execution: for i < iter_out, j < iter_in, u in [uop_bgn, uop_end)."""
    u = slice(insn.uop_bgn, insn.uop_end)
    i = np.arange(insn.iter_out, dtype=np.int64)[:, None, None]
    j = np.arange(insn.iter_in, dtype=np.int64)[None, :, None]

    def index(row: int, f_out: int, f_in: int) -> np.ndarray:
        return (pads.uop[row, u][None, None, :] + i * f_out + j * f_in).reshape(-1)

    dst = index(0, insn.dst_factor_out, insn.dst_factor_in)
    src = index(1, insn.src_factor_out, insn.src_factor_in)
    wgt = index(2, insn.wgt_factor_out, insn.wgt_factor_in) if gemm else None
    return UopTrace(dst, src, wgt)


def _check(idx: np.ndarray, depth: int, insn: Insn, index: int, what: str, mem: MemType) -> None:
    if idx.size and int(idx.max()) >= depth:
        n = int(np.argmax(idx >= depth))
        uops = insn.uop_end - insn.uop_bgn
        it, u = divmod(n, uops)
        i, j = divmod(it, insn.iter_in)
        raise BoundsError(
            f"{insn.opcode.name} micro-op {insn.uop_bgn + u} at iteration ({i}, {j}) {what} {mem.name} entry "
            f"{int(idx[n])}, past the buffer ({depth} entries)", index)


def _exact_float(config: Config) -> type:
    """A float type in which every GEMM dot product of this config is exact."""
    bound = config.block_in << (config.inp_width + config.wgt_width - 2)
    return np.float32 if bound < (1 << 24) else np.float64


def exec_gemm(insn: Insn, index: int, pads: Scratchpads, config: Config) -> UopTrace:
    """acc[dst] += inp[src] · wgt[wgt]ᵀ for every micro-op execution (or acc[dst] = 0 with reset)."""
    t = loop_indices(insn, pads, gemm=True)
    assert t.wgt is not None
    _check(t.dst, config.acc_depth, insn, index, "writes", MemType.ACC)
    if insn.reset:
        pads.acc[t.dst] = 0
        return t
    _check(t.src, config.inp_depth, insn, index, "reads", MemType.INP)
    _check(t.wgt, config.wgt_depth, insn, index, "reads", MemType.WGT)
    if t.dst.size:
        _accumulate(pads, config, t, insn.uop_end - insn.uop_bgn)
    return t


def _accumulate(pads: Scratchpads, config: Config, t: UopTrace, uops_per_iter: int) -> None:
    n = t.dst.size
    b, o = config.batch, config.block_out
    products = _products(pads, config, t)  # (n, batch, block_out), exact, in execution order
    dst = t.dst
    u = uops_per_iter
    if u > 1 and (dst.reshape(-1, u) == dst[::u, None]).all():
        # Every micro-op of an iteration writes the same entry (the reduction runs along the
        # micro-ops): sum each iteration's products first, exactly, in float64.
        products = products.reshape(-1, u, b, o).sum(axis=1, dtype=np.float64)
        dst = dst[::u]
    _add(pads, dst, products)


def _products(pads: Scratchpads, config: Config, t: UopTrace) -> np.ndarray:
    """inp[src] · wgt[wgt]ᵀ for every execution, as exact floats."""
    ft = _exact_float(config)
    n = t.dst.size
    b, k, o = config.batch, config.block_in, config.block_out
    order = np.argsort(t.wgt, kind="stable")
    sw = t.wgt[order]
    starts = np.flatnonzero(np.r_[True, sw[1:] != sw[:-1]])
    if len(starts) * 4 > n:  # few executions share a weight tile: one small product each
        a = pads.inp[t.src].astype(ft)
        return np.matmul(a, pads.wgt[t.wgt].astype(ft).transpose(0, 2, 1))
    # Group executions by weight tile and multiply each group's inputs by its tile with BLAS;
    # equal-size groups (the usual case for affine loops) go in one batched matmul.
    w = pads.wgt[sw[starts]].astype(ft).transpose(0, 2, 1)  # (W, block_in, block_out)
    counts = np.diff(np.r_[starts, n])
    out = np.empty((n, b, o), ft)
    if (counts == counts[0]).all():
        a = pads.inp[t.src[order]].astype(ft).reshape(len(starts), -1, k)
        out[order] = np.matmul(a, w).reshape(n, b, o)
        return out
    for g, (s0, c) in enumerate(zip(starts.tolist(), counts.tolist())):
        rows = order[s0 : s0 + c]
        out[rows] = (pads.inp[t.src[rows]].astype(ft).reshape(-1, k) @ w[g]).reshape(c, b, o)
    return out


def _add(pads: Scratchpads, dst: np.ndarray, products: np.ndarray) -> None:
    """acc[dst] += products, wrapping at the accumulator width, with repeated dst summed."""
    acc = pads.acc
    if np.bincount(dst).max() <= 1:
        acc[dst] = (acc[dst] + products.astype(np.int64)).astype(acc.dtype)
        return
    order = np.argsort(dst, kind="stable")
    d = dst[order]
    starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
    sums = np.add.reduceat(products[order].astype(np.int64), starts, axis=0)
    acc[d[starts]] = (acc[d[starts]] + sums).astype(acc.dtype)


def _alu_apply(op: AluOp, a: np.ndarray, b: np.ndarray | int, width: int) -> np.ndarray:
    if op == AluOp.MIN:
        return np.minimum(a, b)
    if op == AluOp.MAX:
        return np.maximum(a, b)
    if op == AluOp.ADD:
        return wrap(a + b, width)
    if op == AluOp.MUL:
        return wrap(a * b, width)
    if op == AluOp.MOV:
        return np.broadcast_to(b, a.shape)
    # SHR: arithmetic right shift by b (at most width-1); a negative b shifts left by -b (width or more gives 0).
    b = np.asarray(b, np.int64)
    right = a >> np.clip(b, 0, width - 1)
    left = wrap(a << np.clip(-b, 0, width), width)
    return np.where(b >= 0, right, left)


def _sequential_chunks(dst: np.ndarray, src: np.ndarray | None) -> list[tuple[int, int]]:
    """Split micro-op executions into runs where none reads or rewrites an entry written earlier in its run."""
    chunks, start, written = [], 0, set()
    d, s = dst.tolist(), (src.tolist() if src is not None else None)
    for n in range(len(d)):
        if d[n] in written or (s is not None and s[n] in written):
            chunks.append((start, n))
            start, written = n, set()
        written.add(d[n])
    chunks.append((start, len(d)))
    return chunks


def exec_alu(insn: Insn, index: int, pads: Scratchpads, config: Config) -> UopTrace:
    """acc[dst] = op(acc[dst], imm or acc[src]) for every micro-op execution, in order."""
    t = loop_indices(insn, pads, gemm=False)
    depth = config.acc_depth
    _check(t.dst, depth, insn, index, "writes", MemType.ACC)
    if not insn.use_imm:
        _check(t.src, depth, insn, index, "reads", MemType.ACC)
    n = t.dst.size
    if not n:
        return t
    src = None if insn.use_imm else t.src
    hazard = np.bincount(t.dst).max() > 1
    if not hazard and src is not None:
        pos = np.full(depth, n, np.int64)
        pos[t.dst] = np.arange(n)
        hazard = bool(np.any(pos[src] < np.arange(n)))
    chunks = _sequential_chunks(t.dst, src) if hazard else [(0, n)]
    op = AluOp(insn.alu_op)
    acc = pads.acc
    for s, e in chunks:
        d = t.dst[s:e]
        a = acc[d].astype(np.int64)
        b = insn.imm if src is None else acc[src[s:e]].astype(np.int64)
        acc[d] = _alu_apply(op, a, b, config.acc_width).astype(acc.dtype)
    return t
