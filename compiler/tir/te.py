"""Tensor expressions: build loop-IR functions stage by stage, each stage a block over its
output's index space (as TVM's ``te.compute``).

    fb = FuncBuilder("scale")
    a = fb.input("A", (4, 8), "float32")
    c = fb.compute("C", (4, 8), "float32", lambda i, j: a[i, j] * FloatImm(2.0))
    func = fb.build([c])

A stage is ``out[i...] = fn(i...)`` (`compute`) or a reduction ``out[i...] = op over r...
of fn(i..., r...)`` (`reduce`, with an init part). Stages not returned by `build` become
intermediate buffers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .expr import Expr, IntImm, Max, Min, Var, children
from .scalar import FloatImm
from .stmt import Block, BlockRealize, Buffer, BufferLoad, BufferStore, For, IterVar, PrimFunc, Stmt, as_region, seq

REDUCERS: dict[str, Callable[[Expr, Expr], Expr]] = {"sum": lambda a, b: a + b, "max": Max, "min": Min}


def _loads(e: Expr) -> list[BufferLoad]:
    if isinstance(e, BufferLoad):
        return [e, *(x for i in e.indices for x in _loads(i))]
    return [x for k in children(e) for x in _loads(k)]


def _nest(loops: list[tuple[Var, int]], body: Stmt) -> Stmt:
    for v, n in reversed(loops):
        body = For(v, IntImm(n), body)
    return body


def _reads(e: Expr, exclude: Buffer | None = None) -> tuple:  # type: ignore[type-arg]
    out, seen = [], set()
    for ld in _loads(e):
        key = (ld.buffer.uid, tuple(str(i) for i in ld.indices))
        if key not in seen and ld.buffer is not exclude:
            seen.add(key)
            out.append(as_region(ld))
    return tuple(out)


class FuncBuilder:
    """Accumulates input buffers and stages; `build` makes the `PrimFunc`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.inputs: list[Buffer] = []
        self.stages: list[tuple[Buffer, Stmt]] = []

    def input(self, name: str, shape: Sequence[int], dtype: str) -> Buffer:
        b = Buffer(name, tuple(shape) or (1,), dtype)
        self.inputs.append(b)
        return b

    def compute(self, name: str, shape: Sequence[int], dtype: str, fn: Callable[..., Expr]) -> Buffer:
        """``name[i...] = fn(i...)`` over ``shape``."""
        shape = tuple(shape) or (1,)
        out = Buffer(name, shape, dtype)
        loops = [(Var(f"i{d}"), n) for d, n in enumerate(shape)]
        ivs = [IterVar(Var(f"v{d}"), IntImm(n)) for d, n in enumerate(shape)]
        vs = tuple(iv.var for iv in ivs)
        value = fn(*vs)
        blk = Block(name, tuple(ivs), reads=_reads(value), writes=(as_region(out[vs]),),  # type: ignore[arg-type]
                    body=BufferStore(out, value, vs))
        self.stages.append((out, _nest(loops, BlockRealize(tuple(v for v, _ in loops), IntImm(1), blk))))
        return out

    def reduce(self, name: str, shape: Sequence[int], dtype: str, rshape: Sequence[int],
               fn: Callable[[tuple[Var, ...], tuple[Var, ...]], Expr], op: str = "sum",
               init: Expr | Callable[[tuple[Var, ...]], Expr] | None = None) -> Buffer:
        """``name[i...] = op over r in rshape of fn(i, r)``, starting from ``init`` (the
        reduction's identity by default; a function of the indices ``i``, e.g. a bias)."""
        shape = tuple(shape) or (1,)
        out = Buffer(name, shape, dtype)
        sp = [IterVar(Var(f"v{d}"), IntImm(n)) for d, n in enumerate(shape)]
        rd = [IterVar(Var(f"r{d}"), IntImm(n), "R") for d, n in enumerate(rshape)]
        vs, rs = tuple(iv.var for iv in sp), tuple(iv.var for iv in rd)
        if init is None:
            init = _identity(op, dtype)
        elif callable(init):
            init = init(vs)
        value = fn(vs, rs)
        body = BufferStore(out, REDUCERS[op](out[vs], value), vs)  # type: ignore[arg-type]
        blk = Block(name, (*sp, *rd), reads=(as_region(out[vs]), *_reads(value), *_reads(init)),  # type: ignore[arg-type]
                    writes=(as_region(out[vs]),), body=body, init=BufferStore(out, init, vs))  # type: ignore[arg-type]
        loops = [(Var(f"i{d}"), n) for d, n in enumerate(shape)] + [(Var(f"k{d}"), n) for d, n in enumerate(rshape)]
        self.stages.append((out, _nest(loops, BlockRealize(tuple(v for v, _ in loops), IntImm(1), blk))))
        return out

    def build(self, outputs: Sequence[Buffer]) -> PrimFunc:
        outs = list(outputs)
        allocs = tuple(b for b, _ in self.stages if b not in outs)
        return PrimFunc(self.name, (*self.inputs, *outs), seq(*(s for _, s in self.stages)), allocs=allocs)


def _identity(op: str, dtype: str) -> Expr:
    if op == "sum":
        return FloatImm(0.0, dtype) if dtype.startswith("float") else IntImm(0)
    big = {"float16": 65504.0, "float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}
    if dtype in big:
        return FloatImm(-big[dtype] if op == "max" else big[dtype], dtype)
    if dtype in ("uint8", "bool"):
        return IntImm(0 if op == "max" else (1 if dtype == "bool" else 255))
    bits = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}[dtype]
    return IntImm(-(1 << (bits - 1)) if op == "max" else (1 << (bits - 1)) - 1)
