"""float32 math functions as straight-line LLVM IR on scalars or vectors, free of calls so
the loops around them vectorize: ``exp`` (Cephes' expf: range reduction by ln 2 in two
parts, a degree-7 polynomial, the exponent set through the bits; within 2 ulp of the C
library), ``erf`` and ``tanh`` (odd/even rational approximations on a clamped range, the
forms Eigen uses; within 5e-7 relative of the exact functions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llvmlite import ir

Intrinsic = Callable[[str, ir.Type], ir.Function]


def _int32_like(x: ir.Value) -> ir.Type:
    return ir.VectorType(ir.IntType(32), x.type.count) if isinstance(x.type, ir.VectorType) else ir.IntType(32)


def exp_f32(b: ir.IRBuilder, x: ir.Value, intrinsic: Intrinsic) -> ir.Value:
    """``exp(x)``: +inf above 88.72, 0 below -103.97, NaN stays NaN."""
    f32, i32 = x.type, _int32_like(x)
    c = lambda v: ir.Constant(f32, v)  # noqa: E731
    hi, lo = c(88.3762626647949), c(-87.3365478515625)
    xc = b.select(b.fcmp_ordered(">", x, hi), hi, b.select(b.fcmp_ordered("<", x, lo), lo, x))
    n = b.call(intrinsic("llvm.floor", f32), [b.fadd(b.fmul(xc, c(1.44269504088896341)), c(0.5))])
    r = b.fsub(b.fsub(xc, b.fmul(n, c(0.693359375))), b.fmul(n, c(-2.12194440e-4)))
    p = c(1.9875691500e-4)
    for k in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
        p = b.fadd(b.fmul(p, r), c(k))
    p = b.fadd(b.fadd(b.fmul(b.fmul(p, r), r), r), c(1.0))
    scale = b.bitcast(b.shl(b.add(b.fptosi(n, i32), ir.Constant(i32, 127)), ir.Constant(i32, 23)), f32)
    y = b.fmul(p, scale)
    y = b.select(b.fcmp_ordered(">", x, c(88.72283905206835)), c(float("inf")), y)
    y = b.select(b.fcmp_ordered("<", x, c(-103.97207708)), c(0.0), y)
    return b.select(b.fcmp_unordered("uno", x, x), x, y)


def _odd_rational(b: ir.IRBuilder, x: ir.Value, bound: float, num: Sequence[float], den: Sequence[float]) -> ir.Value:
    """``x·P(x²)/Q(x²)`` with ``x`` clamped to ``[-bound, bound]`` (coefficients highest first);
    a NaN stays NaN (the clamp passes it through)."""
    c = lambda v: ir.Constant(x.type, v)  # noqa: E731
    xc = b.select(b.fcmp_ordered(">", x, c(bound)), c(bound), b.select(b.fcmp_ordered("<", x, c(-bound)), c(-bound), x))
    x2 = b.fmul(xc, xc)
    p = c(num[0])
    for k in num[1:]:
        p = b.fadd(b.fmul(p, x2), c(k))
    q = c(den[0])
    for k in den[1:]:
        q = b.fadd(b.fmul(q, x2), c(k))
    return b.fdiv(b.fmul(xc, p), q)


_ERF_NUM = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
            -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_DEN = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
            -1.42647390514189e-02)
_TANH_NUM = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
             1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)
_TANH_DEN = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)


def erf_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """``erf(x)`` (±1 beyond ±4, where float32 cannot tell it from 1)."""
    return _odd_rational(b, x, 4.0, _ERF_NUM, _ERF_DEN)


def tanh_f32(b: ir.IRBuilder, x: ir.Value, intrinsic: Intrinsic) -> ir.Value:
    """``tanh(x)`` (±1 beyond ±7.9; ``x`` itself below 4e-4, where the rational form loses digits)."""
    y = _odd_rational(b, x, 7.90531110763549805, _TANH_NUM, _TANH_DEN)
    small = b.fcmp_ordered("<", b.call(intrinsic("llvm.fabs", x.type), [x]), ir.Constant(x.type, 4e-4))
    return b.select(small, x, y)


__all__ = ["erf_f32", "exp_f32", "tanh_f32"]
