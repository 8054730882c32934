"""Value expressions beyond integer indices: float constants, math calls, and the dtype
each expression computes in (what code generators need to pick instructions).

Typing rule: a load has its buffer's dtype, a cast its target, a comparison or logical
operation ``bool``; arithmetic takes its typed operand's dtype (a constant adapts to the
other side), and two typed operands must agree (insert a `Cast`). Pure index arithmetic
(variables and integer constants) is ``int64``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .expr import And, BinOp, Cmp, Expr, IntImm, Not, Or, Select, Var

MATH = {  # name: (arity, numpy function)
    "exp": (1, np.exp), "log": (1, np.log), "sqrt": (1, np.sqrt), "tanh": (1, np.tanh), "abs": (1, np.abs),
    "floor": (1, np.floor), "ceil": (1, np.ceil), "round": (1, np.round), "sin": (1, np.sin), "cos": (1, np.cos),
    "erf": (1, np.vectorize(math.erf, otypes=[np.float64])), "sigmoid": (1, lambda x: 1 / (1 + np.exp(-x))),
    "pow": (2, np.power), "rsqrt": (1, lambda x: 1 / np.sqrt(x)), "fmod": (2, np.fmod),
}
FLOATS = ("float16", "float32", "float64")


@dataclass(frozen=True, repr=False)
class FloatImm(Expr):
    """A floating-point constant of ``dtype``."""

    value: float
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in FLOATS:
            raise ValueError(f"FloatImm dtype {self.dtype!r} is not one of {', '.join(FLOATS)}")
        object.__setattr__(self, "value", float(self.value))

    def __repr__(self) -> str:
        return f"FloatImm({self.value!r}, {self.dtype!r})"

    def children(self) -> tuple[Expr, ...]:
        return ()

    def rebuild(self, kids: tuple[Expr, ...]) -> Expr:
        return self


@dataclass(frozen=True, repr=False)
class Call(Expr):
    """``op(args...)`` for a math function of `MATH`, computed in ``dtype``."""

    op: str
    args: tuple[Expr, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.op not in MATH:
            raise ValueError(f"unknown math function {self.op!r}; known: {', '.join(sorted(MATH))}")
        if len(self.args) != MATH[self.op][0]:
            raise ValueError(f"{self.op} takes {MATH[self.op][0]} argument(s), got {len(self.args)}")

    def __repr__(self) -> str:
        return f"Call({self.op!r}, {list(self.args)!r}, {self.dtype!r})"

    def children(self) -> tuple[Expr, ...]:
        return self.args

    def rebuild(self, kids: tuple[Expr, ...]) -> Expr:
        return Call(self.op, kids, self.dtype)


def call(op: str, *args: Expr, dtype: str = "float32") -> Call:
    return Call(op, tuple(args), dtype)


def dtype_of(e: Expr) -> str | None:
    """The dtype ``e`` computes in; None for an untyped constant (it adapts to its context)."""
    from .stmt import BufferLoad, Cast

    if isinstance(e, (BufferLoad,)):
        return e.buffer.dtype
    if isinstance(e, (Cast, FloatImm, Call)):
        return e.dtype
    if isinstance(e, IntImm):
        return None
    if isinstance(e, Var):
        return "int64"
    if isinstance(e, (Cmp, And, Or, Not)):
        return "bool"
    if isinstance(e, Select):
        return _join(dtype_of(e.t), dtype_of(e.f), e)
    if isinstance(e, BinOp):
        return _join(dtype_of(e.a), dtype_of(e.b), e)
    raise TypeError(f"no dtype for {e!r}")


def _join(a: str | None, b: str | None, e: Expr) -> str | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    if {a, b} <= {"int64", "int32", "int16", "int8", "uint8", "int4"} and "int64" in (a, b):
        return a if b == "int64" else b  # an index mixed into a value takes the value's type
    raise TypeError(f"{e} mixes {a} and {b}: insert a cast")
