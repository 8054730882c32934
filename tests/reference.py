"""An independent, deliberately plain interpreter of the ISA, used as the test
oracle for the vectorized simulator: instructions in program order, micro-ops
one at a time, DMA one element at a time, written from docs/isa.md.

Program order is a valid execution order for every race-free program, which
is what the simulator accepts.
"""

from __future__ import annotations

import numpy as np

from vta.isa import AluOp, Config, Insn, MemType, Opcode, Program, decode_uops
from vta.isa.values import pack_values, unpack_values


def _wrap(x: int, bits: int) -> int:
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


class Reference:
    def __init__(self, config: Config, dram: np.ndarray) -> None:
        c = self.c = config
        self.dram = dram
        self.buf = {
            MemType.INP: np.zeros((c.inp_depth, c.batch, c.block_in), np.int64),
            MemType.WGT: np.zeros((c.wgt_depth, c.block_out, c.block_in), np.int64),
            MemType.ACC: np.zeros((c.acc_depth, c.batch, c.block_out), np.int64),
        }
        self.uop = [(0, 0, 0)] * c.uop_depth

    def run(self, insns: list[Insn]) -> None:
        for insn in insns:
            {Opcode.LOAD: self.load, Opcode.STORE: self.store, Opcode.GEMM: self.gemm,
             Opcode.ALU: self.alu, Opcode.FINISH: lambda i: None}[insn.opcode](insn)

    def _elem(self, mem: MemType, index: int) -> np.ndarray:
        n = self.c.elem_bytes(mem)
        return self.dram[index * n : (index + 1) * n]

    def load(self, i: Insn) -> None:
        mem = MemType(i.memory_type)
        if i.x_size == 0 or i.y_size == 0:
            return
        cols = i.x_pad_left + i.x_size + i.x_pad_right
        rows = i.y_pad_top + i.y_size + i.y_pad_bottom
        for y in range(rows):
            for x in range(cols):
                dst = i.sram_base + y * cols + x
                yy, xx = y - i.y_pad_top, x - i.x_pad_left
                inside = 0 <= yy < i.y_size and 0 <= xx < i.x_size
                if mem == MemType.UOP:
                    u = decode_uops(self._elem(mem, i.dram_base + yy * i.x_stride + xx), self.c)
                    self.uop[dst] = (int(u["dst_idx"][0]), int(u["src_idx"][0]), int(u["wgt_idx"][0]))
                    continue
                shape = self.c.elem_shape(mem)
                if inside:
                    raw = self._elem(mem, i.dram_base + yy * i.x_stride + xx)
                    self.buf[mem][dst] = unpack_values(raw, self.c.elem_width(mem)).reshape(shape)
                else:
                    self.buf[mem][dst] = np.full(shape, _wrap(i.pad_value, self.c.elem_width(mem)))

    def store(self, i: Insn) -> None:
        mem = MemType(i.memory_type)
        bits = self.c.elem_width(mem)
        for y in range(i.y_size):
            for x in range(i.x_size):
                v = self.buf[MemType.ACC][i.sram_base + y * i.x_size + x]
                narrowed = np.vectorize(lambda t: _wrap(int(t), bits))(v)
                self._elem(mem, i.dram_base + y * i.x_stride + x)[:] = pack_values(narrowed, bits)

    def _iterate(self, i: Insn):  # type: ignore[no-untyped-def]
        for o in range(i.iter_out):
            for n in range(i.iter_in):
                for u in range(i.uop_bgn, i.uop_end):
                    d, s, w = self.uop[u]
                    yield (d + o * i.dst_factor_out + n * i.dst_factor_in,
                           s + o * i.src_factor_out + n * i.src_factor_in,
                           w + o * getattr(i, "wgt_factor_out", 0) + n * getattr(i, "wgt_factor_in", 0))

    def gemm(self, i: Insn) -> None:
        acc, bits = self.buf[MemType.ACC], self.c.acc_width
        for d, s, w in self._iterate(i):
            if i.reset:
                acc[d] = 0
                continue
            prod = self.buf[MemType.INP][s] @ self.buf[MemType.WGT][w].T
            acc[d] = np.vectorize(lambda t: _wrap(int(t), bits))(acc[d] + prod)

    def alu(self, i: Insn) -> None:
        acc, bits = self.buf[MemType.ACC], self.c.acc_width
        op = AluOp(i.alu_op)
        for d, s, _ in self._iterate(i):
            a = acc[d].copy()
            b = np.full_like(a, i.imm) if i.use_imm else acc[s].copy()
            res = np.empty_like(a)
            for idx in np.ndindex(a.shape):
                x, y = int(a[idx]), int(b[idx])
                if op == AluOp.MIN:
                    r = min(x, y)
                elif op == AluOp.MAX:
                    r = max(x, y)
                elif op == AluOp.ADD:
                    r = _wrap(x + y, bits)
                elif op == AluOp.MUL:
                    r = _wrap(x * y, bits)
                elif op == AluOp.MOV:
                    r = y
                else:  # SHR
                    r = x >> min(y, bits - 1) if y >= 0 else _wrap(x << min(-y, bits), bits)
                res[idx] = r
            acc[d] = res


def run_reference(program: Program) -> dict[str, np.ndarray]:
    """Run a program on the reference interpreter; returns its output segments."""
    image = program.dram_image()
    Reference(program.config, image).run(program.insns)
    return {s.name: s.read(image, program.config) for s in program.outputs()}
