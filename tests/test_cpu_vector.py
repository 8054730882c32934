"""Vectorized loops emitted as LLVM vectors by the CPU code generator (`compiler.cpu.lanes`):
every kind of access and expression inside such a loop against the reference interpreter,
lane counts that are not a power of two, and the loops it leaves scalar."""

from __future__ import annotations

import numpy as np
import pytest
from vta.compiler.cpu import compile_cpu
from vta.compiler.cpu.lanes import lane_chunks, vector_lanes
from vta.compiler.tir import run
from vta.compiler.tir.expr import FloorDiv, FloorMod, IntImm, Max, Min, and_, select
from vta.compiler.tir.scalar import FloatImm, call
from vta.compiler.tir.schedule import Schedule
from vta.compiler.tir.stmt import Cast, For
from vta.compiler.tir.te import FuncBuilder
from vta.compiler.tir.transform import walk_stmt


def _vectorize_inner(f):  # type: ignore[no-untyped-def]
    sch = Schedule(f)
    for blk in [s.name for s in walk_stmt(f.body) if type(s).__name__ == "Block"]:
        sch.vectorize(sch.get_loops(sch.get_block(blk))[-1])
    return sch.func


def _check(f, arrays) -> str:  # type: ignore[no-untyped-def]
    """Run ``f`` compiled and interpreted on copies of ``arrays`` (integers exactly, floats to
    rounding: the interpreter computes in double); return the generated IR."""
    kern = compile_cpu(f)
    got = [a.copy() for a in arrays]
    ref = [a.copy() for a in arrays]
    kern(*got)
    run(f, *ref)
    for g, r in zip(got, ref):
        if g.dtype.kind != "f":
            assert np.array_equal(g, r), (g, r)
        else:
            np.testing.assert_allclose(g, r, rtol=2e-6, atol=1e-6)
    return kern.llvm_ir


@pytest.mark.parametrize("n", [16, 28, 7])
def test_accesses_of_every_kind(n: int) -> None:
    """Contiguous, lane-invariant (broadcast), strided (a transposed read) and gathered
    (through an index buffer) loads; contiguous and strided stores."""
    rows = 5
    fb = FuncBuilder("acc")
    a = fb.input("A", (rows, n), "float32")
    t = fb.input("T", (n, rows), "float32")
    s = fb.input("S", (rows,), "float32")
    idx = fb.input("I", (n,), "int32")
    y = fb.compute("Y", (rows, n), "float32",
                   lambda i, j: a[i, j] * s[i] + t[j, i] - a[i, idx[j]] + a[i, FloorDiv(j, IntImm(2))])
    z = fb.compute("Z", (n, rows), "float32", lambda j, i: a[i, j] + FloatImm(1.0))
    f = fb.build([y, z])
    sch = Schedule(f)
    sch.vectorize(sch.get_loops(sch.get_block("Y"))[-1])
    sch.vectorize(sch.get_loops(sch.get_block("Z"))[-1])  # lanes along i: a strided store
    rng = np.random.default_rng(n)
    arrays = [rng.standard_normal((rows, n)).astype(np.float32), rng.standard_normal((n, rows)).astype(np.float32),
              rng.standard_normal(rows).astype(np.float32), rng.integers(0, n, n).astype(np.int32),
              np.zeros((rows, n), np.float32), np.zeros((n, rows), np.float32)]
    ir_text = _check(sch.func, arrays)
    widths = {w for _, w in lane_chunks(n) if w > 1}
    assert all(f"<{w} x float>" in ir_text for w in widths)


def test_arithmetic_casts_and_calls() -> None:
    """Integer floor division and remainder by the lane, comparisons, selects without loads,
    min/max, int8 and bool buffers, inline exp and a per-lane library call (erf)."""
    n = 24
    fb = FuncBuilder("ar")
    x = fb.input("X", (2, n), "float32")
    q = fb.input("Q", (2, n), "int8")
    m = fb.input("M", (2, n), "bool")
    y = fb.compute("Y", (2, n), "float32", lambda i, j: select(
        and_(m[i, j], x[i, j] > FloatImm(0.0)),
        call("exp", Min(x[i, j], FloatImm(3.0))) + Cast("float32", q[i, j]),
        call("erf", Max(x[i, j], FloatImm(-2.0)))))
    k = fb.compute("K", (2, n), "int32", lambda i, j: FloorDiv(Cast("int32", q[i, j]) - j, IntImm(3)) +
                   FloorMod(j * 5 + i, IntImm(7)))
    b = fb.compute("B", (2, n), "bool", lambda i, j: and_(m[i, j], q[i, j] > IntImm(0)))
    f = _vectorize_inner(fb.build([y, k, b]))
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((2, n)).astype(np.float32) * 2, rng.integers(-128, 128, (2, n)).astype(np.int8),
              rng.integers(0, 2, (2, n)).astype(bool), np.zeros((2, n), np.float32), np.zeros((2, n), np.int32),
              np.zeros((2, n), bool)]
    ir_text = _check(f, arrays)
    assert "<16 x float>" in ir_text and "<8 x i32>" in ir_text


def test_selects_read_only_the_lanes_that_take_the_branch() -> None:
    """A padding select (reads out of bounds in the lanes that do not take it) and a gather
    through indices that are wild in those lanes: vector code with a masked load and a
    masked gather; an unmasked read of index 2**30 would fault."""
    n = 12
    fb = FuncBuilder("pad")
    x = fb.input("X", (n,), "float32")
    idx = fb.input("I", (n + 4,), "int32")
    y = fb.compute("Y", (n + 4,), "float32",
                   lambda j: select(and_(j >= 2, j < n + 2), x[j - 2], FloatImm(-1.0)))
    z = fb.compute("Z", (n + 4,), "float32",
                   lambda j: select(idx[j] < IntImm(n), x[Max(idx[j], IntImm(0))], FloatImm(0.5)))
    f = _vectorize_inner(fb.build([y, z]))
    loop = next(s for s in walk_stmt(f.body) if isinstance(s, For) and s.kind == "vectorized")
    assert vector_lanes(loop) == n + 4
    xs = np.arange(n, dtype=np.float32)
    ids = np.array([3, 1 << 30, 0, 11, -5, 1 << 30, 7, 2, 1 << 29, 4, 4, 12, 9, 1, 1 << 30, 6], np.int32)
    ir_text = _check(f, [xs, ids, np.zeros(n + 4, np.float32), np.zeros(n + 4, np.float32)])
    assert "llvm.masked.load" in ir_text and "llvm.masked.gather" in ir_text


def test_split_tail_is_masked_and_nested_loops_stay_scalar() -> None:
    """The tail of a split that does not divide (20 as 2 x 16, guarded) is a masked block:
    masked loads and stores. A vectorized loop with a loop inside stays a scalar loop."""
    fb = FuncBuilder("tail")
    x = fb.input("X", (20,), "float32")
    y = fb.compute("Y", (20,), "float32", lambda j: x[j] * FloatImm(2.0))
    sch = Schedule(fb.build([y]))
    _, inner = sch.split(sch.get_loops(sch.get_block("Y"))[0], [None, 16])
    sch.vectorize(inner)
    loop = next(s for s in walk_stmt(sch.func.body) if isinstance(s, For) and s.kind == "vectorized")
    assert vector_lanes(loop) == 16
    xs = np.arange(20, dtype=np.float32)
    ir_text = _check(sch.func, [xs, np.zeros(20, np.float32)])
    assert "llvm.masked.store" in ir_text and "llvm.masked.load" in ir_text

    fb = FuncBuilder("nest")
    x2 = fb.input("X", (6, 5), "float32")
    y2 = fb.compute("Y", (6, 5), "float32", lambda i, j: x2[i, j] + FloatImm(1.0))
    sch = Schedule(fb.build([y2]))
    sch.vectorize(sch.get_loops(sch.get_block("Y"))[0])
    loop = next(s for s in walk_stmt(sch.func.body) if isinstance(s, For) and s.kind == "vectorized")
    assert vector_lanes(loop) == 0
    _check(sch.func, [np.arange(30, dtype=np.float32).reshape(6, 5), np.zeros((6, 5), np.float32)])


def test_lane_chunks() -> None:
    assert lane_chunks(28) == [(0, 16), (16, 8), (24, 4)]
    assert lane_chunks(7) == [(0, 4), (4, 2), (6, 1)]
    assert lane_chunks(32) == [(0, 32)]


@pytest.mark.parametrize("step", [2, 3, 4])
def test_strided_loads_plain_and_masked(step: int) -> None:
    """Lanes a few elements apart: one contiguous masked load and a shuffle, with and without
    a select that keeps some lanes off (a stride-2 pooling window's left padding)."""
    n = 20
    fb = FuncBuilder("strided")
    x = fb.input("X", (step * n,), "float32")
    y = fb.compute("Y", (n,), "float32", lambda j: x[j * step] + x[j * step + (step - 1)])
    z = fb.compute("Z", (n,), "float32",
                   lambda j: select(j * step - 1 >= IntImm(0), x[j * step - 1],
                                    FloatImm(-7.0)))
    f = _vectorize_inner(fb.build([y, z]))
    xs = np.random.default_rng(step).standard_normal(step * n).astype(np.float32)
    ir_text = _check(f, [xs, np.zeros(n, np.float32), np.zeros(n, np.float32)])
    assert "llvm.masked.load" in ir_text and "shufflevector" in ir_text and "llvm.masked.gather" not in ir_text


@pytest.mark.parametrize("width", [7, 14, 28])
def test_register_tiles_with_masked_tails(width: int) -> None:
    """Convolutions whose output width is not a multiple of the vector length: the default
    schedule's tile (a masked tail where no divisor fills the registers) against numpy."""
    from vta.compiler.cpu.schedule import default_schedule
    from vta.compiler.tir import nn

    c = 24
    f = default_schedule(nn.conv2d((1, c, width, width), (c, c, 3, 3), "float32", pads=(1, 1, 1, 1), bias=True))
    rng = np.random.default_rng(width)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((1, c, width, width), (c, c, 3, 3), (c,)))
    y = np.zeros((1, c, width, width), np.float32)
    compile_cpu(f)(x, w, b, y)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = b[None, :, None, None] + sum(np.einsum("oi,nihw->nohw", w[:, :, i, j], xp[:, :, i:i + width, j:j + width])
                                       for i in range(3) for j in range(3))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
