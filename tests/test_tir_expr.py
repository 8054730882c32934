"""Loop-IR index expressions: evaluation, printing, simplification and affine analysis,
checked against Python's own integer arithmetic on random expressions (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vta.compiler.tir import (
    Expr, IntImm, Var, and_, bounds, eq_, equal_over, evaluate, expr_str, free_vars, linear_form, max_, min_, ne_,
    not_, or_, select, simplify, substitute,
)

I, J, K = Var("i"), Var("j"), Var("k")
RANGES = {I: (0, 7), J: (0, 3), K: (-5, 5)}


def _leaf() -> st.SearchStrategy[Expr]:
    return st.one_of(st.sampled_from([I, J, K]), st.integers(-9, 9).map(IntImm))


def _node(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    two = st.tuples(children, children)
    return st.one_of(
        two.map(lambda p: p[0] + p[1]), two.map(lambda p: p[0] - p[1]), two.map(lambda p: p[0] * p[1]),
        st.tuples(children, st.integers(1, 6)).map(lambda p: p[0] // p[1]),
        st.tuples(children, st.integers(1, 6)).map(lambda p: p[0] % p[1]),
        st.tuples(children, st.integers(-6, -1)).map(lambda p: p[0] // p[1]),
        two.map(lambda p: min_(*p)), two.map(lambda p: max_(*p)),
        two.map(lambda p: p[0] < p[1]), two.map(lambda p: eq_(*p)), two.map(lambda p: ne_(*p)),
        two.map(lambda p: and_(p[0] >= 0, p[1] <= 2)), two.map(lambda p: or_(p[0] > 1, not_(p[1] >= 0))),
        st.tuples(children, children, children).map(lambda p: select(p[0] < 2, p[1], p[2])),
    )


EXPRS = st.recursive(_leaf(), _node, max_leaves=12)
ENVS = st.fixed_dictionaries({v: st.integers(lo, hi) for v, (lo, hi) in RANGES.items()})


def _py(text: str, env: dict[Var, int]) -> int:
    names = {v.name: x for v, x in env.items()}
    return int(eval(text, {"min": min, "max": max, "select": lambda c, t, f: t if c else f}, names))  # noqa: S307


@settings(max_examples=400, deadline=None)
@given(EXPRS, ENVS)
def test_printed_text_is_python_with_the_same_value(e: Expr, env: dict[Var, int]) -> None:
    assert _py(expr_str(e), env) == evaluate(e, env)


@settings(max_examples=400, deadline=None)
@given(EXPRS, ENVS)
def test_simplify_keeps_the_value_within_the_ranges(e: Expr, env: dict[Var, int]) -> None:
    s = simplify(e, RANGES)
    assert evaluate(s, env) == evaluate(e, env), (str(e), str(s))
    assert evaluate(simplify(e), env) == evaluate(e, env)
    b = bounds(e, RANGES)
    if b is not None:
        assert b[0] <= evaluate(e, env) <= b[1], (str(e), b)
    lin = linear_form(e)
    if lin is not None:
        assert evaluate(lin.to_expr(), env) == evaluate(e, env)


def test_split_and_fuse_leftovers_simplify() -> None:
    assert simplify((I * 4 + J) // 4, RANGES) == I
    assert simplify((I * 4 + J) % 4, RANGES) == J
    assert str(simplify((I * 8 + J * 2 + 1) // 2, RANGES)) == "i * 4 + j"
    assert str(simplify((I * 8 + J * 2 + 1) % 2, RANGES)) == "1"
    # without ranges the division stays: j might be 4 or more
    assert str(simplify((I * 4 + J) // 4)) == "(i * 4 + j) // 4"
    assert str(simplify(I * 2 + J - I + 3 - 3 + (K - K) * 7)) == "i + j"
    assert simplify(min_(I, 10), RANGES) == I and simplify(max_(I, 10), RANGES) == IntImm(10)
    assert simplify(I < 8, RANGES) == IntImm(1) and simplify(and_(I < 8, J < 2), RANGES) == (J < 2)
    assert equal_over((I * 4 + J) // 4 * 4 + (I * 4 + J) % 4, I * 4 + J, RANGES)


def test_affine_analysis() -> None:
    lin = linear_form(I * 3 + (J + 1) * 2 - K)
    assert lin is not None and lin.coeffs == {I: 3, J: 2, K: -1} and lin.const == 2
    assert linear_form(I * J) is None and linear_form(I // 2) is None
    assert str(lin.to_expr()) == "i * 3 + j * 2 - k + 2"


def test_structure_and_variables() -> None:
    assert I + 1 == I + 1 and I + 1 != J + 1 and Var("i") != I  # each Var is itself only
    assert free_vars(I * J + K // 2) == {I, J, K}
    assert substitute(I * 4 + J, {I: J, J: I}) == J * 4 + I  # simultaneous
    assert str(I - (J - K)) == "i - (j - k)" and str((I + J) * K) == "(i + j) * k"
    assert str(select(I < J, I, J)) == "select(i < j, i, j)" and str(not_(I < 2)) == "not i < 2"
    assert hash(I + 1) == hash(I + 1)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="'2x' is not an identifier"):
        Var("2x")
    with pytest.raises(TypeError, match="IntImm needs an int, got float 1.5"):
        IntImm(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot use float 0.5 in an index expression"):
        I + 0.5  # type: ignore[operator]
    with pytest.raises(TypeError, match="no truth value"):
        bool(I < 3)
    with pytest.raises(KeyError, match="variable k has no value"):
        evaluate(I + K, {I: 1})
    with pytest.raises(ZeroDivisionError, match=r"division by zero in i // \(j - j\)"):
        evaluate(I // (J - J), {I: 1, J: 2})


@settings(max_examples=500, deadline=None)
@given(st.integers(-4, 4), st.integers(-4, 4), st.integers(-8, 8), st.integers(1, 6), st.integers(0, 7),
       st.integers(0, 7), st.integers(0, 7))
def test_div_mod_of_affine_forms(a: int, b: int, c: int, d: int, jmax: int, i: int, j: int) -> None:
    """The rules split and fuse rely on, at the edges of the ranges: (a·i + b·j + c) // d and % d."""
    ranges = {I: (0, 7), J: (0, jmax)}
    j = min(j, jmax)
    env = {I: i, J: j}
    for e in ((I * a + J * b + c) // d, (I * a + J * b + c) % d):
        assert evaluate(simplify(e, ranges), env) == evaluate(e, env), (str(e), str(simplify(e, ranges)), ranges)


def test_quotient_and_remainder_recombine() -> None:
    x = I * 3 + J
    assert str(simplify(x // 4 * 4 + x % 4)) == "i * 3 + j"
    assert str(simplify((x // 4) * 8 + (x % 4) * 2 + 1)) == "i * 6 + j * 2 + 1"
    assert str(simplify(x // 4 * 4 + x % 5)) == "(i * 3 + j) // 4 * 4 + (i * 3 + j) % 5"  # different divisors stay
