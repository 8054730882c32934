"""Schedule primitives split, fuse and reorder: the printed result, results kept
(checked with the reference interpreter on random schedules), replayable traces and
illegal uses."""

from __future__ import annotations

import random

import numpy as np
import pytest
from vta.compiler.tir import (
    Block, BlockRealize, Buffer, BufferStore, For, IntImm, IterVar, PrimFunc, Var, run, seq, structural_equal,
)
from vta.compiler.tir.ops import dense
from vta.compiler.tir.schedule import Schedule, ScheduleError

M, N, K = 6, 8, 16


def _check_dense(func) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (M, K)).astype(np.int8)
    w = rng.integers(-128, 128, (N, K)).astype(np.int8)
    c = np.full((M, N), 7, np.int32)
    run(func, a, w, c)
    assert np.array_equal(c, a.astype(np.int32) @ w.astype(np.int32).T)


def test_split_reorder_fuse_print_and_keep_results() -> None:
    sch = Schedule(dense(M, N, K))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    i0, i1 = sch.split(i, [None, 4])          # 6 = 2 x 4 with a predicate
    k0, k1 = sch.split(k, [4, 4])
    sch.reorder(i0, j, k0, i1, k1)
    f = sch.fuse(i1, k1)
    text = str(sch.func)
    assert "    for i_0 in range(2):\n        for j in range(8):\n            for k_0 in range(4):\n" \
           "                for i_1_k_1_fused in range(16):" in text
    assert "vi = axis.spatial(6, i_0 * 4 + i_1_k_1_fused // 4)" in text
    assert "vk = axis.reduce(16, k_0 * 4 + i_1_k_1_fused % 4)" in text
    assert "where(i_0 * 4 + i_1_k_1_fused // 4 < 6)" in text
    assert f.name == "i_1_k_1_fused"
    _check_dense(sch.func)


def test_split_without_remainder_needs_no_predicate() -> None:
    sch = Schedule(dense(M, N, K))
    _, j, _ = sch.get_loops(sch.get_block("dense"))
    j0, j1 = sch.split(j, [2, 4])
    assert "where(" not in str(sch.func) and "vj = axis.spatial(8, j_0 * 4 + j_1)" in str(sch.func)
    i, j0b, j1b, k = sch.get_loops("dense")
    assert (j0b, j1b) == (j0, j1)
    sch.fuse(j0, j1)  # fusing what was split gives back a single loop over j
    assert "vj = axis.spatial(8, j_0_j_1_fused)" in str(sch.func)
    _check_dense(sch.func)


def test_trace_replays() -> None:
    sch = Schedule(dense(M, N, K))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    a, b, c = sch.split(k, [2, None, 2])
    sch.reorder(c, i, a)
    again = Schedule(dense(M, N, K))
    exec(sch.trace_str(), {"sch": again})  # noqa: S102
    assert structural_equal(again.func, sch.func)
    assert sch.trace_str().splitlines()[2] == "k_0, k_1, k_2 = sch.split(k, factors=[2, None, 2])"


@pytest.mark.parametrize("seed", range(25))
def test_random_schedules_keep_results(seed: int) -> None:
    rng = random.Random(seed)
    sch = Schedule(dense(M, N, K))
    for _ in range(rng.randint(1, 6)):
        loops = sch.get_loops("dense")
        op = rng.choice(["split", "reorder", "fuse"])
        try:
            if op == "split":
                v = rng.choice(loops)
                extent = sch._loop(v).extent.value  # type: ignore[attr-defined]
                sch.split(v, [None, rng.randint(1, max(1, extent))])
            elif op == "reorder":
                picked = rng.sample(loops, rng.randint(2, len(loops))) if len(loops) > 1 else loops
                if len(picked) > 1:
                    sch.reorder(*picked)
            elif len(loops) > 1:
                at = rng.randrange(len(loops) - 1)
                sch.fuse(loops[at], loops[at + 1])
        except ScheduleError:
            pytest.fail(f"a legal primitive was refused: {op} after\n{sch.trace_str()}")
    _check_dense(sch.func)


def test_illegal_uses_are_refused_with_the_reason() -> None:
    sch = Schedule(dense(M, N, K))
    with pytest.raises(ScheduleError, match="dense has no block 'conv'; blocks: dense"):
        sch.get_block("conv")
    i, j, k = sch.get_loops(sch.get_block("dense"))
    with pytest.raises(ScheduleError, match=r"split i: factors \[2, 2\] cover 4 iterations, the loop has 6"):
        sch.split(i, [2, 2])
    with pytest.raises(ScheduleError, match="at most one factor may be None"):
        sch.split(i, [None, None])
    with pytest.raises(ScheduleError, match="factors are positive integers"):
        sch.split(i, [0, 6])
    with pytest.raises(ScheduleError, match="fuse: loop k is not the whole body of loop i"):
        sch.fuse(i, k)
    with pytest.raises(ScheduleError, match="reorder: a loop is named twice"):
        sch.reorder(i, i)
    i0, i1 = sch.split(i, [2, 3])
    with pytest.raises(ScheduleError, match="loop i is not in dense"):
        sch.split(i, [2, 3])
    before = sch.func
    with pytest.raises(ScheduleError):
        sch.fuse(i0, j)
    assert sch.func is before  # a refused primitive changes nothing


def test_loop_kinds_and_annotations() -> None:
    sch = Schedule(dense(M, N, K))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    sch.parallel(i)
    sch.vectorize(j)
    sch.unroll(k)
    sch.annotate(k, "pragma_unroll_max", 16)
    sch.annotate("dense", "accelerator", "gemm")
    text = str(sch.func)
    assert "for i in range(6):  # parallel" in text and "for j in range(8):  # vectorized" in text
    assert "for k in range(16):  # unrolled  # pragma_unroll_max=16" in text
    assert "annotate('accelerator', 'gemm')" in text
    _check_dense(sch.func)
    again = Schedule(dense(M, N, K))
    exec(sch.trace_str(), {"sch": again})  # noqa: S102
    assert structural_equal(again.func, sch.func)


def test_loop_kind_errors() -> None:
    sch = Schedule(dense(M, N, K))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    with pytest.raises(ScheduleError, match="cannot parallelize loop k: it drives reduction iterator vk of block dense"):
        sch.parallel(k)
    with pytest.raises(ScheduleError, match="cannot vectorize loop k"):
        sch.vectorize(k)
    with pytest.raises(ScheduleError, match="cannot bind to threadIdx.x loop k"):
        sch.bind(k, "threadIdx.x")
    with pytest.raises(ScheduleError, match="thread axis 'warp' is not one of blockIdx.x"):
        sch.bind(i, "warp")
    sch.bind(i, "blockIdx.x")
    with pytest.raises(ScheduleError, match="blockIdx.x is already bound to another loop"):
        sch.bind(j, "blockIdx.x")
    assert "for i in range(6):  # thread_binding blockIdx.x" in str(sch.func)
    with pytest.raises(ScheduleError, match="must be an int, float, str or bool"):
        sch.annotate(j, "x", [1])


def _tiled(m: int, n: int, tile: int) -> Schedule:
    """dense tiled for the accelerator: inputs copied to inp/wgt per tile, results via acc."""
    sch = Schedule(dense(m, n, K))
    i, j, _ = sch.get_loops(sch.get_block("dense"))
    i0, i1 = sch.split(i, [None, tile])
    j0, j1 = sch.split(j, [None, tile])
    sch.reorder(i0, j0, i1, j1)
    a, w = sch.cache_read("dense", 1, "inp"), sch.cache_read("dense", 2, "wgt")
    c = sch.cache_write("dense", 0, "acc")
    sch.compute_at(a, j0)
    sch.compute_at(w, j0)
    sch.reverse_compute_at(c, j0)
    return sch


def _check(func, m: int, n: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (m, K)).astype(np.int8)
    w = rng.integers(-128, 128, (n, K)).astype(np.int8)
    c = np.zeros((m, n), np.int32)
    run(func, a, w, c)
    assert np.array_equal(c, a.astype(np.int32) @ w.astype(np.int32).T)


def test_cache_read_write_and_compute_at_tile_the_copies() -> None:
    sch = _tiled(8, 8, 4)
    text = str(sch.func)
    assert "    A_inp = alloc_buffer((8, 16), 'int8', scope='inp')" in text
    assert "v0 = axis.spatial(8, i_0 * 4 + ax0)" in text            # A's tile rows follow i_0
    assert "v0 = axis.spatial(8, j_0 * 4 + ax0)" in text            # W's follow j_0
    assert "C_acc[vi, vj] = C_acc[vi, vj] + int32(A_inp[vi, vk]) * int32(W_wgt[vj, vk])" in text
    assert "C[v0, v1] = C_acc[v0, v1]" in text
    assert text.index('block("A_inp")') < text.index('block("dense")') < text.index('block("C_acc")')
    _check(sch.func, 8, 8)
    again = Schedule(dense(8, 8, K))
    exec(sch.trace_str(), {"sch": again})  # noqa: S102
    assert structural_equal(again.func, sch.func)


def test_partial_tiles_copy_only_what_exists() -> None:
    sch = _tiled(6, 10, 4)  # 6 = 4 + 2 rows, 10 = 4 + 4 + 2 columns: the last tiles are cut
    assert "where(i_0 * 4 + ax0 < 6)" in str(sch.func)
    _check(sch.func, 6, 10)


def test_cache_errors() -> None:
    sch = Schedule(dense(M, N, K))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    with pytest.raises(ScheduleError, match="cache_read: block dense reads 3 buffer\\(s\\), no index 3"):
        sch.cache_read("dense", 3, "inp")
    with pytest.raises(ScheduleError, match="scope 'sram' is not one of"):
        sch.cache_read("dense", 1, "sram")
    a = sch.cache_read("dense", 1, "inp")
    with pytest.raises(ScheduleError, match="compute_at: block dense is a reduction; only elementwise stages move"):
        sch.compute_at("dense", i)
    c = sch.cache_write("dense", 0, "acc")
    with pytest.raises(ScheduleError, match="compute_at: block C_acc must come before the nest of loop i"):
        sch.compute_at(c, i)
    with pytest.raises(ScheduleError, match="reverse_compute_at: block A_inp must come after"):
        sch.reverse_compute_at(a, i)


@pytest.mark.parametrize("where", ["i", "j", "k", "tile"])
def test_decompose_reduction(where: str) -> None:
    sch = Schedule(dense(M, N, K))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    loop = {"i": i, "j": j, "k": k}.get(where)
    if where == "tile":
        i0, i1 = sch.split(i, [None, 4])
        sch.reorder(i0, j, i1)
        loop = i1
    name = sch.decompose_reduction("dense", loop)
    text = str(sch.func)
    assert name == "dense_init" and 'with block("dense_init")' in text and "with init():" not in text
    assert text.index('block("dense_init")') < text.index('block("dense")')
    if where == "k":  # no loop to copy: the init runs once per (i, j), just before the k loop
        assert "_init in range" not in text
    _check_dense(sch.func)
    again = Schedule(dense(M, N, K))
    exec(sch.trace_str(), {"sch": again})  # noqa: S102
    assert structural_equal(again.func, sch.func)


def test_decompose_reduction_errors() -> None:
    sch = Schedule(dense(M, N, K))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    sch.reorder(k, i, j)
    with pytest.raises(ScheduleError, match="loop k above i drives a reduction iterator of dense"):
        sch.decompose_reduction("dense", i)
    sch.decompose_reduction("dense", k)
    with pytest.raises(ScheduleError, match="block dense has no init part"):
        sch.decompose_reduction("dense", k)


def _two_step() -> PrimFunc:
    """T = 2·A (block "scale", into an intermediate), C = T + 1 (block "add")."""
    a, c = Buffer("A", (4, 3)), Buffer("C", (4, 3))
    t = Buffer("T", (4, 3))
    blocks = []
    for name, src, dst, value in (("scale", a, t, lambda x: x * 2), ("add", t, c, lambda x: x + 1)):
        i, j, vi, vj = Var("i"), Var("j"), Var("vi"), Var("vj")
        blk = Block(name, (IterVar(vi, IntImm(4)), IterVar(vj, IntImm(3))), reads=(src[vi, vj],),
                    writes=(dst[vi, vj],), body=BufferStore(dst, value(src[vi, vj]), (vi, vj)))
        blocks.append(For(i, IntImm(4), For(j, IntImm(3), BlockRealize((i, j), IntImm(1), blk))))
    return PrimFunc("two_step", (a, c), seq(*blocks), allocs=(t,))


def test_compute_inline() -> None:
    sch = Schedule(_two_step())
    sch.compute_inline("scale")
    text = str(sch.func)
    assert 'block("scale")' not in text and "T = alloc_buffer" not in text
    assert "C[vi, vj] = A[vi, vj] * 2 + 1" in text and "reads(A[vi, vj])" in text
    a = np.arange(12, dtype=np.int32).reshape(4, 3)
    c = np.zeros((4, 3), np.int32)
    run(sch.func, a, c)
    assert np.array_equal(c, a * 2 + 1)
    with pytest.raises(ScheduleError, match="compute_inline: block dense is a reduction"):
        Schedule(dense(M, N, K)).compute_inline("dense")
    with pytest.raises(ScheduleError, match="C is a parameter of two_step"):
        Schedule(_two_step()).compute_inline("add")


def test_reverse_compute_inline() -> None:
    sch = Schedule(_two_step())
    sch.reverse_compute_inline("add")
    text = str(sch.func)
    assert 'block("add")' not in text and "T = alloc_buffer" not in text
    assert "C[vi, vj] = A[vi, vj] * 2 + 1" in text and "writes(C[vi, vj])" in text
    assert sch.trace_str().endswith("sch.reverse_compute_inline('add')")
    a = np.arange(12, dtype=np.int32).reshape(4, 3)
    c = np.zeros((4, 3), np.int32)
    run(sch.func, a, c)
    assert np.array_equal(c, a * 2 + 1)
    with pytest.raises(ScheduleError, match="reverse_compute_inline: block add reads no intermediate buffer"):
        sch2 = Schedule(_two_step())
        sch2.compute_inline("scale")
        sch2.reverse_compute_inline("add")
    with pytest.raises(ScheduleError, match="the producer dense is a reduction"):
        s3 = Schedule(dense(M, N, K))
        s3.cache_write("dense", 0, "global")
        s3.reverse_compute_inline("C_global")


def test_blockize_and_block_tensorize() -> None:
    from vta.compiler.tir.intrin import IntrinCall, gemm_intrin
    from vta.compiler.tir.transform import walk_stmt
    from vta.isa import PRESETS

    cfg = PRESETS["tiny"]
    sch = Schedule(dense(4, 8, 8))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    i0, i1 = sch.split(i, [None, cfg.batch])
    j0, j1 = sch.split(j, [None, cfg.block_out])
    k0, k1 = sch.split(k, [None, cfg.block_in])
    sch.reorder(i0, j0, k0, i1, j1, k1)
    a, w = sch.cache_read("dense", 1, "inp"), sch.cache_read("dense", 2, "wgt")
    c = sch.cache_write("dense", 0, "acc")
    sch.compute_at(a, k0)
    sch.compute_at(w, k0)
    sch.reverse_compute_at(c, j0)
    sch.decompose_reduction("dense", k0)
    outer = sch.blockize(i1)
    text = str(sch.func)
    assert f'with block("{outer}"):' in text
    assert "reads(C_acc[i_0, j_0 * 4:j_0 * 4 + 4], A_inp[i_0, k_0 * 4:k_0 * 4 + 4], " \
        "W_wgt[j_0 * 4:j_0 * 4 + 4, k_0 * 4:k_0 * 4 + 4])" in text
    rng = np.random.default_rng(3)
    av, wv = rng.integers(-9, 9, (4, 8)).astype(np.int8), rng.integers(-9, 9, (8, 8)).astype(np.int8)
    ref = av.astype(np.int32) @ wv.astype(np.int32).T
    cv = np.zeros((4, 8), np.int32)
    run(sch.func, av, wv, cv)
    assert np.array_equal(cv, ref)
    with pytest.raises(ScheduleError, match="tensorize: block dense_init is not a blockized loop nest"):
        sch.tensorize("dense_init", gemm_intrin(cfg))
    sch.tensorize(outer, gemm_intrin(cfg))
    assert any(isinstance(x, IntrinCall) for x in walk_stmt(sch.func.body))
    assert f"sch.tensorize({outer!r}, gemm_1x4x4)" in sch.trace_str()
    cv[:] = 0
    run(sch.func, av, wv, cv)
    assert np.array_equal(cv, ref)
    with pytest.raises(ScheduleError, match="blockize: loop k_0 must hold exactly one block, it holds 2"):
        sch.blockize(k0)


def test_set_scope() -> None:
    sch = Schedule(_two_step())
    sch.set_scope("T", "acc")
    assert "T = alloc_buffer((4, 3), 'int32', scope='acc')" in str(sch.func)
    assert sch.trace_str().endswith("sch.set_scope('T', 'acc')")
    a = np.arange(12, dtype=np.int32).reshape(4, 3)
    c = np.zeros((4, 3), np.int32)
    run(sch.func, a, c)
    assert np.array_equal(c, a * 2 + 1)
    with pytest.raises(ScheduleError, match=r"set_scope: C is not an intermediate buffer of two_step \(it is a "
                                            r"parameter; use cache_read/cache_write\)"):
        sch.set_scope("C", "acc")
    with pytest.raises(ScheduleError, match="set_scope: scope 'sram' is not one of"):
        sch.set_scope("T", "sram")


def test_elementwise_stages_move_under_loops() -> None:
    """compute_at of a producer stage (not a copy: T = 2·A) and reverse_compute_at of a consumer."""
    sch = Schedule(_two_step())
    i, j = sch.get_loops(sch.get_block("add"))
    i0, i1 = sch.split(i, [None, 2])
    sch.compute_at("scale", i0)
    text = str(sch.func)
    assert "for ax0 in range(2):" in text and "vi = axis.spatial(4, i_0 * 2 + ax0)" in text
    assert "sch.compute_at('scale', i_0)" in sch.trace_str()
    a = np.arange(12, dtype=np.int32).reshape(4, 3)
    c = np.zeros((4, 3), np.int32)
    run(sch.func, a, c)
    assert np.array_equal(c, a * 2 + 1)
    sch2 = Schedule(_two_step())
    i, j = sch2.get_loops(sch2.get_block("scale"))
    sch2.reverse_compute_at("add", i)
    assert "for ax1 in range(3):" in str(sch2.func)
    run(sch2.func, a, c)
    assert np.array_equal(c, a * 2 + 1)
    with pytest.raises(ScheduleError, match="reverse_compute_at: block scale must come after the nest of loop"):
        sch3 = Schedule(_two_step())
        sch3.reverse_compute_at("scale", sch3.get_loops(sch3.get_block("add"))[0])
