"""The graph IR's operators (ONNX semantics and names): attribute defaults, and how each
becomes a host kernel (a loop-IR function from `tir.nn`, over the node's static shapes)
or a *view* (a reshape-like operator that moves no data).

`OPS[op].kernel(node)` returns ``(func, inputs)``: the function and the indices of the
node inputs that are its parameters, in order (inputs read at compile time, such as a
Reshape's target shape or a Slice's bounds, are not parameters). Tables the compiler makes
for a kernel (Resize's taps) are attached to the node as constant inputs after its ONNX
ones (`_attach_consts`) and passed the same way.

A kernel's parameters are those inputs, then its outputs. `kernel` computes the node's first
output; an operator with several outputs (MaxPool's Indices, LayerNormalization's Mean and
InvStdDev, TopK's Indices, BatchNormalization's running statistics in training mode) also has
`multi(node, outputs)`, which computes the outputs of those indices (the first one first,
ascending) in that order (`kernel_of`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vta.compiler.tir import nn
from vta.compiler.tir.stmt import PrimFunc

from .ir import GraphError, Node, Value

Kernel = tuple[PrimFunc, list[int]]


@dataclass(frozen=True)
class OpDef:
    name: str
    kernel: Callable[[Node], Kernel] | None = None  # None: a view (or folded away)
    view: bool = False
    # the kernel of the node's outputs of these indices (0 first, ascending), when it has several
    multi: Callable[[Node, tuple[int, ...]], Kernel] | None = None


def _shape(v: Value | None, node: Node, what: str) -> tuple[int, ...]:
    if v is None:
        raise GraphError(f"node {node.name} ({node.op}): {what} is missing")
    try:
        return v.static_shape()
    except GraphError:
        raise GraphError(f"node {node.name} ({node.op}): {what} {v.name} has no static shape "
                         f"({v.type_str()}); give the model's input shapes") from None


def _const(node: Node, i: int, what: str) -> np.ndarray | None:
    v = node.input(i)
    if v is None:
        return None
    if v.const is None:
        raise GraphError(f"node {node.name} ({node.op}): {what} ({v.name}) must be a constant")
    return v.const


def _dtype(node: Node, i: int = 0) -> str:
    v = node.inputs[i]
    if v is None or v.dtype is None:
        raise GraphError(f"node {node.name} ({node.op}): input {i} has no known dtype")
    return v.dtype


def _out_shape(node: Node, i: int = 0) -> tuple[int, ...]:
    return _shape(node.outputs[i], node, "output")


def _unary(op: str) -> OpDef:
    return OpDef(op, lambda n: (nn.unary(op, _shape(n.inputs[0], n, "input"), _dtype(n), **n.attrs), [0]))


def _binary(op: str) -> OpDef:
    def kernel(n: Node) -> Kernel:
        if len(n.inputs) != 2:
            raise GraphError(f"node {n.name} ({op}): {len(n.inputs)} inputs; the graph compiler splits variadic "
                             "operators into pairs first")
        return nn.binary(op, _shape(n.inputs[0], n, "A"), _shape(n.inputs[1], n, "B"), _dtype(n),
                         bool(n.attrs.get("fmod", 0))), [0, 1]
    return OpDef(op, kernel)


def _clip(n: Node) -> Kernel:
    lo, hi = _const(n, 1, "min"), _const(n, 2, "max")
    attrs = {k: v for k, v in (("min", n.attrs.get("min")), ("max", n.attrs.get("max"))) if v is not None}
    if lo is not None:
        attrs["min"] = float(lo)
    if hi is not None:
        attrs["max"] = float(hi)
    return nn.unary("Clip", _shape(n.inputs[0], n, "input"), _dtype(n), **attrs), [0]


def _reduce(op: str) -> OpDef:
    def kernel(n: Node) -> Kernel:
        axes = n.attrs.get("axes")
        c = _const(n, 1, "axes") if len(n.inputs) > 1 else None
        if c is not None:
            axes = [int(a) for a in c.reshape(-1)]
        if axes is not None and not axes and n.attrs.get("noop_with_empty_axes"):
            return nn.unary("Identity", _shape(n.inputs[0], n, "input"), _dtype(n)), [0]
        return nn.reduce(op, _shape(n.inputs[0], n, "input"), _dtype(n), axes or None,
                         bool(n.attrs.get("keepdims", 1))), [0]
    return OpDef(op, kernel)


def _pads2d(n: Node, x_shape: tuple[int, ...], kernel: tuple[int, int], strides: tuple[int, int],
            dilations: tuple[int, int]) -> tuple[int, int, int, int]:
    auto = n.attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for d in range(2):
            size = x_shape[2 + d]
            out = -(-size // strides[d])
            total = max(0, (out - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - size)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads.append((lo, total - lo))
        return pads[0][0], pads[1][0], pads[0][1], pads[1][1]
    p = list(n.attrs.get("pads", [0, 0, 0, 0]))
    if len(p) != 4:
        raise GraphError(f"node {n.name} ({n.op}): only 2-D pads are supported, got {p}")
    return p[0], p[1], p[2], p[3]


def _conv(n: Node) -> Kernel:
    xs, ws = _shape(n.inputs[0], n, "input"), _shape(n.inputs[1], n, "weights")
    if len(xs) != 4:
        raise GraphError(f"node {n.name} (Conv): only 2-D convolutions are supported, input is {list(xs)}")
    k = tuple(n.attrs.get("kernel_shape", ws[2:]))
    s = tuple(n.attrs.get("strides", [1, 1]))
    d = tuple(n.attrs.get("dilations", [1, 1]))
    pads = _pads2d(n, xs, k, s, d)  # type: ignore[arg-type]
    bias = n.input(2) is not None
    f = nn.conv2d(xs, ws, _dtype(n), s, pads, d, int(n.attrs.get("group", 1)), bias=bias)
    return f, [0, 1, 2] if bias else [0, 1]


def _pool(op: str) -> OpDef:
    def kernel(n: Node, outputs: tuple[int, ...] = (0,)) -> Kernel:
        xs = _shape(n.inputs[0], n, "input")
        k = tuple(n.attrs["kernel_shape"])
        s = tuple(n.attrs.get("strides", [1, 1]))
        d = tuple(n.attrs.get("dilations", [1, 1]))
        if len(k) != 2 or len(xs) != 4:
            raise GraphError(f"node {n.name} ({op}): only 2-D pools are supported, got kernel {list(k)} on input "
                             f"{list(xs)}")
        if op != "MaxPool" and any(x != 1 for x in d):
            raise GraphError(f"node {n.name} ({op}): only 2-D pools without dilation are supported")
        order = int(n.attrs.get("storage_order", 0))
        if order not in (0, 1):
            raise GraphError(f"node {n.name} ({op}): storage_order {order} is not 0 (row-major) or 1 (column-major)")
        pads = _pads2d(n, xs, k, s, d)  # type: ignore[arg-type]
        try:
            return nn.pool2d(op, xs, _dtype(n), k, s, pads, bool(n.attrs.get("count_include_pad", 0)),
                             bool(n.attrs.get("ceil_mode", 0)), d, outputs, order), [0]
        except ValueError as e:  # a window larger than the padded input
            raise GraphError(f"node {n.name} ({op}): {e}") from None
    return OpDef(op, kernel, multi=kernel if op == "MaxPool" else None)


def _gemm(n: Node) -> Kernel:
    a, b = _shape(n.inputs[0], n, "A"), _shape(n.inputs[1], n, "B")
    c = _shape(n.inputs[2], n, "C") if n.input(2) is not None else None
    f = nn.gemm(a, b, c, _dtype(n), float(n.attrs.get("alpha", 1.0)), float(n.attrs.get("beta", 1.0)),
                bool(n.attrs.get("transA", 0)), bool(n.attrs.get("transB", 0)))
    return f, [0, 1, 2] if c is not None else [0, 1]


def _softmax(log: bool) -> Callable[[Node], Kernel]:
    return lambda n: (nn.softmax(_shape(n.inputs[0], n, "input"), _dtype(n), int(n.attrs.get("axis", -1)), log), [0])


def _layer_norm(n: Node, outputs: tuple[int, ...] = (0,)) -> Kernel:
    """LayerNormalization; its Mean and InvStdDev are in the stash type, float32 (the only one)."""
    stash = int(n.attrs.get("stash_type", 1))
    if stash != 1:
        raise GraphError(f"node {n.name} (LayerNormalization): stash_type {stash} is not supported (only 1: "
                         "statistics in float32)")
    bias = n.input(2) is not None
    f = nn.layer_norm(_shape(n.inputs[0], n, "input"), _dtype(n), int(n.attrs.get("axis", -1)),
                      float(n.attrs.get("epsilon", 1e-5)), bias, outputs, "float32")
    return f, [0, 1, 2] if bias else [0, 1]


def _transpose(n: Node) -> Kernel:
    return nn.transpose(_shape(n.inputs[0], n, "input"), _dtype(n), n.attrs.get("perm")), [0]


def _concat(n: Node) -> Kernel:
    shapes = [_shape(v, n, f"input {i}") for i, v in enumerate(n.inputs)]
    return nn.concat(shapes, _dtype(n), int(n.attrs["axis"])), list(range(len(n.inputs)))


def _slice(n: Node) -> Kernel:
    xs = _shape(n.inputs[0], n, "input")
    starts, ends = _const(n, 1, "starts"), _const(n, 2, "ends")
    if starts is None or ends is None:
        raise GraphError(f"node {n.name} (Slice): starts and ends are required")
    axes, steps = _const(n, 3, "axes"), _const(n, 4, "steps")
    big = 1 << 62
    clamp = lambda a: [int(max(min(x, big), -big)) for x in a.reshape(-1)]
    f = nn.slice_(xs, _dtype(n), clamp(starts), clamp(ends), None if axes is None else clamp(axes),
                  None if steps is None else clamp(steps))
    return f, [0]


def _gather(n: Node) -> Kernel:
    return nn.gather(_shape(n.inputs[0], n, "data"), _dtype(n), _shape(n.inputs[1], n, "indices"), _dtype(n, 1),
                     int(n.attrs.get("axis", 0))), [0, 1]


def _where(n: Node) -> Kernel:
    return nn.where(*(_shape(v, n, f"input {i}") for i, v in enumerate(n.inputs)), _dtype(n, 1)), [0, 1, 2]


def _pad(n: Node) -> Kernel:
    if n.attrs.get("mode", "constant") != "constant":
        raise GraphError(f"node {n.name} (Pad): only constant padding is supported")
    if n.input(3) is not None:
        raise GraphError(f"node {n.name} (Pad): the axes input is not supported (pad every axis)")
    pads = _const(n, 1, "pads") if len(n.inputs) > 1 else np.array(n.attrs.get("pads"))
    value = _const(n, 2, "constant_value")
    return nn.pad(_shape(n.inputs[0], n, "input"), _dtype(n), [int(p) for p in pads.reshape(-1)],  # type: ignore[union-attr]
                  0.0 if value is None else float(value.reshape(-1)[0])), [0]


def _attach_consts(n: Node, first: int, consts: Sequence[tuple[str, np.ndarray]]) -> list[int]:
    """Give ``n``'s kernel parameters that the compiler made (lookup tables): they become constant
    inputs of the node from position ``first`` on, after its ONNX inputs (missing ones padded as
    omitted), replacing any attached before (a node's kernel may be built more than once). The
    executor feeds a kernel's parameters from the node's inputs, a constant from its `Value.const`,
    and the artifact saves it with the other constants. Returns their input indices."""
    from .onnx_import import _np_dtype

    vals = [Value(name, _np_dtype(a, name), tuple(a.shape), const=np.ascontiguousarray(a)) for name, a in consts]
    n.inputs = [*(list(n.inputs) + [None] * first)[:first], *vals]
    return list(range(first, first + len(vals)))


def _resize_10(n: Node) -> bool:
    """Whether ``n`` is a Resize-10 (inputs X and scales): from opset 11 on, input 1 is the roi and
    scales or sizes (inputs 2, 3) must be given. (Not the input count: tables attached to the
    node lengthen it.)"""
    return n.input(2) is None and n.input(3) is None


def _resize_mode(n: Node) -> nn.ResizeMode:
    """The sampling attributes; Resize-10 is asymmetric, with onnxruntime's rounding for nearest."""
    a = n.attrs
    v10 = _resize_10(n)
    how = nn.ResizeMode(str(a.get("mode", "nearest")),
                        "asymmetric" if v10 else str(a.get("coordinate_transformation_mode", "half_pixel")),
                        "simple" if v10 else str(a.get("nearest_mode", "round_prefer_floor")),
                        float(a.get("cubic_coeff_a", -0.75)), bool(a.get("exclude_outside", 0)),
                        bool(a.get("antialias", 0)))
    for what, got, known in (("mode", how.mode, nn.RESIZE_MODES[:2] if v10 else nn.RESIZE_MODES),
                             ("coordinate_transformation_mode", how.coordinate, nn.RESIZE_COORDS),
                             ("nearest_mode", how.nearest, nn.RESIZE_NEAREST),
                             ("keep_aspect_ratio_policy", a.get("keep_aspect_ratio_policy", "stretch"),
                              ("stretch", "not_larger", "not_smaller"))):
        if got not in known:
            raise GraphError(f"node {n.name} (Resize): {what} {got!r} is not supported; supported: {', '.join(known)}")
    if how.antialias and how.mode == "nearest":
        raise GraphError(f"node {n.name} (Resize): antialias is not supported with mode 'nearest' (only linear and "
                         "cubic have an antialiasing filter)")
    return how


def _resize_operand(n: Node, i: int, what: str) -> np.ndarray | None:
    """A constant operand (roi, scales, sizes); an empty one counts as omitted."""
    c = _const(n, i, what)
    return None if c is None or c.size == 0 else c.reshape(-1)


def _resize_targets(n: Node, xs: tuple[int, ...]) -> tuple[list[float], list[int], list[int], np.ndarray | None]:
    """Per dimension the scale and output size, the resized axes in the order the reference
    resizes them, and the region of interest over every dimension (starts, then ends), following
    the reference's arithmetic (scales as float32 times sizes in float64; keep_aspect_ratio_policy
    rounds half up)."""
    rank = len(xs)
    v10 = _resize_10(n)
    roi = None if v10 else _resize_operand(n, 1, "roi")
    scales = _resize_operand(n, 1 if v10 else 2, "scales")
    sizes = None if v10 else _resize_operand(n, 3, "sizes")
    if (scales is None) == (sizes is None):
        raise GraphError(f"node {n.name} (Resize): exactly one of scales and sizes must be given")
    axes = [int(d) + rank if int(d) < 0 else int(d) for d in n.attrs.get("axes", range(rank))]
    if sorted(set(axes)) != sorted(axes) or any(not 0 <= d < rank for d in axes):
        raise GraphError(f"node {n.name} (Resize): axes {n.attrs.get('axes')} are not distinct axes of a "
                         f"rank-{rank} input")
    given: np.ndarray = scales if scales is not None else sizes  # type: ignore[assignment]
    if len(given) != len(axes) or (roi is not None and len(roi) != 2 * len(axes)):
        raise GraphError(f"node {n.name} (Resize): {len(given)} scales or sizes and {0 if roi is None else len(roi)} "
                         f"roi values for {len(axes)} resized axes")
    if any(d == 0 for d in xs):
        raise GraphError(f"node {n.name} (Resize): input {list(xs)} is empty")
    full_roi = None
    if roi is not None:
        full_roi = np.concatenate([np.zeros(rank, roi.dtype), np.ones(rank, roi.dtype)])
        for k, d in enumerate(axes):
            full_roi[d], full_roi[rank + d] = roi[k], roi[len(axes) + k]
    scale, out = [1.0] * rank, list(xs)
    if scales is not None:
        for k, d in enumerate(axes):
            scale[d] = float(scales[k])
            out[d] = int(float(scales[k]) * xs[d])
        if any(s <= 0 for s in scale):
            raise GraphError(f"node {n.name} (Resize): scales {scales.tolist()} must be positive")
        return scale, out, axes, full_roi
    for k, d in enumerate(axes):
        out[d] = int(sizes[k])  # type: ignore[index]
        scale[d] = out[d] / xs[d]
    policy = n.attrs.get("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        s = (min if policy == "not_larger" else max)(scale[d] for d in axes)
        for d in axes:
            scale[d], out[d] = s, int(s * xs[d] + 0.5)
    return scale, out, axes, full_roi


def _resize_plan(xs: tuple[int, ...], how: nn.ResizeMode, scale: list[float], out: list[int], axes: list[int],
                 roi: np.ndarray | None) -> list[nn.ResizeAxis]:
    """The taps of every axis that changes, in the reference's order (an axis at scale 1, same
    size and the whole region is left as it is, as the reference leaves it)."""
    rank = len(xs)
    plan = []
    for d in axes:
        lo_hi = None if roi is None else (roi[d], roi[rank + d])
        if math.isclose(scale[d], 1.0) and out[d] == xs[d] and \
                (lo_hi is None or (math.isclose(lo_hi[0], 0.0) and math.isclose(lo_hi[1], 1.0))):
            continue
        plan.append(nn.resize_axis(d, xs[d], out[d], scale[d], how, lo_hi))
    return plan


def _resize(n: Node) -> Kernel:
    """ONNX Resize (opsets 10 to 19): the taps of each resized axis are tables made here, at
    compile time, and attached to the node as constant kernel inputs (`_attach_consts`); the
    kernel (`nn.resize`) gathers and weights."""
    xs, dtype = _shape(n.inputs[0], n, "input"), _dtype(n)
    how = _resize_mode(n)
    if how.mode != "nearest" and dtype == "bool":
        raise GraphError(f"node {n.name} (Resize): mode {how.mode!r} on bool is not supported (only nearest)")
    scale, out, axes, roi = _resize_targets(n, xs)
    if how.coordinate == "tf_crop_and_resize" and roi is None:
        raise GraphError(f"node {n.name} (Resize): tf_crop_and_resize needs the roi input")
    if any(o == 0 for o in out):
        raise GraphError(f"node {n.name} (Resize): the output {out} is empty")
    if tuple(out) != _out_shape(n):
        raise GraphError(f"node {n.name} (Resize): its output should be {out}, shape inference says "
                         f"{list(_out_shape(n))}")
    plan = _resize_plan(xs, how, scale, out, axes, roi)
    args = _attach_consts(n, 4, [(f"{n.name}_{k}", a) for k, a in nn.resize_params(plan, dtype)])
    return nn.resize(xs, dtype, tuple(out), plan, float(n.attrs.get("extrapolation_value", 0.0))), [0, *args]


def _cast(n: Node) -> Kernel:
    from .onnx_import import _DTYPES

    return nn.cast(_shape(n.inputs[0], n, "input"), _dtype(n), _DTYPES[int(n.attrs["to"])]), [0]


def _batch_norm(n: Node, outputs: tuple[int, ...] = (0,)) -> Kernel:
    """BatchNormalization: with the given statistics (inference), or in training mode (opset 14
    on) with the batch's, where its running_mean and running_var outputs are defined."""
    xs, dt, eps = _shape(n.inputs[0], n, "input"), _dtype(n), float(n.attrs.get("epsilon", 1e-5))
    extra = ", ".join(n.outputs[i].name for i in outputs[1:])
    if not int(n.attrs.get("training_mode", 0)):
        if extra:
            raise GraphError(f"node {n.name} (BatchNormalization): output(s) {extra} are defined only in training "
                             "mode (training_mode=1, opset 14 on); this node normalizes with its given statistics")
        return nn.batch_norm(xs, dt, eps), [0, 1, 2, 3, 4]
    if any(i > 2 for i in outputs):
        raise GraphError(f"node {n.name} (BatchNormalization): output(s) {extra} are not supported (training mode "
                         "has Y, running_mean and running_var)")
    return nn.batch_norm_training(xs, dt, eps, float(n.attrs.get("momentum", 0.9)), outputs), [0, 1, 2, 3, 4]


def _topk(n: Node, outputs: tuple[int, ...] = (0,)) -> Kernel:
    """TopK (K an input from opset 10 on, an attribute before); values sorted whatever ``sorted`` says."""
    xs = _shape(n.inputs[0], n, "input")
    kc = _const(n, 1, "K")
    if kc is None and "k" not in n.attrs:
        raise GraphError(f"node {n.name} (TopK): K is missing")
    if kc is not None and kc.size != 1:
        raise GraphError(f"node {n.name} (TopK): K must hold one value, got shape {list(kc.shape)}")
    k = int(kc.reshape(-1)[0]) if kc is not None else int(n.attrs["k"])
    axis = int(n.attrs.get("axis", -1))
    if not -len(xs) <= axis < len(xs):
        raise GraphError(f"node {n.name} (TopK): axis {axis} is out of range for input {list(xs)}")
    if not 1 <= k <= xs[axis]:
        raise GraphError(f"node {n.name} (TopK): K {k} must be between 1 and {xs[axis]} (the length of axis {axis})")
    return nn.topk(xs, _dtype(n), k, axis, bool(n.attrs.get("largest", 1)), outputs), [0]


def _global_pool(op: str) -> OpDef:
    return OpDef(op, lambda n: (nn.global_pool(op, _shape(n.inputs[0], n, "input"), _dtype(n)), [0]))


def _expand(n: Node) -> Kernel:
    return nn.expand(_shape(n.inputs[0], n, "input"), _dtype(n), _out_shape(n)), [0]


def _matmul(n: Node) -> Kernel:
    return nn.matmul(_shape(n.inputs[0], n, "A"), _shape(n.inputs[1], n, "B"), _dtype(n)), [0, 1]


def _qdq(n: Node, quantize: bool) -> Kernel:
    """QuantizeLinear / DequantizeLinear: scale and zero point as (1,)-shaped or per-axis parameters."""
    from .ir import Value

    xs = _shape(n.inputs[0], n, "input")
    scale = n.inputs[1]
    zp = n.input(2)
    s_shape = _shape(scale, n, "scale") or (1,)
    if len(s_shape) > 1:
        raise GraphError(f"node {n.name} ({n.op}): blocked quantization is not supported")
    s_shape = s_shape or (1,)
    if quantize:
        out_dt = zp.dtype if zp is not None else _dtype_name(n.attrs.get("output_dtype", 2))
    else:
        out_dt = n.outputs[0].dtype or "float32"
    if zp is None:  # an implicit zero point: materialize it as a constant input
        zdt = out_dt if quantize else _dtype(n)
        zp = Value(f"{n.name}_zero", zdt, s_shape, const=np.zeros(s_shape, {"int8": np.int8, "uint8": np.uint8,
                                                                          "int32": np.int32, "int16": np.int16}[zdt]))
        n.inputs = [n.inputs[0], scale, zp]
    if scale.const is not None and scale.const.ndim == 0:  # type: ignore[union-attr]
        scale.const = scale.const.reshape(1)  # type: ignore[union-attr]
    if zp.const is not None and zp.const.ndim == 0:
        zp.const = zp.const.reshape(1)
    axis = int(n.attrs.get("axis", 1))
    if quantize:
        f = nn.quantize_linear(xs, s_shape, out_dt, axis, _dtype(n))  # type: ignore[arg-type]
    else:
        f = nn.dequantize_linear(xs, s_shape, _dtype(n), axis, scale.dtype or "float32")
    return f, [0, 1, 2]


def _dtype_name(code: int) -> str:
    from .onnx_import import _DTYPES

    return _DTYPES[int(code)]


def _view(op: str) -> OpDef:
    return OpDef(op, None, view=True)


def _folded(op: str) -> OpDef:
    """An operator whose result is known at compile time (its output becomes a constant)."""
    return OpDef(op, None)


OPS: dict[str, OpDef] = {d.name: d for d in [
    *(_unary(op) for op in ("Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Neg", "Erf", "Floor", "Ceil",
                            "Round", "Reciprocal", "Sin", "Cos", "Softplus", "Not", "LeakyRelu", "Elu",
                            "HardSigmoid", "HardSwish", "Gelu")),
    OpDef("Sum"), OpDef("Mean"),
    *(_binary(op) for op in ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater",
                             "LessOrEqual", "GreaterOrEqual", "And", "Or", "Mod")),
    *(_reduce(op) for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL2")),
    *(_pool(op) for op in ("MaxPool", "AveragePool")),
    *(_global_pool(op) for op in ("GlobalAveragePool", "GlobalMaxPool")),
    OpDef("Clip", _clip), OpDef("Conv", _conv), OpDef("Gemm", _gemm), OpDef("MatMul", _matmul),
    OpDef("Softmax", _softmax(False)), OpDef("LogSoftmax", _softmax(True)),
    OpDef("LayerNormalization", _layer_norm, multi=_layer_norm), OpDef("Transpose", _transpose),
    OpDef("Concat", _concat), OpDef("TopK", _topk, multi=_topk),
    OpDef("Slice", _slice), OpDef("Gather", _gather), OpDef("Where", _where), OpDef("Pad", _pad),
    OpDef("Resize", _resize), OpDef("Cast", _cast),
    OpDef("BatchNormalization", _batch_norm, multi=_batch_norm),
    OpDef("Expand", _expand),
    *(_view(op) for op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout")),
    *(_folded(op) for op in ("Shape", "Constant", "ConstantOfShape", "Size", "Range")),
    OpDef("QuantizeLinear", lambda n: _qdq(n, True)), OpDef("DequantizeLinear", lambda n: _qdq(n, False)),
    OpDef("CastLike", lambda n: (nn.cast(_shape(n.inputs[0], n, "input"), _dtype(n), _dtype(n, 1)), [0])),
]}


ONNX_OPS = dict(OPS)  # what the importer accepts

# operators the compiler introduces: the accelerator's layout conversions and kernels
ACCEL_OPS = ("AccelConv2d", "AccelDense")
OPS.update({d.name: d for d in [
    OpDef("Pack", lambda n: (nn.pack(_shape(n.inputs[0], n, "input"), _dtype(n), tuple(n.attrs["blocks"]),
                                     tuple(n.attrs["padded"]), int(n.attrs.get("fill", 0))), [0])),
    OpDef("Unpack", lambda n: (nn.unpack(_shape(n.inputs[0], n, "input"), _dtype(n), _out_shape(n)), [0])),
    OpDef("ShiftSign", lambda n: (nn.shift_sign(_shape(n.inputs[0], n, "input"), _dtype(n), n.attrs["to"]), [0])),
    *(OpDef(op) for op in ACCEL_OPS),
]})


def kernel_of(node: Node, outputs: Sequence[int] = (0,)) -> Kernel:
    """The host kernel of ``node`` that computes its outputs of indices ``outputs`` (the first
    output first, ascending): the function, whose parameters are the node inputs of the
    returned indices, then those outputs in order."""
    d = OPS.get(node.op)
    if d is None or d.kernel is None:
        raise GraphError(f"node {node.name}: op {node.op} has no host kernel")
    outs = tuple(outputs)
    if outs[:1] != (0,) or list(outs) != sorted(set(outs)) or outs[-1] >= len(node.outputs):
        raise GraphError(f"node {node.name} ({node.op}): outputs {list(outs)} are not ascending indices of its "
                         f"{len(node.outputs)} output(s) from 0")
    if outs == (0,):
        return d.kernel(node)
    if d.multi is None:
        raise GraphError(f"node {node.name} ({node.op}): output(s) {', '.join(node.outputs[i].name for i in outs[1:])} "
                         "are not supported (only the first output is computed)")
    return d.multi(node, outs)
