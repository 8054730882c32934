"""Readable text for loop-IR expressions: Python syntax, parentheses only where needed."""

from __future__ import annotations

from .expr import Add, And, BinOp, Cmp, Expr, FloorDiv, FloorMod, IntImm, Max, Min, Mul, Not, Or, Select, Sub, Var

# Binding strength, as in Python: higher binds tighter.
_PREC = {Or: 1, And: 2, Not: 3, Cmp: 4, Add: 5, Sub: 5, Mul: 6, FloorDiv: 6, FloorMod: 6}
_ATOM = 10


def _prec(e: Expr) -> int:
    if isinstance(e, IntImm) and e.value < 0:
        return 7  # a unary minus
    return _PREC.get(type(e), _ATOM)


def _wrap(e: Expr, min_prec: int) -> str:
    s = expr_str(e)
    return f"({s})" if _prec(e) < min_prec else s


def expr_str(e: Expr) -> str:
    """``e`` as Python source (``min``/``max``/``select`` as calls, ``and``/``or``/``not``)."""
    if isinstance(e, IntImm):
        return str(e.value)
    if isinstance(e, Var):
        return e.name
    if isinstance(e, (Min, Max)):
        return f"{e.op}({expr_str(e.a)}, {expr_str(e.b)})"
    if isinstance(e, BinOp):
        p = _PREC[type(e)]
        # left-associative: the right operand needs parentheses at equal binding strength
        return f"{_wrap(e.a, p)} {e.op} {_wrap(e.b, p + 1)}"
    if isinstance(e, Cmp):
        return f"{_wrap(e.a, 5)} {e.op} {_wrap(e.b, 5)}"
    if isinstance(e, And):
        return f"{_wrap(e.a, 2)} and {_wrap(e.b, 3)}"
    if isinstance(e, Or):
        return f"{_wrap(e.a, 1)} or {_wrap(e.b, 2)}"
    if isinstance(e, Not):
        return f"not {_wrap(e.a, 3)}"
    if isinstance(e, Select):
        return f"select({expr_str(e.cond)}, {expr_str(e.t)}, {expr_str(e.f)})"
    raise TypeError(f"not an expression: {e!r}")
