"""ONNX Resize on the CPU backend through the public path (import, compile, run) against ONNX's
reference implementation and onnxruntime: every mode, nearest rounding and coordinate
transformation, up- and downsampling by integer and fractional factors, sizes with each
keep_aspect_ratio_policy, axes, antialias, cubic options, tf_crop_and_resize, other ranks,
integer inputs, Resize-10, and clear refusals.

onnxruntime measures some coordinates against the integer output width where the reference
uses the fractional one (``scale · size``): the comparisons with onnxruntime use factors whose
output widths are whole numbers."""

from __future__ import annotations

import itertools

import os
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from vta.compiler.graph import import_onnx
from vta.compiler.graph.build import compile_module
from vta.compiler.graph.ir import GraphError
from vta.runtime import run_graph

_ELEM = {np.float32: TensorProto.FLOAT, np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8}


def _model(shape: tuple[int, ...], attrs: dict[str, object], scales: list[float] | None = None,
           sizes: list[int] | None = None, roi: list[float] | None = None, dtype: type = np.float32,
           opset: int = 19, nodes: int = 1) -> onnx.ModelProto:
    """A model of ``nodes`` Resize nodes of input ``x``, with constant roi/scales/sizes (Resize-10:
    inputs x and scales only), outputs ``y0``, ``y1``..."""
    inits, ins = [], ["x"]
    for name, v, dt in (("roi", roi, np.float32), ("scales", scales, np.float32), ("sizes", sizes, np.int64)):
        if opset == 10 and name != "scales":
            continue
        ins.append(name if v is not None else "")
        if v is not None:
            inits.append(numpy_helper.from_array(np.array(v, dt), name))
    while ins[-1] == "":
        ins.pop()
    elem = _ELEM[dtype]
    ns = [helper.make_node("Resize", ins, [f"y{k}"], name=f"resize{k}", **attrs) for k in range(nodes)]
    g = helper.make_graph(ns, "resize", [helper.make_tensor_value_info("x", elem, list(shape))],
                          [helper.make_tensor_value_info(f"y{k}", elem, None) for k in range(nodes)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9 if opset >= 19 else 8
    return m


def _data(shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """Random data seeded by the test's id: the same whatever order (or worker) tests run in."""
    rng = np.random.default_rng(zlib.crc32(os.environ.get("PYTEST_CURRENT_TEST", "").encode()))
    if dtype == np.float32:
        return rng.standard_normal(shape).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)


def _ours(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    exe = compile_module(import_onnx(m, {"x": x.shape}))
    outs, _ = run_graph(exe, {"x": x})
    return outs["y0"]


def _reference(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(m).run(None, {"x": x})[0]


def _ort(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _check(m: onnx.ModelProto, x: np.ndarray, ort: bool = False, tol: float = 1e-5) -> np.ndarray:
    """Ours against the reference (and onnxruntime): same shape and dtype, values within ``tol``."""
    y = _ours(m, x)
    refs = [_reference(m, x)] + ([_ort(m, x)] if ort else [])
    for ref in refs:
        assert y.shape == ref.shape and y.dtype == ref.dtype
        np.testing.assert_allclose(y.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol)
    return y


def _grid(*axes: list) -> list[tuple]:  # type: ignore[type-arg]
    return list(itertools.product(*axes))


COORDS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]
SCALES = {"up2x3": [1, 1, 2, 3], "down": [1, 1, 0.6, 0.45], "mixed": [1, 1, 1.7, 0.8]}


@pytest.mark.parametrize("mode,coord,scales", _grid(["nearest", "linear", "cubic"], COORDS, list(SCALES)))
def test_modes_and_coordinates(mode: str, coord: str, scales: str) -> None:
    """Every mode under every coordinate transformation, up, down and by fractional factors."""
    x = _data((1, 2, 5, 7))
    m = _model(x.shape, {"mode": mode, "coordinate_transformation_mode": coord}, SCALES[scales])
    _check(m, x, tol=0 if mode == "nearest" else 1e-5)  # nearest gathers: exactly the same values


@pytest.mark.parametrize("mode,coord,scales", _grid(
    ["nearest", "linear", "cubic"], ["half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"],
    [[1, 1, 2, 1.5], [1, 1, 0.6, 0.5]]))
def test_against_onnxruntime(mode: str, coord: str, scales: list[float]) -> None:
    """Whole output widths: onnxruntime agrees with the reference, and with us."""
    x = _data((1, 2, 5, 6))
    _check(_model(x.shape, {"mode": mode, "coordinate_transformation_mode": coord}, scales), x, ort=True, tol=1e-4)


@pytest.mark.parametrize("nearest_mode,coord", _grid(
    ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"], ["half_pixel", "align_corners", "asymmetric"]))
def test_nearest_rounding(nearest_mode: str, coord: str) -> None:
    """Each rounding of nearest, with sizes that land on ties (7 from 2, 3 from 8)."""
    x = _data((1, 1, 2, 8))
    m = _model(x.shape, {"mode": "nearest", "coordinate_transformation_mode": coord, "nearest_mode": nearest_mode},
               sizes=[1, 1, 7, 3])
    y = _check(m, x, ort=True, tol=0)
    assert y.shape == (1, 1, 7, 3)


@pytest.mark.parametrize("policy,mode", _grid(["stretch", "not_larger", "not_smaller"],
                                                          ["nearest", "linear"]))
def test_sizes_keep_aspect_ratio(policy: str, mode: str) -> None:
    """Sizes over two of the axes, with each keep_aspect_ratio_policy."""
    x = _data((2, 3, 4, 6))
    m = _model(x.shape, {"mode": mode, "keep_aspect_ratio_policy": policy, "axes": [2, 3]}, sizes=[7, 9])
    y = _check(m, x, ort=True)
    assert y.shape[2:] == {"stretch": (7, 9), "not_larger": (6, 9), "not_smaller": (7, 11)}[policy]


@pytest.mark.parametrize("mode,scales", _grid(["linear", "cubic"],
                                                          [[1, 1, 0.5, 0.3], [1, 1, 0.75, 1.5], [1, 1, 0.25, 0.2]]))
def test_antialias(mode: str, scales: list[float]) -> None:
    """Antialiasing filters stretched by the downsampling factor (and plain filters upsampling)."""
    x = _data((1, 2, 8, 10))
    _check(_model(x.shape, {"mode": mode, "antialias": 1}, scales), x, ort=True, tol=1e-4)


@pytest.mark.parametrize("a,exclude,scales", _grid([-0.5, -0.75], [0, 1], [[1, 1, 2, 2], [1, 1, 0.5, 0.75]]))
def test_cubic_options(a: float, exclude: int, scales: list[float]) -> None:
    x = _data((1, 1, 4, 8))
    _check(_model(x.shape, {"mode": "cubic", "cubic_coeff_a": a, "exclude_outside": exclude}, scales), x, ort=True,
           tol=1e-4)


@pytest.mark.parametrize("mode,axes", _grid(["nearest", "linear", "cubic"], [None, [3, 2]]))
def test_tf_crop_and_resize(mode: str, axes: list[int] | None) -> None:
    """A region of interest reaching outside the input: those outputs take extrapolation_value."""
    x = _data((1, 2, 5, 6))
    roi = [-0.2, 0.3, 1.1, 0.9] if axes else [0, 0, -0.2, 0.3, 1, 1, 1.1, 0.9]
    attrs: dict[str, object] = {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize",
                                "extrapolation_value": 10.0}
    if axes:
        attrs["axes"] = axes
    y = _check(_model(x.shape, attrs, sizes=[4, 7] if axes else [1, 2, 7, 4], roi=roi), x, ort=True, tol=1e-4)
    assert (y == 10.0).any() and (y != 10.0).any()


@pytest.mark.parametrize("shape,attrs,scales", [
    ((3, 9), {"mode": "linear"}, [1, 0.5]),
    ((2, 4, 7), {"mode": "cubic", "axes": [2]}, [1.6]),
    ((1, 1, 3, 4, 5), {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, [1, 1, 2, 0.5, 1.4]),
    ((1, 2, 3, 4, 5), {"mode": "nearest", "axes": [4, 2]}, [0.6, 2.5]),
    ((2, 3, 4), {"mode": "nearest"}, [2, 1, 0.5]),  # a batch axis too
])
def test_ranks_and_axes(shape: tuple[int, ...], attrs: dict[str, object], scales: list[float]) -> None:
    _check(_model(shape, attrs, scales), _data(shape))


def test_negative_axes() -> None:
    """axes=[-1] is the last axis (the reference takes only non-negative axes: compare with [2])."""
    x = _data((2, 4, 7))
    y = _ours(_model(x.shape, {"mode": "cubic", "axes": [-1]}, [1.6]), x)
    np.testing.assert_allclose(y, _reference(_model(x.shape, {"mode": "cubic", "axes": [2]}, [1.6]), x),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,mode", [(np.uint8, "nearest"), (np.int8, "nearest"), (np.uint8, "linear"),
                                        (np.int8, "cubic")])
def test_integers(dtype: type, mode: str) -> None:
    """Nearest gathers integers exactly; linear and cubic round half to even and saturate, as
    the reference. Cubic is within 1: the reference computes its cubic weights in float32,
    these kernels in float64, so a sum at a rounding tie may land either side."""
    x = _data((1, 3, 6, 5), dtype)
    m = _model(x.shape, {"mode": mode}, [1, 1, 1.5, 0.6], dtype=dtype)
    y = _ours(m, x)
    ref = _reference(m, x)
    assert y.dtype == dtype
    if mode == "cubic":
        diff = np.abs(y.astype(np.int64) - ref.astype(np.int64))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.05
    else:
        np.testing.assert_array_equal(y, ref)
    if mode == "nearest":
        np.testing.assert_array_equal(y, _ort(m, x))


@pytest.mark.parametrize("mode,scales", _grid(["nearest", "linear"], [[1, 1, 2, 3], [1, 1, 0.6, 0.5],
                                                                                  [1, 1, 1.5, 0.8]]))
def test_resize_10(mode: str, scales: list[float]) -> None:
    """Resize-10 (X and scales): asymmetric coordinates; nearest floors upsampling and rounds
    up downsampling, as onnxruntime does (the reference has no Resize-10)."""
    x = _data((1, 2, 5, 10))
    m = _model(x.shape, {"mode": mode}, scales, opset=10)
    mod = import_onnx(m, {"x": x.shape})
    for _ in range(2):  # a second compile sees the node with its tables attached: still Resize-10
        outs, _ = run_graph(compile_module(mod), {"x": x})
        np.testing.assert_allclose(outs["y0"], _ort(m, x), rtol=1e-5, atol=1e-6)


def test_tables_are_kernel_inputs() -> None:
    """Two Resize nodes of the same shapes share one compiled kernel and differ only in their
    constant tables; compiling twice does not grow the nodes' inputs."""
    x = _data((1, 2, 4, 5))
    m = _model(x.shape, {"mode": "linear"}, [1, 1, 2, 1.5], nodes=2)
    m.graph.node[1].attribute.append(helper.make_attribute("coordinate_transformation_mode", "align_corners"))
    mod = import_onnx(m, {"x": x.shape})
    exe = compile_module(mod)
    assert exe.kernels == 1
    outs, _ = run_graph(exe, {"x": x})
    from onnx.reference import ReferenceEvaluator

    ref = ReferenceEvaluator(m).run(None, {"x": x})
    np.testing.assert_allclose(outs["y0"], ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs["y1"], ref[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(outs["y0"], outs["y1"])
    n_inputs = [len(n.inputs) for n in mod.main.nodes]
    compile_module(mod)
    assert [len(n.inputs) for n in mod.main.nodes] == n_inputs


def test_refusals() -> None:
    """What stays unsupported is refused with the node, the op and the reason."""
    x = _data((1, 1, 4, 4))
    m = _model(x.shape, {"mode": "nearest", "antialias": 1}, [1, 1, 0.5, 0.5])
    with pytest.raises(GraphError, match=r"node resize0 \(Resize\): antialias is not supported with mode 'nearest'"):
        _ours(m, x)
    # scales computed at run time (a graph input) cannot give static tables
    node = helper.make_node("Resize", ["x", "", "s"], ["y0"], name="resize0", mode="linear")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4]),
                                        helper.make_tensor_value_info("s", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y0", TensorProto.FLOAT, None)])
    dyn = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    with pytest.raises(GraphError, match=r"node resize0 \(Resize\)"):
        compile_module(import_onnx(dyn, {"x": x.shape, "s": (4,)}))
