"""Numpy references and layout packing for the accelerator's operators: the oracle the
compiled kernels are compared with bit for bit."""

from __future__ import annotations

import numpy as np


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


def conv2d_nchw(x: np.ndarray, w: np.ndarray, stride: int = 1, pad: int = 0, groups: int = 1) -> np.ndarray:
    """``x`` NCHW, ``w`` OIHW (I: channels per group) to NCHW, exact in int64."""
    n, c, h, wd = x.shape
    o, cg, k, _ = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
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
