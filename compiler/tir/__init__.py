"""The loop IR (tensor-level IR): index expressions, their simplifier and affine
analysis, and (next) buffers, loops, blocks and schedules."""

from .expr import (
    Add, And, Cmp, Expr, FloorDiv, FloorMod, IntImm, Max, Min, Mul, Not, Or, Select, Sub, Var, and_, as_expr, eq_,
    evaluate, free_vars, max_, min_, ne_, not_, or_, select, substitute,
)
from .printer import expr_str
from .simplify import Linear, bounds, equal_over, is_const, linear_form, simplify

__all__ = [
    "Add", "And", "Cmp", "Expr", "FloorDiv", "FloorMod", "IntImm", "Linear", "Max", "Min", "Mul", "Not", "Or",
    "Select", "Sub", "Var", "and_", "as_expr", "bounds", "eq_", "equal_over", "evaluate", "expr_str", "free_vars",
    "is_const", "linear_form", "max_", "min_", "ne_", "not_", "or_", "select", "simplify", "substitute",
]
