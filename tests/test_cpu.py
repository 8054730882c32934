"""The CPU backend: loop-IR functions compiled with llvmlite for the host, against numpy
and the reference interpreter: integer and float arithmetic with the IR's semantics
(floor division, wrapping stores, lazy select), math functions, loop kinds (parallel,
unrolled, vectorized), scheduled functions, and the errors it reports."""

from __future__ import annotations

import numpy as np
import pytest
from vta.compiler.cpu import CodegenError, compile_cpu
from vta.compiler.tir import run
from vta.compiler.tir.expr import FloorDiv, FloorMod, IntImm, Max, Var, and_, select
from vta.compiler.tir.ops import conv2d_packed, dense
from vta.compiler.tir.scalar import FloatImm, call
from vta.compiler.tir.schedule import Schedule
from vta.compiler.tir.stmt import Block, BlockRealize, Buffer, BufferStore, Cast, For, IterVar, PrimFunc


def _elementwise(name: str, n: int, dtype: str, out_dtype: str, fn, parallel: bool = False) -> PrimFunc:  # type: ignore[no-untyped-def]
    a, c = Buffer("A", (n,), dtype), Buffer("C", (n,), out_dtype)
    i, vi = Var("i"), Var("vi")
    blk = Block(name, (IterVar(vi, IntImm(n)),), reads=(a[vi],), writes=(c[vi],),  # type: ignore[arg-type]
                body=BufferStore(c, fn(a[vi]), (vi,)))
    return PrimFunc(name, (a, c), For(i, IntImm(n), BlockRealize((i,), IntImm(1), blk),
                                      kind="parallel" if parallel else "serial"))


def test_dense_int8_and_conv2d_match() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (16, 32)).astype(np.int8)
    w = rng.integers(-128, 128, (24, 32)).astype(np.int8)
    c = np.zeros((16, 24), np.int32)
    compile_cpu(dense(16, 24, 32))(a, w, c)
    assert np.array_equal(c, a.astype(np.int32) @ w.astype(np.int32).T)
    f = conv2d_packed(2, 4, 5, 6, 4, 3, 2, 1, 2, (1, 2, 2))  # stride, padding (a lazy select), groups
    shapes = [tuple(d.value for d in p.shape) for p in f.params]  # type: ignore[attr-defined]
    x = rng.integers(-128, 128, shapes[0]).astype(np.int8)
    wt = rng.integers(-128, 128, shapes[1]).astype(np.int8)
    got, ref = np.zeros(shapes[2], np.int32), np.zeros(shapes[2], np.int32)
    compile_cpu(f)(x, wt, got)
    run(f, x, wt, ref)
    assert np.array_equal(got, ref)


def test_scheduled_function_compiles_to_the_same_result() -> None:
    sch = Schedule(dense(64, 48, 40, "float32", "float32"))
    i, j, k = sch.get_loops(sch.get_block("dense"))
    i0, i1 = sch.split(i, [None, 8])
    j0, j1 = sch.split(j, [None, 16])
    sch.reorder(i0, j0, k, i1, j1)
    sch.decompose_reduction("dense", k)
    sch.unroll(i1)
    sch.vectorize(j1)
    sch.parallel(i0)
    rng = np.random.default_rng(1)
    a, w = rng.standard_normal((64, 40), np.float32), rng.standard_normal((48, 40), np.float32)
    kern = compile_cpu(sch.func)
    assert kern.parallel_extent == 8
    for threads in (1, 2, 4):  # 2: the native workers on a 2-core machine; 4: more chunks than workers
        c = np.zeros((64, 48), np.float32)
        kern(a, w, c, threads=threads)
        np.testing.assert_allclose(c, a @ w.T, rtol=1e-5, atol=1e-4)


def test_contiguous_inner_loops_vectorize() -> None:
    f = _elementwise("axpy", 1000, "float32", "float32", lambda v: v * FloatImm(3.0) + FloatImm(1.0))
    kern = compile_cpu(f)
    assert "x float>" in kern.optimized_ir  # the loop vectorizer made vector operations
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    c = np.zeros_like(x)
    kern(x, c)
    np.testing.assert_allclose(c, x * 3 + 1, rtol=1e-6)


def test_integer_semantics() -> None:
    x = np.arange(-9, 9, dtype=np.int32)
    for fn, ref in ((lambda v: FloorDiv(v, IntImm(4)), x // 4), (lambda v: FloorMod(v, IntImm(4)), x % 4),
                    (lambda v: FloorDiv(v, IntImm(-3)), x // -3), (lambda v: FloorMod(v, IntImm(-3)), x % -3),
                    (lambda v: Max(v, IntImm(0)), np.maximum(x, 0))):
        c = np.zeros_like(x)
        compile_cpu(_elementwise("f", x.size, "int32", "int32", fn))(x, c)
        assert np.array_equal(c, ref)
    big = np.array([100, 127, 128, 300, -129], np.int32)
    c8 = np.zeros(5, np.int8)
    compile_cpu(_elementwise("narrow", 5, "int32", "int8", lambda v: Cast("int8", v * 2)))(big, c8)
    assert c8.tolist() == (big * 2).astype(np.int8).tolist()  # wraps like the interpreter


@pytest.mark.parametrize("op,ref", [("exp", np.exp), ("tanh", np.tanh), ("sqrt", np.sqrt), ("log", np.log),
                                    ("sigmoid", lambda v: 1 / (1 + np.exp(-v))), ("floor", np.floor),
                                    ("round", np.round)])
def test_math_functions(op: str, ref) -> None:  # type: ignore[no-untyped-def]
    x = np.linspace(0.05, 4.5, 257, dtype=np.float32)
    c = np.zeros_like(x)
    compile_cpu(_elementwise(op, x.size, "float32", "float32", lambda v: call(op, v)))(x, c)
    np.testing.assert_allclose(c, ref(x).astype(np.float32), rtol=2e-6, atol=1e-6)


def test_erf_and_float_int_casts() -> None:
    import math

    x = np.linspace(-3, 3, 64, dtype=np.float32)
    c = np.zeros_like(x)
    compile_cpu(_elementwise("erf", 64, "float32", "float32", lambda v: call("erf", v)))(x, c)
    np.testing.assert_allclose(c, [math.erf(v) for v in x], rtol=1e-6, atol=1e-7)
    q = np.zeros(64, np.int8)
    compile_cpu(_elementwise("quant", 64, "float32", "int8",
                             lambda v: Cast("int8", call("round", v * FloatImm(20.0)))))(x, q)
    assert np.array_equal(q, np.round(x * 20).astype(np.int8))


def test_select_reads_only_the_branch_taken() -> None:
    # C[i] = A[i - 2] where i >= 2 else -1: A[-2] must never be read
    a, c = Buffer("A", (6,), "float32"), Buffer("C", (8,), "float32")
    i, vi = Var("i"), Var("vi")
    blk = Block("shift", (IterVar(vi, IntImm(8)),), reads=(), writes=(c[vi],),  # type: ignore[arg-type]
                body=BufferStore(c, select(and_(vi >= 2, vi < 8), a[vi - 2], FloatImm(-1.0)), (vi,)))
    f = PrimFunc("shift", (a, c), For(i, IntImm(8), BlockRealize((i,), IntImm(1), blk)))
    av = np.arange(6, dtype=np.float32)
    cv = np.zeros(8, np.float32)
    compile_cpu(f)(av, cv)
    assert cv.tolist() == [-1, -1, 0, 1, 2, 3, 4, 5]


def test_errors() -> None:
    from vta.compiler.accel.schedules import Dense, DenseTiling, dense_schedule
    from vta.isa import PRESETS

    kern = compile_cpu(dense(4, 4, 4))
    with pytest.raises(ValueError, match=r"dense: W must be int8\[4, 4\], got int32\[4, 4\]"):
        kern(np.zeros((4, 4), np.int8), np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match="dense takes 3 arrays"):
        kern(np.zeros((4, 4), np.int8))
    a = np.zeros((4, 4), np.int8)
    kern(a, a, np.zeros((4, 4), np.int32))  # inputs may alias: they are only read
    c = np.zeros((4, 4), np.int32)
    with pytest.raises(ValueError, match="A and C share memory, and one of them is written"):
        kern(c.reshape(-1).view(np.int8)[:16].reshape(4, 4), a, c)
    with pytest.raises(CodegenError, match="dtype int4 has no CPU representation"):
        compile_cpu(_elementwise("x", 4, "int4", "int4", lambda v: v))
    cfg = PRESETS["tiny"]
    accel = dense_schedule(Dense(4, 4, 4), cfg, DenseTiling(1, 1, 1)).func
    with pytest.raises(CodegenError, match="intrinsic gemm_1x4x4 runs on the accelerator, not the CPU"):
        compile_cpu(accel)


def test_register_tile_in_a_local_buffer() -> None:
    """A tiled matmul accumulating into a "local" tile: the tile is compacted to 4x32 on the
    stack, the vectorized loop really vectorizes, and the result is right."""
    from vta.compiler.tir import nn
    from vta.compiler.tir.compact import compact

    sch = Schedule(nn.matmul((64, 48), (48, 96), "float32"))
    i, j, k = sch.get_loops(sch.get_block("Y"))
    i0, i1 = sch.split(i, [None, 4])
    j0, j1 = sch.split(j, [None, 32])
    sch.reorder(i0, j0, k, i1, j1)
    c = sch.cache_write("Y", 0, "local")
    sch.reverse_compute_at(c, j0)
    sch.decompose_reduction("Y", k)
    sch.unroll(i1)
    sch.vectorize(j1)
    small = compact(sch.func)
    assert [tuple(d.value for d in b.shape) for b in small.allocs] == [(4, 32)]  # type: ignore[attr-defined]
    kern = compile_cpu(sch.func)
    assert "x float>" in kern.optimized_ir and not kern.sig.allocs  # vector code; the tile is not a parameter
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((64, 48)).astype(np.float32), rng.standard_normal((48, 96)).astype(np.float32)
    y = np.zeros((64, 96), np.float32)
    kern(a, b, y)
    np.testing.assert_allclose(y, a @ b, rtol=1e-5, atol=1e-4)


def test_inline_exp_over_its_range() -> None:
    x = np.concatenate([np.linspace(-87, 88, 4001), [0.0, -0.0, 1e-8, -1e-8, 89.0, -110.0, np.inf, -np.inf, np.nan]])
    x = x.astype(np.float32)
    c = np.zeros_like(x)
    kern = compile_cpu(_elementwise("e", x.size, "float32", "float32", lambda v: call("exp", v)))
    assert "x float>" in kern.optimized_ir  # no library call left: the loop vectorized
    kern(x, c)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    finite = np.isfinite(ref) & (ref > 1e-37)
    np.testing.assert_allclose(c[finite], ref[finite], rtol=3e-7)
    assert c[-5] == np.inf and c[-4] == 0 and c[-3] == np.inf and c[-2] == 0 and np.isnan(c[-1])


def test_native_workers_wake_from_sleep_and_survive_fork() -> None:
    """Parallel stages on the native workers: right after one another (the worker spins),
    after a pause long enough for it to sleep on its futex, and in a forked child (which
    makes its own workers)."""
    import multiprocessing
    import time

    from vta.compiler.cpu import threads

    if not threads.available():
        pytest.skip("native workers run on Linux x86-64 only")
    f = _elementwise("twice", 1 << 12, "float32", "float32", lambda v: v * FloatImm(2.0), parallel=True)
    kern = compile_cpu(f)
    x = np.arange(1 << 12, dtype=np.float32)
    for k in range(40):
        c = np.zeros_like(x)
        kern(x, c, threads=2)
        assert np.array_equal(c, 2 * x)
        if k % 10 == 9:
            time.sleep(0.01)  # the worker gives up spinning and sleeps
    assert threads.native_pool().workers >= 1
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_twice_in_child, (kern.llvm_ir, kern.sig.to_dict())) == float(2 * x.sum())


def _twice_in_child(llvm_ir: str, sig: dict) -> float:  # type: ignore[type-arg]
    from vta.compiler.cpu.jit import Signature, load_cpu

    kern = load_cpu(llvm_ir, Signature.from_dict(sig))
    x = np.arange(1 << 12, dtype=np.float32)
    c = np.zeros_like(x)
    kern(x, c, threads=2)
    return float(c.sum())


def test_parallel_kernels_from_several_threads_at_once() -> None:
    """Callers on several Python threads share the native workers: one at a time takes
    them, the others run their stage alone; every result is right and nothing hangs."""
    import threading

    f = _elementwise("inc", 1 << 12, "float32", "float32", lambda v: v + FloatImm(1.0), parallel=True)
    kern = compile_cpu(f)
    bad: list[int] = []

    def work(t: int) -> None:
        x = np.full(1 << 12, float(t), np.float32)
        for _ in range(200):
            c = np.zeros_like(x)
            kern(x, c, threads=2)
            if not np.array_equal(c, x + 1):
                bad.append(t)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in ts) and not bad


@pytest.mark.parametrize("op", ["erf", "tanh"])
def test_inline_erf_and_tanh(op: str) -> None:
    import math

    x = np.concatenate([np.linspace(-9, 9, 4001), [0.0, -0.0, 1e-8, -3e-4, 5e-4, np.inf, -np.inf, np.nan]])
    x = x.astype(np.float32)
    c = np.zeros_like(x)
    kern = compile_cpu(_elementwise(op, x.size, "float32", "float32", lambda v: call(op, v)))
    assert "x float>" in kern.optimized_ir and f"{op}f" not in kern.optimized_ir  # inline, vectorized
    kern(x, c)
    fn = getattr(math, op)
    ref = np.array([fn(v) if not np.isnan(v) else np.nan for v in x.astype(float)])
    finite = ~np.isnan(ref)
    np.testing.assert_allclose(c[finite], ref[finite], rtol=6e-7, atol=1e-37)
    assert np.isnan(c[-1]) and c[-3] == 1.0 and c[-2] == -1.0
