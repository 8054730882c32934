"""Neural-network operators as loop-IR functions for the host backends (CPU, GPU), with
ONNX semantics: numpy-style broadcasting, NCHW convolution and pooling with explicit
padding, reductions over axes, softmax, layer normalization, matmul and gemm, and the
data-movement operators (transpose, reshape, concat, slice, gather, pad, resize).

Every builder takes static shapes and returns a `PrimFunc` whose parameters are the
inputs in order, then the output(s).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .expr import And, Expr, FloorDiv, FloorMod, IntImm, Max, Min, Not, Or, Var, and_, eq_, ne_, not_, or_, select
from .scalar import FloatImm, call, dtype_of
from .stmt import Buffer, Cast, PrimFunc
from .te import FuncBuilder

Shape = tuple[int, ...]


def _const(v: float, dtype: str) -> Expr:
    return FloatImm(v, dtype) if dtype.startswith("float") else IntImm(int(v))


def broadcast_shape(*shapes: Sequence[int]) -> Shape:
    """Numpy broadcasting of ``shapes``; ValueError when they do not broadcast."""
    n = max(len(s) for s in shapes)
    out = []
    for d in range(n):
        dims = {s[d - n + len(s)] for s in shapes if d - n + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise ValueError(f"shapes {[list(s) for s in shapes]} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _bcast(buf: Buffer, out_shape: Shape, idx: Sequence[Expr]) -> Expr:
    """``buf`` read at output index ``idx`` under broadcasting."""
    shape = [d.value for d in buf.shape]  # type: ignore[attr-defined]
    lead = len(out_shape) - len(shape)
    if buf.ndim == 1 and shape == [1] and not out_shape:
        return buf[0]  # type: ignore[return-value]
    return buf[tuple(IntImm(0) if n == 1 else idx[lead + d] for d, n in enumerate(shape))]  # type: ignore[return-value]


def _gelu(x: Expr, dt: str) -> Expr:
    return x * _const(0.5, dt) * (_const(1.0, dt) + call("erf", x * _const(1 / math.sqrt(2), dt), dtype=dt))


UNARY: dict[str, Callable[[Expr, str], Expr]] = {
    "Relu": lambda x, dt: Max(x, _const(0, dt)),
    "Sigmoid": lambda x, dt: call("sigmoid", x, dtype=dt),
    "Tanh": lambda x, dt: call("tanh", x, dtype=dt),
    "Exp": lambda x, dt: call("exp", x, dtype=dt),
    "Log": lambda x, dt: call("log", x, dtype=dt),
    "Sqrt": lambda x, dt: call("sqrt", x, dtype=dt),
    "Abs": lambda x, dt: call("abs", x, dtype=dt) if dt.startswith("float") else Max(x, _const(0, dt) - x),
    "Neg": lambda x, dt: _const(0, dt) - x,
    "Erf": lambda x, dt: call("erf", x, dtype=dt),
    "Gelu": _gelu,
    "Floor": lambda x, dt: call("floor", x, dtype=dt),
    "Ceil": lambda x, dt: call("ceil", x, dtype=dt),
    "Round": lambda x, dt: call("round", x, dtype=dt),
    "Reciprocal": lambda x, dt: _const(1.0, dt) // x,
    "Identity": lambda x, dt: x,
    "Sin": lambda x, dt: call("sin", x, dtype=dt),
    "Cos": lambda x, dt: call("cos", x, dtype=dt),
    "Softplus": lambda x, dt: call("log", _const(1.0, dt) + call("exp", x, dtype=dt), dtype=dt),
    "HardSigmoid": lambda x, dt: Min(Max(x * _const(0.2, dt) + _const(0.5, dt), _const(0, dt)), _const(1, dt)),
    "HardSwish": lambda x, dt: x * Min(Max(x * _const(1 / 6, dt) + _const(0.5, dt), _const(0, dt)), _const(1, dt)),
    "Not": lambda x, dt: Not(x),
}


def unary(op: str, shape: Shape, dtype: str, **attrs: float) -> PrimFunc:
    """An elementwise function of one tensor (`UNARY`, plus LeakyRelu/Elu/Clip with attributes)."""
    fb = FuncBuilder(op.lower())
    x = fb.input("X", shape, dtype)

    def fn(*i: Var) -> Expr:
        v = x[i] if shape else x[0]
        if op == "LeakyRelu":
            return select(v < _const(0, dtype), v * _const(attrs.get("alpha", 0.01), dtype), v)
        if op == "Elu":
            a = _const(attrs.get("alpha", 1.0), dtype)
            return select(v < _const(0, dtype), a * (call("exp", v, dtype=dtype) - _const(1.0, dtype)), v)
        if op == "HardSigmoid":
            a, b = _const(attrs.get("alpha", 0.2), dtype), _const(attrs.get("beta", 0.5), dtype)
            return Min(Max(v * a + b, _const(0, dtype)), _const(1, dtype))
        if op == "Gelu" and attrs.get("approximate", "none") == "tanh":
            inner = (v + _const(0.044715, dtype) * v * v * v) * _const(math.sqrt(2 / math.pi), dtype)
            return _const(0.5, dtype) * v * (_const(1.0, dtype) + call("tanh", inner, dtype=dtype))
        if op == "Clip":
            lo, hi = attrs.get("min"), attrs.get("max")
            if lo is not None:
                v = Max(v, _const(lo, dtype))
            if hi is not None:
                v = Min(v, _const(hi, dtype))
            return v
        if op not in UNARY:
            raise ValueError(f"no elementwise operator {op}")
        return UNARY[op](v, dtype)  # type: ignore[arg-type]

    y = fb.compute("Y", shape, "bool" if op == "Not" else dtype, fn)
    return fb.build([y])


def cast(shape: Shape, src: str, dst: str) -> PrimFunc:
    fb = FuncBuilder("cast")
    x = fb.input("X", shape, src)
    if dst == "bool":
        y = fb.compute("Y", shape, dst, lambda *i: ne_(x[i], _const(0, src)))
    else:  # float to integer rounds toward zero, as ONNX does
        y = fb.compute("Y", shape, dst, lambda *i: Cast(dst, x[i]))
    return fb.build([y])


BINARY: dict[str, Callable[[Expr, Expr], Expr]] = {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
    "Div": lambda a, b: FloorDiv(a, b), "Max": Max, "Min": Min,
    "Pow": lambda a, b: call("pow", a, b, dtype=dtype_of(a) or "float32"),
    "Equal": lambda a, b: _cmp("==", a, b), "Less": lambda a, b: _cmp("<", a, b),
    "Greater": lambda a, b: _cmp(">", a, b), "LessOrEqual": lambda a, b: _cmp("<=", a, b),
    "GreaterOrEqual": lambda a, b: _cmp(">=", a, b), "And": And, "Or": Or,
    "Mod": lambda a, b: FloorMod(a, b),
}
_BOOL_OUT = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or"}


def _cmp(op: str, a: Expr, b: Expr) -> Expr:
    from .expr import Cmp

    return Cmp(op, a, b)


def binary(op: str, a_shape: Shape, b_shape: Shape, dtype: str, fmod: bool = False) -> PrimFunc:
    """``op(A, B)`` with broadcasting (`BINARY`); comparisons and logic give ``bool``. ``Mod``
    takes the divisor's sign, or with ``fmod`` the dividend's (C ``fmod``)."""
    if op == "Mod":
        return _mod(a_shape, b_shape, dtype, fmod)
    if op not in BINARY:
        raise ValueError(f"no binary operator {op}")
    out = broadcast_shape(a_shape, b_shape)
    fb = FuncBuilder(op.lower())
    in_dt = "bool" if op in ("And", "Or") else dtype
    a, b = fb.input("A", a_shape, in_dt), fb.input("B", b_shape, in_dt)
    if op == "Div" and not dtype.startswith("float"):  # ONNX integer division truncates toward zero
        def fn(*i: Var) -> Expr:
            x, y = _bcast(a, out, i), _bcast(b, out, i)
            q = FloorDiv(x, y)
            return select(and_(ne_(FloorMod(x, y), IntImm(0)), ne_(x < IntImm(0), y < IntImm(0))), q + 1, q)
    else:
        def fn(*i: Var) -> Expr:
            return BINARY[op](_bcast(a, out, i), _bcast(b, out, i))

    y = fb.compute("Y", out, "bool" if op in _BOOL_OUT else dtype, fn)
    return fb.build([y])


def _mod(a_shape: Shape, b_shape: Shape, dtype: str, fmod: bool) -> PrimFunc:
    out = broadcast_shape(a_shape, b_shape)
    fb = FuncBuilder("mod")
    a, b = fb.input("A", a_shape, dtype), fb.input("B", b_shape, dtype)
    flt = dtype.startswith("float")

    def fn(*i: Var) -> Expr:
        x, y = _bcast(a, out, i), _bcast(b, out, i)
        if flt:
            return call("fmod", x, y, dtype=dtype) if fmod else FloorMod(x, y)
        r = FloorMod(x, y)  # the divisor's sign
        if not fmod:
            return r
        return select(and_(ne_(r, IntImm(0)), ne_(x < IntImm(0), y < IntImm(0))), r - y, r)

    return fb.build([fb.compute("Y", out, dtype, fn)])


def where(c_shape: Shape, x_shape: Shape, y_shape: Shape, dtype: str) -> PrimFunc:
    out = broadcast_shape(c_shape, x_shape, y_shape)
    fb = FuncBuilder("where")
    c, x, y = fb.input("C", c_shape, "bool"), fb.input("X", x_shape, dtype), fb.input("Y", y_shape, dtype)
    z = fb.compute("Z", out, dtype, lambda *i: select(_bcast(c, out, i), _bcast(x, out, i), _bcast(y, out, i)))
    return fb.build([z])


def _axes(axes: Sequence[int] | None, ndim: int) -> list[int]:
    if axes is None:
        return list(range(ndim))
    out = sorted({a + ndim if a < 0 else a for a in axes})
    if any(not 0 <= a < ndim for a in out):
        raise ValueError(f"axes {list(axes)} out of range for {ndim} dimensions")
    return out


def reduce(op: str, shape: Shape, dtype: str, axes: Sequence[int] | None, keepdims: bool = True) -> PrimFunc:
    """ReduceSum/Mean/Max/Min/Prod/L2/SumSquare over ``axes`` (None: all)."""
    ax = _axes(axes, len(shape))
    kept = [d for d in range(len(shape)) if d not in ax]
    out_shape = tuple(1 if d in ax else shape[d] for d in range(len(shape))) if keepdims else \
        tuple(shape[d] for d in kept)
    fb = FuncBuilder(op.lower())
    x = fb.input("X", shape, dtype)
    kind = {"ReduceSum": "sum", "ReduceMean": "sum", "ReduceMax": "max", "ReduceMin": "min",
            "ReduceSumSquare": "sum", "ReduceL2": "sum"}.get(op)
    if kind is None:
        raise ValueError(f"no reduction {op}")

    def at(i: tuple[Var, ...], r: tuple[Var, ...]) -> Expr:
        idx: list[Expr] = []
        it, rt = iter(i), iter(r)
        for d in range(len(shape)):
            if d in ax:
                idx.append(next(rt))
                if keepdims:
                    next(it)
            else:
                idx.append(next(it))
        v = x[tuple(idx)]
        return v * v if op in ("ReduceSumSquare", "ReduceL2") else v  # type: ignore[operator]

    acc = fb.reduce("Acc" if op in ("ReduceMean", "ReduceL2") else "Y", out_shape, dtype,
                    [shape[d] for d in ax], at, kind)
    if op == "ReduceMean":
        n = math.prod(shape[d] for d in ax)
        acc = fb.compute("Y", out_shape, dtype, lambda *i: FloorDiv(acc[i], _const(n, dtype)))
    elif op == "ReduceL2":
        acc = fb.compute("Y", out_shape, dtype, lambda *i: call("sqrt", acc[i], dtype=dtype))
    return fb.build([acc])


def _drop(i: tuple[Var, ...], axis: int) -> tuple[Expr, ...]:
    return tuple(v for d, v in enumerate(i) if d != axis)


def softmax(shape: Shape, dtype: str, axis: int = -1, log: bool = False) -> PrimFunc:
    """Softmax (or LogSoftmax) along ``axis``: max, exp-sum, normalize."""
    ax = axis + len(shape) if axis < 0 else axis
    red = tuple(n for d, n in enumerate(shape) if d != ax)
    fb = FuncBuilder("log_softmax" if log else "softmax")
    x = fb.input("X", shape, dtype)

    def along(i: tuple[Var, ...], r: Expr) -> tuple[Expr, ...]:
        return tuple(r if d == ax else v for d, v in enumerate(_insert(i, ax)))

    m = fb.reduce("M", red, dtype, (shape[ax],), lambda i, r: x[along(i, r[0])], "max")
    e = fb.compute("E", shape, dtype, lambda *i: call("exp", x[i] - m[_drop(i, ax)], dtype=dtype))
    s = fb.reduce("S", red, dtype, (shape[ax],), lambda i, r: e[along(i, r[0])])
    if log:
        y = fb.compute("Y", shape, dtype, lambda *i: x[i] - m[_drop(i, ax)] - call("log", s[_drop(i, ax)], dtype=dtype))
    else:
        y = fb.compute("Y", shape, dtype, lambda *i: FloorDiv(e[i], s[_drop(i, ax)]))
    return fb.build([y])


def _insert(i: tuple[Var, ...], ax: int) -> tuple[Expr, ...]:
    """Spatial indices with a placeholder at ``ax`` (replaced by the reduction variable)."""
    return (*i[:ax], IntImm(0), *i[ax:])


def layer_norm(shape: Shape, dtype: str, axis: int = -1, epsilon: float = 1e-5, has_bias: bool = True,
               outputs: Sequence[int] = (0,), stats_dtype: str | None = None) -> PrimFunc:
    """LayerNormalization over the dimensions from ``axis`` on, with scale and (optional) bias.
    ``outputs`` are the ONNX outputs to return, in order: 0 ``Y``, 1 ``Mean``, 2 ``InvStdDev``
    (the statistics shaped as the input with the normalized dimensions 1, in ``stats_dtype``,
    by default ``dtype``)."""
    ax = axis + len(shape) if axis < 0 else axis
    if not 0 <= ax < len(shape):
        raise ValueError(f"layer_norm: axis {axis} out of range for {len(shape)} dimensions")
    _check_outputs("layer_norm", outputs, 3)
    outer, inner = shape[:ax], shape[ax:]
    n = math.prod(inner)
    fb = FuncBuilder("layer_norm")
    x = fb.input("X", shape, dtype)
    g = fb.input("Scale", inner, dtype)
    b = fb.input("B", inner, dtype) if has_bias else None

    def row(i: Sequence[Expr]) -> tuple[Expr, ...]:  # a row's statistics; one row when axis is 0
        return tuple(i[:ax]) or (IntImm(0),)

    def at(i: tuple[Var, ...], r: tuple[Var, ...]) -> Expr:
        return x[(*i[:ax], *r)]  # type: ignore[return-value]

    total = fb.reduce("Sum", outer, dtype, inner, at)
    mu = fb.compute("Mu", outer, dtype, lambda *i: FloorDiv(total[i], _const(n, dtype)))
    var = fb.reduce("Var", outer, dtype, inner, lambda i, r: (at(i, r) - mu[i]) * (at(i, r) - mu[i]))
    rstd = fb.compute("Rstd", outer, dtype,
                      lambda *i: call("rsqrt", FloorDiv(var[i], _const(n, dtype)) + _const(epsilon, dtype), dtype=dtype))

    def out(*i: Var) -> Expr:
        o, r = row(i), i[ax:]
        v = (x[i] - mu[o]) * rstd[o] * g[r]
        return v + b[r] if b is not None else v

    made = {0: fb.compute("Y", shape, dtype, out)}
    sdt = stats_dtype or dtype
    keep = (*outer, *(1,) * len(inner))
    as_stat = (lambda e: e) if sdt == dtype else (lambda e: Cast(sdt, e))
    for k, name, src in ((1, "Mean", mu), (2, "InvStdDev", rstd)):
        if k in outputs:
            made[k] = fb.compute(name, keep, sdt, lambda *i, src=src: as_stat(src[row(i)]))
    return fb.build([made[k] for k in outputs])


def _check_outputs(what: str, outputs: Sequence[int], count: int) -> None:
    """``outputs``: distinct output indices below ``count``, ascending (the function's parameter order)."""
    if not outputs or list(outputs) != sorted(set(outputs)) or not all(0 <= k < count for k in outputs):
        raise ValueError(f"{what}: outputs {list(outputs)} must be distinct ascending indices below {count}")


def matmul(a_shape: Shape, b_shape: Shape, dtype: str, acc_dtype: str | None = None) -> PrimFunc:
    """numpy ``matmul``: batch dimensions broadcast; 1-D operands are promoted and squeezed."""
    acc_dtype = acc_dtype or dtype
    a2 = (1, *a_shape) if len(a_shape) == 1 else a_shape
    b2 = (*b_shape, 1) if len(b_shape) == 1 else b_shape
    if a2[-1] != b2[-2]:
        raise ValueError(f"matmul of {list(a_shape)} and {list(b_shape)}: inner dimensions differ")
    batch = broadcast_shape(a2[:-2], b2[:-2])
    m, k, n = a2[-2], a2[-1], b2[-1]
    fb = FuncBuilder("matmul")
    a, b = fb.input("A", a_shape, dtype), fb.input("B", b_shape, dtype)
    full = (*batch, m, n)

    def at_a(i: tuple[Var, ...], r: Var) -> Expr:
        bi = _bcast_batch(a2, batch, i[: len(batch)])
        idx = (*bi, i[-2], r) if len(a_shape) > 1 else (r,)
        return Cast(acc_dtype, a[idx]) if acc_dtype != dtype else a[idx]

    def at_b(i: tuple[Var, ...], r: Var) -> Expr:
        bi = _bcast_batch(b2, batch, i[: len(batch)])
        idx = (*bi, r, i[-1]) if len(b_shape) > 1 else (r,)
        return Cast(acc_dtype, b[idx]) if acc_dtype != dtype else b[idx]

    y = fb.reduce("Y", full, acc_dtype, (k,), lambda i, r: at_a(i, r[0]) * at_b(i, r[0]))
    if len(a_shape) == 1 or len(b_shape) == 1:
        out = tuple(d for j, d in enumerate(full) if not ((len(a_shape) == 1 and j == len(full) - 2) or
                                                         (len(b_shape) == 1 and j == len(full) - 1)))
        return reshape_into(fb, y, full, out or (1,))
    return fb.build([y])


def _bcast_batch(shape: Shape, batch: Shape, idx: tuple[Var, ...]) -> tuple[Expr, ...]:
    own = shape[:-2]
    lead = len(batch) - len(own)
    return tuple(IntImm(0) if n == 1 else idx[lead + d] for d, n in enumerate(own))


def reshape_into(fb: FuncBuilder, src: Buffer, src_shape: Shape, out_shape: Shape) -> PrimFunc:
    y = fb.compute("Out", out_shape, src.dtype, lambda *i: src[_reindex(i, out_shape, src_shape)])
    return fb.build([y])


def _reindex(idx: Sequence[Expr], shape: Shape, to: Shape) -> tuple[Expr, ...]:
    """Row-major index ``idx`` in ``shape`` as an index in ``to`` (same element count)."""
    flat: Expr = IntImm(0)
    for v, n in zip(idx, shape):
        flat = flat * n + v
    out = []
    stride = math.prod(to)
    for n in to:
        stride //= n
        out.append(FloorMod(FloorDiv(flat, IntImm(stride)), IntImm(n)) if stride > 1 or n > 1 else IntImm(0))
    return tuple(out)


def reshape(shape: Shape, out_shape: Shape, dtype: str) -> PrimFunc:
    if math.prod(shape) != math.prod(out_shape):
        raise ValueError(f"cannot reshape {list(shape)} to {list(out_shape)}")
    fb = FuncBuilder("reshape")
    x = fb.input("X", shape, dtype)
    return reshape_into(fb, x, shape, out_shape)


def gemm(a_shape: Shape, b_shape: Shape, c_shape: Shape | None, dtype: str, alpha: float = 1.0, beta: float = 1.0,
         trans_a: bool = False, trans_b: bool = False) -> PrimFunc:
    """ONNX Gemm: ``alpha · A' B' + beta · C`` (C broadcast)."""
    m, k = (a_shape[1], a_shape[0]) if trans_a else a_shape
    k2, n = (b_shape[1], b_shape[0]) if trans_b else b_shape
    if k != k2:
        raise ValueError(f"gemm of {list(a_shape)} and {list(b_shape)}: inner dimensions differ")
    fb = FuncBuilder("gemm")
    a, b = fb.input("A", a_shape, dtype), fb.input("B", b_shape, dtype)
    c = fb.input("C", c_shape, dtype) if c_shape is not None else None

    def prod(i: tuple[Var, ...], r: tuple[Var, ...]) -> Expr:
        x = a[r[0], i[0]] if trans_a else a[i[0], r[0]]
        y = b[i[1], r[0]] if trans_b else b[r[0], i[1]]
        return x * y  # type: ignore[operator]

    acc = fb.reduce("Acc" if (c is not None or alpha != 1.0) else "Y", (m, n), dtype, (k,), prod)
    if c is not None or alpha != 1.0:
        def out(i: Var, j: Var) -> Expr:
            v = acc[i, j] * _const(alpha, dtype) if alpha != 1.0 else acc[i, j]
            if c is not None:
                cv = _bcast(c, (m, n), (i, j))
                v = v + (cv * _const(beta, dtype) if beta != 1.0 else cv)  # type: ignore[operator]
            return v  # type: ignore[return-value]
        acc = fb.compute("Y", (m, n), dtype, out)
    return fb.build([acc])


def conv2d(x_shape: Shape, w_shape: Shape, dtype: str, strides: Sequence[int] = (1, 1),
           pads: Sequence[int] = (0, 0, 0, 0), dilations: Sequence[int] = (1, 1), group: int = 1,
           bias: bool = False, acc_dtype: str | None = None) -> PrimFunc:
    """NCHW convolution, OIHW weights (I = channels per group), ``pads`` = (top, left, bottom, right)."""
    acc_dtype = acc_dtype or dtype
    n, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    if c != cg * group or o % group:
        raise ValueError(f"conv2d: {c} input channels, {cg} per group and {o} outputs do not fit {group} groups")
    (sh, sw), (dh, dw) = strides, dilations
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    og = o // group
    fb = FuncBuilder("conv2d")
    x, wt = fb.input("X", x_shape, dtype), fb.input("W", w_shape, dtype)
    bvec = fb.input("B", (o,), acc_dtype) if bias else None
    src = x
    if any(pads):
        src = fb.compute("Xp", (n, c, h + pt + pb, w + pl + pr), dtype, lambda b_, ch, y, xx: select(
            and_(and_(y >= pt, y < h + pt), and_(xx >= pl, xx < w + pl)), x[b_, ch, y - pt, xx - pl], _const(0, dtype)))

    def body(i: tuple[Var, ...], r: tuple[Var, ...]) -> Expr:
        b_, oc, y, xx = i
        ic, ky, kx = r
        cin = oc // og * cg + ic if group > 1 else ic
        xv = src[b_, cin, y * sh + ky * dh, xx * sw + kx * dw]
        wv = wt[oc, ic, ky, kx]
        if acc_dtype != dtype:
            return Cast(acc_dtype, xv) * Cast(acc_dtype, wv)
        return xv * wv  # type: ignore[operator]

    # the bias starts the sum (one stage fewer than adding it afterwards)
    y = fb.reduce("Y", (n, o, oh, ow), acc_dtype, (cg, kh, kw), body,
                  init=(lambda i: bvec[i[1]]) if bvec is not None else None)  # type: ignore[index]
    return fb.build([y])


def pool_out_size(size: int, kernel: int, stride: int, dilation: int, lo: int, hi: int, ceil_mode: bool) -> int:
    """A pooling output's length along one axis, as ONNX computes it: in ceil mode a last
    window that would start in the end padding is dropped."""
    span = (kernel - 1) * dilation + 1
    room = size + lo + hi - span
    if room < 0:
        raise ValueError(f"a pooling window spanning {span} does not fit an input of {size} padded by {lo} and {hi}")
    out = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + lo:
        out -= 1
    return out


def _lowest(dtype: str) -> Expr:
    """The smallest value of ``dtype`` (the identity of max)."""
    if dtype.startswith("float"):
        return FloatImm(-3.4028234663852886e38 if dtype == "float32" else -1.7976931348623157e308, dtype)
    return IntImm({"uint8": 0, "bool": 0, "int8": -128, "int16": -(1 << 15), "int32": -(1 << 31),
                   "int64": -(1 << 63)}[dtype])


def pool2d(kind: str, x_shape: Shape, dtype: str, kernel: Sequence[int], strides: Sequence[int] = (1, 1),
           pads: Sequence[int] = (0, 0, 0, 0), count_include_pad: bool = False, ceil_mode: bool = False,
           dilations: Sequence[int] = (1, 1), outputs: Sequence[int] = (0,), storage_order: int = 0) -> PrimFunc:
    """MaxPool / AveragePool over NCHW with explicit pads (top, left, bottom, right). MaxPool
    may dilate its window, and return (``outputs`` 0: ``Y``, 1: ``Indices``) ONNX's indices:
    each window's first maximum in row-major order, as a flattened NCHW position (with
    ``storage_order`` 1, column-major within each image plane)."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    pt, pl, pb, pr = pads
    _check_outputs(kind.lower(), outputs, 2 if kind == "MaxPool" else 1)
    if kind != "MaxPool" and (dh, dw) != (1, 1):
        raise ValueError(f"{kind.lower()}: dilated windows are supported for MaxPool only")
    oh = pool_out_size(h, kh, sh, dh, pt, pb, ceil_mode)
    ow = pool_out_size(w, kw, sw, dw, pl, pr, ceil_mode)
    fb = FuncBuilder(kind.lower())
    x = fb.input("X", x_shape, dtype)

    def inside(y: Expr, xx: Expr) -> Expr:
        return and_(and_(y >= IntImm(0), y < IntImm(h)), and_(xx >= IntImm(0), xx < IntImm(w)))

    def tap(i: tuple[Var, ...], r: tuple[Var, ...]) -> tuple[Expr, Expr]:  # the input row and column read
        ky, kx = (r[0] if dh == 1 else r[0] * dh), (r[1] if dw == 1 else r[1] * dw)
        return i[2] * sh + ky - pt, i[3] * sw + kx - pl

    def at(i: tuple[Var, ...], r: tuple[Var, ...], fill: Expr) -> Expr:
        yy, xv = tap(i, r)
        return select(inside(yy, xv), x[i[0], i[1], yy, xv], fill)

    if kind == "MaxPool":
        low = _lowest(dtype)  # padding never wins the max
        y = fb.reduce("Y", (n, c, oh, ow), dtype, (kh, kw), lambda i, r: at(i, r, low), "max")
        if list(outputs) == [0]:
            return fb.build([y])
        made = {0: y, 1: _pool_indices(fb, x, y, (kh, kw), tap, inside, storage_order)}
        return fb.build([made[k] for k in outputs])
    s = fb.reduce("S", (n, c, oh, ow), dtype, (kh, kw), lambda i, r: at(i, r, _const(0, dtype)))
    if count_include_pad:
        y = fb.compute("Y", (n, c, oh, ow), dtype, lambda *i: FloorDiv(s[i], _const(kh * kw, dtype)))
    else:
        def count(y_: Var, x_: Var) -> Expr:  # the window's size inside the input
            y0, x0 = y_ * sh - pt, x_ * sw - pl
            ny = Min(y0 + kh, IntImm(h)) - Max(y0, IntImm(0))
            nx = Min(x0 + kw, IntImm(w)) - Max(x0, IntImm(0))
            return Cast(dtype, ny * nx)
        y = fb.compute("Y", (n, c, oh, ow), dtype, lambda b_, ch, y_, x_: FloorDiv(s[b_, ch, y_, x_], count(y_, x_)))
    return fb.build([y])


def _pool_indices(fb: FuncBuilder, x: Buffer, y: Buffer, window: tuple[int, int],
                  tap: Callable[[tuple[Var, ...], tuple[Var, ...]], tuple[Expr, Expr]],
                  inside: Callable[[Expr, Expr], Expr], storage_order: int) -> Buffer:
    """MaxPool's Indices: the smallest row-major position ``h * W + w`` in its plane of a tap
    that holds the window's maximum ``y`` (row-major window order scans positions in increasing
    order, so this is the first maximum, as ONNX picks it), then offset to its plane."""
    _, c, h, w = (d.value for d in x.shape)  # type: ignore[attr-defined]
    if storage_order not in (0, 1):
        raise ValueError(f"maxpool: storage_order {storage_order} is not 0 (row-major) or 1 (column-major)")
    past = IntImm(h * w)

    def first(i: tuple[Var, ...], r: tuple[Var, ...]) -> Expr:
        yy, xv = tap(i, r)  # the tap is read only inside the input (nested selects read lazily)
        return select(inside(yy, xv), select(eq_(x[i[0], i[1], yy, xv], y[i]), yy * w + xv, past), past)

    shape = tuple(d.value for d in y.shape)  # type: ignore[attr-defined]
    pos = fb.reduce("First", shape, "int64", window, first, "min")

    def flat(b_: Var, ch: Var, y_: Var, x_: Var) -> Expr:
        p = pos[b_, ch, y_, x_]
        within = p if storage_order == 0 else FloorDiv(p, IntImm(w)) + FloorMod(p, IntImm(w)) * IntImm(h)
        return (b_ * c + ch) * (h * w) + within

    return fb.compute("Indices", shape, "int64", flat)


def global_pool(kind: str, x_shape: Shape, dtype: str) -> PrimFunc:
    sp = x_shape[2:]
    return reduce("ReduceMax" if kind == "GlobalMaxPool" else "ReduceMean", x_shape, dtype,
                  list(range(2, 2 + len(sp))), keepdims=True)


def topk(shape: Shape, dtype: str, k: int, axis: int = -1, largest: bool = True,
         outputs: Sequence[int] = (0, 1)) -> PrimFunc:
    """TopK along ``axis``: the ``k`` largest (or smallest) values in order, and their int64
    indices (``outputs`` 0: ``Values``, 1: ``Indices``). Equal values keep their order (the
    lower index first) and NaN counts as larger than any number, as ONNX's reference orders
    them. Each element's rank is the number of elements of its row ordered before it, and
    output position p takes the element of rank p: quadratic in the axis length, which suits
    the short rows TopK usually sees."""
    ax = axis + len(shape) if axis < 0 else axis
    if not 0 <= ax < len(shape):
        raise ValueError(f"topk: axis {axis} out of range for {len(shape)} dimensions")
    length = shape[ax]
    if not 1 <= k <= length:
        raise ValueError(f"topk: k {k} must be between 1 and the axis length {length}")
    _check_outputs("topk", outputs, 2)
    out_shape = (*shape[:ax], k, *shape[ax + 1:])
    fb = FuncBuilder("topk")
    x = fb.input("X", shape, dtype)

    def along(i: Sequence[Expr], j: Expr) -> tuple[Expr, ...]:
        return (*i[:ax], j, *i[ax + 1:])

    def before(i: tuple[Var, ...], r: tuple[Var, ...]) -> Expr:
        a, b = x[along(i, r[0])], x[i]
        ahead, same = (a > b, eq_(a, b)) if largest else (a < b, eq_(a, b))
        if dtype.startswith("float"):  # NaN: unequal to itself; ordered after numbers, tied with NaN
            nan_a, nan_b = not_(eq_(a, a)), not_(eq_(b, b))
            ahead = or_(ahead, and_(nan_a, not_(nan_b)) if largest else and_(nan_b, not_(nan_a)))
            same = or_(same, and_(nan_a, nan_b))
        return select(or_(ahead, and_(same, r[0] < i[ax])), IntImm(1), IntImm(0))

    rank = fb.reduce("Rank", shape, "int64", (length,), before)
    ind = fb.reduce("Indices", out_shape, "int64", (length,),
                    lambda i, r: select(eq_(rank[along(i, r[0])], i[ax]), r[0], IntImm(0)))
    made = {1: ind, 0: fb.compute("Values", out_shape, dtype, lambda *i: x[along(i, ind[i])])}
    return fb.build([made[j] for j in outputs])


def transpose(shape: Shape, dtype: str, perm: Sequence[int] | None = None) -> PrimFunc:
    perm = list(perm) if perm is not None else list(range(len(shape)))[::-1]
    out = tuple(shape[p] for p in perm)
    fb = FuncBuilder("transpose")
    x = fb.input("X", shape, dtype)

    def fn(*i: Var) -> Expr:
        idx: list[Expr] = [IntImm(0)] * len(shape)
        for d, p in enumerate(perm):
            idx[p] = i[d]
        return x[tuple(idx)]

    return fb.build([fb.compute("Y", out, dtype, fn)])


def concat(shapes: Sequence[Shape], dtype: str, axis: int) -> PrimFunc:
    ax = axis + len(shapes[0]) if axis < 0 else axis
    total = sum(s[ax] for s in shapes)
    out = tuple(total if d == ax else n for d, n in enumerate(shapes[0]))
    fb = FuncBuilder("concat")
    ins = [fb.input(f"X{j}", s, dtype) for j, s in enumerate(shapes)]

    def fn(*i: Var) -> Expr:
        offs = [sum(s[ax] for s in shapes[:j]) for j in range(len(shapes))]
        v: Expr = ins[-1][tuple(i[d] - offs[-1] if d == ax else i[d] for d in range(len(out)))]
        for j in range(len(shapes) - 2, -1, -1):
            here = ins[j][tuple(i[d] - offs[j] if d == ax else i[d] for d in range(len(out)))]
            v = select(i[ax] < IntImm(offs[j] + shapes[j][ax]), here, v)
        return v

    return fb.build([fb.compute("Y", out, dtype, fn)])


def slice_(shape: Shape, dtype: str, starts: Sequence[int], ends: Sequence[int], axes: Sequence[int] | None = None,
           steps: Sequence[int] | None = None) -> PrimFunc:
    """ONNX Slice with constant starts/ends/axes/steps (clamped as ONNX does)."""
    axes = [a + len(shape) if a < 0 else a for a in (axes if axes is not None else range(len(starts)))]
    steps = list(steps) if steps is not None else [1] * len(starts)
    begin = [0] * len(shape)
    step = [1] * len(shape)
    out = list(shape)
    for a, s0, e0, st in zip(axes, starts, ends, steps):
        n = shape[a]
        s0 = s0 + n if s0 < 0 else s0
        e0 = e0 + n if e0 < 0 else e0
        if st > 0:
            s0, e0 = min(max(s0, 0), n), min(max(e0, 0), n)
            out[a] = max(0, -(-(e0 - s0) // st))
        else:
            s0, e0 = min(max(s0, -1), n - 1), min(max(e0, -1), n - 1)
            out[a] = max(0, -(-(s0 - e0) // -st))
        begin[a], step[a] = s0, st
    fb = FuncBuilder("slice")
    x = fb.input("X", shape, dtype)
    y = fb.compute("Y", tuple(out), dtype, lambda *i: x[tuple(IntImm(begin[d]) + i[d] * step[d] for d in range(len(shape)))])
    return fb.build([y])


def gather(shape: Shape, dtype: str, idx_shape: Shape, idx_dtype: str, axis: int = 0) -> PrimFunc:
    ax = axis + len(shape) if axis < 0 else axis
    out = (*shape[:ax], *idx_shape, *shape[ax + 1:])
    fb = FuncBuilder("gather")
    x, ind = fb.input("X", shape, dtype), fb.input("I", idx_shape or (1,), idx_dtype)

    def fn(*i: Var) -> Expr:
        k = len(idx_shape)
        j = Cast("int64", ind[tuple(i[ax:ax + k])] if k else ind[0])
        j = select(j < IntImm(0), j + shape[ax], j)
        return x[(*i[:ax], j, *i[ax + k:])]

    return fb.build([fb.compute("Y", out, dtype, fn)])


def pad(shape: Shape, dtype: str, pads: Sequence[int], value: float = 0.0) -> PrimFunc:
    """Constant padding: ``pads`` = begins of every axis, then ends (ONNX order)."""
    nd = len(shape)
    lo, hi = pads[:nd], pads[nd:]
    out = tuple(n + a + b for n, a, b in zip(shape, lo, hi))
    fb = FuncBuilder("pad")
    x = fb.input("X", shape, dtype)

    def fn(*i: Var) -> Expr:
        src = tuple(v - a for v, a in zip(i, lo))
        ok: Expr = IntImm(1)
        for s, n in zip(src, shape):
            ok = and_(ok, and_(s >= IntImm(0), s < IntImm(n)))
        return select(ok, x[src], _const(value, dtype))

    return fb.build([fb.compute("Y", out, dtype, fn)])


def resize_nearest(shape: Shape, dtype: str, out_shape: Shape) -> PrimFunc:
    """Nearest-neighbour resize (``asymmetric`` coordinates, ``floor`` rounding) to ``out_shape``,
    by index arithmetic alone (no tables). The graph's Resize uses the general `resize`."""
    fb = FuncBuilder("resize")
    x = fb.input("X", shape, dtype)
    y = fb.compute("Y", out_shape, dtype, lambda *i: x[tuple(
        FloorDiv(v * IntImm(n), IntImm(m)) for v, n, m in zip(i, shape, out_shape))])
    return fb.build([y])


# ---- Resize: per-axis tap tables made at compile time, and the kernel that applies them ----

RESIZE_MODES = ("nearest", "linear", "cubic")
RESIZE_COORDS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                 "tf_crop_and_resize")
# "simple" is Resize-10's rounding (as onnxruntime has it): floor when upsampling, ceil when downsampling
RESIZE_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")


@dataclass(frozen=True)
class ResizeMode:
    """How ONNX Resize samples: its attributes (opset 19 names and defaults)."""

    mode: str = "nearest"
    coordinate: str = "half_pixel"
    nearest: str = "round_prefer_floor"
    cubic_a: float = -0.75
    exclude_outside: bool = False
    antialias: bool = False


@dataclass(frozen=True, eq=False)
class ResizeAxis:
    """One resized axis: for each output position, the input positions of its taps (clamped into
    the input, as ONNX's edge padding does) and their weights.

    ``index`` is int32 ``(taps, out)``; ``weight`` float64 ``(taps, out)``, or None for one tap
    of weight 1 (nearest); ``inside`` is bool ``(out,)``, False where ``tf_crop_and_resize``
    samples outside the input and the output is the extrapolation value, or None when it never does.
    """

    axis: int
    index: np.ndarray
    weight: np.ndarray | None = None
    inside: np.ndarray | None = None

    @property
    def taps(self) -> int:
        return int(self.index.shape[0])

    @property
    def size(self) -> int:
        return int(self.index.shape[1])


def _resize_source(coord: str, y: np.ndarray, scale: float, n_in: int, n_out: int,
                   roi: tuple[np.floating, np.floating] | None) -> np.ndarray:
    """The input coordinate of each output position ``y`` (float64), by the formulas and in the
    arithmetic order of ONNX's reference implementation, so ties round the same way."""
    width = scale * n_in  # the reference compares and divides by the unrounded output width
    if coord == "align_corners":
        return np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)
    if coord == "asymmetric":
        return y / scale
    if coord == "tf_crop_and_resize":
        if roi is None:
            raise ValueError("tf_crop_and_resize needs a region of interest")
        lo, hi = roi
        x = np.full(n_out, (hi - lo) * (n_in - 1) / 2) if width == 1 else y * (hi - lo) * (n_in - 1) / (width - 1)
        return x + lo * (n_in - 1)
    if coord == "pytorch_half_pixel":
        return np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    if coord == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if coord == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
        return offset + (y + 0.5) / scale - 0.5
    raise ValueError(f"no coordinate_transformation_mode {coord!r}")


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel at distances ``x``."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _resize_coeffs(how: ResizeMode, ratio: np.ndarray, scale: float) -> np.ndarray:
    """Tap weights ``(out, taps)`` for each output's fractional position ``ratio`` in (0, 1]
    (1 on an input sample: the taps are then one to the left), as the reference computes them."""
    r = ratio[:, None]
    if how.mode == "nearest":
        exact = r == 1.0  # on a sample: the right tap
        nm = how.nearest if how.nearest != "simple" else ("floor" if scale >= 1 else "ceil")
        right = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5, "floor": np.zeros_like(exact),
                 "ceil": np.ones_like(exact)}[nm] | exact
        return np.concatenate([~right, right], axis=1).astype(np.float64)
    s = min(scale, 1.0) if how.antialias else 1.0  # antialias stretches the filter when downsampling
    if how.mode == "linear":
        start = int(np.floor(-1 / s) + 1)
        w = np.clip(1 - np.abs((np.arange(start, 2 - start) - r) * s), 0, 1)
    elif how.mode == "cubic":
        start = int(np.floor(-2 / s) + 1)
        w = _cubic(s * (np.arange(start, 2 - start) - r), how.cubic_a)
    else:
        raise ValueError(f"no resize mode {how.mode!r}")
    return w / w.sum(axis=1, keepdims=True) if how.antialias else w


def resize_axis(axis: int, n_in: int, n_out: int, scale: float, how: ResizeMode,
                roi: tuple[np.floating, np.floating] | None = None) -> ResizeAxis:
    """The taps of one axis resized from ``n_in`` to ``n_out`` positions at ``scale``: source
    coordinates, windows of input positions nearest to them (ties to the left) and their weights,
    exactly as ONNX's reference implementation picks them (``roi``: this axis's start and end,
    for ``tf_crop_and_resize``)."""
    x = _resize_source(how.coordinate, np.arange(n_out, dtype=np.float64), scale, n_in, n_out, roi)
    x_int = np.floor(x).astype(np.int64)
    w = _resize_coeffs(how, np.where(x == x_int, 1.0, x - x_int), scale)
    n = w.shape[1]  # always even: the window is centred between two samples
    pad = -(-n // 2)
    xp = x + pad  # in the edge-padded input, as the reference measures it
    p = np.floor(xp).astype(np.int64)
    start = p + np.where(xp - p == 0, -(n // 2), 1 - n // 2)
    idx = start[:, None] + np.arange(n)[None, :] - pad
    if how.exclude_outside:
        w = np.where((idx < 0) | (idx >= n_in), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    idx = np.clip(idx, 0, n_in - 1)
    inside = None
    if how.coordinate == "tf_crop_and_resize":
        ok = (x >= 0) & (x <= n_in - 1)
        inside = None if ok.all() else ok
    if how.mode == "nearest":  # one tap: the one of weight 1 (0 only where exclude_outside left none)
        pick = w.argmax(axis=1)
        rows = np.arange(n_out)
        w1 = w[rows, pick]
        return ResizeAxis(axis, idx[rows, pick][None, :].astype(np.int32),
                          None if (w1 == 1).all() else w1[None, :], inside)
    return ResizeAxis(axis, np.ascontiguousarray(idx.T.astype(np.int32)), np.ascontiguousarray(w.T), inside)


def resize_acc_dtype(dtype: str) -> str:
    """What a weighted resize of ``dtype`` accumulates in: float32 for float32/float16, float64
    for float64 and integers (the reference computes in float64 and rounds once at the end)."""
    return "float32" if dtype in ("float32", "float16") else "float64"


def resize_params(axes: Sequence[ResizeAxis], dtype: str) -> list[tuple[str, np.ndarray]]:
    """The tables of ``axes`` in `resize`'s parameter order (after X), named: per axis its index
    table, its weight table (in the accumulation dtype) when weighted, its inside mask when it
    extrapolates."""
    acc = np.float32 if resize_acc_dtype(dtype) == "float32" else np.float64
    out: list[tuple[str, np.ndarray]] = []
    for a in axes:
        out.append((f"index{a.axis}", a.index))
        if a.weight is not None:
            out.append((f"weight{a.axis}", a.weight.astype(acc)))
        if a.inside is not None:
            out.append((f"inside{a.axis}", a.inside.astype(np.bool_)))
    return out


# what a resize result saturates to, as the reference's saturating cast (int64: the largest
# float64 below 2**63, as converting 2**63 itself overflows)
_RESIZE_RANGE: dict[str, tuple[float, float]] = {
    "int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1024), "float16": (-65504.0, 65504.0)}


def _resize_fill(fill: float, dtype: str) -> float:
    """The extrapolation value as an output of ``dtype`` holds it (rounded and saturated)."""
    if dtype == "bool":
        return float(fill != 0)
    lo, hi = _RESIZE_RANGE.get(dtype, (-math.inf, math.inf))
    v = float(np.round(fill)) if not dtype.startswith("float") else fill
    return min(max(v, lo), hi)


def _saturate(v: Expr, acc: str, dtype: str) -> Expr:
    """An accumulated float ``v`` as ``dtype``: integers round half to even first; both clip to range."""
    if dtype == acc:
        return v
    if not dtype.startswith("float"):
        v = call("round", v, dtype=acc)
    lo, hi = _RESIZE_RANGE.get(dtype, (-math.inf, math.inf))
    return Cast(dtype, Min(Max(v, FloatImm(lo, acc)), FloatImm(hi, acc)))


_Tab = tuple[int, Buffer, "Buffer | None", "Buffer | None"]  # axis, index, weight, inside mask


def _resize_gather(x: Buffer, tabs: Sequence[_Tab], i: tuple[Var, ...], fill: float, dtype: str) -> Expr:
    """``x`` read through the index tables of the unweighted axes; ``fill`` where any extrapolates."""
    src: list[Expr] = list(i)
    ok: Expr | None = None
    for ax, idx, _, m in tabs:
        src[ax] = idx[0, i[ax]]  # type: ignore[assignment]
        if m is not None:
            ok = m[i[ax]] if ok is None else and_(ok, m[i[ax]])  # type: ignore[assignment]
    v: Expr = x[tuple(src)]  # type: ignore[assignment]
    return v if ok is None else select(ok, v, _const(fill, dtype))


def _resize_stage(fb: FuncBuilder, src: Buffer, shape: Shape, ax: int, idx: Buffer, w: Buffer, m: Buffer | None,
                  acc: str, out_dtype: str, fill: float, last: bool) -> Buffer:
    """One weighted axis: ``Σ_t w[t, o] · src[.., idx[t, o], ..]`` in ``acc``, then the
    extrapolation value where ``m`` is False and (last stage) the conversion to ``out_dtype``."""
    def tap(i: tuple[Var, ...], r: tuple[Var, ...]) -> Expr:
        at = list(i)
        at[ax] = idx[r[0], i[ax]]  # type: ignore[assignment]
        v: Expr = src[tuple(at)]  # type: ignore[assignment]
        return w[r[0], i[ax]] * (Cast(acc, v) if src.dtype != acc else v)  # type: ignore[operator]

    post = m is not None or out_dtype != acc
    s = fb.reduce("Y" if last and not post else f"S{ax}", shape, acc, (idx.shape[0].value,), tap)  # type: ignore[attr-defined]
    if not post:
        return s

    def fin(*i: Var) -> Expr:
        v: Expr = s[i]  # type: ignore[assignment]
        if m is not None:
            v = select(m[i[ax]], v, FloatImm(fill, acc))
        return _saturate(v, acc, out_dtype)

    return fb.compute("Y" if last else f"T{ax}", shape, out_dtype, fin)


def resize(shape: Shape, dtype: str, out_shape: Shape, axes: Sequence[ResizeAxis], fill: float = 0.0) -> PrimFunc:
    """ONNX Resize of ``X`` (``shape``) to ``out_shape`` by per-axis tap tables (`resize_axis`).

    Parameters: X, the tables of `resize_params` (so the kernel depends on the tables' shapes
    only, not their values), then Y. Axes without weights (nearest) are gathered in one stage;
    each weighted axis is then one reduction over its taps, ``Σ w[t, o] · in[.., index[t, o], ..]``
    (separable, in the reference's order), accumulating in `resize_acc_dtype`; outputs where an
    axis extrapolates take ``fill``. Integers round half to even and saturate at the end."""
    fb = FuncBuilder("resize")
    x = fb.input("X", shape, dtype)
    acc = resize_acc_dtype(dtype)
    tabs: list[_Tab] = []
    for a in axes:
        idx = fb.input(f"I{a.axis}", a.index.shape, "int32")
        w = fb.input(f"W{a.axis}", a.index.shape, acc) if a.weight is not None else None
        m = fb.input(f"M{a.axis}", (a.size,), "bool") if a.inside is not None else None
        tabs.append((a.axis, idx, w, m))
    gathered = [t for t in tabs if t[2] is None]
    weighted = [t for t in tabs if t[2] is not None]
    cur, cur_shape = x, list(shape)
    if gathered or not weighted:  # (no resized axis at all: a copy)
        for t in gathered:
            cur_shape[t[0]] = out_shape[t[0]]
        g_fill = _resize_fill(fill, dtype)
        cur = fb.compute("G" if weighted else "Y", cur_shape, dtype,
                         lambda *i: _resize_gather(x, gathered, i, g_fill, dtype))
    for k, (ax, idx, w, m) in enumerate(weighted):
        cur_shape[ax] = out_shape[ax]
        last = k == len(weighted) - 1
        cur = _resize_stage(fb, cur, tuple(cur_shape), ax, idx, w, m, acc,  # type: ignore[arg-type]
                            dtype if last else acc, fill, last)
    return fb.build([cur])


def batch_norm(shape: Shape, dtype: str, epsilon: float = 1e-5) -> PrimFunc:
    """BatchNormalization in inference mode over channel dimension 1."""
    fb = FuncBuilder("batch_norm")
    x = fb.input("X", shape, dtype)
    g, b, mean, var = (fb.input(nm, (shape[1],), dtype) for nm in ("Scale", "B", "Mean", "Var"))
    y = fb.compute("Y", shape, dtype, lambda *i: (x[i] - mean[i[1]]) * call(
        "rsqrt", var[i[1]] + _const(epsilon, dtype), dtype=dtype) * g[i[1]] + b[i[1]])
    return fb.build([y])


def batch_norm_training(shape: Shape, dtype: str, epsilon: float = 1e-5, momentum: float = 0.9,
                        outputs: Sequence[int] = (0,)) -> PrimFunc:
    """BatchNormalization in training mode (ONNX opset 14 on) over channel dimension 1: each
    channel normalized by the batch's own mean and population variance. ``outputs`` are the
    ONNX outputs to return, in order: 0 ``Y``, 1 ``running_mean``, 2 ``running_var`` (the
    given statistics updated: ``running * momentum + batch * (1 - momentum)``)."""
    _check_outputs("batch_norm_training", outputs, 3)
    c, red = shape[1], (shape[0], *shape[2:])
    count = _const(math.prod(red), dtype)
    fb = FuncBuilder("batch_norm_training")
    x = fb.input("X", shape, dtype)
    g, b, mean, var = (fb.input(nm, (c,), dtype) for nm in ("Scale", "B", "Mean", "Var"))

    def at(i: tuple[Var, ...], r: tuple[Var, ...]) -> Expr:
        return x[(r[0], i[0], *r[1:])]  # type: ignore[return-value]

    total = fb.reduce("Sum", (c,), dtype, red, at)
    mu = fb.compute("BatchMean", (c,), dtype, lambda ch: FloorDiv(total[ch], count))
    dev = fb.reduce("SqDev", (c,), dtype, red, lambda i, r: (at(i, r) - mu[i]) * (at(i, r) - mu[i]))
    bvar = fb.compute("BatchVar", (c,), dtype, lambda ch: FloorDiv(dev[ch], count))
    made = {0: fb.compute("Y", shape, dtype, lambda *i: (x[i] - mu[i[1]]) * call(
        "rsqrt", bvar[i[1]] + _const(epsilon, dtype), dtype=dtype) * g[i[1]] + b[i[1]])}
    keep, take = _const(momentum, dtype), _const(1.0 - momentum, dtype)
    for k, name, old, new in ((1, "RunningMean", mean, mu), (2, "RunningVar", var, bvar)):
        if k in outputs:
            made[k] = fb.compute(name, (c,), dtype, lambda ch, old=old, new=new: old[ch] * keep + new[ch] * take)
    return fb.build([made[k] for k in outputs])


def expand(shape: Shape, dtype: str, out_shape: Shape) -> PrimFunc:
    out = broadcast_shape(shape, out_shape)
    fb = FuncBuilder("expand")
    x = fb.input("X", shape, dtype)
    return fb.build([fb.compute("Y", out, dtype, lambda *i: _bcast(x, out, i))])


_QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(1 << 31), (1 << 31) - 1)}


def _per_axis(shape: Shape, scale_shape: Shape, axis: int) -> Callable[[Buffer, tuple[Var, ...]], Expr]:
    """How a quantization parameter is read at an element: per tensor, or along ``axis``."""
    ax = axis + len(shape) if axis < 0 else axis

    def at(buf: Buffer, i: tuple[Var, ...]) -> Expr:
        return buf[0] if scale_shape == (1,) else buf[i[ax]]  # type: ignore[return-value]

    return at


def quantize_linear(shape: Shape, scale_shape: Shape, out_dtype: str, axis: int = 1, in_dtype: str = "float32") -> PrimFunc:
    """ONNX QuantizeLinear: ``saturate(round_half_even(x / scale) + zero_point)``; scale and zero
    point are per tensor (shape ``(1,)``) or per ``axis``."""
    lo, hi = _QRANGE[out_dtype]
    fb = FuncBuilder("quantize")
    x = fb.input("X", shape, in_dtype)
    s = fb.input("Scale", scale_shape, in_dtype)
    z = fb.input("Zero", scale_shape, out_dtype)
    at = _per_axis(shape, scale_shape, axis)

    def fn(*i: Var) -> Expr:
        q = call("round", FloorDiv(x[i], at(s, i)), dtype=in_dtype) + Cast(in_dtype, at(z, i))
        return Cast(out_dtype, Min(Max(q, _const(lo, in_dtype)), _const(hi, in_dtype)))

    return fb.build([fb.compute("Y", shape, out_dtype, fn)])


def dequantize_linear(shape: Shape, scale_shape: Shape, in_dtype: str, axis: int = 1,
                      out_dtype: str = "float32") -> PrimFunc:
    """ONNX DequantizeLinear: ``(x - zero_point) · scale``."""
    fb = FuncBuilder("dequantize")
    x = fb.input("X", shape, in_dtype)
    s = fb.input("Scale", scale_shape, out_dtype)
    z = fb.input("Zero", scale_shape, in_dtype)
    at = _per_axis(shape, scale_shape, axis)

    def fn(*i: Var) -> Expr:
        wide = "int32" if in_dtype != "int32" else "int64"
        return Cast(out_dtype, Cast(wide, x[i]) - Cast(wide, at(z, i))) * at(s, i)

    return fb.build([fb.compute("Y", shape, out_dtype, fn)])


def pack(shape: Shape, dtype: str, blocks: tuple[int, int], padded: tuple[int, int], fill: int = 0) -> PrimFunc:
    """The accelerator's blocked layout: ``(S0, S1, *rest)`` to ``(P0 // b0, P1 // b1, *rest, b0, b1)``,
    the first two dimensions padded to ``padded`` with ``fill``."""
    (b0, b1), (p0, p1) = blocks, padded
    s0, s1, *rest = shape
    out = (p0 // b0, p1 // b1, *rest, b0, b1)
    fb = FuncBuilder("pack")
    x = fb.input("X", shape, dtype)

    def fn(*i: Var) -> Expr:
        a = i[0] * b0 + i[-2]
        c = i[1] * b1 + i[-1]
        mid = i[2:-2]
        inside = and_(a < IntImm(s0), c < IntImm(s1))
        return select(inside, x[(a, c, *mid)], _const(fill, dtype))

    return fb.build([fb.compute("Y", out, dtype, fn)])


def unpack(packed: Shape, dtype: str, shape: Shape) -> PrimFunc:
    """The inverse of `pack`: the blocked ``packed`` layout back to ``shape`` (padding dropped)."""
    b0, b1 = packed[-2], packed[-1]
    fb = FuncBuilder("unpack")
    x = fb.input("X", packed, dtype)

    def fn(*i: Var) -> Expr:
        a, c, *mid = i
        return x[(FloorDiv(a, IntImm(b0)), FloorDiv(c, IntImm(b1)), *mid, FloorMod(a, IntImm(b0)),
                  FloorMod(c, IntImm(b1)))]

    return fb.build([fb.compute("Y", shape, dtype, fn)])


def shift_sign(shape: Shape, src: str, dst: str) -> PrimFunc:
    """uint8 to int8 (subtract 128) or back (add 128): the same quantized value, the other encoding."""
    fb = FuncBuilder("shift_sign")
    x = fb.input("X", shape, src)
    delta = -128 if dst == "int8" else 128
    y = fb.compute("Y", shape, dst, lambda *i: Cast(dst, Cast("int32", x[i]) + delta))
    return fb.build([y])
