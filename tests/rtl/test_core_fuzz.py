"""Differential fuzzing in the suite: a few hundred random valid programs per config on
fsim and on the core under Verilator, compared DRAM byte for byte (sim/fuzz.py), and a
check that the fuzzer does find a planted difference and saves it as assembly that
reproduces it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_rtl

from vta.isa import PRESETS, MemType, assemble_file
from vta.sim.fsim import Fsim, machine
from vta.sim.fsim.memory import exec_store
from vta.sim.fuzz import differential, fuzz


needs_toolchain = needs_rtl

PROGRAMS = 300  # per config; about a second per hundred once the core is built


@needs_toolchain
@pytest.mark.parametrize("name", ["default", "tiny", "batch4", "nonsquare", "bus256"])
def test_fuzz_fsim_against_rtl(name: str, tmp_path: Path) -> None:
    cfg = PRESETS[name]
    # Different seeds per config, so the configs together cover more programs.
    seed = 10_000 * ["default", "tiny", "batch4", "nonsquare", "bus256"].index(name)
    report = fuzz(cfg, PROGRAMS, seed=seed, outdir=tmp_path)
    assert report.programs == PROGRAMS and report.rtl_cycles > 0
    assert report.ok, "\n".join(f"seed {m.seed}: {m.reason} ({m.path})" for m in report.mismatches[:5])


@needs_toolchain
@pytest.mark.parametrize("bus", [128, 512])
def test_fuzz_other_bus_widths(bus: int, tmp_path: Path) -> None:
    """The remaining selectable AXI data widths, on the default array."""
    cfg = dataclasses.replace(PRESETS["default"], bus_width=bus)
    report = fuzz(cfg, 100, seed=77, outdir=tmp_path)
    assert report.ok, "\n".join(f"seed {m.seed}: {m.reason} ({m.path})" for m in report.mismatches[:5])


class SaturatingStore(Fsim):
    """A planted bug standing for a faulty core: STORE OUT saturates where the ISA truncates."""

    def run(self, insn_addr: int, insn_count: int, **opts: int):  # type: ignore[no-untyped-def]
        def saturating(insn, index, pads, dram, config):  # type: ignore[no-untyped-def]
            if insn.memory_type != MemType.OUT:
                return exec_store(insn, index, pads, dram, config)
            kept = pads.acc.copy()
            hi = (1 << (config.out_width - 1)) - 1
            np.clip(pads.acc, -hi - 1, hi, out=pads.acc)
            try:
                return exec_store(insn, index, pads, dram, config)
            finally:
                pads.acc[:] = kept

        machine.exec_store = saturating
        try:
            return super().run(insn_addr, insn_count)
        finally:
            machine.exec_store = exec_store


def test_fuzzer_finds_a_planted_difference(tmp_path: Path) -> None:
    """A 'core' that differs from fsim in one corner is found; the counterexample is
    written as assembly, and that file reproduces the difference on its own."""
    cfg = PRESETS["tiny"]
    report = fuzz(cfg, 20, seed=0, outdir=tmp_path, make_rtl=lambda c, size: SaturatingStore(c, size))
    assert report.programs == 20 and 0 < len(report.mismatches) <= 20
    m = report.mismatches[0]
    assert "DRAM differs at" in m.reason and m.path == tmp_path / f"fuzz_{cfg.name}_{m.seed}.s"
    assert m.path.read_text().startswith(f"# vta fuzz counterexample, seed {m.seed}: DRAM differs")
    program = assemble_file(m.path)
    assert differential(program, SaturatingStore(cfg, 1 << 16)) == m.reason
    assert differential(program, Fsim(cfg, 1 << 16)) == ""


@needs_toolchain
def test_fuzz_and_rtl_run_from_the_command_line(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from vta.cli import main

    r = CliRunner().invoke(main, ["fuzz", "--config", "tiny", "--n", "5", "--seed", "7", "--json", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["programs"] == 5 and report["seed"] == 7 and report["mismatches"] == [] and report["rtl_cycles"] > 0
    example = str(Path(__file__).parents[2] / "examples" / "gemm_relu.s")
    runs = {t: CliRunner().invoke(main, ["run", example, "--target", t, "--json"]) for t in ("fsim", "rtl")}
    assert all(r.exit_code == 0 for r in runs.values()), {t: r.output for t, r in runs.items()}
    fsim, rtl = (json.loads(runs[t].output) for t in ("fsim", "rtl"))
    assert rtl["outputs"] == fsim["outputs"] and rtl["target"] == "rtl"
    assert rtl["stats"]["gemm_uops"] == fsim["stats"]["gemm_uops"] == 16
    r = CliRunner().invoke(main, ["fuzz", "--config", "nosuch"])
    assert r.exit_code != 0 and "nosuch" in r.output
