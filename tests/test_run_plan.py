"""The executor's run plan (`runtime.plan`): fixed pointers into a persistent arena give the
same results as the general path, outputs survive later runs, views of inputs and
constant outputs work, and concurrent runs stay correct (one takes the plan, the others
the general path)."""

from __future__ import annotations

import threading

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx_models import bert_style, mobilenet_style
from vta.compiler.graph import import_onnx
from vta.compiler.graph.build import compile_module
from vta.runtime import run_graph
from vta.runtime.plan import run_plan


def _compile(model: onnx.ModelProto, feeds: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    return compile_module(import_onnx(model, {k: v.shape for k, v in feeds.items()}))


def test_plan_matches_the_general_path_and_outputs_survive_later_runs() -> None:
    rng = np.random.default_rng(0)
    exe = _compile(mobilenet_style(), {"input": np.zeros((2, 3, 16, 16), np.float32)})
    xs = [rng.standard_normal((2, 3, 16, 16)).astype(np.float32) for _ in range(3)]
    general = [run_graph(exe, {"input": x}, keep=True)[0] for x in xs]  # keep: the general path
    planned = [run_graph(exe, {"input": x})[0] for x in xs]
    assert run_plan(exe) is not None
    for g, p in zip(general, planned):  # each run's outputs intact after the runs that followed
        for k in g:
            assert np.array_equal(g[k], p[k])
    name = next(iter(planned[0]))
    assert not np.array_equal(planned[0][name], planned[1][name])


def test_views_of_inputs_constant_and_input_outputs() -> None:
    c = np.arange(6, dtype=np.float32).reshape(2, 3)
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"]), helper.make_node("Relu", ["flat"], ["r"]),
             helper.make_node("Identity", ["x"], ["same"]), helper.make_node("Identity", ["c"], ["k"])]
    g = helper.make_graph(nodes, "v", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("r", "same", "k")],
                          [numpy_helper.from_array(np.array([6], np.int64), "shape"), numpy_helper.from_array(c, "c")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    exe = _compile(model, {"x": x})
    for _ in range(2):
        out, _ = run_graph(exe, {"x": x})
        assert out["r"].tolist() == [0, 2, 0, 4, 0, 6]
        assert np.array_equal(out["same"].reshape(2, 3), x) and np.array_equal(out["k"].reshape(2, 3), c)


def test_concurrent_runs() -> None:
    exe = _compile(bert_style(), {"ids": np.zeros((1, 8), np.int64), "mask": np.ones((1, 8), np.int64)})
    rng = np.random.default_rng(1)
    feeds = [{"ids": rng.integers(0, 50, (1, 8)).astype(np.int64), "mask": np.ones((1, 8), np.int64)}
             for _ in range(4)]
    want = [run_graph(exe, f, keep=True)[0] for f in feeds]
    got: dict[int, list[dict[str, np.ndarray]]] = {}

    def work(t: int) -> None:
        got[t] = [run_graph(exe, feeds[(t + i) % 4])[0] for i in range(20)]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t, runs in got.items():
        for i, out in enumerate(runs):
            ref = want[(t + i) % 4]
            for k in ref:
                np.testing.assert_array_equal(out[k], ref[k])
