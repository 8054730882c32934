"""Imported QDQ models (written by onnxruntime's quantization tool) honoured exactly: their
convolutions and dense layers run on the accelerator with the model's own scales, zero
points, int8 weights and int32 biases; each one's int8 result is within one step of ONNX's
exact (float) requantization, and the whole model agrees with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from vta.compiler.accel.reference import conv2d_nchw, unpack
from vta.compiler.accel.schedules import Conv2d
from vta.compiler.graph import import_onnx
from vta.compiler.graph.build import compile_module
from vta.isa import PRESETS
from vta.runtime import run_graph

DATA = Path(__file__).resolve().parents[1] / "vta" / "data"


def _qdq_digits(tmp_path: Path, act: str, per_channel: bool = False) -> tuple[onnx.ModelProto, np.ndarray]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    d = np.load(DATA / "digits_samples.npz")
    m = onnx.load(str(DATA / "digits_cnn.onnx"))
    for vi in (m.graph.input[0], m.graph.output[0]):
        vi.type.tensor_type.shape.dim[0].dim_value = 64
    onnx.save(m, str(tmp_path / "f.onnx"))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"image": d["calibration"].astype(np.float32)}])

        def get_next(self):  # type: ignore[no-untyped-def]
            return next(self.items, None)

    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=getattr(QuantType, act), weight_type=QuantType.QInt8, per_channel=per_channel)
    return onnx.load(str(tmp_path / "q.onnx")), d["image"].astype(np.float32)


@pytest.mark.parametrize("act,per_channel", [("QInt8", False), ("QUInt8", False), ("QInt8", True)])
def test_qdq_model_on_the_accelerator(tmp_path: Path, act: str, per_channel: bool) -> None:
    model, x = _qdq_digits(tmp_path, act, per_channel)
    exe = compile_module(import_onnx(model, {"image": x.shape}), PRESETS["default"])  # no calibration needed
    assert exe.accelerated == 3
    assert all(st.node.attrs["epilogue"].per_channel == per_channel for st in exe.steps if st.kind == "accel")
    out, rep = run_graph(exe, {"image": x}, keep=True)
    ref, _ = run_graph(exe, {"image": x}, reference=True)
    assert np.array_equal(out["prob"], ref["prob"])
    onnx_out = ort.InferenceSession(model.SerializeToString()).run(None, {"image": x})[0]
    assert (out["prob"].argmax(1) == onnx_out.argmax(1)).mean() >= 0.98
    # each accelerator kernel against ONNX's exact requantization of the same accumulators
    for st in (s for s in exe.steps if s.kind == "accel"):
        a = st.node.attrs
        xq = unpack(rep.values[st.args[0].name]).astype(np.int64)
        w = unpack(a["weights"]).astype(np.int64)
        wl, ep = a["workload"], a["epilogue"]
        if isinstance(wl, Conv2d):
            acc = conv2d_nchw(xq, w, wl.stride, wl.pad, 1, wl.pad_value) + a["bias"][None, :, None, None]
            scale = a["onnx_scale"][None, :, None, None]
        else:
            acc = xq @ w.T + a["bias"][None, :]
            scale = a["onnx_scale"][None, :]
        lo = ep.zero_point if ep.relu else -128
        exact = np.clip(np.round(acc * scale) + ep.zero_point, lo, 127)
        got = unpack(rep.values[st.node.outputs[0].name]).astype(np.int64)
        assert np.abs(got - exact).max() <= 1, st.node.name
