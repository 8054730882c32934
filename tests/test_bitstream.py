"""Board presets, the fit check before synthesis, report parsing, and (slow) a real bitstream
of the smallest preset with Yosys and nextpnr from PyPI."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from vta.hw.bitstream import parse_log_fmax, parse_report
from vta.hw.board import TOP, BoardTop, PlatformTop
from vta.hw.boards import BOARDS, FitError, bram_blocks, check_fit, estimate, multipliers, suggest_buffers
from vta.hw.uart import uart_divisor
from vta.isa import PRESETS

from vta.cli import main

SMALLEST = "ulx3s-25f"


def test_every_preset_fits_its_board() -> None:
    for name, b in BOARDS.items():
        est = check_fit(b.config, b)
        assert est.fits, name
        assert b.config.clock_mhz * 1e6 == b.clock_hz


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_preset_prepares_a_build_plan(name: str, tmp_path: Path) -> None:
    """Each preset's platform exists, has the UART the host link needs, and writes a complete
    plan for its device (constraints naming the UART pins, the nextpnr device flag), without tools."""
    b = BOARDS[name]
    platform = b.platform_class()()
    assert platform.device == b.device.name
    top = PlatformTop(BoardTop(b.config, b.mem_bytes, b.clock_hz, uart_divisor(b.clock_hz, b.baud)))
    plan = platform.prepare(top, name=TOP)
    plan.extract(str(tmp_path))
    lpf = (tmp_path / f"{TOP}.lpf").read_text()
    assert "uart_0__rx" in lpf and "uart_0__tx" in lpf
    script = (tmp_path / f"build_{TOP}.sh").read_text()
    assert {"LFE5U-25F": "--25k", "LFE5U-85F": "--85k", "LFE5UM5G-85F": "--um5g-85k"}[b.device.name] in script


def test_bram_and_multiplier_estimates() -> None:
    assert bram_blocks(36, 512, "ecp5") == 1
    assert bram_blocks(64, 8192, "ecp5") == 32       # 512 Kbit in 18 Kbit blocks at 512x36
    assert bram_blocks(512, 64, "ecp5") == 15        # wide and shallow: one block per 36 bits
    assert bram_blocks(1, 16384, "ecp5") == 1
    # what place and route reported (see the module docstring of vta.hw.boards)
    assert multipliers(PRESETS["tiny"], "ecp5") == 35
    assert multipliers(BOARDS[SMALLEST].config, "ecp5") == 17
    assert estimate(BOARDS["ulx3s-85f"].config, BOARDS["ulx3s-85f"]).total_brams == 111
    assert estimate(BOARDS[SMALLEST].config, BOARDS[SMALLEST]).total_brams == 33


def test_config_too_big_is_refused_with_sizes_that_fit(tmp_path: Path) -> None:
    """Decided from the config alone: no tool runs, and the message names buffer sizes that fit."""
    b = BOARDS[SMALLEST]
    big = replace(b.config, acc_buffer_bytes=1 << 16, wgt_buffer_bytes=1 << 14)
    with pytest.raises(FitError) as e:
        check_fit(big, b)
    msg = str(e.value)
    assert f"does not fit board {SMALLEST}" in msg and "block RAMs" in msg and "LFE5U-25F has 56" in msg
    s = suggest_buffers(big, b)
    assert s is not None and estimate(s, b).fits
    assert f"acc_buffer_bytes={s.acc_buffer_bytes}" in msg and s.acc_buffer_bytes < big.acc_buffer_bytes
    # the largest: doubling any buffer of the suggestion breaks the fit
    for name in ("uop", "inp", "wgt", "acc"):
        field = f"{name}_buffer_bytes"
        if getattr(s, field) < getattr(big, field):
            assert not estimate(replace(s, **{field: 2 * getattr(s, field)}), b).fits, field

    cfg_file = tmp_path / "big.json"
    big.save(cfg_file)
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, ["hw", "bitstream", "--board", SMALLEST, "--config", str(cfg_file),
                                    "-o", str(tmp_path / "out")])
    assert res.exit_code == 1 and "does not fit" in res.output and "acc_buffer_bytes=" in res.output
    assert time.perf_counter() - t0 < 10 and not (tmp_path / "out" / "build").exists()


def test_too_many_multipliers_is_refused() -> None:
    with pytest.raises(FitError, match=r"multipliers .* the LFE5U-25F has 28: use a smaller array"):
        check_fit(PRESETS["tiny"], BOARDS[SMALLEST])


def test_unknown_board_is_named(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["hw", "bitstream", "--board", "nosuchboard", "-o", str(tmp_path)])
    assert res.exit_code == 1 and "unknown board 'nosuchboard'" in res.output and SMALLEST in res.output


def test_report_parsing() -> None:
    report = {"fmax": {"$glbnet$clk": {"achieved": 42.04, "constraint": 25.0}, "other": {"achieved": 90.0,
                                                                                         "constraint": 25.0}},
              "utilization": {"DP16KD": {"used": 33, "available": 56}, "MULT18X18D": {"used": 17, "available": 28}}}
    fmax, util = parse_report(report)
    assert fmax == 42.04 and util["DP16KD"] == {"used": 33, "available": 56}
    assert parse_report({}) == (None, {})
    log = ("Info: Max frequency for clock '$glbnet$clk': 38.10 MHz (PASS at 25.00 MHz)\n"
           "Info: Max frequency for clock '$glbnet$clk': 42.04 MHz (PASS at 25.00 MHz)\n")
    assert parse_log_fmax(log) == 42.04 and parse_log_fmax("nothing") is None


@pytest.mark.slow
def test_bitstream_of_the_smallest_preset(tmp_path: Path) -> None:
    """The whole flow for real: about 5 minutes on 2 cores (Yosys about 1, nextpnr about 4)."""
    out = tmp_path / "bit"
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, ["hw", "bitstream", "--board", SMALLEST, "-o", str(out), "--json"])
    seconds = time.perf_counter() - t0
    assert res.exit_code == 0, res.output
    r = json.loads(res.output[res.output.index("{"):])
    print(f"bitstream for {SMALLEST}: {seconds:.0f} s, Fmax {r['fmax_mhz']:.1f} MHz, {r['utilization']}")
    bit = Path(r["bitstream"])
    assert bit == out / "vta_board.bit" and bit.stat().st_size > 100_000
    assert (out / "report.json").is_file() and (out / "build" / "vta_board.tim").is_file()
    assert r["target_mhz"] == 25.0 and r["fmax_mhz"] > r["target_mhz"] and r["meets_timing"]
    util = r["utilization"]
    for k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D"):
        assert 0 < util[k]["used"] <= util[k]["available"], k
    # the fit check's estimate is what place and route found
    assert abs(util["DP16KD"]["used"] - r["estimate"]["brams"]) <= 2
    assert abs(util["MULT18X18D"]["used"] - r["estimate"]["multipliers"]) <= 2
