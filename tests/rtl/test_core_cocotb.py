"""The whole core under cocotb: `vta_core` built by Verilator through cocotb's runner,
its AXI4 master connected to cocotbext-axi's AxiRam, with random back-pressure on
every AXI channel. It runs the hand-written example and random programs of the
differential fuzzer one after another (buffers keep their contents between runs, on the
core as on fsim), and every DRAM byte must equal fsim's result.

The program images and fsim's expected DRAM go to the cocotb process as .npz files
(no pickle). Waveforms: ``WAVES=1 pytest tests/rtl/test_core_cocotb.py`` writes a VCD
next to the cocotb log (its path is printed), ``VTA_WAVE_FORMAT=fst`` an FST.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

from vta.isa import PRESETS, Program, assemble_file
from vta.sim.fsim import Fsim
from vta.sim.randprog import random_program

EXAMPLES = Path(__file__).parents[2] / "examples"
MAX_CYCLES = 200_000


def _cases(config_name: str) -> list[tuple[str, Program]]:
    cfg = PRESETS[config_name]
    cases = [(f"random{seed}", random_program(cfg, seed, phases=4)) for seed in range(6)]
    if config_name == "tiny":
        cases.insert(0, ("gemm_relu.s", assemble_file(EXAMPLES / "gemm_relu.s")))
    return cases


def _write_cases(cases: list[tuple[str, Program]], folder: Path) -> Path:
    """For each program: its DRAM image, stream address and length, and fsim's final DRAM.

    The programs run one after another on one core, whose buffers keep their contents
    between runs; so they do on one fsim. All images are padded to one DRAM size.
    """
    size = max(prog.dram_bytes for _, prog in cases)
    fsim = Fsim(cases[0][1].config, size)
    entries = []
    for i, (name, prog) in enumerate(cases):
        image = np.zeros(size, np.uint8)
        base = prog.dram_image()
        image[: base.size] = base
        fsim.dram[:] = image
        fsim.run(prog.insn_addr, len(prog.insns))
        path = folder / f"case{i}.npz"
        np.savez(path, image=image, expect=np.array(fsim.dram))
        entries.append({"name": name, "file": str(path), "insn_addr": prog.insn_addr, "insn_count": len(prog.insns)})
    index = folder / "cases.json"
    index.write_text(json.dumps(entries))
    return index


# ---- inside the simulator --------------------------------------------------------

async def core_programs_cocotb(dut) -> None:  # run by cocotb in the simulator process
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge
    from cocotbext.axi import AxiBus, AxiRam

    cases = json.loads(Path(os.environ["VTA_CASES"]).read_text())
    size = max(np.load(c["file"])["image"].size for c in cases)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=size)
    rng = random.Random(int(os.environ.get("VTA_PAUSE_SEED", "1")))

    def pauses(p: float):  # stall a channel on about a fraction p of the cycles
        while True:
            yield rng.random() < p

    for channel, p in ((ram.read_if.ar_channel, 0.2), (ram.read_if.r_channel, 0.3),
                       (ram.write_if.aw_channel, 0.2), (ram.write_if.w_channel, 0.3),
                       (ram.write_if.b_channel, 0.2)):
        channel.set_pause_generator(pauses(p))
    dut.start.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    for case in cases:
        data = np.load(case["file"])
        ram.write(0, data["image"].tobytes())
        dut.insn_addr.value = case["insn_addr"]
        dut.insn_count.value = case["insn_count"]
        dut.dram_limit.value = int(data["image"].size)
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        for _ in range(MAX_CYCLES):
            await RisingEdge(dut.clk)
            if int(dut.done.value):
                break
        else:
            raise AssertionError(f"{case['name']}: the core did not finish within {MAX_CYCLES} cycles")
        assert int(dut.error.value) == 0, \
            f"{case['name']}: error code {int(dut.error.value)} at instruction {int(dut.error_insn.value)}"
        got = np.frombuffer(ram.read(0, data["image"].size), np.uint8)
        diff = np.flatnonzero(got != data["expect"])
        assert not diff.size, f"{case['name']}: {diff.size} DRAM bytes differ from fsim, first at {diff[0]:#x}"
        dut._log.info("%s: %d cycles, DRAM equal to fsim", case["name"], int(dut.counters__cycles.value))


try:  # a cocotb test, found when the simulator imports this module
    import cocotb

    core_programs_cocotb = cocotb.test()(core_programs_cocotb)
except ImportError:  # pragma: no cover - without cocotb the test below skips
    pass


# ---- pytest ----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["tiny", "bus256"])
def test_core_against_axi_ram(config_name: str, tmp_path: Path) -> None:
    from cocotb_util import run_cocotb, verilator_missing

    from vta.sim.rtl.build import cache_root, generate_verilog

    reason = verilator_missing()
    if reason:
        pytest.skip(reason)
    index = _write_cases(_cases(config_name), tmp_path)
    # The same Verilog the rtl device builds from, from its cache (generating it takes seconds).
    verilog = generate_verilog(PRESETS[config_name], cache_root() / "verilog")
    waves = run_cocotb(verilog, "vta_core", "test_core_cocotb", tmp_path / "sim",
                       testcase="core_programs_cocotb", extra_env={"VTA_CASES": str(index)})
    if waves:
        print(f"waveform: {waves}")
