"""Runtime: DRAM allocator, devices, the command-queue builder and its kernel cache."""

from __future__ import annotations

import numpy as np
import pytest

from vta.demo import GemmProblem, run_gemm
from vta.isa import PRESETS, AluOp, Config, MemType, Module, Opcode
from vta.isa.errors import VTAError
from vta.runtime import AllocError, CommandQueue, DramAllocator, FsimDevice, KernelRecorder, UopKernel, open_device


# ---- allocator ----------------------------------------------------------------

def test_alloc_alignment_and_reuse() -> None:
    a = DramAllocator(1 << 12, align=64)
    x = a.alloc(10)
    y = a.alloc(100, align=256)
    assert x == 0 and y == 256 and a.used_bytes == 110
    z = a.alloc(20)
    assert z == 64  # first fit into the gap before y
    a.free(x)
    a.free(z)
    assert a.alloc(128) == 0  # freed neighbours coalesce


def test_alloc_errors() -> None:
    a = DramAllocator(1024)
    a.alloc(1000)
    with pytest.raises(AllocError, match=r"out of DRAM: 100 bytes \(aligned to 64\) requested, 24 of 1024 free, largest free range 24"):
        a.alloc(100)
    with pytest.raises(AllocError, match="not an allocated address"):
        a.free(8)
    with pytest.raises(AllocError, match="not free"):
        a.reserve(512, 16)
    with pytest.raises(AllocError, match="not a power of two"):
        DramAllocator(1024).alloc(8, align=3)


def test_random_alloc_free_never_overlaps() -> None:
    rng = np.random.default_rng(0)
    a = DramAllocator(1 << 16, align=16)
    live: dict[int, int] = {}
    for _ in range(2000):
        if live and rng.random() < 0.45:
            addr = int(rng.choice(list(live)))
            a.free(addr)
            del live[addr]
            continue
        n = int(rng.integers(1, 600))
        try:
            addr = a.alloc(n)
        except AllocError:
            continue
        assert addr % 16 == 0
        for b, m in live.items():
            assert addr + n <= b or b + m <= addr
        live[addr] = n
    for addr in list(live):
        a.free(addr)
    assert a.alloc(1 << 16) == 0  # everything coalesced back


# ---- device -------------------------------------------------------------------

def test_device_copy_round_trip(cfg: Config) -> None:
    dev = open_device("fsim", cfg, dram_bytes=1 << 16)
    buf = dev.alloc(100)
    data = np.arange(100, dtype=np.uint8)
    buf.write(data)
    assert np.array_equal(buf.read(), data)
    assert np.array_equal(buf.read(10, offset=5), data[5:15])
    assert buf.addr % max(cfg.elem_bytes(m) for m in MemType) == 0
    with pytest.raises(VTAError, match="overflows"):
        buf.write(np.zeros(101, np.uint8))
    with pytest.raises(VTAError, match="unknown target 'gpu'"):
        open_device("gpu", cfg)
    with pytest.raises(VTAError, match="synchronize before any run"):
        dev.synchronize()


# ---- command queue ------------------------------------------------------------

def _cq(cfg: Config | None = None) -> CommandQueue:
    return CommandQueue(FsimDevice(cfg or PRESETS["tiny"], dram_bytes=1 << 16))


def test_dep_push_marks_last_instruction_of_module() -> None:
    cq = _cq()
    buf = cq.device.alloc(64)
    ld = cq.load(MemType.INP, 0, buf, 0, 1, 1)
    cq.dep_push(Module.LOAD, Module.COMPUTE)
    assert ld.push_next == 1
    cq.dep_push(Module.LOAD, Module.COMPUTE)  # already set: a no-op load carries the second token
    assert len(cq.insns) == 2 and cq.insns[1].push_next == 1 and cq.insns[1].x_size == 0


def test_dep_pop_marks_next_instruction_of_module() -> None:
    cq = _cq()
    cq.dep_pop(Module.LOAD, Module.COMPUTE)
    cq.dep_pop(Module.STORE, Module.COMPUTE)
    k = UopKernel(((0, 0, 0),))
    g = cq.gemm(k)
    assert cq.insns[0].opcode == Opcode.LOAD and cq.insns[0].memory_type == MemType.UOP
    assert cq.insns[0].pop_prev == 1 and cq.insns[0].pop_next == 1  # the uop load is compute's next instruction
    assert g.pop_prev == 0
    with pytest.raises(VTAError, match="no token queue between load and store"):
        cq.dep_push(Module.LOAD, Module.STORE)


def test_pending_pop_flushed_at_finish() -> None:
    cq = _cq()
    cq.dep_pop(Module.COMPUTE, Module.STORE)
    insns = cq.finish()
    assert insns[0].opcode == Opcode.STORE and insns[0].pop_prev == 1 and insns[-1].opcode == Opcode.FINISH


def test_kernel_recorder_and_loops() -> None:
    rec = KernelRecorder()
    with rec.loop(3, dst=4, src=1), rec.loop(2, dst=1, wgt=5):
        rec.uop(0, 1, 2)
        rec.uop(1, 2, 3)
    k = rec.kernel("k")
    assert k.uops == ((0, 1, 2), (1, 2, 3)) and [(lp.extent, lp.dst) for lp in k.loops] == [(3, 4), (2, 1)]
    cq = _cq()
    g = cq.gemm(k)
    assert (g.iter_out, g.iter_in, g.dst_factor_out, g.dst_factor_in, g.wgt_factor_in) == (3, 2, 4, 1, 5)
    with pytest.raises(VTAError, match="at most two loops"):
        r = KernelRecorder()
        with r.loop(1), r.loop(1), r.loop(1):
            pass
    with pytest.raises(VTAError, match="inside every loop"):
        r = KernelRecorder()
        with r.loop(2):
            pass
        r.uop(0)


def test_kernel_cache_reuses_resident_kernels() -> None:
    cq = _cq()
    a, b = UopKernel(((0, 0, 0),), signature="a"), UopKernel(((1, 0, 0), (2, 0, 0)), signature="b")
    ga = cq.gemm(a)
    gb = cq.gemm(b)
    ga2 = cq.gemm(a)
    assert cq.uop_loads == 2
    assert (ga.uop_bgn, gb.uop_bgn, gb.uop_end, ga2.uop_bgn) == (0, 1, 3, 0)
    cq.run()
    cq.alu(b, AluOp.ADD, 1)  # still resident after the run: no new load
    assert cq.uop_loads == 2
    cq.invalidate_kernels()
    cq.alu(b, AluOp.ADD, 1)
    assert cq.uop_loads == 3


def test_kernel_cache_evicts_when_full() -> None:
    cfg = PRESETS["tiny"]
    cq = _cq(cfg)
    big = cfg.uop_depth // 2 + 1
    k1 = UopKernel(tuple((i % cfg.acc_depth, 0, 0) for i in range(big)), signature="k1")
    k2 = UopKernel(tuple(((i + 1) % cfg.acc_depth, 0, 0) for i in range(big)), signature="k2")
    assert cq.gemm(k1).uop_bgn == 0
    assert cq.gemm(k2).uop_bgn == 0  # did not fit after k1: everything evicted
    assert cq.gemm(k1).uop_bgn == 0 and cq.uop_loads == 3
    cq.run()
    with pytest.raises(VTAError, match="exceeds the uop buffer"):
        cq.gemm(UopKernel(tuple((0, 0, 0) for _ in range(cfg.uop_depth + 1))))


@pytest.mark.parametrize("chunks", [1, 2, 4])
def test_demo_gemm_bit_exact(cfg: Config, chunks: int) -> None:
    r = run_gemm(FsimDevice(cfg), GemmProblem(m_blocks=4, k_blocks=4, n_blocks=3, chunks=chunks, seed=chunks))
    assert r.exact
    assert r.output.shape == (4 * cfg.batch, 3 * cfg.block_out)
    assert r.output.max() > 0  # the scale keeps real values, not only clipped ones


def test_demo_rejects_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        run_gemm(FsimDevice(PRESETS["tiny"]), GemmProblem(m_blocks=200, k_blocks=8, n_blocks=2))


def test_failed_run_forgets_resident_kernels() -> None:
    """A run that stops early may not have loaded its kernels; the next run must load them again."""
    from vta.sim import DeadlockError

    cfg = PRESETS["tiny"]
    cq = _cq(cfg)
    kern = UopKernel(((0, 0, 0),), signature="k")
    cq.dep_pop(Module.STORE, Module.COMPUTE)  # nobody pushes this token: the run deadlocks
    cq.alu(kern, AluOp.MOV, 16)
    with pytest.raises(DeadlockError):
        cq.run()
    out = cq.device.alloc(cfg.elem_bytes(MemType.ACC))
    cq.alu(kern, AluOp.MOV, 16)
    cq.dep_push(Module.COMPUTE, Module.STORE)
    cq.dep_pop(Module.COMPUTE, Module.STORE)
    cq.store(0, out, 0, 1, 1, mem=MemType.ACC)
    cq.run()
    assert cq.uop_loads == 2
    assert (np.frombuffer(out.read().tobytes(), np.int32) == 16).all()
