"""Operator definitions as loop-IR functions (more operators come with the schedules)."""

from __future__ import annotations

from .expr import IntImm, Var
from .stmt import Block, BlockRealize, Buffer, BufferStore, Cast, For, IterVar, PrimFunc, Stmt


def _nest(loops: list[tuple[Var, int]], body: Stmt) -> Stmt:
    for v, n in reversed(loops):
        body = For(v, IntImm(n), body)
    return body


def dense(m: int, n: int, k: int, in_dtype: str = "int8", acc_dtype: str = "int32") -> PrimFunc:
    """``C[i, j] = Σ_r acc(A[i, r]) · acc(W[j, r])``: A is (m, k), W is (n, k), C is (m, n)."""
    a = Buffer("A", (m, k), in_dtype)
    w = Buffer("W", (n, k), in_dtype)
    c = Buffer("C", (m, n), acc_dtype)
    i, j, r = Var("i"), Var("j"), Var("k")
    vi, vj, vr = Var("vi"), Var("vj"), Var("vk")
    block = Block(
        "dense",
        (IterVar(vi, IntImm(m)), IterVar(vj, IntImm(n)), IterVar(vr, IntImm(k), "R")),
        reads=(c[vi, vj], a[vi, vr], w[vj, vr]),  # type: ignore[arg-type]
        writes=(c[vi, vj],),  # type: ignore[arg-type]
        init=BufferStore(c, IntImm(0), (vi, vj)),
        body=BufferStore(c, c[vi, vj] + Cast(acc_dtype, a[vi, vr]) * Cast(acc_dtype, w[vj, vr]),  # type: ignore[operator]
                         (vi, vj)),
    )
    return PrimFunc("dense", (a, w, c), _nest([(i, m), (j, n), (r, k)], BlockRealize((i, j, r), IntImm(1), block)))
