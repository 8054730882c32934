"""int8 quantization for the accelerator: calibrated from sample inputs, convolutions and
dense layers run on fsim, bit-exact against the numpy fixed-point reference of the same
recipe, and close to the float model; the recipe's pieces (fixed-point multipliers,
activation parameters, conversions that cancel between kernels)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx_models import bert_style, mobilenet_style, resnet_style
from vta.compiler.graph import import_onnx
from vta.compiler.graph.build import compile_module
from vta.compiler.graph.quantize import QParams, fixed_point
from vta.isa import PRESETS
from vta.runtime import calibrate, run_graph


def _compile(model, shape, cfg, n=4, seed=0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    samples = [{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]
    exe = compile_module(import_onnx(model, {"input": shape}), cfg, calibrate(samples))
    return exe, samples


@pytest.mark.parametrize("name", ["default", "batch4", "tiny"])
def test_resnet_style_int8_bit_exact_and_close_to_float(name: str) -> None:
    cfg = PRESETS[name]
    model = resnet_style()
    exe, samples = _compile(model, (2, 3, 16, 16), cfg)
    assert exe.accelerated == 7  # six convolutions and the classifier
    feeds = samples[0]
    out, report = run_graph(exe, feeds)
    ref, _ = run_graph(exe, feeds, reference=True)
    assert np.array_equal(out["prob"], ref["prob"])  # the accelerator computes the recipe exactly
    flt = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    assert np.abs(out["prob"] - flt).max() < 0.02
    assert np.array_equal(out["prob"].argmax(1), flt.argmax(1))
    accel = [r for r in report.ops if r.device.startswith("accel")]
    assert len(accel) == 7 and all(r.cycles and r.dram_bytes for r in accel)


def test_chained_kernels_pass_packed_int8() -> None:
    exe, _ = _compile(resnet_style(), (1, 3, 16, 16), PRESETS["default"])
    ops = [n.op for n in exe.graph.nodes]
    # the first block's two convolutions follow one another with no conversion between them
    i = [n.name for n in exe.graph.nodes].index("conv_3_accel")
    assert exe.graph.nodes[i + 1].op == "AccelConv2d"
    assert ops.count("AccelConv2d") == 6 and ops.count("AccelDense") == 1
    text = str(exe.graph)
    assert "AccelConv2d(%conv_0_yp" in text and "# on accel" in text


def test_mobilenet_keeps_grouped_convolutions_on_the_cpu() -> None:
    cfg = PRESETS["default"]
    rng = np.random.default_rng(3)
    model = mobilenet_style()
    samples = [{"input": rng.standard_normal((2, 3, 16, 16)).astype(np.float32)} for _ in range(3)]
    exe = compile_module(import_onnx(model, {"input": (2, 3, 16, 16)}), cfg, calibrate(samples))
    devices = {n.op: n.device for n in exe.graph.nodes}
    assert devices["AccelConv2d"] == "accel" and devices["Conv"] == "cpu"  # depthwise and grouped stay on the host
    out, _ = run_graph(exe, samples[0])
    ref, _ = run_graph(exe, samples[0], reference=True)
    assert np.array_equal(out["out"], ref["out"])
    flt = ort.InferenceSession(model.SerializeToString()).run(None, samples[0])[0]
    assert np.abs(out["out"] - flt).max() < 0.05 * np.abs(flt).max()


def test_transformer_runs_with_its_dense_layers_quantized_where_2d() -> None:
    rng = np.random.default_rng(4)
    model = bert_style()
    feeds = [{"ids": rng.integers(0, 50, (1, 8)).astype(np.int64), "mask": np.ones((1, 8), np.int64)}
             for _ in range(3)]
    exe = compile_module(import_onnx(model, {"ids": (1, 8), "mask": (1, 8)}), PRESETS["default"], calibrate(feeds))
    out, _ = run_graph(exe, feeds[0])
    flt = ort.InferenceSession(model.SerializeToString()).run(None, feeds[0])[0]
    np.testing.assert_allclose(out["cls"].reshape(flt.shape), flt, rtol=1e-4, atol=1e-4)  # 3-D matmuls stay float


def test_recipe_pieces() -> None:
    q = QParams.of_range(-1.0, 3.0)
    assert q.zero_point == -64 and abs(q.scale - 4 / 255) < 1e-9
    assert QParams.of_range(0.5, 2.0).zero_point == -128  # the range always holds 0
    m, s = fixed_point(0.0123, 1 << 20)
    assert m < (1 << 11) and abs(m / 2 ** s - 0.0123) / 0.0123 < 1e-3
    m, s = fixed_point(0.37, 100)
    assert m <= 32767 and abs(m / 2 ** s - 0.37) < 1e-4


def test_narrow_accumulators_are_refused() -> None:
    import dataclasses

    from vta.compiler.graph import GraphError

    cfg = dataclasses.replace(PRESETS["tiny"], acc_width=16)
    with pytest.raises(GraphError, match=r"int8 quantization needs 32-bit accumulators; config .* has 16-bit ones"):
        _compile(resnet_style(), (1, 3, 16, 16), cfg)
