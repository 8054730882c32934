"""Small models built with onnx.helper (random weights): a ResNet-style CNN, a
MobileNet-style CNN (depthwise and grouped convolutions, concat, resize, hard-swish) and a
BERT-style encoder (embedding gather, attention with a mask, layer norm, GELU)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _w(rng: np.random.Generator, name: str, *shape: int, scale: float = 0.2) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes: list, name: str, inputs: list, outputs: list, inits: list) -> onnx.ModelProto:  # type: ignore[type-arg]
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 9  # what onnxruntime reads
    onnx.checker.check_model(m)
    return m


def resnet_style(seed: int = 0, classes: int = 10) -> onnx.ModelProto:
    """conv-bn-relu stem, two residual blocks (one strided with a 1x1 projection), pool, fc, softmax."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def conv_bn(x: str, out: str, cin: int, cout: int, k: int, s: int, relu: bool = True) -> str:
        inits.extend([_w(rng, f"{out}_w", cout, cin, k, k, scale=1 / np.sqrt(cin * k * k)),
                      _w(rng, f"{out}_g", cout, scale=0.1), _w(rng, f"{out}_b", cout, scale=0.1),
                      _w(rng, f"{out}_m", cout, scale=0.1),
                      numpy_helper.from_array((rng.random(cout) + 0.5).astype(np.float32), f"{out}_v")])
        nodes.append(helper.make_node("Conv", [x, f"{out}_w"], [f"{out}_c"], kernel_shape=[k, k], strides=[s, s],
                                      pads=[k // 2] * 4))
        nodes.append(helper.make_node("BatchNormalization", [f"{out}_c", f"{out}_g", f"{out}_b", f"{out}_m",
                                                             f"{out}_v"], [f"{out}_n" if relu else out]))
        if relu:
            nodes.append(helper.make_node("Relu", [f"{out}_n"], [out]))
        return out

    x = conv_bn("input", "stem", 3, 16, 3, 1)
    a = conv_bn(x, "b1a", 16, 16, 3, 1)
    b = conv_bn(a, "b1b", 16, 16, 3, 1, relu=False)
    nodes += [helper.make_node("Add", [b, x], ["b1s"]), helper.make_node("Relu", ["b1s"], ["b1"])]
    a = conv_bn("b1", "b2a", 16, 32, 3, 2)
    b = conv_bn(a, "b2b", 32, 32, 3, 1, relu=False)
    p = conv_bn("b1", "b2p", 16, 32, 1, 2, relu=False)
    nodes += [helper.make_node("Add", [b, p], ["b2s"]), helper.make_node("Relu", ["b2s"], ["b2"]),
              helper.make_node("GlobalAveragePool", ["b2"], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
              helper.make_node("Softmax", ["logits"], ["prob"], axis=1)]
    inits += [_w(rng, "fc_w", classes, 32), _w(rng, "fc_b", classes)]
    return _model(nodes, "resnet_style", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
                  [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", classes])], inits)


def mobilenet_style(seed: int = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = [_w(rng, "w0", 16, 3, 3, 3, scale=0.3), _w(rng, "b0", 16), _w(rng, "dw", 16, 1, 3, 3, scale=0.4),
             _w(rng, "pw", 24, 16, 1, 1, scale=0.3), _w(rng, "gw", 24, 6, 3, 3, scale=0.2),
             _w(rng, "fc", 5, 6), numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    nodes = [
        helper.make_node("Conv", ["input", "w0", "b0"], ["c0"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c0"], ["h0"]),
        helper.make_node("Conv", ["h0", "dw"], ["d1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=16),
        helper.make_node("Clip", ["d1", "lo", "hi"], ["r1"]),
        helper.make_node("Conv", ["r1", "pw"], ["p1"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["p1", "gw"], ["g1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("AveragePool", ["g1"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["ap", "", "scales"], ["up"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Concat", ["up", "g1"], ["cat"], axis=1),
        helper.make_node("ReduceMean", ["cat"], ["rm"], axes=[2, 3], keepdims=0),
        helper.make_node("Slice", ["rm", "st", "en", "ax"], ["sl"]),
        helper.make_node("Reshape", ["sl", "shp"], ["rs"]),
        helper.make_node("MatMul", ["rs", "fc"], ["out"]),
    ]
    inits += [numpy_helper.from_array(np.array(0.0, np.float32), "lo"), numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
              numpy_helper.from_array(np.array([0], np.int64), "st"), numpy_helper.from_array(np.array([40], np.int64), "en"),
              numpy_helper.from_array(np.array([1], np.int64), "ax"), numpy_helper.from_array(np.array([-1, 8, 5], np.int64), "shp")]
    return _model(nodes, "mobilenet_style", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 3, 16, 16])],
                  [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 8, 6])], inits)


def bert_style(seed: int = 2, vocab: int = 50, seq: int = 8, hidden: int = 32, heads: int = 4) -> onnx.ModelProto:
    """One encoder layer: embeddings + positions, layer norm, masked multi-head attention, GELU MLP."""
    rng = np.random.default_rng(seed)
    dh = hidden // heads
    inits = [_w(rng, "emb", vocab, hidden), _w(rng, "pos", seq, hidden), _w(rng, "ln0_g", hidden, scale=1.0),
             _w(rng, "ln0_b", hidden), _w(rng, "wq", hidden, hidden), _w(rng, "wk", hidden, hidden),
             _w(rng, "wv", hidden, hidden), _w(rng, "wo", hidden, hidden), _w(rng, "bq", hidden),
             _w(rng, "ln1_g", hidden, scale=1.0), _w(rng, "ln1_b", hidden), _w(rng, "w1", hidden, 4 * hidden),
             _w(rng, "b1", 4 * hidden), _w(rng, "w2", 4 * hidden, hidden), _w(rng, "ln2_g", hidden, scale=1.0),
             _w(rng, "ln2_b", hidden),
             numpy_helper.from_array(np.array([0, seq, heads, dh], np.int64), "split_heads"),
             numpy_helper.from_array(np.array([0, seq, hidden], np.int64), "merge_heads"),
             numpy_helper.from_array(np.array(1 / np.sqrt(dh), np.float32), "scale"),
             numpy_helper.from_array(np.array(-1e4, np.float32), "neg"),
             numpy_helper.from_array(np.array(np.sqrt(0.5), np.float32), "rsqrt2"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array(0, np.int64), "zero")]
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["tok"]),
        helper.make_node("Add", ["tok", "pos"], ["e0"]),
        helper.make_node("LayerNormalization", ["e0", "ln0_g", "ln0_b"], ["x0"], axis=-1, epsilon=1e-5),
    ]
    for nm, w in (("q", "wq"), ("k", "wk"), ("v", "wv")):
        nodes.append(helper.make_node("MatMul", ["x0", w], [f"{nm}0"]))
        src = f"{nm}0"
        if nm == "q":
            nodes.append(helper.make_node("Add", ["q0", "bq"], ["q0b"]))
            src = "q0b"
        nodes.append(helper.make_node("Reshape", [src, "split_heads"], [f"{nm}1"]))
        nodes.append(helper.make_node("Transpose", [f"{nm}1"], [f"{nm}h"], perm=[0, 2, 3, 1] if nm == "k" else [0, 2, 1, 3]))
    nodes += [
        helper.make_node("MatMul", ["qh", "kh"], ["s0"]),
        helper.make_node("Mul", ["s0", "scale"], ["s1"]),
        helper.make_node("Equal", ["mask", "zero"], ["pad"]),
        helper.make_node("Unsqueeze", ["pad", "uax"], ["pad4"]),
        helper.make_node("Where", ["pad4", "neg", "s1"], ["s2"]),
        helper.make_node("Softmax", ["s2"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "vh"], ["ctx0"]),
        helper.make_node("Transpose", ["ctx0"], ["ctx1"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx1", "merge_heads"], ["ctx"]),
        helper.make_node("MatMul", ["ctx", "wo"], ["att"]),
        helper.make_node("Add", ["att", "x0"], ["r1"]),
        helper.make_node("LayerNormalization", ["r1", "ln1_g", "ln1_b"], ["x1"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["x1", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Mul", ["h1", "rsqrt2"], ["h2"]),
        helper.make_node("Erf", ["h2"], ["h3"]),
        helper.make_node("Add", ["h3", "one"], ["h4"]),
        helper.make_node("Mul", ["h1", "h4"], ["h5"]),
        helper.make_node("Mul", ["h5", "half"], ["h6"]),
        helper.make_node("MatMul", ["h6", "w2"], ["h7"]),
        helper.make_node("Add", ["h7", "x1"], ["r2"]),
        helper.make_node("LayerNormalization", ["r2", "ln2_g", "ln2_b"], ["hidden"], axis=-1, epsilon=1e-5),
        helper.make_node("Slice", ["hidden", "c0", "c1", "c_ax"], ["cls"]),
    ]
    inits += [numpy_helper.from_array(np.array([1, 2], np.int64), "uax"),
              numpy_helper.from_array(np.array([0], np.int64), "c0"), numpy_helper.from_array(np.array([1], np.int64), "c1"),
              numpy_helper.from_array(np.array([1], np.int64), "c_ax")]
    return _model(nodes, "bert_style", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", seq]),
                                        helper.make_tensor_value_info("mask", TensorProto.INT64, ["B", seq])],
                  [helper.make_tensor_value_info("cls", TensorProto.FLOAT, ["B", 1, hidden])], inits)


def resnet18(seed: int = 0, classes: int = 1000, size: int = 224) -> onnx.ModelProto:
    """ResNet-18 (torchvision's layout: 7x7 stem, max pool, four stages of two basic blocks,
    global pool, fc) with random weights and batch-norm statistics."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = [0]

    def conv_bn(x: str, cin: int, cout: int, k: int, s: int, relu: bool) -> str:
        count[0] += 1
        n = f"c{count[0]}"
        inits.extend([_w(rng, f"{n}_w", cout, cin, k, k, scale=np.sqrt(2 / (cin * k * k))),
                      numpy_helper.from_array((1 + 0.1 * rng.standard_normal(cout)).astype(np.float32), f"{n}_g"),
                      _w(rng, f"{n}_b", cout, scale=0.1), _w(rng, f"{n}_m", cout, scale=0.1),
                      numpy_helper.from_array((rng.random(cout) + 0.5).astype(np.float32), f"{n}_v")])
        nodes.append(helper.make_node("Conv", [x, f"{n}_w"], [f"{n}_c"], kernel_shape=[k, k], strides=[s, s],
                                      pads=[k // 2] * 4))
        nodes.append(helper.make_node("BatchNormalization", [f"{n}_c", f"{n}_g", f"{n}_b", f"{n}_m", f"{n}_v"],
                                      [f"{n}_n" if relu else n]))
        if relu:
            nodes.append(helper.make_node("Relu", [f"{n}_n"], [n]))
        return n

    x = conv_bn("input", 3, 64, 7, 2, True)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = "pool", 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for block in range(2):
            s = 2 if stage > 0 and block == 0 else 1
            a = conv_bn(x, cin, cout, 3, s, True)
            b = conv_bn(a, cout, cout, 3, 1, False)
            short = conv_bn(x, cin, cout, 1, s, False) if (s != 1 or cin != cout) else x
            out = f"s{stage}b{block}"
            nodes += [helper.make_node("Add", [b, short], [f"{out}_sum"]), helper.make_node("Relu", [f"{out}_sum"], [out])]
            x, cin = out, cout
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1)]
    inits += [_w(rng, "fc_w", classes, 512, scale=0.05), _w(rng, "fc_b", classes)]
    return _model(nodes, "resnet18", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], inits)
