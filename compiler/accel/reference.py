"""Numpy references and layout packing for the accelerator's operators: the oracle the
compiled kernels are compared with bit for bit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vta.compiler.tir.ops import Epilogue
    from vta.isa import Config

    from .schedules import Conv2d, Dense


def pack(x: np.ndarray, b0: int, b1: int) -> np.ndarray:
    """``(A, B, ...)`` to the blocked layout ``(A // b0, B // b1, ..., b0, b1)``."""
    a, b, *rest = x.shape
    y = x.reshape(a // b0, b0, b // b1, b1, *rest)
    return np.ascontiguousarray(np.moveaxis(np.moveaxis(y, 1, -1), 2, -1))


def unpack(y: np.ndarray) -> np.ndarray:
    """The inverse of `pack`."""
    y = np.moveaxis(np.moveaxis(y, -1, 2), -1, 1)
    a0, b0, b1, b2, *rest = y.shape
    return np.ascontiguousarray(y.reshape(a0 * b0, b1 * b2, *rest))


def conv2d_nchw(x: np.ndarray, w: np.ndarray, stride: int = 1, pad: int = 0, groups: int = 1,
                pad_value: int = 0) -> np.ndarray:
    """``x`` NCHW, ``w`` OIHW (I: channels per group) to NCHW, exact in int64; the border reads ``pad_value``."""
    n, _, h, wd = x.shape
    o, cg, k, _ = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=pad_value)
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow), np.int64)
    for g in range(groups):
        wg = w[g * og:(g + 1) * og].astype(np.int64).reshape(og, -1)
        cols = np.empty((n, cg * k * k, oh * ow), np.int64)
        xg = xp[:, g * cg:(g + 1) * cg]
        i = 0
        for ci in range(cg):
            for ky in range(k):
                for kx in range(k):
                    cols[:, i] = xg[:, ci, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride].reshape(n, -1)
                    i += 1
        out[:, g * og:(g + 1) * og] = np.einsum("ok,nkp->nop", wg, cols).reshape(n, og, oh, ow)
    return out


def wrap32(x: np.ndarray) -> np.ndarray:
    return (((x.astype(np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)).astype(np.int32)


def operands(wl: Conv2d | Dense, cfg: Config, epilogue: Epilogue | None, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Random packed inputs of ``wl`` (in the compiled kernel's parameter order, the bias
    folded by the epilogue) and the expected packed output, from the numpy reference."""
    from .schedules import Conv2d

    rng = np.random.default_rng(seed)
    bn, bi, bo = cfg.batch, cfg.block_in, cfg.block_out
    if isinstance(wl, Conv2d):
        x = rng.integers(-128, 128, (wl.batch, wl.in_ch, wl.h, wl.w))
        w = rng.integers(-128, 128, (wl.out_ch, wl.in_ch // wl.groups, wl.kernel, wl.kernel))
        acc = wrap32(conv2d_nchw(x, w, wl.stride, wl.pad, wl.groups, wl.pad_value))
        ins = [pack(x, bn, bi).astype(np.int8), pack(w, bo, bi).astype(np.int8)]
        channels = wl.out_ch
    else:
        g = (wl.batches,) if wl.batches else ()
        a = rng.integers(-128, 128, (*g, wl.m, wl.k))
        w = rng.integers(-128, 128, (*g, wl.n, wl.k))
        acc = wrap32(np.einsum("...mk,...nk->...mn", a, w))
        if wl.batches:
            ins = [np.stack([pack(a[i], bn, bi) for i in range(wl.batches)]).astype(np.int8),
                   np.stack([pack(w[i], bo, bi) for i in range(wl.batches)]).astype(np.int8)]
        else:
            ins = [pack(a, bn, bi).astype(np.int8), pack(w, bo, bi).astype(np.int8)]
        channels = wl.n
    bias = mult = None
    if epilogue is not None and epilogue.per_channel:
        mult = rng.integers(1, 400, channels)
    if epilogue is not None and epilogue.bias:
        bias = rng.integers(-5000, 5000, channels)
        packed_bias = np.repeat(epilogue.fold_bias(bias, mult).reshape(channels // bo, 1, bo), bn, axis=1)
        ins.append(packed_bias)
    if mult is not None:
        ins.append(np.repeat(mult.astype(np.int32).reshape(channels // bo, 1, bo), bn, axis=1))
    if isinstance(wl, Conv2d):
        col = (lambda v: None if v is None else v[None, :, None, None])
        expect = acc if epilogue is None else epilogue.reference(acc, col(bias), col(mult))
        out = pack(expect, bn, bo)
    else:
        expect = acc if epilogue is None else epilogue.reference(acc, bias, mult)
        out = np.stack([pack(expect[i], bn, bo) for i in range(wl.batches)]) if wl.batches else pack(expect, bn, bo)
    return ins, out
