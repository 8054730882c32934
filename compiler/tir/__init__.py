"""The loop IR (tensor-level IR): index expressions with a simplifier and affine
analysis; buffers, loops and blocks with a readable printed form, structural equality
and a reference interpreter; operator definitions (`ops`); schedules (`schedule`: split,
fuse, reorder, loop kinds, annotate, cache_read/write, compute_at so far)."""

from .expr import (
    Add, And, Cmp, Expr, FloorDiv, FloorMod, IntImm, Max, Min, Mul, Not, Or, Select, Sub, Var, and_, as_expr, eq_,
    evaluate, free_vars, max_, min_, ne_, not_, or_, select, substitute,
)
from .equal import structural_equal
from .interp import run
from .printer import expr_str, func_str, stmt_str
from .simplify import Linear, bounds, equal_over, is_const, linear_form, simplify
from .stmt import (
    Block, BlockRealize, Buffer, BufferLoad, BufferRegion, BufferStore, Cast, Evaluate, For, IterVar, PrimFunc, Range,
    SeqStmt, Stmt, seq,
)

__all__ = [
    "Block", "BlockRealize", "Buffer", "BufferLoad", "BufferRegion", "BufferStore", "Cast", "Evaluate", "For",
    "IterVar", "PrimFunc", "Range", "SeqStmt", "Stmt", "func_str", "run", "seq", "stmt_str", "structural_equal",
    "Add", "And", "Cmp", "Expr", "FloorDiv", "FloorMod", "IntImm", "Linear", "Max", "Min", "Mul", "Not", "Or",
    "Select", "Sub", "Var", "and_", "as_expr", "bounds", "eq_", "equal_over", "evaluate", "expr_str", "free_vars",
    "is_const", "linear_form", "max_", "min_", "ne_", "not_", "or_", "select", "simplify", "substitute",
]
