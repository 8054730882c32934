"""Integer simplification and affine analysis of index expressions.

- `linear_form` writes an expression as ``Σ cᵢ·vᵢ + c₀`` when it is affine in its
  variables (the form tensorize and micro-op loop folding need);
- `bounds` gives an expression's value range from the variables' ranges;
- `simplify` folds constants, normalizes affine parts to a canonical order, and, given
  variable ranges, removes floor divisions and remainders that the ranges decide
  (``(4·i + j) // 4 → i`` and ``(4·i + j) % 4 → j`` when ``0 ≤ j < 4``): what split and
  fuse leave behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from .expr import (
    Add, And, BinOp, Cmp, Expr, ExprLike, FloorDiv, FloorMod, IntImm, Max, Min, Mul, Not, Or, Select, Sub, Var,
    as_expr, children, evaluate, rebuild,
)

Ranges = dict[Var, tuple[int, int]]  # variable -> (min, max), inclusive


@dataclass(frozen=True)
class Linear:
    """``Σ coeffs[v]·v + const``; coefficients are never zero."""

    coeffs: dict[Var, int]
    const: int

    def __add__(self, o: Linear) -> Linear:
        c = dict(self.coeffs)
        for v, k in o.coeffs.items():
            c[v] = c.get(v, 0) + k
        return Linear({v: k for v, k in c.items() if k}, self.const + o.const)

    def scale(self, k: int) -> Linear:
        return Linear({v: k * c for v, c in self.coeffs.items()} if k else {}, k * self.const)

    def to_expr(self) -> Expr:
        """Terms in order of first appearance, the constant last: ``i * 4 + j + 3``."""
        out: Expr | None = None
        for v, k in self.coeffs.items():
            if out is None:
                out = v if k == 1 else Mul(v, IntImm(k))
            elif k > 0:
                out = Add(out, v if k == 1 else Mul(v, IntImm(k)))
            else:
                out = Sub(out, v if k == -1 else Mul(v, IntImm(-k)))
        if out is None:
            return IntImm(self.const)
        if self.const > 0:
            return Add(out, IntImm(self.const))
        if self.const < 0:
            return Sub(out, IntImm(-self.const))
        return out


def linear_form(e: Expr) -> Linear | None:
    """``e`` as an affine combination of its variables, or None when it is not affine."""
    if isinstance(e, IntImm):
        return Linear({}, e.value)
    if isinstance(e, Var):
        return Linear({e: 1}, 0)
    if isinstance(e, (Add, Sub)):
        a, b = linear_form(e.a), linear_form(e.b)
        if a is None or b is None:
            return None
        return a + (b if isinstance(e, Add) else b.scale(-1))
    if isinstance(e, Mul):
        a, b = linear_form(e.a), linear_form(e.b)
        if a is None or b is None:
            return None
        if not a.coeffs:
            return b.scale(a.const)
        if not b.coeffs:
            return a.scale(b.const)
    return None


def bounds(e: Expr, ranges: Ranges) -> tuple[int, int] | None:
    """Inclusive (min, max) of ``e`` over the variables' ranges, or None when unknown."""
    if isinstance(e, IntImm):
        return e.value, e.value
    if isinstance(e, Var):
        return ranges.get(e)
    if isinstance(e, BinOp):
        a, b = bounds(e.a, ranges), bounds(e.b, ranges)
        if a is None or b is None:
            return None
        if isinstance(e, Add):
            return a[0] + b[0], a[1] + b[1]
        if isinstance(e, Sub):
            return a[0] - b[1], a[1] - b[0]
        if isinstance(e, Mul):
            p = [x * y for x in a for y in b]
            return min(p), max(p)
        if isinstance(e, Min):
            return min(a[0], b[0]), min(a[1], b[1])
        if isinstance(e, Max):
            return max(a[0], b[0]), max(a[1], b[1])
        if isinstance(e, FloorDiv) and b[0] == b[1] and b[0] > 0:
            return a[0] // b[0], a[1] // b[0]
        if isinstance(e, FloorMod) and b[0] == b[1] and b[0] > 0:
            return (a[0] % b[0], a[1] % b[0]) if a[0] // b[0] == a[1] // b[0] else (0, b[0] - 1)
        return None
    if isinstance(e, (Cmp, And, Or, Not)):
        return 0, 1
    if isinstance(e, Select):
        t, f = bounds(e.t, ranges), bounds(e.f, ranges)
        return (min(t[0], f[0]), max(t[1], f[1])) if t and f else None
    return None


def _lin_bounds(lin: Linear, ranges: Ranges) -> tuple[int, int] | None:
    lo = hi = lin.const
    for v, k in lin.coeffs.items():
        r = ranges.get(v)
        if r is None:
            return None
        lo, hi = lo + min(k * r[0], k * r[1]), hi + max(k * r[0], k * r[1])
    return lo, hi


def _div_mod(lin: Linear, d: int, ranges: Ranges) -> tuple[Linear, Linear] | None:
    """(q, r) with lin = d·q + r and 0 <= r < d over the ranges, from the terms d divides."""
    q = Linear({v: k // d for v, k in lin.coeffs.items() if k % d == 0}, lin.const // d)
    r = Linear({v: k for v, k in lin.coeffs.items() if k % d}, lin.const % d)
    rb = _lin_bounds(r, ranges)
    if rb is None or rb[0] < 0 or rb[1] >= d:
        return None
    return q, r


def simplify(e: ExprLike, ranges: Ranges | None = None) -> Expr:
    """An equivalent, simpler expression (same value for every assignment within ``ranges``)."""
    ranges = ranges or {}
    return _simplify(as_expr(e), ranges)



def _simplify(e: Expr, ranges: Ranges) -> Expr:
    if isinstance(e, (IntImm, Var)):
        return e
    if isinstance(e, (Add, Sub, Mul)):
        a, b = _simplify(e.a, ranges), _simplify(e.b, ranges)
        return _merge_div_mod(_atoms(type(e)(a, b))).to_expr()
    if isinstance(e, (FloorDiv, FloorMod)):
        a, b = _simplify(e.a, ranges), _simplify(e.b, ranges)
        if isinstance(b, IntImm) and b.value != 0:
            d = b.value
            if isinstance(a, IntImm):
                return IntImm(a.value // d if isinstance(e, FloorDiv) else a.value % d)
            if d == 1:
                return a if isinstance(e, FloorDiv) else IntImm(0)
            lin = linear_form(a)
            if lin is not None and d > 0:
                qr = _div_mod(lin, d, ranges)
                if qr is not None:
                    return (qr[0] if isinstance(e, FloorDiv) else qr[1]).to_expr()
        return type(e)(a, b)
    if isinstance(e, (Min, Max)):
        a, b = _simplify(e.a, ranges), _simplify(e.b, ranges)
        ba, bb = bounds(a, ranges), bounds(b, ranges)
        if ba and bb:
            if isinstance(e, Min):
                if ba[1] <= bb[0]:
                    return a
                if bb[1] <= ba[0]:
                    return b
            else:
                if ba[0] >= bb[1]:
                    return a
                if bb[0] >= ba[1]:
                    return b
        if a == b:
            return a
        return type(e)(a, b)
    if isinstance(e, Cmp):
        a, b = _simplify(e.a, ranges), _simplify(e.b, ranges)
        diff = linear_form(Sub(a, b))
        if diff is not None:
            d = _lin_bounds(diff, ranges) if diff.coeffs else (diff.const, diff.const)
            if d is not None:
                decided = _decide(e.op, d)
                if decided is not None:
                    return IntImm(int(decided))
        return Cmp(e.op, a, b)
    if isinstance(e, (And, Or)):
        a, b = _simplify(e.a, ranges), _simplify(e.b, ranges)
        for x, y in ((a, b), (b, a)):
            if isinstance(x, IntImm):
                if isinstance(e, And):
                    return y if x.value else IntImm(0)
                return IntImm(1) if x.value else y
        return type(e)(a, b)
    if isinstance(e, Not):
        a = _simplify(e.a, ranges)
        return IntImm(int(not a.value)) if isinstance(a, IntImm) else Not(a)
    if isinstance(e, Select):
        c = _simplify(e.cond, ranges)
        t, f = _simplify(e.t, ranges), _simplify(e.f, ranges)
        if isinstance(c, IntImm):
            return t if c.value else f
        return t if t == f else Select(c, t, f)
    # other nodes (buffer loads, casts): simplify inside
    return rebuild(e, tuple(_simplify(k, ranges) for k in children(e)))


def _atoms(e: Expr) -> Linear:
    """``e`` as Σ kᵢ·tᵢ + c over atoms tᵢ: variables, and subexpressions that are not affine
    (``x // 4``, ``i * j``) taken whole. (Linear here keys on any expression.)"""
    if isinstance(e, IntImm):
        return Linear({}, e.value)
    if isinstance(e, (Add, Sub)):
        a, b = _atoms(e.a), _atoms(e.b)
        return a + (b if isinstance(e, Add) else b.scale(-1))
    if isinstance(e, Mul):
        a, b = _atoms(e.a), _atoms(e.b)
        if not a.coeffs:
            return b.scale(a.const)
        if not b.coeffs:
            return a.scale(b.const)
    return Linear({e: 1}, 0)  # type: ignore[dict-item]


def _merge_div_mod(lin: Linear) -> Linear:
    """(x // c)·c·k + (x % c)·k = x·k: what fusing split loops (and splitting fused ones) leaves."""
    for t, k in list(lin.coeffs.items()):
        if isinstance(t, FloorMod) and isinstance(t.b, IntImm) and t in lin.coeffs:
            c = t.b.value
            q = FloorDiv(t.a, t.b)
            if lin.coeffs.get(q) == k * c:  # type: ignore[call-overload]
                rest = Linear({u: w for u, w in lin.coeffs.items() if u is not t and u != q}, lin.const)
                return _merge_div_mod(rest + _atoms(t.a).scale(k))
    return lin


def _decide(op: str, d: tuple[int, int]) -> bool | None:
    """Whether ``a op b`` holds for every (or no) value of a - b in the range ``d``."""
    lo, hi = d
    tests = {"<": (hi < 0, lo >= 0), "<=": (hi <= 0, lo > 0), ">": (lo > 0, hi <= 0), ">=": (lo >= 0, hi < 0),
             "==": (lo == hi == 0, lo > 0 or hi < 0), "!=": (lo > 0 or hi < 0, lo == hi == 0)}
    always, never = tests[op]
    return True if always else False if never else None


def is_const(e: Expr, value: int | None = None) -> bool:
    """Whether ``e`` is a constant (equal to ``value`` when given)."""
    return isinstance(e, IntImm) and (value is None or e.value == value)


def equal_over(a: Expr, b: Expr, ranges: Ranges) -> bool:
    """Whether two expressions are provably equal over the ranges (affine difference zero)."""
    diff = linear_form(_simplify(Sub(a, b), ranges))
    return diff is not None and not diff.coeffs and diff.const == 0


__all__ = ["Linear", "Ranges", "bounds", "equal_over", "evaluate", "is_const", "linear_form", "simplify"]
