"""Graph passes, run as one ordered, named pipeline (`PIPELINE`); `run_pipeline` can print
the graph after any of them (``--dump-after``).

- ``shape_inference``: every value has a dtype and a static shape (the model's input
  shapes bound at import), or the pass says which value does not;
- ``fold_constants``: nodes whose inputs are all constants are evaluated at compile time
  by ONNX's reference implementation (shape arithmetic, weight preprocessing),
  ``Shape`` of a statically shaped value becomes a constant, and so does an (inference)
  Dropout's mask: all true;
- ``fold_batchnorm``: a BatchNormalization after a Conv folds into its weights;
- ``eliminate_dead``: nodes whose outputs nothing uses are removed;
- ``import_qdq`` (with an accelerator config): the QDQ patterns of a quantized model become
  accelerator kernels with the model's own parameters (`qdq`);
- ``quantize`` (with an accelerator config, for float models): convolutions and dense layers, with a ReLU
  after them, become int8 accelerator kernels fed by quantize and pack conversions
  (`quantize`);
- ``fuse_layouts``: conversions that undo each other between accelerator kernels go;
- ``partition``: each node is assigned to the accelerator or the CPU;
- ``plan_memory``: every intermediate tensor gets a place in one arena, reusing the bytes of
  tensors no longer needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vta.isa import Config

from .ir import Graph, GraphError, Module, Node, Value

Pass = Callable[[Module, "PassContext"], Module]


def _onnx_node(n: Node):  # type: ignore[no-untyped-def]
    from onnx import helper, numpy_helper

    attrs = {}
    for k, v in n.attrs.items():
        attrs[k] = numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v
    ins = [f"i{i}" if v is not None else "" for i, v in enumerate(n.inputs)]
    return helper.make_node(n.op, ins, [f"o{i}" for i in range(len(n.outputs))], **attrs)


def evaluate_node(n: Node) -> list[np.ndarray]:
    """The outputs of ``n`` on its constant inputs, by ONNX's reference implementation."""
    from onnx.reference import ReferenceEvaluator

    feeds = {f"i{i}": v.const for i, v in enumerate(n.inputs) if v is not None}
    try:
        return [np.asarray(x) for x in ReferenceEvaluator(_onnx_node(n)).run(None, feeds)]
    except Exception as e:
        raise GraphError(f"node {n.name} ({n.op}): cannot evaluate at compile time ({type(e).__name__}: {e})") \
            from None


def fold_constants(mod: Module) -> Module:
    g = mod.main
    kept = []
    for n in g.nodes:
        if n.op == "Dropout" and len(n.outputs) > 1 and not all(v is None or v.is_const for v in n.inputs):
            _fold_dropout_mask(n)
        if n.op == "Shape" and n.inputs[0] is not None and n.inputs[0].shape is not None and \
                all(isinstance(d, int) for d in n.inputs[0].shape):
            shape = np.array(n.inputs[0].shape, np.int64)
            start, end = n.attrs.get("start", 0), n.attrs.get("end")
            _set_const(n.outputs[0], shape[start:end])
            continue
        if n.op in ("QuantizeLinear", "DequantizeLinear") and not all(v is None or v.is_const for v in n.inputs):
            kept.append(n)
            continue
        if all(v is None or v.is_const for v in n.inputs):
            for v, a in zip(n.outputs, evaluate_node(n)):
                _set_const(v, a)
            continue
        kept.append(n)
    g.nodes = kept
    return mod


def _fold_dropout_mask(n: Node) -> None:
    """An inference Dropout (`check_inference` refuses training) keeps every element: its mask
    output is a constant of ones, and the node stays a view of its input with one output."""
    from vta.compiler.tir.interp import numpy_dtype

    mask = n.outputs[1]
    shape = mask.shape if mask.shape is not None else n.inputs[0].shape if n.inputs[0] is not None else None
    if shape is None or not all(isinstance(d, int) for d in shape):
        raise GraphError(f"node {n.name} (Dropout): its mask {mask.name} has no static shape "
                         f"({mask.type_str()}); give the model's input shapes")
    _set_const(mask, np.ones(shape, numpy_dtype(mask.dtype or "bool")))  # type: ignore[arg-type]
    n.outputs = n.outputs[:1]


def _set_const(v: Value, a: np.ndarray) -> None:
    from .onnx_import import _np_dtype

    v.const = np.ascontiguousarray(a)
    v.dtype = _np_dtype(v.const, v.name)
    v.shape = tuple(v.const.shape)
    v.producer = None


def check_inference(mod: Module) -> Module:
    """Refuse what only training does: a Dropout whose training_mode is not constant false, unless
    its ratio is a constant 0 (it then drops nothing, as in inference)."""
    for n in mod.main.nodes:
        t = n.input(2) if n.op == "Dropout" else None
        r = n.input(1)
        if t is not None and not (t.is_const and not t.const.any()) and \
                not (r is not None and r.is_const and not r.const.any()):  # type: ignore[union-attr]
            raise GraphError(f"node {n.name} (Dropout): training mode is not supported (inference only)")
    return mod


def split_variadic(mod: Module) -> Module:
    """Max/Min/Sum/Mean of more than two inputs become chains of two-input nodes (Mean
    divides at the end); a single input is the identity."""
    g = mod.main
    out: list[Node] = []
    for n in g.nodes:
        if n.op not in ("Max", "Min", "Sum", "Mean") or len(n.inputs) == 2 and n.op in ("Max", "Min"):
            out.append(n)
            continue
        op = {"Sum": "Add", "Mean": "Add"}.get(n.op, n.op)
        acc = n.inputs[0]
        y = n.outputs[0]
        if len(n.inputs) == 1 and n.op != "Mean":
            out.append(Node("Identity", [acc], [y], {}, n.name))
            continue
        for k, v in enumerate(n.inputs[1:], 1):
            last = k == len(n.inputs) - 1 and n.op != "Mean"
            res = y if last else Value(f"{n.name}_{k}", y.dtype, None)
            node = Node(op, [acc, v], [res], {}, f"{n.name}_{k}")
            res.producer = node
            out.append(node)
            acc = res
        if n.op == "Mean":
            cnt = Value(f"{n.name}_count", y.dtype, (), const=np.array(len(n.inputs), np.float32))
            node = Node("Div", [acc, cnt], [y], {}, f"{n.name}_mean")
            y.producer = node
            out.append(node)
    g.nodes = out
    _infer_missing(g)
    return mod


def _infer_missing(g: Graph) -> None:
    """Shapes of values the passes made: elementwise chains broadcast their inputs."""
    from vta.compiler.tir.nn import broadcast_shape

    for n in g.nodes:
        for v in n.outputs:
            if v.shape is None and all(x is not None and x.shape is not None for x in n.inputs):
                try:
                    v.shape = broadcast_shape(*[x.shape for x in n.inputs])  # type: ignore[misc,union-attr]
                except (ValueError, TypeError):
                    pass
                v.dtype = v.dtype or n.inputs[0].dtype  # type: ignore[union-attr]


def fold_batchnorm(mod: Module) -> Module:
    """A BatchNormalization right after a Conv with constant weights (and nothing else
    reading the Conv) folds into the Conv's weights and bias."""
    g = mod.main
    users = g.consumers()
    kept = []
    for n in g.nodes:
        x = n.inputs[0] if n.inputs else None
        conv = x.producer if x is not None else None
        if n.op == "BatchNormalization" and _inference_only(n, g, users) and conv is not None and \
                conv.op == "Conv" and len(users.get(x, [])) == 1 \
                and conv.inputs[1] is not None and conv.inputs[1].is_const and \
                all(v is not None and v.is_const for v in n.inputs[1:5]) and x not in g.outputs:
            gamma, beta, mean, var = (v.const.astype(np.float64) for v in n.inputs[1:5])  # type: ignore[union-attr]
            scale = gamma / np.sqrt(var + float(n.attrs.get("epsilon", 1e-5)))
            w = conv.inputs[1].const.astype(np.float64)  # type: ignore[union-attr]
            b = conv.inputs[2].const.astype(np.float64) if conv.input(2) is not None else np.zeros(w.shape[0])  # type: ignore[union-attr]
            dt = conv.inputs[1].const.dtype  # type: ignore[union-attr]
            wv = Value(f"{conv.name}_wbn", conv.inputs[1].dtype, tuple(w.shape),  # type: ignore[union-attr]
                       const=(w * scale.reshape(-1, 1, 1, 1)).astype(dt))
            bv = Value(f"{conv.name}_bbn", conv.inputs[1].dtype, (w.shape[0],),  # type: ignore[union-attr]
                       const=((b - mean) * scale + beta).astype(dt))
            conv.inputs = [conv.inputs[0], wv, bv]
            conv.outputs = [n.outputs[0]]
            n.outputs[0].producer = conv
            continue
        kept.append(n)
    g.nodes = kept
    return mod


def _inference_only(n: Node, g: Graph, users: dict[Value, list[Node]]) -> bool:
    """Whether BatchNormalization ``n`` normalizes with its given statistics and nothing reads its
    other outputs (training mode uses the batch's statistics, so it does not fold)."""
    return not n.attrs.get("training_mode", 0) and not any(users.get(v) or v in g.outputs for v in n.outputs[1:])


def shape_inference(mod: Module) -> Module:
    for n in mod.main.nodes:
        for v in n.outputs:
            if v.dtype is None or v.shape is None or not all(isinstance(d, int) for d in v.shape):
                raise GraphError(f"node {n.name} ({n.op}): output {v.name} has type {v.type_str()}; every shape must "
                                 "be static to compile (bind the model's input shapes)")
    return mod


def eliminate_dead(mod: Module) -> Module:
    g = mod.main
    live = {v.uid for v in g.outputs}
    kept: list[Node] = []
    for n in reversed(g.nodes):
        if any(v.uid in live for v in n.outputs):
            kept.append(n)
            live.update(v.uid for v in n.inputs if v is not None)
    g.nodes = kept[::-1]
    return mod


@dataclass
class PassContext:
    """What the passes after the float ones need: the accelerator config (None: compile for
    the host only) and the calibrated ranges of the float values."""

    config: Config | None = None
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    accelerated: int = 0
    qdq: bool = False  # the model brought its own quantization: honour it, calibrate nothing


def _import_qdq(mod: Module, ctx: PassContext) -> Module:
    if ctx.config is not None:
        from .qdq import import_qdq

        ctx.accelerated += import_qdq(mod, ctx.config)
    return mod


def is_qdq(mod: Module) -> bool:
    """Whether the model carries its own quantization (QuantizeLinear nodes)."""
    return any(n.op == "QuantizeLinear" for n in mod.main.nodes)


def _quantize(mod: Module, ctx: PassContext) -> Module:
    if ctx.config is not None and not ctx.qdq:
        from .quantize import quantize_ops

        ctx.accelerated += quantize_ops(mod, ctx.ranges, ctx.config)
    return mod


def _fuse_layouts(mod: Module, ctx: PassContext) -> Module:
    if ctx.config is not None:
        from .quantize import cancel_conversions

        cancel_conversions(mod)
    return mod


def partition(mod: Module, ctx: PassContext) -> Module:
    """Every node gets its device: the accelerator's operators ``accel``, the rest ``cpu``
    (views move no data and run nowhere)."""
    from .ops import ACCEL_OPS, OPS

    for n in mod.main.nodes:
        n.device = "accel" if n.op in ACCEL_OPS else None if OPS[n.op].view else "cpu"
    return mod


def plan_memory(mod: Module, ctx: PassContext | None = None) -> Module:
    """Place every intermediate value in one arena, reusing the bytes of values no longer
    needed: lifetimes run from the producing node to the last reader (a view shares its
    source's bytes and extends its life; graph outputs live to the end); values go largest
    first at the lowest 64-byte-aligned offset free for their whole life."""
    from .ops import OPS

    g = mod.main
    inputs = {v.uid for v in g.inputs}
    root: dict[int, Value] = {}  # a view's value -> the value owning its bytes
    life: dict[int, list[int]] = {}
    vals: dict[int, Value] = {}
    end = len(g.nodes)
    for i, n in enumerate(g.nodes):
        for v in n.inputs:
            r = root.get(v.uid, v) if v is not None else None
            if r is not None and r.uid in life:
                life[r.uid][1] = i
        for v in n.outputs:
            src = root.get(n.inputs[0].uid, n.inputs[0]) if n.inputs and n.inputs[0] is not None else None
            if OPS[n.op].view and src is not None and src.uid in life:
                root[v.uid] = src
            elif v.uid not in inputs and not v.is_const:
                life[v.uid] = [i, i]
                vals[v.uid] = v
    for v in g.outputs:
        r = root.get(v.uid, v)
        if r.uid in life:
            life[r.uid][1] = end
    placed: list[tuple[int, int, int, int]] = []  # (offset, bytes, first, last)
    plan: dict[str, tuple[int, int]] = {}
    order = sorted(life, key=lambda u: -_nbytes(vals[u]))
    for u in order:
        nb = -(-_nbytes(vals[u]) // 64) * 64
        first, last = life[u]
        busy = sorted((o, o + b) for o, b, f, l_ in placed if f <= last and first <= l_)
        off = 0
        for lo, hi in busy:
            if off + nb <= lo:
                break
            off = max(off, hi)
        placed.append((off, nb, first, last))
        plan[vals[u].name] = (off, _nbytes(vals[u]))
    for vu, r in root.items():
        for v in (x for n in g.nodes for x in n.outputs if x.uid == vu):
            if r.name in plan:
                plan[v.name] = plan[r.name]
    g.plan = plan
    g.arena_bytes = max((o + b for o, b, _, _ in placed), default=0)
    return mod


def _nbytes(v: Value) -> int:
    from vta.compiler.tir.interp import numpy_dtype

    return int(np.prod(v.static_shape() or (1,))) * np.dtype(numpy_dtype(v.dtype)).itemsize  # type: ignore[arg-type]


def _plain(p: Callable[[Module], Module]) -> Pass:
    return lambda mod, ctx: p(mod)


PIPELINE: list[tuple[str, Pass]] = [
    ("check_inference", _plain(check_inference)),
    ("import_qdq", _import_qdq),
    ("split_variadic", _plain(split_variadic)),
    ("fold_constants", _plain(fold_constants)),
    ("shape_inference", _plain(shape_inference)),
    ("fold_batchnorm", _plain(fold_batchnorm)),
    ("eliminate_dead", _plain(eliminate_dead)),
    ("quantize", _quantize),
    ("fuse_layouts", _fuse_layouts),
    ("partition", partition),
    ("plan_memory", plan_memory),
]
FLOAT_PASSES = "eliminate_dead"  # the last pass before quantization needs calibrated ranges


def pass_names() -> list[str]:
    return [n for n, _ in PIPELINE]


def run_pipeline(mod: Module, ctx: PassContext | None = None, dump_after: set[str] | None = None,
                 out: Callable[[str], None] = print, start: str | None = None, stop_after: str | None = None) -> Module:
    """Run the passes in order (from ``start``, through ``stop_after``), printing the module
    after each pass named in ``dump_after``."""
    ctx = ctx or PassContext()
    names = pass_names()
    for want in dump_after or ():
        if want not in names:
            raise GraphError(f"no pass {want!r}; passes in order: {', '.join(names)}")
    running = start is None
    for name, p in PIPELINE:
        running = running or name == start
        if not running:
            continue
        mod = p(mod, ctx)
        if dump_after and name in dump_after:
            out(f"# after {name}\n{mod}")
        if name == stop_after:
            break
    return mod
