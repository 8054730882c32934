"""The CPU backend against onnxruntime, same machine, same run: single operators (conv,
matmul, softmax, layer norm) and whole float models, each as an ONNX model compiled by
`vta.compiler.graph` (host only) and run by the graph executor, against an onnxruntime
session on the same model with the same thread count. Median of --repeat runs after a
warm-up, each runtime timed alone; outputs are checked to agree.

    python benchmarks/cpu_ops.py [--repeat 7] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from onnx_models import bert_style, mobilenet_style, resnet_style  # noqa: E402

from vta.compiler.graph import import_onnx  # noqa: E402
from vta.compiler.graph.build import compile_module  # noqa: E402
from vta.runtime import run_graph  # noqa: E402


def _single(op: str, inputs: dict[str, tuple[int, ...]], out: tuple[int, ...], inits: dict[str, np.ndarray],
            **attrs: object) -> onnx.ModelProto:
    node = helper.make_node(op, [*inputs, *inits], ["y"], **attrs)
    g = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v))
                                               for k, v in inputs.items()],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out))],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    return m


def cases() -> list[tuple[str, onnx.ModelProto, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    out = [
        ("conv 3x3 32->32 28x28", _single("Conv", {"x": (1, 32, 28, 28)}, (1, 32, 28, 28), {"w": f(32, 32, 3, 3) * 0.1},
                                           kernel_shape=[3, 3], pads=[1, 1, 1, 1]), {"x": f(1, 32, 28, 28)}),
        ("conv 3x3 64->64 56x56", _single("Conv", {"x": (1, 64, 56, 56)}, (1, 64, 56, 56), {"w": f(64, 64, 3, 3) * 0.1},
                                           kernel_shape=[3, 3], pads=[1, 1, 1, 1]), {"x": f(1, 64, 56, 56)}),
        ("depthwise 3x3 64ch 56x56", _single("Conv", {"x": (1, 64, 56, 56)}, (1, 64, 56, 56),
                                              {"w": f(64, 1, 3, 3) * 0.1}, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                              group=64), {"x": f(1, 64, 56, 56)}),
        ("matmul 256x256x256", _single("MatMul", {"a": (256, 256)}, (256, 256), {"b": f(256, 256)}), {"a": f(256, 256)}),
        ("dense 1x512 -> 1000", _single("Gemm", {"a": (1, 512)}, (1, 1000), {"b": f(1000, 512), "c": f(1000)},
                                        transB=1), {"a": f(1, 512)}),
        ("maxpool 3x3/2 64x112x112", _single("MaxPool", {"x": (1, 64, 112, 112)}, (1, 64, 56, 56), {},
                                             kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
         {"x": f(1, 64, 112, 112)}),
        ("erf (gelu) 128x3072", _single("Erf", {"x": (128, 3072)}, (128, 3072), {}), {"x": f(128, 3072)}),
        ("softmax 64x1000", _single("Softmax", {"x": (64, 1000)}, (64, 1000), {}, axis=-1), {"x": f(64, 1000)}),
        ("layernorm 128x768", _single("LayerNormalization", {"x": (128, 768)}, (128, 768),
                                      {"g": f(768), "b": f(768)}, axis=-1), {"x": f(128, 768)}),
        ("model resnet_style 1x3x16x16", resnet_style(), {"input": f(1, 3, 16, 16)}),
        ("model mobilenet_style 2x3x16x16", mobilenet_style(), {"input": f(2, 3, 16, 16)}),
        ("model bert_style 1x8", bert_style(), {"ids": rng.integers(0, 50, (1, 8)).astype(np.int64),
                                                "mask": np.ones((1, 8), np.int64)}),
    ]
    return out


def _median(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median of ``repeat`` timed runs after a warm-up, once the other runtime's threads have
    gone quiet (both spin for a while after a run, and this machine has two cores)."""
    time.sleep(0.05)
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for name, model, feeds in cases():
        t0 = time.perf_counter()
        exe = compile_module(import_onnx(model, {k: v.shape for k, v in feeds.items()}))
        compile_s = time.perf_counter() - t0
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        sess = ort.InferenceSession(model.SerializeToString(), so)
        ours, _ = run_graph(exe, feeds)
        ref = sess.run(None, feeds)[0]
        err = float(np.abs(list(ours.values())[0].reshape(ref.shape) - ref).max())
        t_ours = _median(lambda: run_graph(exe, feeds), a.repeat)
        t_ort = _median(lambda: sess.run(None, feeds), a.repeat)
        rows.append({"case": name, "vta_ms": round(t_ours * 1e3, 3), "onnxruntime_ms": round(t_ort * 1e3, 3),
                     "ratio": round(t_ours / t_ort, 2), "compile_s": round(compile_s, 2), "max_abs_diff": err})
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"threads {a.threads}")
    print("| case | vta CPU (ms) | onnxruntime (ms) | vta / ort | compile (s) | max abs diff |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['vta_ms']} | {r['onnxruntime_ms']} | {r['ratio']}x | {r['compile_s']} | "
              f"{r['max_abs_diff']:.1e} |")


if __name__ == "__main__":
    main()
