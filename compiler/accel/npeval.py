"""Index expressions evaluated over numpy grids: the masks and micro-op tables a lowering
computes for many loop positions at once."""

from __future__ import annotations

import numpy as np

from vta.compiler.tir.expr import (
    Add, And, Cmp, Expr, FloorDiv, FloorMod, IntImm, Max, Min, Mul, Not, Or, Select, Sub, Var,
)

_CMP = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
        "!=": np.not_equal}
_BIN = {Add: np.add, Sub: np.subtract, Mul: np.multiply, FloorDiv: np.floor_divide, FloorMod: np.mod,
        Min: np.minimum, Max: np.maximum}


def np_eval(e: Expr, env: dict[Var, int | np.ndarray]) -> np.ndarray | int:
    """``e`` with variables bound to integers or broadcastable integer arrays."""
    if isinstance(e, IntImm):
        return e.value
    if isinstance(e, Var):
        if e not in env:
            raise KeyError(f"variable {e.name} has no value here")
        return env[e]
    if isinstance(e, Cmp):
        return _CMP[e.op](np_eval(e.a, env), np_eval(e.b, env))
    if isinstance(e, And):
        return np.logical_and(np_eval(e.a, env), np_eval(e.b, env))
    if isinstance(e, Or):
        return np.logical_or(np_eval(e.a, env), np_eval(e.b, env))
    if isinstance(e, Not):
        return np.logical_not(np_eval(e.a, env))
    if isinstance(e, Select):
        return np.where(np_eval(e.cond, env), np_eval(e.t, env), np_eval(e.f, env))
    op = _BIN.get(type(e))
    if op is None:
        raise TypeError(f"{e} is not an index expression")
    return op(np_eval(e.a, env), np_eval(e.b, env))  # type: ignore[attr-defined]
