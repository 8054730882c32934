"""Loop-IR buffers, statements and functions: construction checks, the printed form,
structural equality up to renaming, and the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler.tir import (
    Block, BlockRealize, Buffer, BufferStore, Cast, For, IntImm, IterVar, PrimFunc, Var, run, seq,
    structural_equal,
)
from vta.compiler.tir.ops import dense

DENSE_TEXT = """\
def dense(A: Buffer((4, 16), 'int8'), W: Buffer((6, 16), 'int8'), C: Buffer((4, 6), 'int32')):
    for i in range(4):
        for j in range(6):
            for k in range(16):
                with block("dense"):
                    vi = axis.spatial(4, i)
                    vj = axis.spatial(6, j)
                    vk = axis.reduce(16, k)
                    reads(C[vi, vj], A[vi, vk], W[vj, vk])
                    writes(C[vi, vj])
                    with init():
                        C[vi, vj] = 0
                    C[vi, vj] = C[vi, vj] + int32(A[vi, vk]) * int32(W[vj, vk])"""


def test_dense_prints_readably() -> None:
    assert str(dense(4, 6, 16)) == DENSE_TEXT


def test_dense_runs_like_numpy() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (4, 16)).astype(np.int8)
    w = rng.integers(-128, 128, (6, 16)).astype(np.int8)
    c = np.full((4, 6), 99, np.int32)  # init overwrites whatever was there
    run(dense(4, 6, 16), a, w, c)
    assert np.array_equal(c, a.astype(np.int32) @ w.astype(np.int32).T)


def test_stores_wrap_to_the_dtype() -> None:
    out = Buffer("O", (3,), "int8")
    i = Var("i")
    f = PrimFunc("f", (out,), For(i, IntImm(3), BufferStore(out, i * 100 + 27, (i,))))
    o = np.zeros(3, np.int8)
    run(f, o)
    assert o.tolist() == [27, 127, -29]  # 227 wraps to -29
    x = Buffer("X", (2,), "int32")
    g = PrimFunc("g", (x, out), For(i, IntImm(2), BufferStore(out, Cast("int8", x[i]) + 0, (i,))))
    xs = np.array([300, -129], np.int32)
    run(g, xs, o)
    assert o[:2].tolist() == [44, 127]


def test_structural_equality_up_to_renaming() -> None:
    assert structural_equal(dense(4, 6, 16), dense(4, 6, 16))  # fresh Vars and Buffers each time
    assert dense(4, 6, 16) != dense(4, 6, 16)                    # but not the same objects
    assert not structural_equal(dense(4, 6, 16), dense(4, 6, 8))
    assert not structural_equal(dense(4, 6, 16), dense(4, 6, 16, acc_dtype="int16"))
    i, j = Var("i"), Var("j")
    b = Buffer("B", (4,))
    # i + j and j + i are different functions of (i, j) once bound in order
    f1 = For(i, IntImm(4), For(j, IntImm(4), BufferStore(b, i, (j,))))
    f2 = For(i, IntImm(4), For(j, IntImm(4), BufferStore(b, j, (i,))))
    assert not structural_equal(f1, f2) and structural_equal(f1, f1)


def test_construction_errors_name_the_part() -> None:
    i, vi = Var("i"), Var("vi")
    b = Buffer("B", (4, 4))
    with pytest.raises(ValueError, match="buffer B: scope 'dram' is not one of global"):
        Buffer("B", (4,), scope="dram")
    with pytest.raises(ValueError, match="dtype 'int7' is not one of"):
        Buffer("B", (4,), "int7")
    with pytest.raises(ValueError, match="buffer B: dimension 1 has extent 0"):
        Buffer("B", (4, 0))
    with pytest.raises(IndexError, match="buffer B has 2 dimensions, indexed with 1"):
        b[i]
    with pytest.raises(IndexError, match="store to B: 1 indices for 2 dimensions"):
        BufferStore(b, IntImm(0), (i,))
    with pytest.raises(ValueError, match="loop i: kind 'fast' is not one of serial"):
        For(i, IntImm(4), BufferStore(b, IntImm(0), (i, i)), kind="fast")
    with pytest.raises(ValueError, match="loop i: a thread name goes with kind 'thread_binding' only"):
        For(i, IntImm(4), BufferStore(b, IntImm(0), (i, i)), thread="threadIdx.x")
    with pytest.raises(ValueError, match="block iterator vi: kind 'X'"):
        IterVar(vi, IntImm(4), "X")
    blk = Block("b", (IterVar(vi, IntImm(4)),), (), (b[vi, 0],), BufferStore(b, IntImm(0), (vi, IntImm(0))))
    with pytest.raises(ValueError, match="block b: 2 values for 1 iterators"):
        BlockRealize((i, i), IntImm(1), blk)
    with pytest.raises(ValueError, match="block b: an init part needs a reduction iterator"):
        Block("b", (IterVar(vi, IntImm(4)),), (), (), BufferStore(b, IntImm(0), (vi, vi)),
              init=BufferStore(b, IntImm(0), (vi, vi)))
    with pytest.raises(ValueError, match="buffer name\\(s\\) used twice: B"):
        PrimFunc("f", (b, Buffer("B", (2,))), blk)
    with pytest.raises(ValueError, match="f takes 1 buffers, got 0"):
        run(PrimFunc("f", (b,), blk))
    with pytest.raises(ValueError, match="buffer B has shape \\(4, 4\\), the array \\(3,\\)"):
        run(PrimFunc("f", (b,), blk), np.zeros(3))


def test_regions_and_sequences() -> None:
    b = Buffer("B", (8, 16), "int8", "inp")
    i = Var("i")
    r = b[0:4, i]
    assert str(r.region[0].extent) == "4" and str(r.region[1].min) == "i"
    assert str(b[2:, :].region[0].extent) == "6"
    s1, s2 = BufferStore(b, IntImm(1), (i, i)), BufferStore(b, IntImm(2), (i, i))
    assert seq(s1) is s1 and len(seq(seq(s1, s2), s1).stmts) == 3  # type: ignore[attr-defined]


def test_interpreter_refuses_out_of_bounds_loads() -> None:
    b, o = Buffer("B", (4,)), Buffer("O", (4,))
    i = Var("i")
    f = PrimFunc("f", (b, o), For(i, IntImm(4), BufferStore(o, b[i + 1], (i,))))  # type: ignore[index]
    with pytest.raises(IndexError, match=r"load B\[4\] is outside its shape \(4,\)"):
        run(f, np.zeros(4, np.int32), np.zeros(4, np.int32))
