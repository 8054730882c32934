"""ONNX models through the graph compiler on the CPU backend, against onnxruntime: a
ResNet-style and a MobileNet-style CNN and a BERT-style encoder; the printed graph; the
pass pipeline; and the errors bad models and bad inputs get."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx_models import bert_style, mobilenet_style, resnet_style
from vta.compiler.graph import GraphError, import_onnx
from vta.compiler.graph.build import compile_module
from vta.runtime import run_graph


def _compare(model: onnx.ModelProto, feeds: dict[str, np.ndarray], rtol: float = 1e-4, atol: float = 1e-5) -> None:
    ref = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    mod = import_onnx(model, {k: v.shape for k, v in feeds.items()})
    exe = compile_module(mod)
    outs, report = run_graph(exe, feeds)
    for r, (name, got) in zip(ref, outs.items()):
        np.testing.assert_allclose(got.reshape(r.shape), r, rtol=rtol, atol=atol, err_msg=name)
    assert report.ops and all(op.device in ("cpu", "view") for op in report.ops)


def test_resnet_style_matches_onnxruntime() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    _compare(resnet_style(), {"input": x})


def test_mobilenet_style_matches_onnxruntime() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    _compare(mobilenet_style(), {"input": x})


def test_bert_style_matches_onnxruntime() -> None:
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 50, (2, 8)).astype(np.int64)
    mask = np.ones((2, 8), np.int64)
    mask[1, 5:] = 0
    _compare(bert_style(), {"ids": ids, "mask": mask}, rtol=1e-4, atol=1e-4)


def test_printed_graph_and_dump_after() -> None:
    mod = import_onnx(resnet_style())
    text = str(mod)
    assert "def main(%input: float32[N, 3, 16, 16]) -> (%prob: float32[N, 10]):" in text
    assert "%stem_c = Conv(%input, @stem_w, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]) : " \
           "float32[N, 16, 16, 16]" in text
    dumps: list[str] = []
    compile_module(import_onnx(resnet_style(), {"input": (1, 3, 16, 16)}), dump_after={"fold_constants"},
                   out=dumps.append)
    assert dumps and dumps[0].startswith("# after fold_constants")
    with pytest.raises(GraphError, match="no pass 'fuse_everything'; passes in order: check_inference, import_qdq, split_variadic, fold_constants"):
        compile_module(import_onnx(resnet_style(), {"input": (1, 3, 16, 16)}), dump_after={"fuse_everything"})


def test_bad_models(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = resnet_style().SerializeToString()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(GraphError, match="cut.onnx: not a valid ONNX model"):
        import_onnx(p)
    with pytest.raises(GraphError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx")
    m = resnet_style()
    m.graph.node[3].op_type = "FancyConv"
    with pytest.raises(GraphError, match=r"node #3: op FancyConv is not supported; supported ops: Abs, Add"):
        import_onnx(m)
    with pytest.raises(GraphError, match="model has no input 'image'; inputs: input"):
        import_onnx(resnet_style(), {"image": (1, 3, 16, 16)})
    with pytest.raises(GraphError, match=r"input input: shape \[1, 3, 8, 8\] does not match the model's"):
        import_onnx(resnet_style(), {"input": (1, 3, 8, 8)})


def test_bad_inputs() -> None:
    exe = compile_module(import_onnx(resnet_style(), {"input": (1, 3, 16, 16)}))
    x = np.zeros((1, 3, 16, 16), np.float32)
    with pytest.raises(GraphError, match="missing input input"):
        run_graph(exe, {})
    with pytest.raises(GraphError, match=r"input input: expected float32\[1, 3, 16, 16\], got float64.*wrong dtype"):
        run_graph(exe, {"input": x.astype(np.float64)})
    with pytest.raises(GraphError, match=r"got float32\[1, 3, 8, 16\] \(wrong shape\)"):
        run_graph(exe, {"input": x[:, :, :8]})
    with pytest.raises(GraphError, match="unknown input\\(s\\) extra"):
        run_graph(exe, {"input": x, "extra": x})
    with pytest.raises(GraphError, match="output stem_c has type float32\\[N, 16, 16, 16\\]; every shape must be static"):
        compile_module(import_onnx(resnet_style()))


def test_memory_plan_reuses_bytes_without_overlapping_live_values() -> None:
    exe = compile_module(import_onnx(resnet_style(), {"input": (2, 3, 16, 16)}))
    g = exe.graph
    assert g.plan and 0 < g.arena_bytes
    total = sum(nb for _, nb in {v: g.plan[v] for v in g.plan}.values())
    assert g.arena_bytes < 0.6 * total  # reuse
    index = {v.name: i for i, n in enumerate(g.nodes) for v in n.outputs}
    last = {}
    for i, n in enumerate(g.nodes):
        for v in n.inputs:
            if v is not None:
                last[v.name] = i
    live = [(name, index[name], last.get(name, len(g.nodes)), *g.plan[name]) for name in g.plan if name in index]
    for a in live:
        for b in live:
            if a[0] < b[0] and a[1] <= b[2] and b[1] <= a[2] and g.plan[a[0]] != g.plan[b[0]]:
                assert a[3] + a[4] <= b[3] or b[3] + b[4] <= a[3], (a, b)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    planned, _ = run_graph(exe, {"input": x})
    fresh, _ = run_graph(exe, {"input": x}, keep=True)  # keep: every value in its own array
    assert np.array_equal(planned["prob"], fresh["prob"])


def test_softmax_before_opset_13_normalizes_the_trailing_dimensions() -> None:
    from onnx import TensorProto, helper

    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    g = helper.make_graph([node], "old", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])
    m.ir_version = 7
    x = np.random.default_rng(6).standard_normal((2, 3, 4)).astype(np.float32)
    ref = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    out, _ = run_graph(compile_module(import_onnx(m)), {"x": x})
    np.testing.assert_allclose(out["y"], ref, rtol=1e-5, atol=1e-7)
    assert np.allclose(out["y"].reshape(2, -1).sum(1), 1)  # over all of (3, 4), not along axis 1 alone
