"""Imported QDQ models honoured exactly: a Conv (or Gemm/MatMul) between DequantizeLinear
inputs and a QuantizeLinear output, as ONNX quantization tools write them, becomes an
accelerator kernel with the model's own scales, zero points, int8 weights and int32 bias.

Pattern (per-tensor scales, weight zero point 0, an optional ReLU before the Q)::

    xq --DQ(sx, zx)--> Conv(DQ(wq, sw, 0), DQ(bq, sx*sw, 0)) [--Relu] --Q(sy, zy)--> yq

becomes ``xq → Pack → AccelConv2d → Unpack → yq``: the accumulator is exactly ONNX's
``Σ (xq - zx) wq + bq``, requantized by the fixed-point ``sx sw / sy`` (within one step of
onnxruntime's float rounding). uint8 tensors are shifted to int8 on the way in and back on
the way out. Anything else (per-channel scales, other operators) keeps its Q/DQ nodes and
runs in float on the host with ONNX semantics.
"""

from __future__ import annotations

import numpy as np

from vta.compiler.accel.schedules import Conv2d, Dense
from vta.isa import Config

from .ir import Graph, Module, Node, Value
from .quantize import IMM_MAX, _roundup, check_accumulators, accel_attrs, accel_nodes, conv_fits, fixed_point


def _scalar(v: Value | None) -> float | int | None:
    if v is None:
        return 0
    if v.const is None or v.const.size != 1:
        return None
    return v.const.reshape(-1)[0].item()


def _dq_of(v: Value | None) -> Node | None:
    p = v.producer if v is not None else None
    return p if p is not None and p.op == "DequantizeLinear" else None


def _only_consumer(g: Graph, v: Value, users: dict[Value, list[Node]]) -> Node | None:
    u = users.get(v, [])
    return u[0] if len(u) == 1 and v not in g.outputs else None


class _QdqRewriter:
    def __init__(self, mod: Module, config: Config) -> None:
        self.g, self.cfg = mod.main, config
        self.users = self.g.consumers()
        self.replace: dict[int, list[Node]] = {}  # id(first node) -> new nodes
        self.drop: set[int] = set()
        self.count = 0

    def run(self) -> int:
        for n in self.g.nodes:
            if n.op in ("Conv", "Gemm", "MatMul"):
                self._try(n)
        out: list[Node] = []
        for n in self.g.nodes:
            if id(n) in self.replace:
                out.extend(self.replace[id(n)])
            if id(n) not in self.drop:
                out.append(n)
        self.g.nodes = out
        return self.count

    def _try(self, n: Node) -> None:
        dx, dw = _dq_of(n.inputs[0]), _dq_of(n.input(1))
        if dx is None or dw is None or dw.inputs[0] is None or dw.inputs[0].const is None:
            return
        sx, zx = _scalar(dx.inputs[1]), _scalar(dx.input(2))
        sw = _weight_scales(dw, n)
        if None in (sx, zx) or sw is None or dw.inputs[0].dtype != "int8":
            return
        act_dt = dx.inputs[0].dtype  # type: ignore[union-attr]
        if act_dt not in ("int8", "uint8"):
            return
        y = n.outputs[0]
        relu = _only_consumer(self.g, y, self.users)
        if relu is not None and relu.op == "Relu":
            q = _only_consumer(self.g, relu.outputs[0], self.users)
        else:
            q, relu = relu, None
        if q is None or q.op != "QuantizeLinear":
            return
        sy, zy = _scalar(q.inputs[1]), _scalar(q.input(2))
        if None in (sy, zy) or q.outputs[0].dtype != act_dt:
            return
        bias = self._bias(n, float(sx) * sw)  # type: ignore[arg-type]
        if bias is None:
            return
        shift = 128 if act_dt == "uint8" else 0
        made = self._conv(n, dx, dw, bias, float(sx), int(zx) - shift, sw, float(sy), int(zy) - shift,  # type: ignore[arg-type]
                          relu is not None, q, shift)
        if made:
            self.count += 1
            for dead in (n, relu, q):
                if dead is not None:
                    self.drop.add(id(dead))

    def _bias(self, n: Node, scale: np.ndarray) -> np.ndarray | None:
        """The int32 bias at scale ``sx · sw`` (per output channel)."""
        b = n.input(2)
        if b is None:
            return np.zeros(0, np.int64)
        db = _dq_of(b)
        if db is not None and db.inputs[0] is not None and db.inputs[0].const is not None and \
                db.inputs[0].dtype == "int32" and not np.any(_vector(db.input(2))):
            sb = _vector(db.inputs[1])
            if sb is not None and np.allclose(sb, scale, rtol=1e-6, atol=0):
                return db.inputs[0].const.astype(np.int64).reshape(-1)
        if b.const is not None:  # a float bias: quantize it as the tools would
            return np.round(b.const.astype(np.float64).reshape(-1) / scale).astype(np.int64)
        return None

    def _conv(self, n: Node, dx: Node, dw: Node, bias: np.ndarray, sx: float, zx: int, sw: np.ndarray, sy: float,
              zy: int, relu: bool, q: Node, shift: int) -> bool:
        from vta.compiler.tir.ops import Epilogue

        cfg = self.cfg
        wq = dw.inputs[0].const.astype(np.int64)  # type: ignore[union-attr]
        xq = dx.inputs[0]
        a = n.attrs
        if n.op == "Conv":
            if wq.ndim != 4 or xq is None or xq.shape is None or len(xq.shape) != 4:
                return False
            kh, kw = wq.shape[2:]
            if not conv_fits(a, (kh, kw)):
                return False
            o = wq.shape[0]
            nb, c, h, wd = xq.static_shape()
        else:
            if wq.ndim != 2 or xq is None or xq.shape is None or len(xq.shape) != 2:
                return False
            if n.op == "Gemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0):
                return False
            wq = wq if (n.op == "Gemm" and a.get("transB", 0)) else wq.T
            o = wq.shape[0]
            nb, c = xq.static_shape()
        b = np.zeros(o, np.int64) if bias.size == 0 else bias
        if b.size != o or sw.size not in (1, o):
            return False
        bias_int = b - zx * wq.reshape(o, -1).sum(axis=1)
        bound = int(np.abs(wq).reshape(o, -1).sum(axis=1).max(initial=0)) * 255 + int(np.abs(bias_int).max(initial=0))
        scales = np.broadcast_to(sx * sw / sy, (o,)).astype(np.float64)
        per_channel = sw.size > 1
        if per_channel:
            mult, s = fixed_point_vector(scales, bound)
            ep = Epilogue(bias=True, shift=s, zero_point=zy, relu=relu, per_channel=True)
        else:
            m, s = fixed_point(float(scales[0]), bound)
            ep = Epilogue(bias=True, multiplier=m, shift=s, zero_point=zy, relu=relu)
        npad, cp, op = _roundup(nb, cfg.batch), _roundup(c, cfg.block_in), _roundup(o, cfg.block_out)
        if n.op == "Conv":
            wl: Conv2d | Dense = Conv2d(npad, cp, h, wd, op, kh, a.get("strides", [1])[0], a.get("pads", [0])[0], 1,
                                        pad_value=zx)
            y_shape: tuple[int, ...] = (nb, o, *wl.out_hw)
        else:
            wl = Dense(npad, op, cp)
            y_shape = (nb, o)
        attrs = accel_attrs(cfg, wl, ep, wq, bias_int, mult if per_channel else None)
        scale_full = np.zeros(op)
        scale_full[:o] = scales
        attrs["onnx_scale"] = scale_full  # the model's exact requantization scales, for comparisons
        base = n.name
        new: list[Node] = []
        src = xq
        if shift:
            src = Value(f"{base}_x8", "int8", xq.shape)
            new.append(Node("ShiftSign", [xq], [src], {"to": "int8"}, f"{base}_to_int8"))
        yq = q.outputs[0]
        y8 = Value(f"{base}_y8", "int8", y_shape) if shift else yq
        new += accel_nodes(base, src, y8, cfg, attrs, zx)
        if shift:
            new.append(Node("ShiftSign", [y8], [yq], {"to": "uint8"}, f"{base}_to_uint8"))
        for nd in new:
            for v in nd.outputs:
                v.producer = nd
        self.replace[id(n)] = new
        return True


def _vector(v: Value | None) -> np.ndarray | None:
    if v is None:
        return np.zeros(1)
    return None if v.const is None else v.const.astype(np.float64).reshape(-1)


def _weight_scales(dw: Node, n: Node) -> np.ndarray | None:
    """The weights' scales (one, or one per output channel) when their zero points are 0."""
    sw, zw = _vector(dw.inputs[1]), _vector(dw.input(2))
    if sw is None or zw is None or np.any(zw):
        return None
    if sw.size > 1:  # per channel: along the output channels only
        axis = int(dw.attrs.get("axis", 1))
        w = dw.inputs[0].const  # type: ignore[union-attr]
        out_axis = 0 if n.op == "Conv" or (n.op == "Gemm" and n.attrs.get("transB", 0)) else 1
        if w is None or axis % w.ndim != out_axis:
            return None
    return sw


def fixed_point_vector(scales: np.ndarray, acc_bound: int) -> tuple[np.ndarray, int]:
    """Per-channel multipliers with one shift: the largest shift whose multipliers all fit."""
    m_max = min(IMM_MAX, ((1 << 31) - 1) // max(1, acc_bound))
    top = float(scales.max())
    shift = 0
    for s in range(32):
        if round(top * (1 << s)) > m_max:
            break
        shift = s
    return np.maximum(np.round(scales * (1 << shift)), 0).astype(np.int64), shift


def import_qdq(mod: Module, config: Config) -> int:
    """Rewrite the QDQ patterns of ``mod`` into accelerator kernels (in place); returns how many."""
    check_accumulators(config)
    return _QdqRewriter(mod, config).run()
