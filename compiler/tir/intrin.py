"""Tensor intrinsics: what one accelerator operation computes, as a small loop-IR
function (its semantics), and the statement that calls it in a scheduled function.

`gemm_intrin(config)` is the accelerator's GEMM: ``acc[b, o] += inp[b, k] · wgt[o, k]``
over ``batch × block_out × block_in``, operands in the inp/wgt/acc scratchpads.
`Schedule.tensorize` matches a loop nest against an intrinsic's semantics and replaces
it with an `IntrinCall` on the buffer regions it found.
"""

from __future__ import annotations

from dataclasses import dataclass

from vta.isa import Config

from .expr import IntImm, Var
from .stmt import Block, BlockRealize, Buffer, BufferRegion, BufferStore, Cast, For, IterVar, PrimFunc, Stmt


@dataclass(frozen=True)
class TensorIntrin:
    """``name`` and ``desc``: a perfect loop nest around one block, over parameter buffers
    whose scopes and dtypes a match must have. Operands are the innermost dimensions of
    the matched buffers."""

    name: str
    desc: PrimFunc

    def written(self) -> set[Buffer]:
        """The parameters the description stores to."""
        from .transform import walk_stmt

        return {s.buffer for s in walk_stmt(self.desc.body) if isinstance(s, BufferStore)}


@dataclass(frozen=True, repr=False)
class IntrinCall(Stmt):
    """``intrin`` applied to ``regions`` (one per parameter of its description, in order)."""

    intrin: TensorIntrin
    regions: tuple[BufferRegion, ...]


def _dtype(bits: int) -> str:
    return {4: "int4", 8: "int8", 16: "int16", 32: "int32"}[bits]


def gemm_intrin(config: Config) -> TensorIntrin:
    """The GEMM core of ``config``: one micro-op, accumulating (no reset)."""
    b, bi, bo = config.batch, config.block_in, config.block_out
    acc_t = _dtype(config.acc_width)
    inp = Buffer("inp", (b, bi), _dtype(config.inp_width), "inp")
    wgt = Buffer("wgt", (bo, bi), _dtype(config.wgt_width), "wgt")
    acc = Buffer("acc", (b, bo), acc_t, "acc")
    i, j, k = Var("b"), Var("o"), Var("k")
    vi, vj, vk = Var("vb"), Var("vo"), Var("vk")
    blk = Block("gemm", (IterVar(vi, IntImm(b)), IterVar(vj, IntImm(bo)), IterVar(vk, IntImm(bi), "R")),
                reads=(acc[vi, vj], inp[vi, vk], wgt[vj, vk]), writes=(acc[vi, vj],),  # type: ignore[arg-type]
                body=BufferStore(acc, acc[vi, vj] + Cast(acc_t, inp[vi, vk]) * Cast(acc_t, wgt[vj, vk]),  # type: ignore[operator]
                                 (vi, vj)))
    body = For(i, IntImm(b), For(j, IntImm(bo), For(k, IntImm(bi), BlockRealize((i, j, k), IntImm(1), blk))))
    return TensorIntrin(f"gemm_{b}x{bi}x{bo}", PrimFunc("gemm", (acc, inp, wgt), body))
