"""Operators whose further outputs are used (MaxPool's Indices, LayerNormalization's Mean and
InvStdDev, TopK's Indices, Dropout's mask, BatchNormalization's running statistics in
training mode), through the public path: import, compile, run on the run plan (twice) and on
the general path (``keep``), against onnxruntime and ONNX's reference implementation; an
artifact round trip; and clear refusals."""

from __future__ import annotations

import json
import zipfile
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from vta.compiler import artifact
from vta.compiler.graph import GraphError, import_onnx
from vta.compiler.graph.build import Executable, compile_module
from vta.compiler.graph.ir import Node, Value
from vta.compiler.graph.ops import kernel_of
from vta.runtime import run_graph

F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, tuple[int, ...]], outputs: dict[str, int],
           inits: dict[str, np.ndarray] | None = None, opset: int = 17) -> onnx.ModelProto:
    """A float-input model of ``nodes``; the graph outputs by name and element type."""
    g = helper.make_graph(nodes, "multi", [helper.make_tensor_value_info(k, F, list(s)) for k, s in inputs.items()],
                          [helper.make_tensor_value_info(k, t, None) for k, t in outputs.items()],
                          [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    return m


def _ort(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _ref(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    outs = ReferenceEvaluator(m).run(None, feeds)
    return {o.name: np.asarray(a) for o, a in zip(m.graph.output, outs)}


def _compile(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> Executable:
    return compile_module(import_onnx(m, {k: v.shape for k, v in feeds.items()}))


def _same(got: dict[str, np.ndarray], want: dict[str, np.ndarray], atol: float) -> None:
    assert set(got) == set(want)
    for k, w in want.items():
        g = got[k]
        assert g.shape == w.shape and g.dtype == w.dtype, (k, g.dtype, g.shape, w.dtype, w.shape)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=atol, err_msg=k)
        else:
            assert np.array_equal(g, w), k


def _check(m: onnx.ModelProto, feeds: dict[str, np.ndarray], want: dict[str, np.ndarray],
           atol: float = 1e-5) -> Executable:
    """Run twice on the run plan and once on the general path; every output as ``want``. The
    plan's outputs are fresh arrays each run, and the general path reports every value it
    computed (the further outputs too)."""
    exe = _compile(m, feeds)
    first, _ = run_graph(exe, feeds)
    assert getattr(exe, "_run_plan", None) is not None  # the run took the plan
    second, _ = run_graph(exe, feeds)
    kept, rep = run_graph(exe, feeds, keep=True)
    for got in (first, second, kept):
        _same(got, want, atol)
    assert all(first[k] is not second[k] and not np.shares_memory(first[k], second[k]) for k in want)
    for st in exe.steps:  # every output a step wrote
        assert all(v.name in rep.values for v in st.outs), st.node.name
    return exe


def _ties(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Small integers as float32: many equal values, so tie-breaking is exercised."""
    return rng.integers(-3, 4, shape).astype(np.float32)


MAXPOOLS = [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [2, 2], "strides": [1, 1], "dilations": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [0, 1, 1, 0], "storage_order": 1},
    {"kernel_shape": [3, 2], "strides": [2, 2], "dilations": [1, 2], "pads": [1, 0, 1, 1], "ceil_mode": 1,
     "storage_order": 1},
    {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
]


@pytest.mark.parametrize("attrs", MAXPOOLS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_maxpool_indices(attrs: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    x = _ties(rng, 2, 3, 9, 8)
    m = _model([helper.make_node("MaxPool", ["x"], ["y", "i"], **attrs),
                helper.make_node("Cast", ["i"], ["fi"], to=F),
                helper.make_node("Add", ["y", "fi"], ["z"])],  # the indices feed another operator
               {"x": x.shape}, {"y": F, "i": I64, "z": F})
    want = _ort(m, {"x": x})
    assert np.array_equal(want["i"], _ref(m, {"x": x})["i"])  # the two references agree on the ties
    _check(m, {"x": x}, want)


def test_maxpool_with_and_without_indices_in_one_graph() -> None:
    """Two pools of the same shape, one with its indices used: different kernels, both right."""
    x = _ties(np.random.default_rng(2), 1, 4, 10, 10)
    pool = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    m = _model([helper.make_node("MaxPool", ["x"], ["a"], **pool),
                helper.make_node("MaxPool", ["x"], ["b", "bi"], **pool),
                helper.make_node("Sub", ["a", "b"], ["d"])],
               {"x": x.shape}, {"d": F, "bi": I64})
    exe = _check(m, {"x": x}, _ort(m, {"x": x}))
    assert [len(st.outs) for st in exe.steps] == [1, 2, 1]


@pytest.mark.parametrize("shape,axis", [((2, 3, 8), -1), ((2, 3, 4, 5), 1), ((3, 6), 0), ((4, 6), -2)])
def test_layer_norm_statistics(shape: tuple[int, ...], axis: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32) * 3 + 1
    inner = shape[axis % len(shape):]
    inits = {"s": rng.standard_normal(inner).astype(np.float32), "b": rng.standard_normal(inner).astype(np.float32)}
    m = _model([helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "mean", "inv"], axis=axis,
                                 epsilon=1e-4),
                helper.make_node("Mul", ["y", "inv"], ["z"])],  # InvStdDev broadcasts over its row
               {"x": shape}, {"y": F, "mean": F, "inv": F, "z": F}, inits)
    want = _ort(m, {"x": x})
    kept = tuple(d if k < axis % len(shape) else 1 for k, d in enumerate(shape))
    assert want["mean"].shape == want["inv"].shape == kept  # the normalized axes kept as 1
    _check(m, {"x": x}, want)


def test_layer_norm_one_statistic_with_the_other_omitted() -> None:
    """Outputs Y, (omitted), InvStdDev: only the used ones are computed."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 10)).astype(np.float32)
    m = _model([helper.make_node("LayerNormalization", ["x", "s"], ["y", "", "inv"])],
               {"x": x.shape}, {"y": F, "inv": F}, {"s": rng.standard_normal(10).astype(np.float32)})
    exe = _check(m, {"x": x}, _ort(m, {"x": x}))
    assert [v.name for v in exe.steps[0].outs] == ["y", "inv"]


TOPKS = [((3, 7), 3, -1, 1, 1), ((5, 4, 3), 2, 0, 0, 1), ((3, 6), 6, 1, 1, 1), ((2, 9, 3), 4, 1, 1, 0)]


@pytest.mark.parametrize("shape,k,axis,largest,sort", TOPKS)
def test_topk(shape: tuple[int, ...], k: int, axis: int, largest: int, sort: int) -> None:
    x = _ties(np.random.default_rng(5), *shape)
    m = _model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest, sorted=sort),
                helper.make_node("Cast", ["i"], ["fi"], to=F),
                helper.make_node("Mul", ["v", "fi"], ["z"])],
               {"x": shape}, {"v": F, "i": I64, "z": F}, {"k": np.array([k], np.int64)})
    # unsorted (sorted=0) leaves the order open: the reference's sorted order is one of them, and ours
    _check(m, {"x": x}, _ref(m, {"x": x}) if not sort else _ort(m, {"x": x}))


def test_topk_nan_orders_as_onnxruntime() -> None:
    x = np.array([[1, np.nan, 3, 2, np.nan, 0, 3]], np.float32)
    for largest in (1, 0):
        m = _model([helper.make_node("TopK", ["x", "k"], ["v", "i"], largest=largest)],
                   {"x": x.shape}, {"v": F, "i": I64}, {"k": np.array([5], np.int64)})
        want = _ort(m, {"x": x})
        got, _ = run_graph(_compile(m, {"x": x}), {"x": x})
        assert np.array_equal(got["v"], want["v"], equal_nan=True) and np.array_equal(got["i"], want["i"])


def test_topk_values_only() -> None:
    x = np.random.default_rng(6).standard_normal((4, 50)).astype(np.float32)
    m = _model([helper.make_node("TopK", ["x", "k"], ["v", "i"])], {"x": x.shape}, {"v": F},
               {"k": np.array([5], np.int64)})
    _check(m, {"x": x}, {"v": _ort(m, {"x": x})["v"]})


@pytest.mark.parametrize("opset,ratio", [(13, None), (13, 0.3), (10, None), (7, 0.2)])
def test_dropout_mask(opset: int, ratio: float | None) -> None:
    """An inference Dropout's mask is all true (before opset 10 it has the input's type: ones),
    as ONNX's reference has it; onnxruntime agrees from opset 12 on (before, its mask is all
    false or zero)."""
    x = np.random.default_rng(7).standard_normal((2, 3, 5)).astype(np.float32)
    inits = {"r": np.array(ratio, np.float32)} if ratio is not None and opset >= 12 else {}
    ins = ["x", "r"] if inits else ["x"]
    attrs = {"ratio": ratio} if ratio is not None and opset < 12 else {}
    use = helper.make_node("Where", ["mask", "ny", "x"], ["z"]) if opset >= 10 else \
        helper.make_node("Mul", ["mask", "ny"], ["z"])  # the mask feeds another operator
    m = _model([helper.make_node("Dropout", ins, ["y", "mask"], **attrs), helper.make_node("Neg", ["y"], ["ny"]), use],
               {"x": x.shape}, {"y": F, "mask": BOOL if opset >= 10 else F, "z": F}, inits, opset)
    if opset >= 10:
        want = _ort(m, {"x": x}) if opset >= 12 else _ref(m, {"x": x})
    else:  # the spec's mask type is the input's here, but ONNX's reference returns bool
        want = {"y": x, "mask": np.ones_like(x), "z": -x}
    assert want["mask"].all()
    exe = _check(m, {"x": x}, want)
    assert exe.steps[0].kind == "view"  # Dropout moves no data; its mask is a constant


def test_dropout_training_with_zero_ratio_drops_nothing() -> None:
    x = np.random.default_rng(8).standard_normal((4, 6)).astype(np.float32)
    m = _model([helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])], {"x": x.shape},
               {"y": F, "mask": BOOL}, {"r": np.array(0.0, np.float32), "t": np.array(True)}, 13)
    _check(m, {"x": x}, _ref(m, {"x": x}))
    m = _model([helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])], {"x": x.shape},
               {"y": F, "mask": BOOL}, {"r": np.array(0.5, np.float32), "t": np.array(True)}, 13)
    with pytest.raises(GraphError, match=r"\(Dropout\): training mode is not supported"):
        _compile(m, {"x": x})


@pytest.mark.parametrize("shape,outs,returned", [((4, 3, 5, 6), ["y", "rm", "rv"], ["y", "rm", "rv"]),
                                                 ((8, 5), ["y", "", "rv"], ["y", "rv"]),
                                                 ((2, 3, 4), ["y", "rm", "rv"], ["y"])])
def test_batch_norm_training(shape: tuple[int, ...], outs: list[str], returned: list[str]) -> None:
    """Training mode normalizes with the batch's statistics and updates the running ones."""
    rng = np.random.default_rng(9)
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32) * 2 + 0.5
    inits = {"g": rng.standard_normal(c).astype(np.float32), "b": rng.standard_normal(c).astype(np.float32),
             "mu": rng.standard_normal(c).astype(np.float32), "var": rng.random(c).astype(np.float32) + 0.5}
    m = _model([helper.make_node("BatchNormalization", ["x", "g", "b", "mu", "var"], outs, training_mode=1,
                                 momentum=0.8),
                helper.make_node("Relu", ["y"], ["z"])],
               {"x": shape}, {**{k: F for k in returned}, "z": F}, inits, 15)
    want = _ref(m, {"x": x})
    if "" not in outs:  # (onnxruntime crashes on an omitted statistic)
        _same(_ort(m, {"x": x}), want, 1e-5)  # both references agree
    exe = _check(m, {"x": x}, want, atol=1e-4)
    assert [v.name for v in exe.steps[0].outs] == returned  # the unused statistics are not computed


def test_batch_norm_training_after_conv_does_not_fold() -> None:
    """Folding into a convolution's weights uses the given statistics: wrong in training mode."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    inits = {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3, "g": np.ones(4, np.float32),
             "b": np.zeros(4, np.float32), "mu": np.full(4, 5.0, np.float32), "var": np.full(4, 9.0, np.float32)}
    m = _model([helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
                helper.make_node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["y", "rm", "rv"],
                                 training_mode=1)],
               {"x": x.shape}, {"y": F}, inits, 15)
    exe = _check(m, {"x": x}, _ref(m, {"x": x}), atol=1e-4)
    assert [st.node.op for st in exe.steps] == ["Conv", "BatchNormalization"]


def test_multi_output_artifact_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    m = _model([helper.make_node("MaxPool", ["x"], ["p", "pi"], kernel_shape=[2, 2], strides=[2, 2]),
                helper.make_node("LayerNormalization", ["p", "s"], ["y", "mean", "inv"], axis=2),
                helper.make_node("TopK", ["y", "k"], ["v", "vi"], axis=-1)],
               {"x": x.shape}, {"pi": I64, "mean": F, "inv": F, "v": F, "vi": I64},
               {"s": rng.standard_normal((4, 4)).astype(np.float32), "k": np.array([2], np.int64)})
    want = _ort(m, {"x": x})
    exe = _check(m, {"x": x}, want)
    path = tmp_path / "multi.vtapkg"
    artifact.save(exe, path)
    again = artifact.load(path)
    assert [[v.name for v in st.outs] for st in again.steps] == [["p", "pi"], ["y", "mean", "inv"], ["v", "vi"]]
    for _ in range(2):
        got, _ = run_graph(again, {"x": x})
        _same(got, want, 1e-5)
    got, _ = run_graph(again, {"x": x}, keep=True)
    _same(got, want, 1e-5)

    # a step that lost its outputs (a format-2 artifact's steps write one) no longer fits its kernel
    cut = tmp_path / "cut.vtapkg"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(cut, "w") as out:
        for item in z.namelist():
            data = z.read(item)
            if item == "model.json":
                meta = json.loads(data)
                meta["format_version"] = 2
                for s in meta["steps"]:
                    del s["outputs"]
                data = json.dumps(meta).encode()
            out.writestr(item, data)
    with pytest.raises(GraphError, match=r"step of node maxpool_0: host kernel 0 takes 3 arrays.*1 input\(s\) and "
                                         r"1 output\(s\)"):
        artifact.load(cut)


def test_inference_batch_norm_statistics_are_refused() -> None:
    """Before opset 14 a BatchNormalization may list its statistics outputs; without training
    mode they are not defined."""
    x = np.ones((2, 3, 4, 4), np.float32)
    inits = {k: np.ones(3, np.float32) for k in ("g", "b", "mu", "var")}
    m = _model([helper.make_node("BatchNormalization", ["x", "g", "b", "mu", "var"], ["y", "m1", "v1", "sm", "sv"])],
               {"x": x.shape}, {"y": F, "m1": F}, inits, 9)
    m.graph.value_info.extend(helper.make_tensor_value_info(k, F, [3]) for k in ("m1", "v1", "sm", "sv"))
    with pytest.raises(GraphError, match=r"node batchnormalization_0 \(BatchNormalization\): output\(s\) m1 are "
                                         r"defined only in training mode"):
        _compile(m, {"x": x})


def test_layer_norm_other_stash_type_is_refused() -> None:
    x = np.ones((2, 4), np.float32)
    m = _model([helper.make_node("LayerNormalization", ["x", "s"], ["y"], stash_type=11)], {"x": x.shape},
               {"y": F}, {"s": np.ones(4, np.float32)})
    with pytest.raises(GraphError, match=r"\(LayerNormalization\): stash_type 11 is not supported"):
        _compile(m, {"x": x})


def test_extra_output_of_a_single_output_kernel_is_refused() -> None:
    x = Value("x", "float32", (2, 3))
    n = Node("Relu", [x], [Value("y", "float32", (2, 3)), Value("extra", "float32", (2, 3))], name="r")
    assert len(kernel_of(n)[0].params) == 2
    with pytest.raises(GraphError, match=r"node r \(Relu\): output\(s\) extra are not supported"):
        kernel_of(n, (0, 1))
    with pytest.raises(GraphError, match=r"outputs \[1\] are not ascending indices"):
        kernel_of(n, (1,))
