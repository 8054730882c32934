"""A quantized ONNX model end to end with its accelerator kernels on the RTL under
Verilator: the same bits as fsim and as the numpy fixed-point reference."""

from __future__ import annotations

import numpy as np
from conftest import needs_rtl
from onnx_models import resnet_style
from vta.compiler.graph import import_onnx
from vta.compiler.graph.build import compile_module
from vta.isa import PRESETS
from vta.runtime import calibrate, run_graph

pytestmark = needs_rtl


def test_resnet_style_int8_on_rtl() -> None:
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(5)
    samples = [{"input": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(3)]
    exe = compile_module(import_onnx(resnet_style(), {"input": (1, 3, 16, 16)}), cfg, calibrate(samples))
    on_rtl, rep = run_graph(exe, samples[0], target="rtl")
    on_fsim, _ = run_graph(exe, samples[0])
    ref, _ = run_graph(exe, samples[0], reference=True)
    assert np.array_equal(on_rtl["prob"], on_fsim["prob"]) and np.array_equal(on_rtl["prob"], ref["prob"])
    assert all(r.device == "accel (rtl)" and r.cycles for r in rep.ops if r.op.startswith("Accel"))
