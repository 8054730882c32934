"""Synthesis estimates (`vta.hw.synth`, `vta hw synth`) with Yosys from PyPI.

The tiny preset is synthesized once per family for the whole module (ECP5 about 40 s,
generic about 20 s, plus about 45 s for Yosys's WebAssembly compilation on a fresh
machine); the cache tests and the command line reuse those results.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from vta.hw import synth
from vta.hw.layouts import elem_bits
from vta.isa import PRESETS, MemType

from vta.cli import main

TINY = PRESETS["tiny"]
BUFFERS = {"uop_buf": MemType.UOP, "inp_buf": MemType.INP, "wgt_buf": MemType.WGT, "acc_buf": MemType.ACC}


@pytest.fixture(scope="module")
def xdg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private $XDG_CACHE_HOME: every test of this module starts from an empty cache."""
    return tmp_path_factory.mktemp("xdg")


def _cache(xdg: Path) -> Path:
    return xdg / "vta" / "synth"  # where `vta hw synth` looks with XDG_CACHE_HOME=xdg


@pytest.fixture(scope="module")
def ecp5(xdg: Path) -> synth.SynthReport:
    return synth.estimate(TINY, "ecp5", cache_dir=_cache(xdg))


@pytest.fixture(scope="module")
def generic(xdg: Path, ecp5: synth.SynthReport) -> synth.SynthReport:
    """Made after the ECP5 report, into the same cache: a different family must miss it."""
    return synth.estimate(TINY, "generic", cache_dir=_cache(xdg))


def _macs(cfg) -> int:
    return cfg.batch * cfg.block_in * cfg.block_out


# ---- no Yosys needed ------------------------------------------------------------------------

def test_unknown_family_is_refused() -> None:
    with pytest.raises(synth.SynthError, match=r"unknown FPGA family 'virtex2'.*ecp5, ice40, xilinx7, generic"):
        synth.estimate(TINY, "virtex2")


@pytest.mark.parametrize("name", list(synth.FAMILIES))
def test_scripts_keep_or_flatten_the_hierarchy(name: str) -> None:
    fam = synth.FAMILIES[name]
    kept, flat = synth.yosys_script(fam, "vta_core", False), synth.yosys_script(fam, "vta_core", True)
    assert kept.startswith("read_rtlil design.il\n") and "stat -json" in kept
    if name in ("ecp5", "ice40"):
        assert "-noflatten" in kept and "-noflatten" not in flat
    else:
        assert "-flatten" not in kept and "-flatten" in flat
    if name != "generic":  # the abc9 workaround sits between the two halves of the vendor script
        first, purge, second = kept.splitlines()[1:4]
        assert first.endswith("-run :map_luts") and purge == "opt_clean -purge" and second.endswith("-run map_luts:")


def test_cell_kinds() -> None:
    f = synth.FAMILIES
    assert f["ecp5"].kind("CCU2C") == ("luts", 2) and f["ecp5"].kind("LUT4") == ("luts", 1)
    assert f["ecp5"].kind("PFUMX") is None and f["ecp5"].kind("DP16KD") == ("brams", 1)
    assert f["xilinx7"].kind("LUT6") == ("luts", 1) and f["xilinx7"].kind("RAMB36E1") == ("brams", 1)
    assert f["xilinx7"].kind("RAM32X1D") == ("lutrams", 1) and f["xilinx7"].kind("CARRY4") is None
    assert f["ice40"].kind("SB_DFFESR") == ("ffs", 1) and f["ice40"].kind("SB_CARRY") is None
    assert f["generic"].kind("$_SDFFE_PP0P_") == ("ffs", 1) and f["generic"].kind("$mul") == ("dsps", 1)
    assert synth.Resources.of_cells({"LUT4": 3, "CCU2C": 2, "TRELLIS_FF": 5, "L6MUX21": 9}, f["ecp5"]) == \
        synth.Resources(luts=7, ffs=5)


def test_memory_names() -> None:
    assert synth.describe_memory("wgt_buf") == "weight buffer"
    assert synth.describe_memory("load_fifo.storage") == "load instruction queue"
    assert synth.describe_memory("fetch_rdma.data.storage") == "instruction fetch DMA read-data FIFO"
    assert synth.describe_memory("acc_wdma.desc.storage") == "accumulator DMA burst descriptor FIFO"


def test_yosys_failure_shows_its_error(tmp_path: Path) -> None:
    script = synth.yosys_script(synth.FAMILIES["ecp5"])
    with pytest.raises(synth.SynthError, match=r"(?s)Yosys failed \(exit status \d+\).*ERROR") as e:
        synth.run_yosys("this is not RTLIL\n", script, tmp_path / "work", failed_log=tmp_path / "failed.log")
    assert (tmp_path / "failed.log").is_file() and str(tmp_path / "failed.log") in str(e.value)


def test_cli_errors() -> None:
    r = CliRunner().invoke(main, ["hw", "synth", "--config", "tiny", "--family", "stratix"])
    assert r.exit_code != 0 and "unknown FPGA family 'stratix'" in r.output and "ecp5" in r.output
    r = CliRunner().invoke(main, ["hw", "synth", "--config", "1x3_i8w8a32_15_15_18_17"])
    assert r.exit_code != 0 and "block_in" in r.output
    r = CliRunner().invoke(main, ["hw", "synth", "--help"])
    assert r.exit_code == 0 and "Example" in r.output


# ---- synthesized ------------------------------------------------------------------------------

def test_rtlil_declares_the_buffers(xdg: Path, ecp5: synth.SynthReport) -> None:
    mems = {m.name: m for m in synth.rtlil_memories(synth.rtlil_for(TINY, _cache(xdg) / "rtlil"))
            if m.module == "vta_core"}
    for name, mem in BUFFERS.items():
        assert (mems[name].width, mems[name].depth) == (elem_bits(TINY, mem), TINY.depth(mem))


def test_ecp5_counts(ecp5: synth.SynthReport) -> None:
    assert ecp5.luts > 1000 and ecp5.ffs > 1000 and ecp5.brams > 0
    assert ecp5.luts == ecp5.cells["LUT4"] + 2 * ecp5.cells["CCU2C"]
    # Yosys maps each int8 x int8 product of the GEMM array to one MULT18X18D; the ALU's
    # multipliers and the DMAs' address arithmetic use more.
    core = ecp5.module("compute_core.core")
    assert core.own.dsps == core.cells["MULT18X18D"] == _macs(TINY)
    assert ecp5.dsps > _macs(TINY)


def test_generic_counts(generic: synth.SynthReport) -> None:
    assert generic.luts > 1000 and generic.ffs > 1000
    assert generic.module("compute_core.core").own.dsps == _macs(TINY)  # one $mul per product
    # Every memory stays one $mem_v2 cell, whatever its size.
    assert generic.brams == len(generic.memories) and all(m.brams == 1 for m in generic.memories)


@pytest.mark.parametrize("which", ["ecp5", "generic"])
def test_modules_add_up_to_the_total(which: str, request: pytest.FixtureRequest) -> None:
    r: synth.SynthReport = request.getfixturevalue(which)
    assert len(r.modules) > 20 and r.modules[0].name == "vta_core" and r.modules[0].total == r.total
    own = synth.Resources()
    cells: dict[str, int] = {}
    for m in r.modules:
        own = own + m.own * m.instances
        for t, n in m.cells.items():
            cells[t] = cells.get(t, 0) + n * m.instances
    assert own == r.total  # r.total is Yosys's own count over the hierarchy
    assert cells == r.cells
    names = {m.name for m in r.modules}
    assert {"vta_core.compute_core.core", "vta_core.load_fifo", "vta_core.fetch_rdma.data"} <= names


def test_buffers_are_named(ecp5: synth.SynthReport) -> None:
    for path, desc in (("uop_buf", "micro-op buffer"), ("inp_buf", "input buffer"), ("wgt_buf", "weight buffer"),
                       ("acc_buf", "accumulator buffer")):
        mem = ecp5.memory(path)
        assert mem.buffer == desc and mem.implementation == "bram" and mem.brams > 0
    assert ecp5.memory("load_fifo.storage").buffer == "load instruction queue"
    assert ecp5.memory("wgt_buf").bits == TINY.wgt_buffer_bytes * 8
    assert sum(m.brams for m in ecp5.memories) == ecp5.brams  # every block RAM is attributed to a memory
    assert sum(m.lutrams for m in ecp5.memories) <= ecp5.lutrams


def test_cache_hit_and_miss(xdg: Path, ecp5: synth.SynthReport, generic: synth.SynthReport) -> None:
    assert not ecp5.cached and not generic.cached and generic.key != ecp5.key
    t0 = time.perf_counter()
    again = synth.estimate(TINY, "ecp5", cache_dir=_cache(xdg))
    assert time.perf_counter() - t0 < 2.0 and again.cached and again.seconds < 2.0
    volatile = ("seconds", "cached")
    assert {k: v for k, v in again.to_dict().items() if k not in volatile} == \
        {k: v for k, v in ecp5.to_dict().items() if k not in volatile}
    assert (_cache(xdg) / f"{ecp5.key}.json").is_file()


def test_cli_json_and_table(xdg: Path, ecp5: synth.SynthReport) -> None:
    env = {"XDG_CACHE_HOME": str(xdg)}
    r = CliRunner().invoke(main, ["hw", "synth", "--config", "tiny", "--json"], env=env)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["cached"] and d["family"] == "ecp5" and d["config"] == TINY.name
    assert (d["luts"], d["ffs"], d["dsps"], d["brams"]) == (ecp5.luts, ecp5.ffs, ecp5.dsps, ecp5.brams)
    assert {m["path"] for m in d["memories"]} >= set(BUFFERS) and d["modules"][0]["total"]["luts"] == ecp5.luts
    r = CliRunner().invoke(main, ["hw", "synth", "--config", "tiny"], env=env)
    assert r.exit_code == 0 and "weight buffer" in r.output and "compute_core" in r.output
    assert f"{ecp5.luts:,} LUT" in r.output


@pytest.mark.slow
def test_brams_grow_with_a_buffer(xdg: Path, ecp5: synth.SynthReport) -> None:
    bigger = replace(TINY, wgt_buffer_bytes=TINY.wgt_buffer_bytes * 8)
    big = synth.estimate(bigger, "ecp5", cache_dir=_cache(xdg))
    assert big.memory("wgt_buf").brams > ecp5.memory("wgt_buf").brams and big.brams > ecp5.brams
    assert big.memory("acc_buf").brams == ecp5.memory("acc_buf").brams  # the other buffers are as they were
