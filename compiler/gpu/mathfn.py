"""float32 math the NVPTX backend has no instruction or library call for, as straight-line
LLVM IR (the code generator must never ask LLVM for ``llvm.exp``/``llvm.log``: with no
libm on the GPU it stops the process). ``exp``, ``erf`` and ``tanh`` come from the CPU
backend's `vta.compiler.cpu.mathfn`; this adds ``log`` (Cephes' logf: the exponent and a
mantissa in [√½, √2) from the bits, a degree-8 polynomial; within 2 ulp of the C library)."""

from __future__ import annotations

from llvmlite import ir
from vta.compiler.cpu.mathfn import Intrinsic

_LOG_P = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
          -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)


def log_f32(b: ir.IRBuilder, x: ir.Value, intrinsic: Intrinsic) -> ir.Value:
    """``log(x)``: -inf at 0, NaN below 0 and at NaN, +inf at +inf; subnormals are scaled first."""
    f32, i32 = x.type, ir.IntType(32)
    c = lambda v: ir.Constant(f32, v)
    k = lambda v: ir.Constant(i32, v)
    tiny = b.fcmp_ordered("<", x, c(1.17549435e-38))  # subnormal (or not positive): scale by 2^23
    xs = b.select(tiny, b.fmul(x, c(8388608.0)), x)
    bits = b.bitcast(xs, i32)
    e = b.sub(b.lshr(bits, k(23)), k(127))
    e = b.select(tiny, b.sub(e, k(23)), e)
    m = b.bitcast(b.or_(b.and_(bits, k(0x007FFFFF)), k(0x3F000000)), f32)  # mantissa in [0.5, 1)
    big = b.fcmp_ordered(">", m, c(0.707106781186547524))  # keep m in [sqrt(1/2), sqrt(2)) after doubling
    m = b.select(big, b.fsub(m, c(1.0)), b.fsub(b.fadd(m, m), c(1.0)))
    ef = b.sitofp(b.select(big, b.add(e, k(1)), e), f32)
    z = b.fmul(m, m)
    p = c(_LOG_P[0])
    for q in _LOG_P[1:]:
        p = b.fadd(b.fmul(p, m), c(q))
    y = b.fmul(b.fmul(p, m), z)
    y = b.fadd(y, b.fmul(ef, c(-2.12194440e-4)))
    y = b.fsub(y, b.fmul(z, c(0.5)))
    y = b.fadd(b.fadd(m, y), b.fmul(ef, c(0.693359375)))
    y = b.select(b.fcmp_ordered("==", x, c(0.0)), c(float("-inf")), y)
    y = b.select(b.fcmp_ordered("==", x, c(float("inf"))), x, y)
    return b.select(b.fcmp_unordered("uno", x, x), x, b.select(b.fcmp_ordered("<", x, c(0.0)), c(float("nan")), y))


__all__ = ["log_f32"]
