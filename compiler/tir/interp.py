"""A reference interpreter of the loop IR over numpy arrays: slow (Python per element),
exact, and independent of every code generator, so schedules can be checked to keep a
function's results (run before and after, compare)."""

from __future__ import annotations

import numpy as np

from .expr import (
    Add, And, Cmp, Expr, FloorDiv, FloorMod, IntImm, Max, Min, Mul, Not, Or, Select, Sub, Var, children, evaluate,
)
from .intrin import IntrinCall
from .scalar import MATH, Call, FloatImm
from .stmt import Block, BlockRealize, Buffer, BufferLoad, BufferStore, Cast, Evaluate, For, PrimFunc, SeqStmt, Stmt

_NP = {"int4": np.int8, "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
       "uint8": np.uint8, "float16": np.float16, "float32": np.float32, "float64": np.float64, "bool": np.bool_}


def numpy_dtype(dtype: str) -> type:
    """The numpy type that holds values of ``dtype`` (int4 lives in int8)."""
    return _NP[dtype]


def _cast(dtype: str, v: float | int) -> float | int:
    if dtype.startswith("float"):
        return float(np.array(v).astype(_NP[dtype]))
    if dtype == "bool":
        return int(bool(v))
    bits = 4 if dtype == "int4" else np.iinfo(_NP[dtype]).bits
    v = int(v) & ((1 << bits) - 1)
    return v - (1 << bits) if not dtype.startswith("uint") and v >= 1 << (bits - 1) else v


class _Interp:
    def __init__(self, arrays: dict[Buffer, np.ndarray]) -> None:
        self.arrays = arrays
        self.env: dict[Var, int] = {}

    def value(self, e: Expr) -> float | int:
        """The value of ``e``; `select` evaluates only the branch it takes."""
        if isinstance(e, IntImm):
            return e.value
        if isinstance(e, Var):
            if e not in self.env:
                raise KeyError(f"variable {e.name} has no value here")
            return self.env[e]
        if isinstance(e, BufferLoad):
            idx = tuple(int(self.value(i)) for i in e.indices)
            arr = self.arrays[e.buffer]
            if any(not 0 <= i < n for i, n in zip(idx, arr.shape)):
                raise IndexError(f"load {e.buffer.name}{list(idx)} is outside its shape {tuple(arr.shape)}")
            return arr[idx].item()
        if isinstance(e, Cast):
            return _cast(e.dtype, self.value(e.value))
        if isinstance(e, FloatImm):
            return _cast(e.dtype, e.value)
        if isinstance(e, Call):
            fn = MATH[e.op][1]
            return _cast(e.dtype, float(fn(*(np.float64(self.value(a)) for a in e.args))))
        if isinstance(e, Select):
            return self.value(e.t) if self.value(e.cond) else self.value(e.f)
        if isinstance(e, And):
            return int(bool(self.value(e.a)) and bool(self.value(e.b)))
        if isinstance(e, Or):
            return int(bool(self.value(e.a)) or bool(self.value(e.b)))
        if isinstance(e, Not):
            return int(not self.value(e.a))
        a, b = (self.value(k) for k in children(e))
        if isinstance(e, Cmp):
            return int({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[e.op])
        if isinstance(e, (FloorDiv, FloorMod)) and b == 0:
            raise ZeroDivisionError(f"division by zero in {e}")
        if isinstance(e, FloorDiv):
            return a // b if isinstance(a, int) and isinstance(b, int) else a / b
        return {Add: lambda: a + b, Sub: lambda: a - b, Mul: lambda: a * b, FloorMod: lambda: a % b,
                Min: lambda: min(a, b), Max: lambda: max(a, b)}[type(e)]()

    def run(self, s: Stmt) -> None:
        if isinstance(s, SeqStmt):
            for x in s.stmts:
                self.run(x)
        elif isinstance(s, For):
            for t in range(int(self.value(s.extent))):
                self.env[s.var] = t
                self.run(s.body)
            self.env.pop(s.var, None)
        elif isinstance(s, BufferStore):
            arr = self.arrays[s.buffer]
            arr[tuple(int(self.value(i)) for i in s.indices)] = _cast(s.buffer.dtype, self.value(s.value))
        elif isinstance(s, BlockRealize):
            if self.value(s.predicate):
                self.block(s.block, [int(self.value(v)) for v in s.iter_values])
        elif isinstance(s, Block):
            self.block(s, [])
        elif isinstance(s, Evaluate):
            self.value(s.value)
        elif isinstance(s, IntrinCall):
            self.intrin(s)
        else:
            raise TypeError(f"cannot interpret {type(s).__name__}")

    def intrin(self, call: IntrinCall) -> None:
        """Run the intrinsic's own description on views of the regions it was given."""
        views = []
        for r, p in zip(call.regions, call.intrin.desc.params):
            lead = r.buffer.ndim - p.ndim
            idx = tuple(int(self.value(g.min)) if d < lead else
                        slice(int(self.value(g.min)), int(self.value(g.min)) + int(self.value(g.extent)))
                        for d, g in enumerate(r.region))
            view = self.arrays[r.buffer][idx]
            if view.shape != tuple(int(self.value(x)) for x in p.shape):
                raise IndexError(f"{call.intrin.name}: region of {r.buffer.name} is {view.shape} at the buffer's "
                                 f"edge, the intrinsic needs {tuple(str(x) for x in p.shape)}")
            views.append(view)
        sub = _Interp(dict(zip(call.intrin.desc.params, views)))
        for v, x in zip(call.intrin.scalars, call.scalars):
            sub.env[v] = int(self.value(x))
        sub.run(call.intrin.desc.body)

    def block(self, b: Block, values: list[int]) -> None:
        for buf in b.alloc_buffers:
            self.arrays[buf] = np.zeros([int(self.value(d)) for d in buf.shape], _NP[buf.dtype])
        for iv, v in zip(b.iter_vars, values):
            if not 0 <= v < int(self.value(iv.extent)):
                raise IndexError(f"block {b.name}: iterator {iv.var.name} = {v} is outside "
                                 f"range({self.value(iv.extent)})")
            self.env[iv.var] = v
        if b.init is not None and all(v == 0 for iv, v in zip(b.iter_vars, values) if iv.kind == "R"):
            self.run(b.init)
        self.run(b.body)


def run(func: PrimFunc, *arrays: np.ndarray) -> None:
    """Execute ``func`` on numpy arrays (one per parameter, in order), writing them in place."""
    if len(arrays) != len(func.params):
        raise ValueError(f"{func.name} takes {len(func.params)} buffers, got {len(arrays)}")
    bound: dict[Buffer, np.ndarray] = {}
    for buf, arr in zip(func.params, arrays):
        shape = tuple(int(evaluate(d, {})) if isinstance(d, IntImm) else -1 for d in buf.shape)
        if arr.shape != shape:
            raise ValueError(f"{func.name}: buffer {buf.name} has shape {shape}, the array {arr.shape}")
        bound[buf] = arr
    for buf in func.allocs:
        bound[buf] = np.zeros([int(evaluate(d, {})) for d in buf.shape], _NP[buf.dtype])
    _Interp(bound).run(func.body)
