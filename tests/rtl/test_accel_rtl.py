"""Compiled operators on the RTL under Verilator: the same kernels as tests/test_accel.py
(ResNet-18 layers on the default config, small convs and dense with the full
requantization epilogue on every config), bit-exact against the numpy reference and byte
for byte against fsim, with the timing model's cycle estimate close to the RTL's."""

from __future__ import annotations

import numpy as np
import pytest
from accel_check import check, operands
from conftest import CONFIG_NAMES, needs_rtl
from test_accel import REQUANT, resnet_layer
from vta.compiler.accel.build import build
from vta.compiler.accel.schedules import Conv2d, Dense
from vta.isa import PRESETS
from vta.sim.fuzz import compare_runs
from vta.sim.rtl import RtlSim

pytestmark = needs_rtl


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_small_kernels_agree_with_fsim(name: str) -> None:
    cfg = PRESETS[name]
    bn, bi, bo = cfg.batch, cfg.block_in, cfg.block_out
    for wl in (Conv2d(bn, 2 * bi, 6, 5, 2 * bo, 3, 2, 1), Dense(2 * bn, 3 * bo, 2 * bi)):
        built = build(wl, cfg, REQUANT)
        ins, _ = operands(wl, cfg, REQUANT)
        prog = built.kernel.program(*ins)
        image = np.zeros(max(1 << 20, prog.dram_bytes), np.uint8)
        base = prog.dram_image()
        image[: base.size] = base
        why = compare_runs(cfg, image, prog.insn_addr, len(prog.insns), RtlSim(cfg, image.size), prog.segments)
        assert not why, f"{wl.key()} on {cfg.name}: {why}"
        check(wl, cfg, REQUANT, target="rtl")


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["C5", "C8", "C11"])
def test_resnet18_layers_on_rtl(layer: str) -> None:
    cfg = PRESETS["default"]
    wl = resnet_layer(layer, cfg)
    _, rtl = check(wl, cfg, REQUANT, target="rtl")
    _, fsim = check(wl, cfg, REQUANT)
    assert abs(fsim.cycles - rtl.cycles) < 0.05 * rtl.cycles  # type: ignore[attr-defined]


def test_tuner_measures_exact_rtl_cycles(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vta.compiler.accel.tune import TuningLog
    from vta.measure import tune

    cfg = PRESETS["tiny"]
    log = TuningLog(tmp_path / "rtl.jsonl")
    wl = Conv2d(1, 8, 6, 6, 8, 3, 1, 1)
    best, cycles = tune(wl, cfg, REQUANT, trials=3, log=log, target="rtl")
    assert [r.target for r in log.records] == ["rtl"] * 3 and cycles == min(r.cycles for r in log.records)
    assert TuningLog(tmp_path / "rtl.jsonl").best(wl, cfg, REQUANT) == best  # read back from the file
    built, stats = check(wl, cfg, REQUANT, target="rtl", log=log)
    assert built.tiling == best and stats.cycles == cycles  # type: ignore[attr-defined]
