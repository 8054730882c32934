"""fsim as a machine: errors, deadlock and race detection, token scheduling, timing, counters,
and differential runs of random programs against the scalar reference interpreter."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import RtlCheck, seg_layout
from reference import run_reference

from vta.demo import GemmProblem, run_gemm
from vta.isa import PRESETS, AluOp, Config, Insn, MemType, Opcode, Program, encode_insns
from vta.runtime import FsimDevice, run_program
from vta.sim import BoundsError, DeadlockError, InvalidInsnError, RaceError, SimError
from vta.sim.randprog import random_program


def run_raw(cfg: Config, insns: list[Insn], dram_bytes: int = 1 << 16, **opts) -> FsimDevice:
    """Run instructions without the program checks, as raw words in device DRAM."""
    dev = FsimDevice(cfg, dram_bytes=dram_bytes, **opts)
    raw = encode_insns(insns, cfg).reshape(-1)
    buf = dev.alloc(raw.size)
    buf.write(raw)
    image = np.array(dev.sim.dram)
    try:
        dev.run(buf, len(insns))
    except RaceError:
        raise  # the hardware has no race check, and a racy program has no single right answer
    except SimError:  # the error cases are compared too: the RTL must report the same code and instruction
        RtlCheck.check(cfg, image, buf.addr, len(insns))
        raise
    if opts.get("check_races", True):
        RtlCheck.check(cfg, image, buf.addr, len(insns))
    return dev


# ---- errors ---------------------------------------------------------------

def test_sram_bounds(cfg: Config) -> None:
    with pytest.raises(BoundsError, match=r"instruction 0: LOAD writes INP buffer entries \[.*\) are past its end"):
        run_raw(cfg, [Insn.load(MemType.INP, cfg.inp_depth - 2, 0, 1, 3), Insn.finish()])
    with pytest.raises(BoundsError, match=r"instruction 0: STORE reads ACC"):
        run_raw(cfg, [Insn.store(cfg.acc_depth - 1, 0, 2, 1), Insn.finish()])
    with pytest.raises(BoundsError, match=r"instruction 0: LOAD writes ACC .* past its end"):
        run_raw(cfg, [Insn.load(MemType.ACC, cfg.acc_depth - 4, 0, 1, 1, pad=(0, 0, 1, 3)), Insn.finish()])
    # A GEMM whose loop walks past the input buffer names the micro-op and the iteration.
    with pytest.raises(BoundsError, match=r"instruction 0: GEMM micro-op 0 at iteration \(0, \d+\) reads INP entry"):
        run_raw(cfg, [Insn.gemm(0, 1, 1, cfg.inp_depth + 1, src=(0, 1)), Insn.finish()])
    with pytest.raises(BoundsError, match=r"ALU micro-op 0 at iteration \(2, 0\) writes ACC entry"):
        run_raw(cfg, [Insn.alu(AluOp.ADD, 0, 1, 3, 1, dst=(cfg.acc_depth // 2, 0), imm=1), Insn.finish()])


def test_dram_bounds(cfg: Config) -> None:
    dram = 1 << 16
    inp = cfg.elem_bytes(MemType.INP)
    with pytest.raises(BoundsError, match=r"instruction 1: LOAD reads DRAM elements up to \d+ .* past the end"):
        run_raw(cfg, [Insn.load(MemType.INP, 0, 0, 1, 1), Insn.load(MemType.INP, 0, dram // inp - 1, 2, 1, 5),
                      Insn.finish()], dram)
    with pytest.raises(BoundsError, match="STORE writes DRAM"):
        run_raw(cfg, [Insn.store(0, dram // cfg.elem_bytes(MemType.OUT), 1, 1), Insn.finish()], dram)
    with pytest.raises(BoundsError, match="instruction fetch"):
        FsimDevice(cfg, dram_bytes=dram).sim.run(dram - 16, 2)


def test_invalid_instructions(cfg: Config) -> None:
    raw = encode_insns([Insn.load(MemType.INP, 0, 0, 1, 1), Insn.finish()], cfg)
    raw[0, 0] = (int(raw[0, 0]) & 0xF8) | 7
    dev = FsimDevice(cfg, dram_bytes=1 << 16)
    dev.sim.dram[: raw.size] = raw.reshape(-1)
    with pytest.raises(InvalidInsnError, match="instruction 0: unknown opcode 7"):
        dev.sim.run(0, 2)
    with pytest.raises(InvalidInsnError, match="instruction 0: LOAD memory_type 4 is not one of"):
        run_raw(cfg, [Insn(Opcode.LOAD, memory_type=4, x_size=1, y_size=1), Insn.finish()])
    with pytest.raises(InvalidInsnError, match="instruction 0: ALU alu_op 7"):
        run_raw(cfg, [Insn.alu(7, 0, 1), Insn.finish()])
    with pytest.raises(InvalidInsnError, match="instruction 0: uop_end 9 is past|instruction 0: uop_bgn 3 is after"):
        run_raw(cfg, [Insn.gemm(3, 2), Insn.finish()])
    with pytest.raises(InvalidInsnError, match="instruction 1: the stream does not end with FINISH"):
        run_raw(cfg, [Insn.gemm(0, 0), Insn.gemm(0, 0)])
    with pytest.raises(InvalidInsnError, match="instruction 0: FINISH before the end"):
        run_raw(cfg, [Insn.finish(), Insn.finish()])
    with pytest.raises(InvalidInsnError, match="push_next is set on a store-module instruction"):
        run_raw(cfg, [Insn.store(0, 0, 0, 0, push_next=1), Insn.finish()])


# ---- deadlock ---------------------------------------------------------------

def test_deadlock_reports_each_module_quickly(cfg: Config) -> None:
    insns = [
        Insn.load(MemType.INP, 0, 0, 1, 1, pop_next=1),   # waits for compute
        Insn.gemm(0, 0, pop_prev=1),                       # waits for load
        Insn.store(0, 0, 1, 1, pop_prev=1),                # waits for compute
        Insn.finish(),
    ]
    t = time.perf_counter()
    with pytest.raises(DeadlockError) as e:
        run_raw(cfg, insns)
    assert time.perf_counter() - t < 1.0
    msg = str(e.value)
    assert "load: instruction 0 `load inp sram=0 dram=0 y=1 x=1 stride=1 pop=next` waits for a token from " \
           "compute (C2L is empty)" in msg
    assert "compute: instruction 1 `gemm" in msg and "L2C is empty" in msg
    assert "store: instruction 2" in msg and "C2S is empty" in msg
    assert "tokens: L2C=0, C2L=0, C2S=0, S2C=0" in msg


def test_deadlock_on_full_command_queue() -> None:
    """Fetch is in order: compute instructions waiting on a token that a later load would push fill the
    compute command queue, and fetch never reaches that load."""
    cfg = Config(insn_queue_depth=4)
    insns = [Insn.gemm(0, 0, pop_prev=1) for _ in range(6)] + \
        [Insn.load(MemType.INP, 0, 0, 0, 0, push_next=1) for _ in range(6)] + [Insn.finish()]
    with pytest.raises(DeadlockError, match="fetch: instruction 4 .* waits for room in the compute command queue"):
        run_raw(cfg, insns)
    # With a deeper queue the same program runs.
    run_raw(Config(insn_queue_depth=8), insns)


def test_deadlock_on_full_token_queue() -> None:
    cfg = Config(token_queue_depth=2)
    insns = [Insn.load(MemType.INP, 0, 0, 0, 0, push_next=1) for _ in range(3)] + [Insn.finish()]
    with pytest.raises(DeadlockError, match=r"waits for room in L2C \(full at 2\)"):
        run_raw(cfg, insns)


def test_deadlock_after_finish_leaves_work() -> None:
    """Done means FINISH ran and every module drained: a store that can never run is a deadlock."""
    cfg = PRESETS["tiny"]
    with pytest.raises(DeadlockError, match="store: instruction 0"):
        run_raw(cfg, [Insn.store(0, 0, 1, 1, pop_prev=1), Insn.finish()])


# ---- races ------------------------------------------------------------------

def _gemm_after_load(cfg: Config, token: bool) -> list[Insn]:
    return [Insn.load(MemType.INP, 0, 0, 1, 1, push_next=int(token)),
            Insn.gemm(0, 1, pop_prev=int(token)),
            Insn.finish()]


def test_race_between_load_and_gemm(cfg: Config) -> None:
    with pytest.raises(RaceError, match=r"instruction 1: reads INP entry 0 .* instruction 0 \(load inp"):
        run_raw(cfg, _gemm_after_load(cfg, token=False))
    run_raw(cfg, _gemm_after_load(cfg, token=True))
    run_raw(cfg, _gemm_after_load(cfg, token=False), check_races=False)


def test_race_between_compute_and_store(cfg: Config) -> None:
    insns = [Insn.alu(AluOp.MOV, 0, 1, 1, 4, dst=(0, 1), imm=3), Insn.store(0, 0, 1, 4), Insn.finish()]
    with pytest.raises(RaceError, match="instruction 1: reads ACC entry 0"):
        run_raw(cfg, insns)
    # Write after read: a GEMM overwriting acc entries that a store has not been ordered before.
    insns = [Insn.alu(AluOp.MOV, 0, 1, 1, 1, imm=3, push_next=1), Insn.store(0, 0, 1, 1, pop_prev=1),
             Insn.gemm(0, 1, reset=True), Insn.finish()]
    with pytest.raises(RaceError) as e:
        run_raw(cfg, insns)
    assert {e.value.insn_index, int(str(e.value).split("which instruction ")[1].split()[0])} == {1, 2}


def test_tokens_order_transitively(cfg: Config) -> None:
    """load → compute → store chains order load's writes before store-ordered later work."""
    insns = [Insn.load(MemType.ACC, 0, 0, 1, 1), Insn.alu(AluOp.ADD, 0, 1, imm=1, push_next=1),
             Insn.store(0, 0, 1, 1, pop_prev=1, push_prev=1), Insn.gemm(0, 1, reset=True, pop_next=1),
             Insn.finish()]
    run_raw(cfg, insns)


# ---- scheduling and timing ----------------------------------------------------

def test_double_buffered_gemm_overlaps(cfg: Config) -> None:
    problem = GemmProblem(m_blocks=8, k_blocks=8, n_blocks=2, chunks=4)
    r = run_gemm(FsimDevice(cfg), problem)
    assert r.exact
    s = r.stats
    assert s.cycles < s.busy_cycles["load"] + s.busy_cycles["compute"] + s.busy_cycles["store"]
    assert s.cycles >= max(s.busy_cycles.values())


def test_counters(cfg: Config) -> None:
    problem = GemmProblem(m_blocks=4, k_blocks=4, n_blocks=2, chunks=2)
    s = run_gemm(FsimDevice(cfg), problem).stats
    e = cfg.elem_bytes
    assert s.dram_read_bytes["inp"] == 4 * 4 * e(MemType.INP)
    assert s.dram_read_bytes["wgt"] == 2 * 4 * e(MemType.WGT)
    assert s.dram_read_bytes["acc"] == 4 * 2 * e(MemType.ACC)
    assert s.dram_write_bytes["out"] == 4 * 2 * e(MemType.OUT)
    assert s.gemm_uops == 4 * 2 * 4  # every (m, n, k) block once
    assert s.macs == s.gemm_uops * cfg.macs_per_cycle
    assert s.alu_uops == 5 * 4 * 2
    assert sum(s.insns_per_module.values()) == s.insns
    assert 0 < s.gemm_utilization < 1


def test_buffers_persist_between_runs(cfg: Config) -> None:
    dev = FsimDevice(cfg, dram_bytes=1 << 16)
    dev.sim.pads.acc[3] = 42
    buf = dev.alloc(64)
    buf.write(encode_insns([Insn.alu(AluOp.ADD, 0, 1, imm=1), Insn.finish()], cfg).reshape(-1))
    dev.sim.pads.uop[:, 0] = (3, 0, 0)
    dev.run(buf, 2)
    dev.run(buf, 2)
    assert (dev.sim.pads.acc[3] == 44).all()


# ---- differential: random programs vs the scalar reference ---------------------

@pytest.mark.parametrize("seed", range(25))
def test_random_programs_match_reference(cfg: Config, seed: int) -> None:
    prog = random_program(cfg, seed)
    ref = run_reference(prog)
    got = run_program(prog, FsimDevice(cfg, dram_bytes=1 << 20)).outputs
    for name in ref:
        assert np.array_equal(got[name], ref[name]), f"output {name} differs"


def test_random_programs_reach_corners() -> None:
    """The generator exercises the corners the ISA document lists."""
    seen: set[str] = set()
    cfg = PRESETS["tiny"]
    for seed in range(150):
        for insn in random_program(cfg, seed).insns:
            f = insn.fields()
            if insn.opcode in (Opcode.LOAD, Opcode.STORE):
                pads = (f["y_pad_top"], f["y_pad_bottom"], f["x_pad_left"], f["x_pad_right"])
                seen |= {f"pad{i}" for i, p in enumerate(pads) if p}
                seen |= {"pad15"} if 15 in pads else set()
                seen |= {"padval"} if f["pad_value"] else set()
                seen |= {"stride0"} if f["x_stride"] == 0 and f["y_size"] > 1 else set()
                seen |= {"gap"} if f["x_stride"] > f["x_size"] else set()
                seen |= {"empty"} if f["x_size"] == 0 or f["y_size"] == 0 else set()
                rows = f["y_pad_top"] + f["y_size"] + f["y_pad_bottom"]
                cols = f["x_pad_left"] + f["x_size"] + f["x_pad_right"]
                mem = MemType.ACC if insn.opcode == Opcode.STORE else MemType(f["memory_type"])
                seen |= {f"end-{mem.name}"} if f["sram_base"] + rows * cols == cfg.depth(mem) else set()
                seen |= {f"store-{MemType(f['memory_type']).name}"} if insn.opcode == Opcode.STORE else set()
            elif insn.opcode == Opcode.ALU:
                seen.add(f"alu-{AluOp(f['alu_op']).name}-{'imm' if f['use_imm'] else 'vec'}")
                seen |= {"shl"} if f["alu_op"] == AluOp.SHR and f["use_imm"] and f["imm"] < 0 else set()
                seen |= {"shr-wide"} if f["alu_op"] == AluOp.SHR and f["use_imm"] and f["imm"] >= 32 else set()
            elif insn.opcode == Opcode.GEMM:
                seen.add("gemm-reset" if f["reset"] else "gemm")
                seen |= {"iter0"} if f["iter_out"] == 0 else set()
    want = {"pad0", "pad1", "pad2", "pad3", "pad15", "padval", "stride0", "gap", "empty", "end-INP", "end-WGT",
            "end-ACC", "end-UOP", "store-OUT", "store-ACC", "shl", "shr-wide", "gemm", "gemm-reset", "iter0"}
    want |= {f"alu-{o.name}-{k}" for o in AluOp for k in ("imm", "vec")}
    assert want <= seen, f"never generated: {sorted(want - seen)}"


def test_program_fixed_addresses_need_free_dram() -> None:
    cfg = PRESETS["tiny"]
    prog = Program(cfg, [Insn.finish()], seg_layout(cfg, [("A", "int8", np.zeros(4), True)]))
    dev = FsimDevice(cfg, dram_bytes=1 << 16)
    dev.alloc(64)
    with pytest.raises(Exception, match="not free"):
        run_program(prog, dev)


def test_invalid_instructions_are_found_in_fetch_order() -> None:
    """The first invalid instruction fetch reaches is reported, as the hardware's in-order fetch would."""
    from vta.isa import ErrorCode

    cfg = PRESETS["tiny"]
    raw = encode_insns([Insn.gemm(0, 0), Insn.gemm(2, 1), Insn.gemm(0, 0), Insn.finish()], cfg)
    raw[2, 0] = (int(raw[2, 0]) & 0xF8) | 6  # an unknown opcode after the bad micro-op range
    dev = FsimDevice(cfg, dram_bytes=1 << 16)
    dev.sim.dram[: raw.size] = raw.reshape(-1)
    with pytest.raises(InvalidInsnError) as e:
        dev.sim.run(0, 4)
    assert e.value.insn_index == 1 and e.value.code == ErrorCode.BAD_FIELD
    # A deadlock that keeps fetch from reaching a bad instruction is what gets reported.
    small = Config(insn_queue_depth=2)
    insns = [Insn.gemm(0, 0, pop_prev=1)] + [Insn.gemm(0, 0) for _ in range(4)] + [Insn.finish()]
    raw = encode_insns(insns, small)
    raw[4, 0] = (int(raw[4, 0]) & 0xF8) | 7
    dev = FsimDevice(small, dram_bytes=1 << 16)
    dev.sim.dram[: raw.size] = raw.reshape(-1)
    with pytest.raises(DeadlockError):
        dev.sim.run(0, len(insns))


def test_stream_address_and_length_rules() -> None:
    from vta.isa import ErrorCode

    cfg = PRESETS["tiny"]
    dev = FsimDevice(cfg, dram_bytes=1 << 16)
    with pytest.raises(InvalidInsnError, match="not a multiple of 16") as e:
        dev.sim.run(8, 1)
    assert e.value.code == ErrorCode.BAD_FIELD
    with pytest.raises(InvalidInsnError, match="empty") as e:
        dev.sim.run(0, 0)
    assert e.value.code == ErrorCode.BAD_FINISH
    with pytest.raises(BoundsError) as e:
        dev.sim.run(1 << 16, 1)
    assert e.value.code == ErrorCode.DRAM_BOUNDS
