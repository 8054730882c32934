"""The GPU backend on a GPU: each default-scheduled operator compiled to PTX, loaded through
the CUDA driver (`vta.runtime.cuda_device`) and run, against numpy; and driver errors
named. Skipped where there is no GPU or no ``cuda-bindings``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vta.compiler.gpu import compile_gpu, default_schedule
from vta.compiler.gpu.codegen import KernelSpec
from vta.compiler.gpu.launch import Launch
from vta.compiler.tir import nn
from vta.compiler.tir.expr import FloorDiv
from vta.compiler.tir.scalar import FloatImm, call
from vta.compiler.tir.te import FuncBuilder
from vta.runtime import cuda_device

pytestmark = pytest.mark.skipif(not cuda_device.available(),
                                reason=f"no CUDA GPU: {cuda_device.unavailable_reason()}")


@pytest.fixture(scope="module")
def gpu() -> cuda_device.CudaDevice:
    return cuda_device.CudaDevice(0)


def _run(gpu: cuda_device.CudaDevice, func, *ins: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    prog = gpu.load(compile_gpu(default_schedule(func)))
    out_shape = tuple(d.value for d in func.params[-1].shape)
    out = np.full(out_shape, np.nan, np.float32)
    try:
        prog(*ins, out)
    finally:
        prog.close()
    return out


def test_elementwise_chain(gpu) -> None:  # type: ignore[no-untyped-def]
    n = 1 << 20 | 77  # not a multiple of the block
    fb = FuncBuilder("chain")
    x = fb.input("X", (n,), "float32")
    a = fb.compute("A", (n,), "float32", lambda i: x[i] * FloatImm(2.0) + FloatImm(1.0))
    b = fb.compute("B", (n,), "float32", lambda i: call("tanh", a[i]) + call("log", call("abs", a[i]) + FloatImm(1.0)))
    y = fb.compute("Y", (n,), "float32", lambda i: FloorDiv(b[i] * call("exp", call("erf", a[i])),  # float division
                                                            FloatImm(1.0) + call("sigmoid", a[i])))
    f = fb.build([y])
    xs = np.random.default_rng(0).uniform(-4, 4, n).astype(np.float32)
    got = _run(gpu, f, xs)
    a64 = xs.astype(np.float64) * 2 + 1
    from math import erf

    ref = (np.tanh(a64) + np.log(np.abs(a64) + 1)) * np.exp(np.vectorize(erf)(a64)) / (1 + 1 / (1 + np.exp(-a64)))
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("shape", [(512, 1000), (4, 6, 4096), (300, 64)])
def test_softmax_rows(gpu, shape) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32) * 4
    got = _run(gpu, nn.softmax(shape, "float32"), x)
    e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_layer_norm_rows(gpu) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    shape = (1024, 768)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    g, b = rng.standard_normal(768).astype(np.float32), rng.standard_normal(768).astype(np.float32)
    got = _run(gpu, nn.layer_norm(shape, "float32"), x, g, b)
    x64 = x.astype(np.float64)
    mu = x64.mean(-1, keepdims=True)
    ref = (x64 - mu) / np.sqrt(((x64 - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * g + b
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dims", [(256, 256, 256), (2048, 1024, 2048), (100, 50, 72)])
def test_matmul(gpu, dims) -> None:  # type: ignore[no-untyped-def]
    m, k, n = dims
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    got = _run(gpu, nn.matmul((m, k), (k, n), "float32"), a, b)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3 * math.sqrt(k))


def test_batched_matmul(gpu) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 130, 70)).astype(np.float32), rng.standard_normal((3, 70, 90)).astype(np.float32)
    got = _run(gpu, nn.matmul(a.shape, b.shape, "float32"), a, b)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("op,shape,axes", [("ReduceSum", (256, 8192), [1]), ("ReduceMax", (4096, 24), [1]),
                                           ("ReduceMean", (64, 32, 512), [2]), ("ReduceSum", (1, 100000), [1])])
def test_reductions(gpu, op, shape, axes) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    got = _run(gpu, nn.reduce(op, shape, "float32", axes), x)
    fn = {"ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMean": np.mean}[op]
    np.testing.assert_allclose(got, fn(x.astype(np.float64), axis=tuple(axes), keepdims=True), rtol=1e-4, atol=1e-3)


def test_device_arrays_and_events(gpu) -> None:  # type: ignore[no-untyped-def]
    f = default_schedule(nn.unary("Relu", (1 << 16,), "float32"))
    prog = gpu.load(compile_gpu(f))
    x = np.random.default_rng(6).standard_normal(1 << 16).astype(np.float32)
    dx, dy = gpu.to_device(x), gpu.alloc((1 << 16,), "float32")
    start, end = cuda_device.Event(), cuda_device.Event()
    start.record()
    prog.launch(dx, dy, check_each=False)
    end.record()
    assert start.elapsed_ms(end) >= 0.0
    np.testing.assert_array_equal(dy.copy_to(), np.maximum(x, 0))
    with pytest.raises(ValueError, match="must be a device array float32"):
        prog.launch(dx, gpu.alloc((3,), "float32"))
    for a in (dx, dy):
        a.free()
    prog.close()


def test_driver_errors_name_the_cuda_error(gpu) -> None:  # type: ignore[no-untyped-def]
    p = compile_gpu(default_schedule(nn.unary("Relu", (4096,), "float32")))
    bad = type(p)(p.name, p.ptx, p.llvm_ir, (KernelSpec(p.kernels[0].name, Launch((16, 1, 1), (2048, 1, 1)), 0),),
                  p.params, p.scratch, p.written)
    prog = gpu.load(bad)
    x = np.zeros(4096, np.float32)
    with pytest.raises(cuda_device.CudaError, match="cuLaunchKernel.*CUDA_ERROR_INVALID_VALUE"):
        prog(x, x.copy())
    with pytest.raises(cuda_device.CudaError, match="cuModuleLoadData failed: CUDA_ERROR_INVALID_PTX"):
        gpu.load_ptx(".version 8.0\n.target sm_90\nthis is not ptx\n")
