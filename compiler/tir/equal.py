"""Structural equality of loop-IR nodes up to the renaming of variables and buffers
(alpha-equivalence): two functions are equal when one can be turned into the other by
consistently renaming its variables and buffers."""

from __future__ import annotations

import dataclasses

from .expr import Var
from .stmt import Buffer


class _Equal:
    def __init__(self) -> None:
        self.vars: dict[Var, Var] = {}
        self.bufs: dict[Buffer, Buffer] = {}

    def var(self, a: Var, b: Var) -> bool:
        if a in self.vars:
            return self.vars[a] is b
        if b in self.vars.values():
            return False
        self.vars[a] = b
        return True

    def buf(self, a: Buffer, b: Buffer) -> bool:
        if a in self.bufs:
            return self.bufs[a] is b
        if b in self.bufs.values() or (a.dtype, a.scope, len(a.shape)) != (b.dtype, b.scope, len(b.shape)):
            return False
        self.bufs[a] = b
        return all(self.eq(x, y) for x, y in zip(a.shape, b.shape))

    def eq(self, a: object, b: object) -> bool:
        if isinstance(a, Var) or isinstance(b, Var):
            return isinstance(a, Var) and isinstance(b, Var) and self.var(a, b)
        if isinstance(a, Buffer) or isinstance(b, Buffer):
            return isinstance(a, Buffer) and isinstance(b, Buffer) and self.buf(a, b)
        if type(a) is not type(b):
            return False
        if isinstance(a, (tuple, list)):
            return len(a) == len(b) and all(self.eq(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
        if dataclasses.is_dataclass(a):
            return all(self.eq(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
                       if f.name != "name" or not isinstance(a, Buffer))
        return a == b


def structural_equal(a: object, b: object) -> bool:
    """Whether ``a`` and ``b`` (expressions, statements, functions) are equal up to renaming."""
    return _Equal().eq(a, b)
