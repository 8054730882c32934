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


def _is_float(e: Expr) -> bool:
    from .scalar import dtype_of

    try:
        return (dtype_of(e) or "").startswith("float")
    except TypeError:
        return False


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
        if isinstance(e, FloorDiv) and _is_float(e):  # on floats, // is true division
            return f"{_wrap(e.a, p)} / {_wrap(e.b, p + 1)}"
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
    from .scalar import Call, FloatImm
    from .stmt import BufferLoad, Cast

    if isinstance(e, FloatImm):
        return repr(e.value) if e.dtype == "float32" else f"{e.dtype}({e.value!r})"
    if isinstance(e, Call):
        return f"{e.op}({', '.join(expr_str(a) for a in e.args)})"
    if isinstance(e, BufferLoad):
        return f"{e.buffer.name}[{_idx(e.indices)}]"
    if isinstance(e, Cast):
        return f"{e.dtype}({expr_str(e.value)})"
    raise TypeError(f"not an expression: {e!r}")


# ---- statements and functions ------------------------------------------------------

def _idx(indices: tuple) -> str:
    return ", ".join(expr_str(i) for i in indices)


def _shape(b: object) -> str:
    dims = [expr_str(d) for d in b.shape]  # type: ignore[attr-defined]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _region(r: object) -> str:
    from .expr import IntImm
    from .simplify import simplify

    parts = []
    for rg in r.region:  # type: ignore[attr-defined]
        if isinstance(rg.extent, IntImm) and rg.extent.value == 1:
            parts.append(expr_str(rg.min))
        else:
            parts.append(f"{expr_str(rg.min)}:{expr_str(simplify(rg.min + rg.extent))}")
    return f"{r.buffer.name}[{', '.join(parts)}]"  # type: ignore[attr-defined]


def _lines(s: object, ind: int, out: list[str]) -> None:
    from .stmt import Block, BlockRealize, BufferStore, Evaluate, For, SeqStmt

    pad = "    " * ind
    if isinstance(s, SeqStmt):
        for x in s.stmts:
            _lines(x, ind, out)
    elif isinstance(s, For):
        kind = "" if s.kind == "serial" else f"  # {s.kind}" + (f" {s.thread}" if s.thread else "")
        ann = "".join(f"  # {k}={v!r}" for k, v in s.annotations)
        out.append(f"{pad}for {s.var.name} in range({expr_str(s.extent)}):{kind}{ann}")
        _lines(s.body, ind + 1, out)
    elif isinstance(s, BufferStore):
        out.append(f"{pad}{s.buffer.name}[{_idx(s.indices)}] = {expr_str(s.value)}")
    elif isinstance(s, Evaluate):
        out.append(f"{pad}evaluate({expr_str(s.value)})")
    elif isinstance(s, BlockRealize):
        _block(s, ind, out)
    elif isinstance(s, Block):  # a root block without a realize
        _block(None, ind, out, s)
    elif type(s).__name__ == "IntrinCall":
        args = [_region(r) for r in s.regions] + [  # type: ignore[attr-defined]
            f"{v.name}={expr_str(x)}" for v, x in zip(s.intrin.scalars, s.scalars)]  # type: ignore[attr-defined]
        out.append(f"{pad}{s.intrin.name}({', '.join(args)})")
    else:
        raise TypeError(f"not a statement: {s!r}")


def _block(r: object, ind: int, out: list[str], blk: object = None) -> None:
    from .expr import IntImm

    b = blk if blk is not None else r.block  # type: ignore[attr-defined]
    pad, pad1 = "    " * ind, "    " * (ind + 1)
    out.append(f'{pad}with block("{b.name}"):')
    values = r.iter_values if r is not None else [iv.var for iv in b.iter_vars]  # type: ignore[attr-defined]
    for iv, v in zip(b.iter_vars, values):
        axis = "spatial" if iv.kind == "S" else "reduce"
        out.append(f"{pad1}{iv.var.name} = axis.{axis}({expr_str(iv.extent)}, {expr_str(v)})")
    if r is not None and not (isinstance(r.predicate, IntImm) and r.predicate.value == 1):  # type: ignore[attr-defined]
        out.append(f"{pad1}where({expr_str(r.predicate)})")  # type: ignore[attr-defined]
    out.append(f"{pad1}reads({', '.join(_region(x) for x in b.reads)})")
    out.append(f"{pad1}writes({', '.join(_region(x) for x in b.writes)})")
    for k, v in b.annotations:
        out.append(f"{pad1}annotate({k!r}, {v!r})")
    for buf in b.alloc_buffers:
        out.append(f"{pad1}{buf.name} = alloc_buffer({_shape(buf)}, {buf.dtype!r}, scope={buf.scope!r})")
    if b.init is not None:
        out.append(f"{pad1}with init():")
        _lines(b.init, ind + 2, out)
    _lines(b.body, ind + 1, out)


def stmt_str(s: object) -> str:
    """A statement as indented Python-like text, one statement a line."""
    out: list[str] = []
    _lines(s, 0, out)
    return "\n".join(out)


def func_str(f: object) -> str:
    """A function: its signature with each buffer's shape, dtype and scope, then the body."""
    params = []
    for b in f.params:  # type: ignore[attr-defined]
        scope = "" if b.scope == "global" else f", scope={b.scope!r}"
        params.append(f"{b.name}: Buffer({_shape(b)}, {b.dtype!r}{scope})")
    out = [f"def {f.name}({', '.join(params)}):"]  # type: ignore[attr-defined]
    for buf in f.allocs:  # type: ignore[attr-defined]
        out.append(f"    {buf.name} = alloc_buffer({_shape(buf)}, {buf.dtype!r}, scope={buf.scope!r})")
    _lines(f.body, 1, out)  # type: ignore[attr-defined]
    return "\n".join(out)
