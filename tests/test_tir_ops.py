"""Operator definitions run by the reference interpreter against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler.tir import run
from vta.compiler.tir.ops import conv2d_packed


def _conv_ref(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """NCHW x OIHW (I = channels per group) -> NCHW, int64."""
    n, c, h, wd = x.shape
    o, cg, k, _ = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    og = o // groups
    for oc in range(o):
        g = oc // og
        for y in range(oh):
            for xx in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg, y * stride:y * stride + k, xx * stride:xx * stride + k]
                out[:, oc, y, xx] = (patch * w[oc].astype(np.int64)).sum(axis=(1, 2, 3))
    return out


def _pack(x: np.ndarray, b0: int, b1: int) -> np.ndarray:
    """(A, B, ...) -> (A // b0, B // b1, ..., b0, b1)."""
    a, b, *rest = x.shape
    y = x.reshape(a // b0, b0, b // b1, b1, *rest)
    return np.moveaxis(np.moveaxis(y, 1, -1), 2, -1)


@pytest.mark.parametrize("stride,pad,groups,blocks", [
    (1, 1, 1, (1, 2, 2)), (2, 1, 1, (1, 2, 2)), (1, 0, 2, (1, 2, 2)), (2, 2, 1, (2, 2, 4)),
    (1, 1, 4, (1, 1, 1)),  # depthwise, with unit blocks
])
def test_conv2d_packed_matches_numpy(stride: int, pad: int, groups: int, blocks: tuple[int, int, int]) -> None:
    bn, bi, bo = blocks
    n, c, h, w, o, k = 2, 4, 5, 6, 4, 3
    rng = np.random.default_rng(stride * 10 + pad + groups)
    x = rng.integers(-128, 128, (n, c, h, w)).astype(np.int8)
    wt = rng.integers(-128, 128, (o, c // groups, k, k)).astype(np.int8)
    f = conv2d_packed(n, c, h, w, o, k, stride, pad, groups, blocks)
    ref = _conv_ref(x, wt, stride, pad, groups)
    xd = np.ascontiguousarray(_pack(x, bn, bi))                       # (n/bn, c/bi, h, w, bn, bi)
    wd = np.ascontiguousarray(_pack(wt, bo, bi))                      # (o/bo, cg/bi, k, k, bo, bi)
    out = np.zeros(tuple(d.value for d in f.params[2].shape), np.int32)  # type: ignore[attr-defined]
    run(f, xd, wd, out)
    assert np.array_equal(out, _pack(ref, bn, bo).astype(np.int32))


def test_conv2d_packed_errors() -> None:
    with pytest.raises(ValueError, match="input channels 6 is not a multiple of the block 4"):
        conv2d_packed(1, 6, 5, 5, 8, 3, blocks=(1, 4, 4))
    with pytest.raises(ValueError, match="a group has 2 input and 2 output channels, not whole blocks of 4 and 4"):
        conv2d_packed(1, 8, 5, 5, 8, 3, groups=4, blocks=(1, 4, 4))
    with pytest.raises(ValueError, match="a 7x7 kernel does not fit a padded 5x5 input"):
        conv2d_packed(1, 4, 5, 5, 4, 7, blocks=(1, 4, 4))
