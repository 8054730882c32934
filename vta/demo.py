"""The bundled default workload: a blocked int8 GEMM with bias and
requantization, written with the runtime API, double-buffered so that loads
overlap compute, and checked bit for bit against numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.isa import AluOp, Config, MemType, Module
from vta.isa.values import pack_values, unpack_values, wrap
from vta.runtime import CommandQueue, Device, KernelRecorder
from vta.sim.fsim import RunStats


@dataclass
class GemmProblem:
    """C = clip(((A·Wᵀ + bias)·mul + 2^(shift-1)) >> shift, 0, 127) in blocks of the config."""

    m_blocks: int = 16   # rows of A, in units of batch
    k_blocks: int = 8    # reduction, in units of block_in
    n_blocks: int = 4    # columns of C, in units of block_out
    chunks: int = 2      # the reduction is loaded in this many double-buffered chunks
    mul: int | None = None  # default: map a typical accumulator to about a third of the output range
    shift: int = 15         # the rounding constant 2^(shift-1) must fit the 16-bit ALU immediate
    seed: int = 0

    def mul_for(self, c: Config) -> int:
        if self.mul is not None:
            return self.mul
        typical = np.sqrt(self.k_blocks * c.block_in) * (1 << (c.inp_width + c.wgt_width - 2)) / 3
        return int(max(1, min(1 << 14, round((1 << (c.out_width - 1)) / 3 * (1 << self.shift) / typical))))

    def data(self, c: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        m, k, n = self.m_blocks * c.batch, self.k_blocks * c.block_in, self.n_blocks * c.block_out
        lim = 1 << (c.inp_width - 1)
        a = rng.integers(-lim, lim, (m, k))
        w = rng.integers(-(1 << (c.wgt_width - 1)), 1 << (c.wgt_width - 1), (n, k))
        bias = rng.integers(-(1 << 12), 1 << 12, n)
        return a, w, bias

    def reference(self, c: Config, a: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """The same integer recipe in numpy, with the accelerator's wrapping."""
        acc = wrap(a.astype(np.int64) @ w.T.astype(np.int64) + bias, c.acc_width)
        shift = self.shift
        acc = wrap(acc * self.mul_for(c), c.acc_width)
        acc = wrap(acc + (1 << (shift - 1)), c.acc_width) >> shift
        out_max = (1 << (c.out_width - 1)) - 1
        return np.clip(acc, 0, out_max)


@dataclass
class GemmRun:
    problem: GemmProblem
    output: np.ndarray
    reference: np.ndarray
    stats: RunStats

    @property
    def exact(self) -> bool:
        return bool(np.array_equal(self.output, self.reference))


def _blocked(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(R·rows, C·cols) → (R, C, rows, cols): the DRAM layout of accelerator elements."""
    r, c = x.shape[0] // rows, x.shape[1] // cols
    return x.reshape(r, rows, c, cols).transpose(0, 2, 1, 3)


def run_gemm(device: Device, problem: GemmProblem | None = None) -> GemmRun:
    """Build the GEMM with the command-queue API, run it on ``device`` and compare with numpy."""
    p = problem or GemmProblem()
    c = device.config
    mb, kb, nb, ch = p.m_blocks, p.k_blocks, p.n_blocks, p.chunks
    kc = kb // ch
    if kb % ch or 2 * mb * kc > c.inp_depth or 2 * nb * kc > c.wgt_depth or mb * nb > c.acc_depth:
        raise ValueError(f"GEMM blocks {mb}x{kb}x{nb} in {ch} chunks do not fit config {c.name}")
    a, w, bias = p.data(c)
    a_buf = device.alloc(mb * kb * c.elem_bytes(MemType.INP))
    w_buf = device.alloc(nb * kb * c.elem_bytes(MemType.WGT))
    b_buf = device.alloc(nb * c.elem_bytes(MemType.ACC))
    c_buf = device.alloc(mb * nb * c.elem_bytes(MemType.OUT))
    a_buf.write(pack_values(_blocked(a, c.batch, c.block_in), c.inp_width))
    w_buf.write(pack_values(_blocked(w, c.block_out, c.block_in), c.wgt_width))
    b_buf.write(pack_values(np.broadcast_to(bias.reshape(nb, 1, c.block_out), (nb, c.batch, c.block_out)),
                            c.acc_width))
    cq = CommandQueue(device)
    # Bias: every row of acc tiles starts from the same nb bias elements (row stride 0).
    cq.load(MemType.ACC, 0, b_buf, 0, y=mb, x=nb, stride=0)
    for i in range(ch):
        region = i % 2
        if i >= 2:  # wait until compute has finished with this half of the buffers
            cq.dep_pop(Module.COMPUTE, Module.LOAD)
        cq.load(MemType.INP, region * mb * kc, a_buf, i * kc, y=mb, x=kc, stride=kb)
        cq.load(MemType.WGT, region * nb * kc, w_buf, i * kc, y=nb, x=kc, stride=kb)
        cq.dep_push(Module.LOAD, Module.COMPUTE)
        cq.dep_pop(Module.LOAD, Module.COMPUTE)
        rec = KernelRecorder()
        with rec.loop(mb, dst=nb, src=kc), rec.loop(nb, dst=1, wgt=kc):
            for k in range(kc):
                rec.uop(0, region * mb * kc + k, region * nb * kc + k)
        cq.gemm(rec.kernel(("demo-gemm", region, mb, nb, kc)))
        if i + 2 < ch:
            cq.dep_push(Module.COMPUTE, Module.LOAD)
    # Requantize in place: multiply, round, shift, clip to [0, out_max] (ReLU).
    rec = KernelRecorder()
    with rec.loop(mb * nb, dst=1, src=1):
        rec.uop(0, 0, 0)
    every = rec.kernel("demo-every-acc")
    out_max = (1 << (c.out_width - 1)) - 1
    for op, imm in ((AluOp.MUL, p.mul_for(c)), (AluOp.ADD, 1 << (p.shift - 1)), (AluOp.SHR, p.shift),
                    (AluOp.MAX, 0), (AluOp.MIN, out_max)):
        cq.alu(every, op, imm)
    cq.dep_push(Module.COMPUTE, Module.STORE)
    cq.dep_pop(Module.COMPUTE, Module.STORE)
    cq.store(0, c_buf, 0, y=1, x=mb * nb)
    stats = cq.run()
    out = unpack_values(c_buf.read(), c.out_width).reshape(mb, nb, c.batch, c.block_out)
    output = out.transpose(0, 2, 1, 3).reshape(mb * c.batch, nb * c.block_out)
    for b in (a_buf, w_buf, b_buf, c_buf):
        device.free(b)
    cq.close()
    return GemmRun(p, output, p.reference(c, a, w, bias), stats)
