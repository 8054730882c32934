"""The host operator library (`tir.nn`) compiled for the CPU, against numpy with ONNX
semantics: elementwise with broadcasting, reductions, softmax, layer norm, matmul/gemm,
convolution and pooling, and the data-movement operators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vta.compiler.cpu import compile_cpu
from vta.compiler.tir import nn

RNG = np.random.default_rng(0)


def _run(func, *inputs: np.ndarray) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    from vta.compiler.tir.interp import numpy_dtype

    outs = [np.zeros(tuple(d.value for d in p.shape), numpy_dtype(p.dtype)) for p in func.params[len(inputs):]]
    compile_cpu(func)(*[np.ascontiguousarray(x) for x in inputs], *outs)
    return outs


def _f(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("op", sorted(set(nn.UNARY) - {"Not", "Log", "Sqrt"}))
def test_unary(op: str) -> None:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    x = _f(3, 17)
    ref = {"Relu": np.maximum(x, 0), "Sigmoid": 1 / (1 + np.exp(-x)), "Tanh": np.tanh(x), "Exp": np.exp(x),
           "Abs": np.abs(x), "Neg": -x, "Erf": erf(x), "Gelu": x * 0.5 * (1 + erf(x / math.sqrt(2))),
           "Floor": np.floor(x), "Ceil": np.ceil(x), "Round": np.round(x), "Reciprocal": 1 / x, "Identity": x,
           "Sin": np.sin(x), "Cos": np.cos(x), "Softplus": np.log1p(np.exp(x)),
           "HardSigmoid": np.clip(x * 0.2 + 0.5, 0, 1), "HardSwish": x * np.clip(x / 6 + 0.5, 0, 1)}[op]
    (y,) = _run(nn.unary(op, x.shape, "float32"), x)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_unary_with_attributes_and_cast() -> None:
    x = _f(40)
    (y,) = _run(nn.unary("LeakyRelu", x.shape, "float32", alpha=0.1), x)
    np.testing.assert_allclose(y, np.where(x < 0, 0.1 * x, x), rtol=1e-6)
    (y,) = _run(nn.unary("Clip", x.shape, "float32", min=-0.5, max=0.5), x)
    np.testing.assert_allclose(y, np.clip(x, -0.5, 0.5))
    (y,) = _run(nn.cast(x.shape, "float32", "int32"), x * 10)
    assert np.array_equal(y, (x * 10).astype(np.int32))  # toward zero


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Less", "Equal"])
@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (5, 2))])
def test_binary_broadcasting(op: str, shapes: tuple) -> None:  # type: ignore[type-arg]
    a, b = np.abs(_f(*shapes[0])) + 0.5, np.abs(_f(*shapes[1])) + 0.5
    ref = {"Add": a + b, "Sub": a - b, "Mul": a * b, "Div": a / b, "Max": np.maximum(a, b), "Min": np.minimum(a, b),
           "Pow": a ** b, "Less": a < b, "Equal": a == np.round(b)}[op]
    if op == "Equal":
        b = np.round(b).astype(np.float32)
    (y,) = _run(nn.binary(op, a.shape, b.shape, "float32"), a, b)
    np.testing.assert_allclose(y, ref, rtol=2e-6)


def test_integer_division_truncates() -> None:
    a = np.array([7, -7, 7, -7, 0], np.int32)
    b = np.array([2, 2, -2, -2, 3], np.int32)
    (y,) = _run(nn.binary("Div", a.shape, b.shape, "int32"), a, b)
    assert y.tolist() == [3, -3, -3, 3, 0]


def test_where() -> None:
    cond = RNG.random((3, 4)) > 0.5
    x, y = _f(3, 4), _f(4)
    (z,) = _run(nn.where(cond.shape, x.shape, y.shape, "float32"), cond, x, y)
    np.testing.assert_array_equal(z, np.where(cond, x, y))


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL2"])
@pytest.mark.parametrize("axes,keep", [([1], True), ([0, 2], False), (None, True), ([-1], False)])
def test_reduce(op: str, axes: list[int] | None, keep: bool) -> None:
    x = _f(3, 4, 5)
    ax = tuple(axes) if axes is not None else None
    ref = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max, "ReduceMin": np.min,
           "ReduceSumSquare": lambda v, axis, keepdims: np.sum(v * v, axis=axis, keepdims=keepdims),
           "ReduceL2": lambda v, axis, keepdims: np.sqrt(np.sum(v * v, axis=axis, keepdims=keepdims))}[op](
        x, axis=ax, keepdims=keep)
    (y,) = _run(nn.reduce(op, x.shape, "float32", axes, keep), x)
    np.testing.assert_allclose(y.reshape(np.shape(ref)), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_and_log_softmax(axis: int) -> None:
    x = _f(3, 5, 7) * 4
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    (y,) = _run(nn.softmax(x.shape, "float32", axis), x)
    np.testing.assert_allclose(y, e / e.sum(axis=axis, keepdims=True), rtol=1e-5, atol=1e-7)
    (y,) = _run(nn.softmax(x.shape, "float32", axis, log=True), x)
    np.testing.assert_allclose(y, np.log(e / e.sum(axis=axis, keepdims=True)), rtol=1e-5, atol=1e-5)


def test_layer_norm() -> None:
    x, g, b = _f(2, 3, 16), _f(16), _f(16)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    (y,) = _run(nn.layer_norm(x.shape, "float32", -1, 1e-5), x, g, b)
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5) * g + b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shapes", [((4, 6), (6, 5)), ((2, 4, 6), (6, 3)), ((2, 1, 4, 6), (3, 6, 2)), ((6,), (6, 4)),
                                    ((3, 6), (6,))])
def test_matmul(shapes: tuple) -> None:  # type: ignore[type-arg]
    a, b = _f(*shapes[0]), _f(*shapes[1])
    (y,) = _run(nn.matmul(a.shape, b.shape, "float32"), a, b)
    np.testing.assert_allclose(y.reshape(np.matmul(a, b).shape), np.matmul(a, b), rtol=1e-5, atol=1e-5)


def test_matmul_int8_accumulates_in_int32_and_gemm() -> None:
    a = RNG.integers(-128, 128, (5, 9)).astype(np.int8)
    b = RNG.integers(-128, 128, (9, 4)).astype(np.int8)
    (y,) = _run(nn.matmul(a.shape, b.shape, "int8", "int32"), a, b)
    assert np.array_equal(y, a.astype(np.int32) @ b.astype(np.int32))
    x, w, c = _f(4, 6), _f(5, 6), _f(5)
    (y,) = _run(nn.gemm(x.shape, w.shape, c.shape, "float32", alpha=0.5, beta=2.0, trans_b=True), x, w, c)
    np.testing.assert_allclose(y, 0.5 * x @ w.T + 2 * c, rtol=1e-5, atol=1e-5)


def _conv_ref(x, w, b, strides, pads, dil, group):  # type: ignore[no-untyped-def]
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // group
    for oc in range(o):
        g = oc // og
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, ky * dil[0]:ky * dil[0] + strides[0] * oh:strides[0],
                           kx * dil[1]:kx * dil[1] + strides[1] * ow:strides[1]]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, ky, kx])
    return out + b[None, :, None, None]


@pytest.mark.parametrize("strides,pads,dil,group", [((1, 1), (1, 1, 1, 1), (1, 1), 1), ((2, 2), (0, 1, 2, 1), (1, 1), 2),
                                                    ((1, 2), (2, 2, 2, 2), (2, 1), 4)])
def test_conv2d(strides, pads, dil, group) -> None:  # type: ignore[no-untyped-def]
    x, w, b = _f(2, 4, 7, 8), _f(8, 4 // group, 3, 3), _f(8)
    (y,) = _run(nn.conv2d(x.shape, w.shape, "float32", strides, pads, dil, group, bias=True), x, w, b)
    np.testing.assert_allclose(y, _conv_ref(x, w, b, strides, pads, dil, group), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("include", [False, True])
def test_pools(include: bool) -> None:
    x = _f(1, 2, 7, 6)
    (y,) = _run(nn.pool2d("MaxPool", x.shape, "float32", (3, 3), (2, 2), (1, 1, 1, 1)), x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    ref = np.stack([np.stack([xp[:, :, i * 2:i * 2 + 3, j * 2:j * 2 + 3].max((2, 3)) for j in range(3)], -1)
                    for i in range(4)], -2)
    np.testing.assert_allclose(y, ref)
    (y,) = _run(nn.pool2d("AveragePool", x.shape, "float32", (3, 3), (2, 2), (1, 1, 1, 1), include), x)
    xz = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones_like(x), ((0, 0), (0, 0), (1, 1), (1, 1)))
    s = np.stack([np.stack([xz[:, :, i * 2:i * 2 + 3, j * 2:j * 2 + 3].sum((2, 3)) for j in range(3)], -1)
                  for i in range(4)], -2)
    cnt = 9 if include else np.stack([np.stack([ones[:, :, i * 2:i * 2 + 3, j * 2:j * 2 + 3].sum((2, 3))
                                                for j in range(3)], -1) for i in range(4)], -2)
    np.testing.assert_allclose(y, s / cnt, rtol=1e-5)
    (y,) = _run(nn.global_pool("GlobalAveragePool", x.shape, "float32"), x)
    np.testing.assert_allclose(y, x.mean((2, 3), keepdims=True), rtol=1e-5)


def test_data_movement() -> None:
    x = _f(2, 3, 4)
    (y,) = _run(nn.transpose(x.shape, "float32", (2, 0, 1)), x)
    np.testing.assert_array_equal(y, x.transpose(2, 0, 1))
    (y,) = _run(nn.reshape(x.shape, (4, 6), "float32"), x)
    np.testing.assert_array_equal(y, x.reshape(4, 6))
    z = _f(2, 5, 4)
    (y,) = _run(nn.concat([x.shape, z.shape], "float32", 1), x, z)
    np.testing.assert_array_equal(y, np.concatenate([x, z], 1))
    (y,) = _run(nn.slice_(x.shape, "float32", [0, -1], [2, -4], [1, 2], [2, -1]), x)
    np.testing.assert_array_equal(y, x[:, 0:2:2, -1:-4:-1])
    idx = np.array([[2, 0], [-1, 1]], np.int64)
    (y,) = _run(nn.gather(x.shape, "float32", idx.shape, "int64", 1), x, idx)
    np.testing.assert_array_equal(y, np.take(x, idx % 3, axis=1))
    (y,) = _run(nn.pad(x.shape, "float32", [0, 1, 2, 1, 0, 1], 7.0), x)
    np.testing.assert_array_equal(y, np.pad(x, ((0, 1), (1, 0), (2, 1)), constant_values=7))
    img = x[:1, :2, :3].reshape(1, 1, 2, 3).copy()
    (y,) = _run(nn.resize_nearest((1, 1, 2, 3), "float32", (1, 1, 4, 6)), img)
    np.testing.assert_array_equal(y, img.repeat(2, 2).repeat(2, 3))
    (y,) = _run(nn.expand((3, 1), "float32", (2, 3, 4)), x[0, :, :1].copy())
    np.testing.assert_array_equal(y, np.broadcast_to(x[0, :, :1], (2, 3, 4)))


def test_batch_norm() -> None:
    x, g, b, m, v = _f(2, 3, 4, 4), _f(3), _f(3), _f(3), np.abs(_f(3)) + 0.1
    (y,) = _run(nn.batch_norm(x.shape, "float32", 1e-3), x, g, b, m, v)
    r = lambda a: a[None, :, None, None]
    np.testing.assert_allclose(y, (x - r(m)) / np.sqrt(r(v) + 1e-3) * r(g) + r(b), rtol=1e-5, atol=1e-5)
