"""Fmax of the core placed and routed out of context (`vta.hw.fmax`): device choice, errors,
and (slow) a real nextpnr run of the smallest board preset's config."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from vta.hw.boards import BOARDS, DEVICES
from vta.hw.fmax import LUT_FILL, fmax, smallest_device
from vta.hw.synth import Resources, SynthError
from vta.isa import PRESETS

from vta.cli import main


def test_the_smallest_device_that_holds_the_core() -> None:
    assert smallest_device(Resources(luts=19_000, ffs=1, dsps=17, brams=20)).name == "LFE5U-25F"
    assert smallest_device(Resources(luts=19_000, ffs=1, dsps=35, brams=20)).name == "LFE5U-45F"  # multipliers
    over = int(LUT_FILL * DEVICES["LFE5U-25F"].luts) + 1
    assert smallest_device(Resources(luts=over, ffs=1, dsps=1, brams=1)).name == "LFE5U-45F"  # LUTs
    assert smallest_device(Resources(luts=1, ffs=1, dsps=1, brams=150)).name == "LFE5U-85F"  # block RAMs
    with pytest.raises(SynthError, match="more than the largest ECP5 .*use a smaller array"):
        smallest_device(Resources(luts=200_000, ffs=1, dsps=1, brams=1))


def test_families_without_place_and_route_and_unknown_devices_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="'xilinx7' has synthesis estimates .* but no Fmax"):
        fmax(PRESETS["tiny"], "xilinx7", cache_dir=tmp_path)
    with pytest.raises(SynthError, match="unknown ECP5 device 'LFE5U-99F'"):
        fmax(PRESETS["tiny"], device="LFE5U-99F", cache_dir=tmp_path)
    res = CliRunner().invoke(main, ["hw", "synth", "--config", "tiny", "--device", "LFE5U-45F"])
    assert res.exit_code == 1 and "--device is for --fmax" in res.output


@pytest.mark.nightly  # 5-14 minutes of nextpnr here: beyond CI's budget (pytest -m nightly)
def test_fmax_of_the_smallest_board_config(tmp_path: Path) -> None:
    """Yosys and nextpnr for real; the second call is a cache hit."""
    cfg = BOARDS["ulx3s-25f"].config
    t0 = time.perf_counter()
    cache = tmp_path / "vta" / "synth"  # where the CLI looks with XDG_CACHE_HOME=tmp_path
    r = fmax(cfg, cache_dir=cache)
    print(f"Fmax of {cfg.name} out of context: {r.fmax_mhz} MHz on {r.device} in {time.perf_counter() - t0:.0f} s")
    assert r.device == "LFE5U-25F" and not r.cached
    assert r.fmax_mhz is not None and 20 < r.fmax_mhz < 200 and r.target_mhz == 25.0 and r.meets_timing
    used = {k: v["used"] for k, v in r.utilization.items()}
    assert used["MULT18X18D"] > 0 and used["DP16KD"] > 0 and used["TRELLIS_COMB"] > 1000
    again = fmax(cfg, cache_dir=cache)
    assert again.cached and again.fmax_mhz == r.fmax_mhz and again.seconds < 10
    # the CLI reads the same cache: the flattened estimate was kept by the same Yosys run
    t0 = time.perf_counter()
    res = CliRunner(env={"XDG_CACHE_HOME": str(tmp_path)}).invoke(
        main, ["hw", "synth", "--config", str(_save(cfg, tmp_path)), "--flatten", "--fmax", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["fmax"]["fmax_mhz"] == r.fmax_mhz and out["cached"] and time.perf_counter() - t0 < 30


def _save(cfg, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    p = tmp_path / "board.json"
    cfg.save(p)
    return p
