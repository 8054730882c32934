"""ResNet-18 (224x224, batch 1, random weights) through the whole compiler: compile time
(calibration included), end-to-end `vta run` wall time on fsim (and the RTL with --rtl),
accelerator cycles and GEMM utilization, and where the time goes; onnxruntime on the float
model in the same run as the peer.

    python benchmarks/resnet18_model.py [--config default] [--rtl] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from onnx_models import resnet18  # noqa: E402

from vta.compiler.graph import import_onnx  # noqa: E402
from vta.compiler.graph.build import compile_module  # noqa: E402
from vta.isa import resolve  # noqa: E402
from vta.runtime import calibrate, run_graph  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="default")
    ap.add_argument("--rtl", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cfg = resolve(a.config)
    model = resnet18()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    t0 = time.perf_counter()
    exe = compile_module(import_onnx(model, {"input": x.shape}), cfg, calibrate([{"input": x}]))
    compile_s = time.perf_counter() - t0
    rows = {"config": cfg.name, "compile_s": round(compile_s, 2), "accelerated_ops": exe.accelerated,
            "host_kernels": exe.kernels}
    for target in ["fsim"] + (["rtl"] if a.rtl else []):
        t0 = time.perf_counter()
        out, rep = run_graph(exe, {"input": x}, target=target)
        wall = time.perf_counter() - t0
        accel = [r for r in rep.ops if r.cycles]
        macs = sum(st.node.attrs["workload"].macs for st in exe.steps if st.kind == "accel")
        rows[target] = {"wall_s": round(wall, 2), "accel_cycles": rep.accel_cycles,
                        "gemm_utilization": round(macs / cfg.macs_per_cycle / rep.accel_cycles, 3),
                        "accel_ms_at_clock": round(rep.accel_cycles / cfg.clock_mhz / 1e3, 2),
                        "time_by_device_s": {k: round(v, 2) for k, v in rep.by_device().items()},
                        "accel_ops": len(accel)}
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString())
    ref = sess.run(None, {"input": x})[0]
    t0 = time.perf_counter()
    sess.run(None, {"input": x})
    rows["onnxruntime_float_s"] = round(time.perf_counter() - t0, 3)
    rows["top1_agrees_with_float"] = bool(out["logits"].argmax() == ref.argmax())
    rows["max_logit_diff_over_range"] = round(float(np.abs(out["logits"] - ref).max() / np.ptp(ref)), 4)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
