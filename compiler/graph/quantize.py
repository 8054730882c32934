"""Quantization to int8 for the accelerator, and the layout and fusion rewrites around it.

The recipe (`QuantRecipe`): activations asymmetric int8, ``q = clamp(round(x / s) + z)``,
with scale and zero point from a calibrated range (extended to include 0); weights
symmetric int8 per tensor, ``s_w = max|w| / 127``; the int32 bias is ``round(b / (s_x s_w))
- z_x Σ w_q`` (the input's zero point folded in); the accumulator is requantized by the
fixed-point multiplier ``m / 2^shift ≈ s_x s_w / s_y`` (m small enough that no step
overflows 32 bits) with rounding, plus ``z_y``, clipped to int8 (and at ``z_y`` for a fused
ReLU); convolution padding reads ``z_x``.

`quantize` rewrites each Conv (2-D, square kernel, one group) and each Gemm/MatMul with a
constant weight, together with a ReLU that follows it, into::

    QuantizeLinear → Pack → AccelConv2d / AccelDense → Unpack → DequantizeLinear

and `cancel_conversions` then removes DequantizeLinear → QuantizeLinear pairs with equal
parameters and Unpack → Pack pairs with equal layouts, so that chains of accelerator
operators pass packed int8 tensors from one to the next. Everything else stays in float
on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.compiler.accel.schedules import Conv2d, Dense
from vta.compiler.tir.ops import IMM_MAX, Epilogue
from vta.isa import Config

from .ir import Graph, GraphError, Module, Node, Value

QMIN, QMAX = -128, 127


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int

    @staticmethod
    def of_range(lo: float, hi: float) -> QParams:
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        if hi - lo < 1e-12:
            return QParams(1.0, 0)
        scale = (hi - lo) / (QMAX - QMIN)
        zp = int(round(QMIN - lo / scale))
        return QParams(scale, max(QMIN, min(QMAX, zp)))


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor int8 weights and their scale."""
    scale = float(np.abs(w).max()) / 127 or 1.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


def fixed_point(multiplier: float, acc_bound: int) -> tuple[int, int]:
    """``(m, shift)`` with ``m / 2^shift ≈ multiplier``: the most precise one whose product with any
    accumulator up to ``acc_bound`` stays within 32 bits and whose ``m`` fits 16 bits."""
    if multiplier <= 0:
        raise GraphError(f"requantization multiplier {multiplier} is not positive")
    m_max = min(IMM_MAX, ((1 << 31) - 1) // max(1, acc_bound))
    best = (max(1, round(multiplier)), 0)
    for shift in range(32):
        m = round(multiplier * (1 << shift))
        if m > m_max:
            break
        if m >= 1:
            best = (m, shift)
    return best


def _roundup(n: int, b: int) -> int:
    return -(-n // b) * b


def conv_fits(attrs: dict, kernel: tuple[int, ...]) -> bool:  # type: ignore[type-arg]
    """Whether a Conv's attributes are ones the accelerator's conv2d takes: one group, a square
    kernel, the same stride and padding on every side, no dilation, explicit padding."""
    strides, pads = attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0])
    return attrs.get("group", 1) == 1 and len(set(kernel)) == 1 and len(set(strides)) == 1 and \
        len(set(pads)) == 1 and all(d == 1 for d in attrs.get("dilations", [1, 1])) and \
        attrs.get("auto_pad", "NOTSET") == "NOTSET"


def per_channel(v: np.ndarray, cfg: Config) -> np.ndarray:
    """A per-channel vector as accumulator elements (the same values in every batch row)."""
    return np.repeat(v.reshape(-1, 1, cfg.block_out), cfg.batch, axis=1)


def accel_attrs(cfg: Config, wl: Conv2d | Dense, ep: Epilogue, wq: np.ndarray, bias_int: np.ndarray,
                mult: np.ndarray | None = None) -> dict[str, object]:
    """An accelerator node's attributes: the weights (output channels first) padded to the
    workload's blocks and packed, the int32 bias and the per-channel multipliers (when the
    epilogue has them) padded and laid out as accumulator elements."""
    from vta.compiler.accel.reference import pack

    o, c = wq.shape[:2]
    op, cp = (wl.out_ch, wl.in_ch) if isinstance(wl, Conv2d) else (wl.n, wl.k)
    wfull = np.zeros((op, cp, *wq.shape[2:]), np.int8)
    wfull[:o, :c] = wq
    bias_full = np.zeros(op, np.int64)
    bias_full[:o] = bias_int
    mult_full = np.zeros(op, np.int64)
    if mult is not None:
        mult_full[:o] = mult
    attrs: dict[str, object] = {"workload": wl, "epilogue": ep, "weights": pack(wfull, cfg.block_out, cfg.block_in),
                                "bias": bias_full, "bias_packed": per_channel(ep.fold_bias(bias_full, mult_full), cfg)}
    if ep.per_channel:
        attrs["mult"] = mult_full
        attrs["mult_packed"] = per_channel(mult_full.astype(np.int32), cfg)
    return attrs


def accel_nodes(base: str, src: Value, out: Value, cfg: Config, attrs: dict[str, object], fill: int) -> list[Node]:  # type: ignore[type-arg]
    """``src`` (int8, unpacked) → Pack → the accelerator kernel of ``attrs`` → Unpack → ``out``."""
    wl = attrs["workload"]
    if isinstance(wl, Conv2d):
        npad, cp, op = wl.batch, wl.in_ch, wl.out_ch
        op_name, spatial = "AccelConv2d", wl.out_hw
    else:
        npad, cp, op = wl.m, wl.k, wl.n  # type: ignore[attr-defined]
        op_name, spatial = "AccelDense", ()
    bn, bi, bo = cfg.batch, cfg.block_in, cfg.block_out
    xp = Value(f"{base}_xp", "int8", (npad // bn, cp // bi, *src.static_shape()[2:], bn, bi))
    yp = Value(f"{base}_yp", "int8", (npad // bn, op // bo, *spatial, bn, bo))
    nodes = [Node("Pack", [src], [xp], {"blocks": (bn, bi), "padded": (npad, cp), "fill": fill}, f"{base}_pack"),
             Node(op_name, [xp], [yp], attrs, f"{base}_accel", "accel"),
             Node("Unpack", [yp], [out], {}, f"{base}_unpack")]
    for nd in nodes:
        nd.outputs[0].producer = nd
    return nodes


def _scalar(name: str, v: float, dtype: str) -> Value:
    arr = np.array([v], dtype={"float32": np.float32, "int8": np.int8}[dtype])
    return Value(name, dtype, (1,), const=arr)


class _Rewriter:
    def __init__(self, mod: Module, ranges: dict[str, tuple[float, float]], config: Config) -> None:
        self.g, self.ranges, self.cfg = mod.main, ranges, config
        self.consumers = self.g.consumers()
        self.out: list[Node] = []
        self.count = 0

    def qparams(self, v: Value) -> QParams:
        if v.name not in self.ranges:
            raise GraphError(f"no calibrated range for {v.name}")
        return QParams.of_range(*self.ranges[v.name])

    def run(self) -> None:
        fused: set[int] = set()
        for n in self.g.nodes:
            if id(n) in fused:
                continue
            relu = self._relu_after(n)
            done = False
            if n.op == "Conv":
                done = self.conv(n, relu)
            elif n.op in ("Gemm", "MatMul"):
                done = self.dense(n, relu)
            if done and relu is not None:
                fused.add(id(relu))
            if not done:
                self.out.append(n)
        self.g.nodes = self.out

    def _relu_after(self, n: Node) -> Node | None:
        users = self.consumers.get(n.outputs[0], [])
        if len(users) == 1 and users[0].op == "Relu" and n.outputs[0] not in self.g.outputs:
            return users[0]
        return None

    def _emit(self, op: str, ins: list[Value | None], out: Value, attrs: dict, name: str, device: str | None = None) -> None:  # type: ignore[type-arg]
        node = Node(op, ins, [out], attrs, name, device)
        out.producer = node
        self.out.append(node)

    def _around(self, n: Node, relu: Node | None, x: Value, attrs: dict, y_shape: tuple[int, ...],  # type: ignore[type-arg]
                qx: QParams, qy: QParams) -> None:
        """Quantize, pack, run on the accelerator, unpack, dequantize; ``y`` keeps its name and consumers."""
        y = (relu or n).outputs[0]
        base = n.name
        xq = Value(f"{base}_xq", "int8", x.static_shape())
        self._emit("QuantizeLinear", [x, _scalar(f"{base}_sx", qx.scale, "float32"),
                                      _scalar(f"{base}_zx", qx.zero_point, "int8")], xq, {"axis": 1}, f"{base}_quant")
        yq = Value(f"{base}_yq", "int8", y_shape)
        self.out.extend(accel_nodes(base, xq, yq, self.cfg, attrs, qx.zero_point))
        self._emit("DequantizeLinear", [yq, _scalar(f"{base}_sy", qy.scale, "float32"),
                                        _scalar(f"{base}_zy", qy.zero_point, "int8")], y, {"axis": 1},
                   f"{base}_dequant")
        self.count += 1

    def _requant(self, qx: QParams, sw: float, qy: QParams, wq: np.ndarray, bias: np.ndarray, relu: bool) -> tuple:  # type: ignore[type-arg]
        per_out = np.abs(wq.reshape(wq.shape[0], -1).astype(np.int64)).sum(axis=1)
        bias_int = np.round(bias.astype(np.float64) / (qx.scale * sw)).astype(np.int64) - \
            qx.zero_point * wq.reshape(wq.shape[0], -1).astype(np.int64).sum(axis=1)
        bound = int(per_out.max(initial=0)) * 255 + int(np.abs(bias_int).max(initial=0))
        m, shift = fixed_point(qx.scale * sw / qy.scale, bound)
        ep = Epilogue(bias=True, multiplier=m, shift=shift, zero_point=qy.zero_point, relu=relu)
        return ep, bias_int

    def conv(self, n: Node, relu: Node | None) -> bool:
        x, w = n.inputs[0], n.inputs[1]
        if x is None or w is None or w.const is None or x.shape is None or len(x.shape) != 4:
            return False
        a = n.attrs
        kh, kw = w.const.shape[2:]
        if not conv_fits(a, (kh, kw)) or x.dtype != "float32":
            return False
        cfg = self.cfg
        nb, c, h, wd = x.static_shape()
        o = w.const.shape[0]
        qx, y = self.qparams(x), (relu or n).outputs[0]
        qy = self.qparams(y)
        wq, sw = quantize_weights(w.const)
        b = n.inputs[2].const if n.input(2) is not None and n.inputs[2].const is not None else np.zeros(o)  # type: ignore[union-attr]
        ep, bias_int = self._requant(qx, sw, qy, wq, b, relu is not None)
        wl = Conv2d(_roundup(nb, cfg.batch), _roundup(c, cfg.block_in), h, wd, _roundup(o, cfg.block_out), kh,
                    a.get("strides", [1])[0], a.get("pads", [0])[0], 1, pad_value=qx.zero_point)
        self._around(n, relu, x, accel_attrs(cfg, wl, ep, wq, bias_int), (nb, o, *wl.out_hw), qx, qy)
        return True

    def dense(self, n: Node, relu: Node | None) -> bool:
        x, w = n.inputs[0], n.inputs[1]
        if x is None or w is None or w.const is None or x.shape is None or len(x.shape) != 2 or w.const.ndim != 2 \
                or x.dtype != "float32":
            return False
        a = n.attrs
        wmat = w.const
        if n.op == "Gemm":
            if a.get("transA", 0):
                return False
            wmat = wmat if a.get("transB", 0) else wmat.T
            wmat = wmat * float(a.get("alpha", 1.0))
            c = n.input(2)
            if c is not None and (c.const is None or c.const.size not in (1, wmat.shape[0])):
                return False
            bias = np.broadcast_to(c.const.reshape(-1) * float(a.get("beta", 1.0)), (wmat.shape[0],)) \
                if c is not None else np.zeros(wmat.shape[0])  # type: ignore[union-attr]
        else:
            wmat, bias = wmat.T, np.zeros(wmat.shape[1])
        cfg = self.cfg
        m, k = x.static_shape()
        nout = wmat.shape[0]
        qx, y = self.qparams(x), (relu or n).outputs[0]
        qy = self.qparams(y)
        wq, sw = quantize_weights(wmat)
        ep, bias_int = self._requant(qx, sw, qy, wq, bias, relu is not None)
        wl = Dense(_roundup(m, cfg.batch), _roundup(nout, cfg.block_out), _roundup(k, cfg.block_in))
        self._around(n, relu, x, accel_attrs(cfg, wl, ep, wq, bias_int), (m, nout), qx, qy)
        return True


def check_accumulators(config: Config) -> None:
    """The recipe's requantization and its reference wrap at 32 bits: refuse narrower accumulators."""
    if config.acc_width != 32:
        raise GraphError(f"int8 quantization needs 32-bit accumulators; config {config.name} has "
                         f"{config.acc_width}-bit ones")


def quantize_ops(mod: Module, ranges: dict[str, tuple[float, float]], config: Config) -> int:
    """Rewrite the accelerator-eligible operators of ``mod`` (in place); returns how many."""
    check_accumulators(config)
    r = _Rewriter(mod, ranges, config)
    r.run()
    return r.count


def _same_qparams(a: Node, b: Node) -> bool:
    return all(x is not None and y is not None and x.const is not None and y.const is not None and
               np.array_equal(x.const, y.const) for x, y in zip(a.inputs[1:3], b.inputs[1:3]))


def cancel_conversions(mod: Module) -> None:
    """DequantizeLinear → QuantizeLinear with equal parameters, and Unpack → Pack with equal
    layouts, become nothing: the consumers read the int8 (packed) tensor directly."""
    g = mod.main
    changed = True
    while changed:
        changed = False
        producer = {v.uid: n for n in g.nodes for v in n.outputs}
        for n in g.nodes:
            src = n.inputs[0] if n.inputs else None
            p = producer.get(src.uid) if src is not None else None
            if p is None:
                continue
            same = (n.op == "QuantizeLinear" and p.op == "DequantizeLinear" and _same_qparams(n, p)) or \
                (n.op == "Pack" and p.op == "Unpack" and p.inputs[0].shape == n.outputs[0].shape and  # type: ignore[union-attr]
                 _pack_matches(p, n))
            if same:
                _replace_uses(g, n.outputs[0], p.inputs[0])  # type: ignore[arg-type]
                g.nodes.remove(n)
                changed = True
                break
    from .passes import eliminate_dead

    eliminate_dead(mod)


def _pack_matches(unpack: Node, pack: Node) -> bool:
    """The Unpack's source already has the layout the Pack would make. Its padding may hold
    other values than the Pack's fill: padded channels meet zero weights, and padded batch
    rows only reach padded output rows, so no result depends on them."""
    src = unpack.inputs[0]
    return src is not None and tuple(src.shape[-2:]) == tuple(pack.attrs["blocks"])  # type: ignore[index]


def _replace_uses(g: Graph, old: Value, new: Value) -> None:
    for n in g.nodes:
        n.inputs = [new if v is old else v for v in n.inputs]
    g.outputs = [new if v is old else v for v in g.outputs]


def calibration_ranges(values: dict[str, list[np.ndarray]]) -> dict[str, tuple[float, float]]:
    """(min, max) of each value over the calibration runs."""
    return {k: (float(min(a.min() for a in v)), float(max(a.max() for a in v))) for k, v in values.items()
            if v and all(a.dtype.kind == "f" for a in v)}
