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


def conv_ref(x: np.ndarray, w: np.ndarray, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1,
             bias: np.ndarray | None = None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """NCHW convolution in float64 (numpy), ONNX semantics."""
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = strides, dilations, pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    og = o // group
    out = np.zeros((n, o, oh, ow))
    for g in range(group):
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, ky * dh:ky * dh + sh * (oh - 1) + 1:sh,
                           kx * dw:kx * dw + sw * (ow - 1) + 1:sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, ky, kx])
    return out if bias is None else out + bias[None, :, None, None]


@pytest.mark.parametrize("x,w,kw", [
    ((1, 64, 56, 56), (64, 64, 3, 3), {"pads": (1, 1, 1, 1)}),  # ResNet-18 layers
    ((1, 256, 14, 14), (256, 256, 3, 3), {"pads": (1, 1, 1, 1)}),
    ((1, 128, 28, 28), (256, 128, 1, 1), {"strides": (2, 2)}),
    ((2, 32, 17, 19), (40, 32, 3, 3), {"pads": (1, 1, 1, 1), "strides": (2, 2), "bias": True}),  # tails, a batch
    ((3, 24, 9, 13), (20, 24, 3, 3), {"pads": (0, 1, 1, 0)}),  # a batch with one channel tile
    ((1, 16, 15, 15), (16, 16, 3, 3), {"dilations": (2, 2), "pads": (2, 2, 2, 2)}),
    ((1, 3, 32, 32), (8, 3, 7, 7), {"pads": (3, 3, 3, 3), "strides": (2, 2)}),  # few input channels
    ((1, 3, 61, 61), (20, 3, 7, 7), {"pads": (3, 3, 3, 3), "strides": (2, 2), "bias": True}),  # few, tails
    ((16, 16, 28, 28), (40, 16, 3, 3), {"pads": (1, 1, 1, 1)}),  # a batch: 2 columns per thread, channel tail
    ((1, 32, 20, 20), (32, 1, 3, 3), {"group": 32, "pads": (1, 1, 1, 1)}),  # depthwise
    ((2, 32, 21, 21), (32, 1, 5, 5), {"group": 32, "pads": (2, 2, 2, 2), "strides": (2, 2)}),
    ((1, 32, 12, 12), (64, 8, 3, 3), {"group": 4, "pads": (1, 1, 1, 1)}),  # grouped
])
def test_conv2d(gpu, x, w, kw) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    xs, ws = rng.standard_normal(x).astype(np.float32), rng.standard_normal(w).astype(np.float32)
    args = [xs, ws]
    b = None
    if kw.get("bias"):
        b = rng.standard_normal(w[0]).astype(np.float32)
        args.append(b)
    got = _run(gpu, nn.conv2d(x, w, "float32", **kw), *args)
    ref = conv_ref(xs, ws, kw.get("strides", (1, 1)), kw.get("pads", (0, 0, 0, 0)), kw.get("dilations", (1, 1)),
                   kw.get("group", 1), b)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * math.sqrt(w[1] * w[2] * w[3]))


def pool_ref(kind: str, x: np.ndarray, k, s, pads=(0, 0, 0, 0), dil=(1, 1), include_pad=False,  # type: ignore[no-untyped-def]
             ceil=False) -> np.ndarray:
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw), (pt, pl, pb, pr) = k, s, dil, pads
    oh, ow = nn.pool_out_size(h, kh, sh, dh, pt, pb, ceil), nn.pool_out_size(w, kw, sw, dw, pl, pr, ceil)
    eh = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - (h + pt + pb))
    ew = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - (w + pl + pr))
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb + eh), (pl, pr + ew)), constant_values=fill)
    ones = np.pad(np.ones((h, w)), ((pt, pb + eh), (pl, pr + ew)))
    acc = np.full((n, c, oh, ow), fill)
    cnt = np.zeros((oh, ow))
    for ky in range(kh):
        for kx in range(kw):
            sl = (slice(ky * dh, ky * dh + sh * (oh - 1) + 1, sh), slice(kx * dw, kx * dw + sw * (ow - 1) + 1, sw))
            win = xp[:, :, sl[0], sl[1]]
            acc = np.maximum(acc, win) if kind == "max" else acc + win
            cnt += ones[sl]
    if kind == "max":
        return acc
    return acc / (kh * kw if include_pad else cnt)


@pytest.mark.parametrize("kind,shape,k,s,extra", [
    ("max", (2, 16, 33, 33), (3, 3), (2, 2), {"pads": (1, 1, 1, 1)}),  # the ResNet stem's
    ("max", (1, 8, 20, 20), (3, 3), (1, 1), {"dil": (2, 2)}),
    ("avg", (2, 16, 30, 30), (3, 3), (1, 1), {"pads": (1, 1, 1, 1)}),
    ("avg", (2, 16, 30, 30), (3, 3), (2, 2), {"pads": (1, 1, 1, 1), "include_pad": True}),
    ("avg", (1, 8, 15, 15), (2, 2), (2, 2), {"ceil": True}),
])
def test_pool2d(gpu, kind, shape, k, s, extra) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    f = nn.pool2d("MaxPool" if kind == "max" else "AveragePool", shape, "float32", k, s,
                  extra.get("pads", (0, 0, 0, 0)), count_include_pad=extra.get("include_pad", False),
                  ceil_mode=extra.get("ceil", False), dilations=extra.get("dil", (1, 1)))
    got = _run(gpu, f, x)
    ref = pool_ref(kind, x, k, s, extra.get("pads", (0, 0, 0, 0)), extra.get("dil", (1, 1)),
                   extra.get("include_pad", False), extra.get("ceil", False))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind,shape", [("GlobalAveragePool", (4, 512, 7, 7)), ("GlobalAveragePool", (2, 64, 56, 56)),
                                        ("GlobalMaxPool", (4, 512, 7, 7)), ("GlobalMaxPool", (2, 64, 30, 30))])
def test_global_pool(gpu, kind, shape) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    got = _run(gpu, nn.global_pool(kind, shape, "float32"), x)
    fn = np.mean if kind == "GlobalAveragePool" else np.max
    np.testing.assert_allclose(got, fn(x.astype(np.float64), axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)


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
