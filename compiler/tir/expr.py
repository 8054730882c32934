"""Integer index expressions of the loop IR: variables, constants, arithmetic
(``+ - * // %`` with floor semantics, min, max), comparisons and ``select``.

Expressions are immutable values. ``==`` between expressions compares structure
(a `Var` equals only itself); build comparisons with `lt`, `le`, `eq_`, ... or the
``<``/``<=``/``>``/``>=`` operators. Python ints mix in freely: ``i * 4 + 1``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Union

ExprLike = Union["Expr", int]

_ids = itertools.count()


class Expr:
    """Base of every expression; operators build new expressions."""

    __slots__ = ()

    def __add__(self, o: ExprLike) -> Expr:
        return Add(self, as_expr(o))

    def __radd__(self, o: ExprLike) -> Expr:
        return Add(as_expr(o), self)

    def __sub__(self, o: ExprLike) -> Expr:
        return Sub(self, as_expr(o))

    def __rsub__(self, o: ExprLike) -> Expr:
        return Sub(as_expr(o), self)

    def __mul__(self, o: ExprLike) -> Expr:
        return Mul(self, as_expr(o))

    def __rmul__(self, o: ExprLike) -> Expr:
        return Mul(as_expr(o), self)

    def __floordiv__(self, o: ExprLike) -> Expr:
        return FloorDiv(self, as_expr(o))

    def __rfloordiv__(self, o: ExprLike) -> Expr:
        return FloorDiv(as_expr(o), self)

    def __mod__(self, o: ExprLike) -> Expr:
        return FloorMod(self, as_expr(o))

    def __rmod__(self, o: ExprLike) -> Expr:
        return FloorMod(as_expr(o), self)

    def __neg__(self) -> Expr:
        return Mul(IntImm(-1), self)

    def __lt__(self, o: ExprLike) -> Expr:
        return Cmp("<", self, as_expr(o))

    def __le__(self, o: ExprLike) -> Expr:
        return Cmp("<=", self, as_expr(o))

    def __gt__(self, o: ExprLike) -> Expr:
        return Cmp(">", self, as_expr(o))

    def __ge__(self, o: ExprLike) -> Expr:
        return Cmp(">=", self, as_expr(o))

    def __bool__(self) -> bool:
        raise TypeError("an expression has no truth value; compare structure with ==, or use vta.compiler.tir "
                        "simplify() and is_const()")

    def __str__(self) -> str:
        from .printer import expr_str

        return expr_str(self)


@dataclass(frozen=True, eq=False, repr=False)
class Var(Expr):
    """An integer variable. Each Var is distinct: equal only to itself, whatever its name."""

    name: str
    uid: int = -1

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"variable name {self.name!r} is not an identifier")
        if self.uid < 0:
            object.__setattr__(self, "uid", next(_ids))

    def __eq__(self, o: object) -> bool:
        return self is o

    def __hash__(self) -> int:
        return self.uid  # unique per Var: as fast as a hash gets, and the same from run to run

    def __repr__(self) -> str:
        return f"Var({self.name!r})"


@dataclass(frozen=True, repr=False)
class IntImm(Expr):
    """An integer constant."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise TypeError(f"IntImm needs an int, got {type(self.value).__name__} {self.value!r}")

    def __repr__(self) -> str:
        return f"IntImm({self.value})"


@dataclass(frozen=True, repr=False)
class BinOp(Expr):
    a: Expr
    b: Expr
    op = "?"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.a!r}, {self.b!r})"


class Add(BinOp):
    op = "+"


class Sub(BinOp):
    op = "-"


class Mul(BinOp):
    op = "*"


class FloorDiv(BinOp):
    """Division rounding toward negative infinity (Python's ``//``)."""

    op = "//"


class FloorMod(BinOp):
    """The remainder of `FloorDiv`, with the divisor's sign (Python's ``%``)."""

    op = "%"


class Min(BinOp):
    op = "min"


class Max(BinOp):
    op = "max"


CMP_OPS = ("<", "<=", ">", ">=", "==", "!=")


@dataclass(frozen=True, repr=False)
class Cmp(Expr):
    """A comparison; its value is 1 (true) or 0 (false)."""

    op: str
    a: Expr
    b: Expr

    def __post_init__(self) -> None:
        if self.op not in CMP_OPS:
            raise ValueError(f"comparison {self.op!r} is not one of {', '.join(CMP_OPS)}")

    def __repr__(self) -> str:
        return f"Cmp({self.op!r}, {self.a!r}, {self.b!r})"


@dataclass(frozen=True, repr=False)
class And(Expr):
    a: Expr
    b: Expr

    def __repr__(self) -> str:
        return f"And({self.a!r}, {self.b!r})"


@dataclass(frozen=True, repr=False)
class Or(Expr):
    a: Expr
    b: Expr

    def __repr__(self) -> str:
        return f"Or({self.a!r}, {self.b!r})"


@dataclass(frozen=True, repr=False)
class Not(Expr):
    a: Expr

    def __repr__(self) -> str:
        return f"Not({self.a!r})"


@dataclass(frozen=True, repr=False)
class Select(Expr):
    """``t`` where ``cond`` holds (is nonzero), else ``f``."""

    cond: Expr
    t: Expr
    f: Expr

    def __repr__(self) -> str:
        return f"Select({self.cond!r}, {self.t!r}, {self.f!r})"


def as_expr(x: ExprLike) -> Expr:
    """An expression from an expression or a Python int."""
    if isinstance(x, Expr):
        return x
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"cannot use {type(x).__name__} {x!r} in an index expression (int or Expr expected)")
    return IntImm(x)


def min_(a: ExprLike, b: ExprLike) -> Expr:
    return Min(as_expr(a), as_expr(b))


def max_(a: ExprLike, b: ExprLike) -> Expr:
    return Max(as_expr(a), as_expr(b))


def eq_(a: ExprLike, b: ExprLike) -> Expr:
    return Cmp("==", as_expr(a), as_expr(b))


def ne_(a: ExprLike, b: ExprLike) -> Expr:
    return Cmp("!=", as_expr(a), as_expr(b))


def and_(a: ExprLike, b: ExprLike) -> Expr:
    return And(as_expr(a), as_expr(b))


def or_(a: ExprLike, b: ExprLike) -> Expr:
    return Or(as_expr(a), as_expr(b))


def not_(a: ExprLike) -> Expr:
    return Not(as_expr(a))


def select(cond: ExprLike, t: ExprLike, f: ExprLike) -> Expr:
    return Select(as_expr(cond), as_expr(t), as_expr(f))


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct subexpressions of ``e``."""
    if isinstance(e, (BinOp, Cmp, And, Or)):
        return (e.a, e.b)
    if isinstance(e, Not):
        return (e.a,)
    if isinstance(e, Select):
        return (e.cond, e.t, e.f)
    if isinstance(e, (Var, IntImm)):
        return ()
    return e.children()  # nodes defined elsewhere (buffer loads, casts) say themselves


def rebuild(e: Expr, kids: tuple[Expr, ...]) -> Expr:
    """``e`` with its direct subexpressions replaced by ``kids`` (same order as `children`)."""
    if isinstance(e, (BinOp, And, Or)):
        return type(e)(*kids)
    if isinstance(e, Cmp):
        return Cmp(e.op, *kids)
    if isinstance(e, Not):
        return Not(kids[0])
    if isinstance(e, Select):
        return Select(*kids)
    if isinstance(e, (Var, IntImm)):
        return e
    return e.rebuild(kids)


def free_vars(e: Expr) -> set[Var]:
    """Every `Var` that occurs in ``e``."""
    if isinstance(e, Var):
        return {e}
    out: set[Var] = set()
    for c in children(e):
        out |= free_vars(c)
    return out


def evaluate(e: Expr, env: dict[Var, int]) -> int:
    """The value of ``e`` with each variable bound by ``env`` (Python integer semantics)."""
    if isinstance(e, IntImm):
        return e.value
    if isinstance(e, Var):
        if e not in env:
            raise KeyError(f"variable {e.name} has no value")
        return env[e]
    if isinstance(e, BinOp):
        a, b = evaluate(e.a, env), evaluate(e.b, env)
        if isinstance(e, (FloorDiv, FloorMod)) and b == 0:
            raise ZeroDivisionError(f"division by zero in {e}")
        return {Add: lambda: a + b, Sub: lambda: a - b, Mul: lambda: a * b, FloorDiv: lambda: a // b,
                FloorMod: lambda: a % b, Min: lambda: min(a, b), Max: lambda: max(a, b)}[type(e)]()
    if isinstance(e, Cmp):
        a, b = evaluate(e.a, env), evaluate(e.b, env)
        return int({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[e.op])
    if isinstance(e, And):
        return int(bool(evaluate(e.a, env)) and bool(evaluate(e.b, env)))
    if isinstance(e, Or):
        return int(bool(evaluate(e.a, env)) or bool(evaluate(e.b, env)))
    if isinstance(e, Not):
        return int(not evaluate(e.a, env))
    if isinstance(e, Select):
        return evaluate(e.t, env) if evaluate(e.cond, env) else evaluate(e.f, env)
    raise TypeError(f"cannot evaluate {type(e).__name__} {e} as an index expression")


def substitute(e: Expr, mapping: dict[Var, ExprLike]) -> Expr:
    """``e`` with each variable in ``mapping`` replaced (simultaneously)."""
    if isinstance(e, Var):
        return as_expr(mapping[e]) if e in mapping else e
    kids = children(e)
    return rebuild(e, tuple(substitute(k, mapping) for k in kids)) if kids else e
