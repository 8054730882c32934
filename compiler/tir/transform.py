"""Generic rewriting of loop-IR statements: substitute variables everywhere
(indices, values, loop extents, block bindings and predicates) and replace
sub-statements, rebuilding the immutable tree only where it changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .expr import Expr, ExprLike, Var, substitute
from .stmt import Block, BlockRealize, BufferRegion, BufferStore, Evaluate, For, Range, SeqStmt, Stmt


def substitute_stmt(s: Stmt, mapping: dict[Var, ExprLike]) -> Stmt:
    """``s`` with every occurrence of the mapped variables replaced."""
    if not mapping:
        return s

    def e(x: Expr) -> Expr:
        return substitute(x, mapping)

    def region(r: BufferRegion) -> BufferRegion:
        return BufferRegion(r.buffer, tuple(Range(e(g.min), e(g.extent)) for g in r.region))

    if isinstance(s, SeqStmt):
        return SeqStmt(tuple(substitute_stmt(x, mapping) for x in s.stmts))
    if isinstance(s, For):
        return dataclasses.replace(s, extent=e(s.extent), body=substitute_stmt(s.body, mapping))
    if isinstance(s, BufferStore):
        return BufferStore(s.buffer, e(s.value), tuple(e(i) for i in s.indices))
    if isinstance(s, Evaluate):
        return Evaluate(e(s.value))
    if isinstance(s, BlockRealize):
        return BlockRealize(tuple(e(v) for v in s.iter_values), e(s.predicate), substitute_stmt(s.block, mapping))
    if isinstance(s, Block):
        return dataclasses.replace(
            s, reads=tuple(region(r) for r in s.reads), writes=tuple(region(r) for r in s.writes),
            body=substitute_stmt(s.body, mapping),
            init=substitute_stmt(s.init, mapping) if s.init is not None else None)
    from .intrin import IntrinCall

    if isinstance(s, IntrinCall):
        return IntrinCall(s.intrin, tuple(region(r) for r in s.regions), tuple(e(x) for x in s.scalars))
    raise TypeError(f"cannot rewrite {type(s).__name__}")


def replace_stmt(s: Stmt, fn: Callable[[Stmt], Stmt | None]) -> Stmt:
    """Rebuild ``s`` top-down: where ``fn`` returns a statement, it replaces the node (and
    is not visited further); where it returns None, the node's children are visited."""
    new = fn(s)
    if new is not None:
        return new
    if isinstance(s, SeqStmt):
        kids = tuple(replace_stmt(x, fn) for x in s.stmts)
        return s if all(a is b for a, b in zip(kids, s.stmts)) else SeqStmt(kids)
    if isinstance(s, For):
        body = replace_stmt(s.body, fn)
        return s if body is s.body else dataclasses.replace(s, body=body)
    if isinstance(s, BlockRealize):
        blk = replace_stmt(s.block, fn)
        return s if blk is s.block else dataclasses.replace(s, block=blk)  # type: ignore[arg-type]
    if isinstance(s, Block):
        body = replace_stmt(s.body, fn)
        return s if body is s.body else dataclasses.replace(s, body=body)
    return s


def stmt_children(s: Stmt) -> tuple[Stmt, ...]:
    """The statements directly inside ``s`` (a block's init before its body)."""
    if isinstance(s, SeqStmt):
        return s.stmts
    if isinstance(s, For):
        return (s.body,)
    if isinstance(s, BlockRealize):
        return (s.block,)
    if isinstance(s, Block):
        return (s.body,) if s.init is None else (s.init, s.body)
    return ()


def walk_stmt(s: Stmt):  # type: ignore[no-untyped-def]
    """Every statement in ``s``, parents before children."""
    yield s
    for x in stmt_children(s):
        yield from walk_stmt(x)
