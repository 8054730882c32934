"""The DMA and ALU tensor intrinsics: generated from the config, matched by tensorize
(and refused with the reason on a mismatch), run by the interpreter by their own
description, and lowered to LOAD/STORE/ALU instructions that fsim runs bit-exactly."""

from __future__ import annotations

import numpy as np
import pytest
from vta.compiler.accel import lower
from vta.compiler.tir.interp import run
from vta.compiler.tir.intrin import alu_intrin, gemm_intrin, load_intrin, store_intrin
from vta.compiler.tir.ops import dense_packed, elementwise_packed
from vta.compiler.tir.schedule import Schedule, ScheduleError
from vta.isa import PRESETS, AluOp, Opcode
from vta.runtime import FsimDevice
from vta.runtime.execute import run_program

CFG = PRESETS["tiny"]


def _dense_all_tensorized() -> tuple[Schedule, object]:
    sch = Schedule(dense_packed(4, 8, 8, (1, 4, 4)))
    i0, j0, i1, j1, k0, k1 = sch.get_loops(sch.get_block("dense"))
    sch.reorder(i0, j0, k0, i1, j1, k1)
    a, w = sch.cache_read("dense", 1, "inp"), sch.cache_read("dense", 2, "wgt")
    c = sch.cache_write("dense", 0, "acc")
    sch.compute_at(a, j0)
    sch.compute_at(w, j0)
    sch.reverse_compute_at(c, j0)
    sch.decompose_reduction("dense", k0)
    sch.tensorize(i1, gemm_intrin(CFG))
    return sch, (a, w, c)


def test_dma_intrinsics_tensorize_lower_and_run() -> None:
    sch, (a, w, c) = _dense_all_tensorized()
    for blk, intrin in ((a, load_intrin(CFG, "inp")), (w, load_intrin(CFG, "wgt")), (c, store_intrin(CFG, "int32"))):
        sch.tensorize(sch.get_loops(blk)[-2], intrin)
    text = str(sch.func)
    assert "load_inp(A_inp[i0 + ax0, ax1, 0, 0:4], A[i0 + ax0, ax1, 0, 0:4])" in text
    assert "store_int32(C[i0 + ax0, j0 + ax1, 0, 0:4], C_acc[i0 + ax0, j0 + ax1, 0, 0:4])" in text
    rng = np.random.default_rng(1)
    av = rng.integers(-128, 128, (4, 2, 1, 4)).astype(np.int8)
    wv = rng.integers(-128, 128, (2, 2, 4, 4)).astype(np.int8)
    ref = np.zeros((4, 2, 1, 4), np.int32)
    run(dense_packed(4, 8, 8, (1, 4, 4)), av, wv, ref)
    got = np.zeros_like(ref)
    run(sch.func, av, wv, got)  # the intrinsics' own descriptions
    assert np.array_equal(got, ref)
    k = lower(sch.func, CFG)
    assert np.array_equal(run_program(k.program(av, wv), FsimDevice(CFG)).outputs["C"], ref)


def test_dma_intrinsic_mismatches() -> None:
    sch, (a, w, _) = _dense_all_tensorized()
    with pytest.raises(ScheduleError, match=r"tensorize ax2 with load_inp: loop ax2 has extent 4; the intrinsic's "
                                            r"loop b has 1"):
        sch.tensorize(sch.get_loops(w)[-2], load_intrin(CFG, "inp"))
    with pytest.raises(ScheduleError, match=r"tensorize ax2 with load_acc: buffer A_inp is int8 in scope inp; the "
                                            r"intrinsic's dst is int32 in scope acc"):
        sch.tensorize(sch.get_loops(a)[-2], load_intrin(CFG, "acc"))
    with pytest.raises(ScheduleError, match=r"tensorize ax1 with load_inp: 3 loops under ax1; the intrinsic has 2"):
        sch.tensorize(sch.get_loops(a)[-3], load_intrin(CFG, "inp"))
    with pytest.raises(ValueError, match="store_intrin: int16 is neither the output nor the accumulator type"):
        store_intrin(CFG, "int16")


def _alu_function() -> tuple[Schedule, list[str]]:
    """C = min(A + B, 50) over acc-layout tensors, one ALU intrinsic per block."""
    from vta.compiler.tir.schedule import Schedule as S

    f = elementwise_packed("add", (3, 1, 4))
    sch = S(f)
    a, b = sch.cache_read("add", 0, "acc"), sch.cache_read("add", 1, "acc")
    c = sch.cache_write("add", 0, "acc")
    return sch, [a, b, c]


def test_alu_intrinsic_with_acc_operand() -> None:
    sch, (a, b, c) = _alu_function()
    add = sch.get_loops("add")
    sch.tensorize(add[1], alu_intrin(CFG, "add", "acc"))
    for blk, intrin in ((a, load_intrin(CFG, "acc")), (b, load_intrin(CFG, "acc")), (c, store_intrin(CFG, "int32"))):
        sch.tensorize(sch.get_loops(blk)[-2], intrin)
    assert "alu_add_acc(C_acc[i0, 0, 0:4], A_acc[i0, 0, 0:4], B_acc[i0, 0, 0:4])" in str(sch.func)
    rng = np.random.default_rng(2)
    av, bv = (rng.integers(-(1 << 31), 1 << 31, (3, 1, 4)).astype(np.int32) for _ in range(2))
    k = lower(sch.func, CFG)
    ops = [i.alu_op for i in k.insns if i.opcode == Opcode.ALU]
    assert ops == [AluOp.ADD]  # one instruction over the three elements, in place over A: no copy
    got = run_program(k.program(av, bv), FsimDevice(CFG)).outputs["C"]
    assert np.array_equal(got, (av.astype(np.int64) + bv).astype(np.int32))


def test_alu_intrinsic_refuses_a_tensor_as_immediate() -> None:
    sch = Schedule(elementwise_packed("min", (2, 1, 4)))
    loops = sch.get_loops("min")
    sch.cache_read("min", 0, "acc")
    sch.cache_write("min", 0, "acc")
    with pytest.raises(ScheduleError, match=r"tensorize i1 with alu_min_imm: B\[.*\] is not constant inside the "
                                            r"nest, as the intrinsic's imm must be"):
        sch.tensorize(loops[1], alu_intrin(CFG, "min", "imm"))
    with pytest.raises(ValueError, match="alu_intrin: operand 'acc' for shr"):
        alu_intrin(CFG, "shr", "acc")


def test_shift_intrinsic_binds_its_divisor() -> None:
    from vta.compiler.tir.expr import FloorDiv, IntImm, Var
    from vta.compiler.tir.stmt import Block, BlockRealize, Buffer, BufferStore, For, IterVar, PrimFunc

    a, c = Buffer("A", (2, 1, 4)), Buffer("C", (2, 1, 4))
    vs = [Var(f"v{d}") for d in range(3)]
    loops = [Var(f"i{d}") for d in range(3)]
    blk = Block("shr", tuple(IterVar(v, IntImm(n)) for v, n in zip(vs, (2, 1, 4))), reads=(a[tuple(vs)],),
                writes=(c[tuple(vs)],), body=BufferStore(c, FloorDiv(a[tuple(vs)], IntImm(8)), tuple(vs)))
    body = BlockRealize(tuple(loops), IntImm(1), blk)
    for lv, n in reversed(list(zip(loops, (2, 1, 4)))):
        body = For(lv, IntImm(n), body)
    sch = Schedule(PrimFunc("shr", (a, c), body))
    x, y = sch.cache_read("shr", 0, "acc"), sch.cache_write("shr", 0, "acc")
    sch.tensorize(sch.get_loops("shr")[1], alu_intrin(CFG, "shr"))
    assert "alu_shr_imm(C_acc[i0, 0, 0:4], A_acc[i0, 0, 0:4], imm=8)" in str(sch.func)
    for blk_, intrin in ((x, load_intrin(CFG, "acc")), (y, store_intrin(CFG, "int32"))):
        sch.tensorize(sch.get_loops(blk_)[-2], intrin)
    av = np.arange(-20, 12, 4, dtype=np.int32).reshape(2, 1, 4) * 7
    k = lower(sch.func, CFG)
    shr = [i for i in k.insns if i.opcode == Opcode.ALU]
    assert [(i.alu_op, i.imm) for i in shr] == [(AluOp.SHR, 3)]
    assert np.array_equal(run_program(k.program(av), FsimDevice(CFG)).outputs["C"], av >> 3)
