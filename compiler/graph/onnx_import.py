"""ONNX to graph IR.

`import_onnx(model, input_shapes)` reads a model (a path, bytes or ``ModelProto``), checks
every node against the supported operator set (an unsupported op is reported with the
node's name, its op type and the supported set), binds the given input shapes (symbolic
dimensions stay names otherwise), runs ONNX's shape inference with data propagation, and
builds a `Module` whose ``main`` graph holds typed values, weights as constants and one
node per ONNX node (attributes as Python values, defaults filled in by the op table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .ir import Graph, GraphError, Module, Node, Value
from .ops import ONNX_OPS as OPS

_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
           11: "float64"}


def _load(model: Any):  # type: ignore[no-untyped-def]
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, (bytes, bytearray)):
            return onnx.load_from_string(bytes(model))
        path = Path(model)
        if not path.exists():
            raise GraphError(f"{path}: no such file")
        m = onnx.load(str(path))
    except DecodeError as e:
        raise GraphError(f"{model}: not a valid ONNX model (truncated or corrupt: {e})") from None
    except GraphError:
        raise
    except Exception as e:  # the protobuf runtime raises several types for garbage
        raise GraphError(f"{model}: not a valid ONNX model ({type(e).__name__}: {e})") from None
    if not m.graph.node and not m.graph.output:
        raise GraphError(f"{model}: not a valid ONNX model (no graph)")
    return m


def _dtype(elem: int, where: str) -> str:
    if elem not in _DTYPES:
        raise GraphError(f"{where}: tensor element type {elem} is not supported "
                         f"(supported: {', '.join(_DTYPES.values())})")
    return _DTYPES[elem]


def _type_of(vi: Any, where: str) -> tuple[str | None, tuple[int | str, ...] | None]:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise GraphError(f"{where}: only tensor values are supported")
    dtype = _dtype(t.elem_type, where) if t.elem_type else None
    if not t.HasField("shape"):
        return dtype, None
    dims: list[int | str] = []
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(f"{vi.name}_d{i}")
    return dtype, tuple(dims)


def check_ops(model: Any) -> None:
    """Raise GraphError for the first node whose op is not supported."""
    for i, n in enumerate(model.graph.node):
        if n.domain not in ("", "ai.onnx", "com.microsoft") or n.op_type not in OPS:
            name = n.name or f"#{i}"
            raise GraphError(f"node {name}: op {n.op_type}" + (f" (domain {n.domain})" if n.domain else "") +
                             f" is not supported; supported ops: {', '.join(sorted(OPS))}")


def import_onnx(model: Any, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Module:
    """The model as a graph-IR module, with ``input_shapes`` bound to the named inputs."""
    import onnx
    from onnx import numpy_helper, shape_inference

    m = _load(model)
    check_ops(m)
    m = onnx.ModelProto.FromString(m.SerializeToString())  # a copy to bind shapes on
    inits = {t.name for t in m.graph.initializer}
    graph_inputs = [vi for vi in m.graph.input if vi.name not in inits]
    for name, shape in (input_shapes or {}).items():
        vi = next((v for v in graph_inputs if v.name == name), None)
        if vi is None:
            raise GraphError(f"model has no input {name!r}; inputs: {', '.join(v.name for v in graph_inputs)}")
        dims = vi.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise GraphError(f"input {name}: the model has {len(dims)} dimensions, {len(shape)} were given")
        for d, n in zip(dims, shape):
            if d.HasField("dim_value") and d.dim_value != n:
                raise GraphError(f"input {name}: shape {list(shape)} does not match the model's "
                                 f"{[x.dim_value or x.dim_param for x in dims]}")
            d.ClearField("dim_param")
            d.dim_value = int(n)
    try:
        m = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    except Exception as e:
        raise GraphError(f"shape inference failed: {e}") from None
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 21)
    values: dict[str, Value] = {}
    for t in m.graph.initializer:
        arr = numpy_helper.to_array(t)
        values[t.name] = Value(_name(t.name), _np_dtype(arr, t.name), tuple(arr.shape), const=np.asarray(arr))
    for vi in (*m.graph.value_info, *m.graph.output, *graph_inputs):
        if vi.name not in values:
            dtype, shape = _type_of(vi, f"value {vi.name}")
            values[vi.name] = Value(_name(vi.name), dtype, shape)
    inputs = [values[vi.name] for vi in graph_inputs]
    nodes = []
    for i, n in enumerate(m.graph.node):
        name = n.name or f"{n.op_type.lower()}_{i}"
        attrs = {a.name: _attr(a) for a in n.attribute}
        ins: list[Value | None] = []
        for x in n.input:
            if x == "":
                ins.append(None)
            elif x in values:
                ins.append(values[x])
            else:
                raise GraphError(f"node {name} ({n.op_type}): input {x!r} is not produced by any node or initializer")
        outs = []
        for x in n.output:
            v = values.get(x) or Value(_name(x))
            values[x] = v
            outs.append(v)
        node = Node(n.op_type, ins, outs, attrs, name)
        for v in outs:
            v.producer = node
        if n.op_type in ("Softmax", "LogSoftmax") and opset < 13:
            nodes.extend(_old_softmax(node))
        else:
            nodes.append(node)
    outputs = [values[vi.name] for vi in m.graph.output]
    g = Graph(_name(m.graph.name or "main"), inputs, outputs, nodes)
    _uniquify(g)
    g.check()
    return Module({"main": g})


def _old_softmax(node: Node) -> list[Node]:
    """Softmax before opset 13 normalizes over every dimension from ``axis`` (default 1) on, the
    input coerced to 2-D: as Reshape (a view), Softmax over the last axis, Reshape back."""
    x, y = node.inputs[0], node.outputs[0]
    axis = int(node.attrs.get("axis", 1))
    if x is None or x.shape is None:
        raise GraphError(f"node {node.name} ({node.op}, opset < 13): the input's shape is unknown")
    nd = len(x.shape)
    axis = axis + nd if axis < 0 else axis
    if axis >= nd - 1:
        node.attrs["axis"] = nd - 1
        return [node]
    if not all(isinstance(d, int) for d in x.shape):
        raise GraphError(f"node {node.name} ({node.op}, opset < 13): normalizing over several dimensions needs "
                         f"a static input shape, got {x.type_str()}; give the model's input shapes")
    outer, inner = int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))
    flat = Value(f"{node.name}_2d", x.dtype, (outer, inner))
    soft = Value(f"{node.name}_soft", y.dtype or x.dtype, (outer, inner))
    shape_c = Value(f"{node.name}_shape", "int64", (2,), const=np.array([outer, inner], np.int64))
    back_c = Value(f"{node.name}_back", "int64", (nd,), const=np.array(x.shape, np.int64))
    n1 = Node("Reshape", [x, shape_c], [flat], {}, f"{node.name}_flatten")
    n2 = Node(node.op, [flat], [soft], {"axis": 1}, node.name)
    n3 = Node("Reshape", [soft, back_c], [y], {}, f"{node.name}_unflatten")
    for n in (n1, n2, n3):
        for v in n.outputs:
            v.producer = n
    y.shape = y.shape or tuple(x.shape)
    return [n1, n2, n3]


def _np_dtype(arr: np.ndarray, name: str) -> str:
    dt = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64", np.dtype(np.float16): "float16",
          np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8", np.dtype(np.int16): "int16",
          np.dtype(np.int32): "int32", np.dtype(np.int64): "int64", np.dtype(np.bool_): "bool"}.get(arr.dtype)
    if dt is None:
        raise GraphError(f"initializer {name}: element type {arr.dtype} is not supported")
    return dt


def _attr(a: Any) -> Any:
    from onnx import helper, numpy_helper

    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if hasattr(v, "dims") and hasattr(v, "data_type"):  # a TensorProto
        return numpy_helper.to_array(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode() for x in v]
    return list(v) if isinstance(v, (list, tuple)) else v


def _name(name: str) -> str:
    """Names stay as the model has them (inputs are fed by them); an empty one gets a placeholder."""
    return name or "unnamed"


def _uniquify(g: Graph) -> None:
    """Value names are unique in the printed form (ONNX names may clash once sanitized)."""
    from .ir import walk_values

    seen: dict[str, int] = {}
    for v in walk_values(g):
        n = seen.get(v.name, 0)
        seen[v.name] = n + 1
        if n:
            v.name = f"{v.name}_{n}"
