"""Board presets and the fit check that runs before any synthesis.

A preset (`BOARDS`) names an Amaranth platform (amaranth-boards), its device's resources,
the clock the design runs at, the UART baud rate, the on-chip memory size and a config known
to fit. `check_fit` estimates block RAMs and multipliers of a config on a board from the
config alone (milliseconds), so a config that cannot fit is refused with the largest buffer
sizes that would, before Yosys and nextpnr spend minutes on it. The estimate counts the four
buffers, the board memory and the core's FIFOs (`FIFO_BRAMS`), and the multipliers of the GEMM
array and the ALU; logic (LUTs) is checked by nextpnr itself (`vta.hw.bitstream`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from math import ceil

from vta.isa import Config
from vta.isa.errors import ConfigError, VTAError


class FitError(VTAError):
    """A config does not fit a board."""


@dataclass(frozen=True)
class Device:
    """An FPGA's resources that the fit check needs."""

    name: str          # as Amaranth's platform spells it
    family: str        # "ecp5" (the family the bitstream flow supports)
    luts: int
    brams: int         # block RAMs (DP16KD, 18 Kbit)
    multipliers: int   # hard multipliers (MULT18X18D)


# Block RAM aspect ratios (depth, width) a memory may be built from.
BRAM_SHAPES = {
    "ecp5": ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
}
MULT_BITS = {"ecp5": 18}  # operand width of one hard multiplier
# The core's read DMAs (instruction fetch, inp, wgt, uop, acc) each buffer two of the longest
# AXI bursts (2 x 256 beats) in a bus-wide FIFO (`vta.hw.dma.ReadDMA`; a buffered FIFO keeps one
# entry in a register); these FIFOs are the block RAMs beyond the buffers that
# `vta.hw.synth.estimate` finds (tiny preset, ECP5: 24 DP16KD = 14 in the buffers + 5 x 2).
READ_DMAS = 5
DMA_FIFO_DEPTH = 2 * 256 - 1
# Multipliers outside the GEMM array and the ALU (address arithmetic): what place and route
# reports beyond those two on the tiny preset (35) and on ulx3s-25f's 1x2x2 config (17).
OTHER_MULTIPLIERS = 7

DEVICES = {
    "LFE5U-12F": Device("LFE5U-12F", "ecp5", 12144, 32, 28),
    "LFE5U-25F": Device("LFE5U-25F", "ecp5", 24288, 56, 28),
    "LFE5U-45F": Device("LFE5U-45F", "ecp5", 43848, 108, 72),
    "LFE5U-85F": Device("LFE5U-85F", "ecp5", 83640, 208, 156),
    "LFE5UM5G-85F": Device("LFE5UM5G-85F", "ecp5", 83640, 208, 156),  # the 85F die with 5G SERDES
}


@dataclass(frozen=True)
class Board:
    """A board preset: platform, device, clock, link and a config that fits."""

    name: str
    platform: str      # "module:Class" in amaranth_boards
    device: Device
    clock_hz: int      # the design's clock: the board oscillator the platform declares
    config: Config
    mem_bytes: int     # on-chip memory for instructions and data
    baud: int = 115200
    description: str = ""

    def platform_class(self) -> type:
        """The Amaranth platform class (imports amaranth-boards)."""
        module, cls = self.platform.split(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except ImportError as e:
            raise VTAError(f"board {self.name} needs amaranth-boards ({e}): pip install amaranth-boards") from None


# No iCE40 preset: the core of the tiny preset alone maps to about 28,700 SB_LUT4 with
# synth_ice40, over five times an UP5K's 5,280.


def _board_config(clock_hz: int, **fields: int) -> Config:
    return Config(clock_mhz=clock_hz / 1e6, **fields)


def _config_85f(clock_hz: int) -> Config:
    """An 8x8 int8 GEMM array (64 MACs per cycle) for an ECP5-85F."""
    return _board_config(clock_hz, block_in=8, block_out=8, uop_buffer_bytes=1 << 12, inp_buffer_bytes=1 << 13,
                         wgt_buffer_bytes=1 << 15, acc_buffer_bytes=1 << 14, insn_queue_depth=16, token_queue_depth=64)


def _config_25f(clock_hz: int) -> Config:
    """The smallest array that still exercises every unit (2x2), for an ECP5-25F."""
    return _board_config(clock_hz, block_in=2, block_out=2, uop_buffer_bytes=1 << 10, inp_buffer_bytes=1 << 8,
                         wgt_buffer_bytes=1 << 8, acc_buffer_bytes=1 << 10, insn_queue_depth=8, token_queue_depth=16)


BOARDS: dict[str, Board] = {
    # ECP5-85F: the 8x8 array with 128 KiB of on-chip memory.
    "ulx3s-85f": Board(
        "ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", DEVICES["LFE5U-85F"], 25_000_000,
        _config_85f(25_000_000), 1 << 17,
        description="Radiona ULX3S with an LFE5U-85F, UART through its FTDI USB port"),
    # ECP5-25F: the 2x2 array with 32 KiB of memory.
    "ulx3s-25f": Board(
        "ulx3s-25f", "amaranth_boards.ulx3s:ULX3S_25F_Platform", DEVICES["LFE5U-25F"], 25_000_000,
        _config_25f(25_000_000), 1 << 15,
        description="Radiona ULX3S with an LFE5U-25F, UART through its FTDI USB port"),
    # Another ECP5-25F board: the ulx3s-25f design on a BG256 package.
    "icesugar-pro": Board(
        "icesugar-pro", "amaranth_boards.icesugar_pro:ICESugarProPlatform", DEVICES["LFE5U-25F"], 25_000_000,
        _config_25f(25_000_000), 1 << 15,
        description="Muse Lab iCESugar-Pro (LFE5U-25F), UART through its USB debugger"),
    # Lattice's ECP5-5G evaluation board: the ulx3s-85f design at the board's 12 MHz oscillator.
    "ecp5-5g-evn": Board(
        "ecp5-5g-evn", "amaranth_boards.ecp5_5g_evn:ECP55GEVNPlatform", DEVICES["LFE5UM5G-85F"], 12_000_000,
        _config_85f(12_000_000), 1 << 17,
        description="Lattice ECP5-5G Evaluation Board (LFE5UM5G-85F), UART through its FTDI USB port"),
}


def board(name: str) -> Board:
    """A board preset by name, or an error listing them."""
    try:
        return BOARDS[name]
    except KeyError:
        raise VTAError(f"unknown board '{name}'; known boards: {', '.join(BOARDS)}") from None


# ---- the estimate -------------------------------------------------------------------------

def bram_blocks(width: int, depth: int, family: str) -> int:
    """Block RAMs a ``width``-bit × ``depth`` memory needs at the best aspect ratio."""
    return min(ceil(depth / d) * ceil(width / w) for d, w in BRAM_SHAPES[family])


def _buffers(config: Config) -> dict[str, tuple[int, int, int]]:
    """Each on-chip buffer: (width in bits, depth, copies). The accumulator has two read ports
    (compute and store), and a block RAM has one, so it is built twice."""
    return {
        "uop": (config.uop_bits, config.uop_depth, 1),
        "inp": (config.inp_elem_bits, config.inp_depth, 1),
        "wgt": (config.wgt_elem_bits, config.wgt_depth, 1),
        "acc": (config.acc_elem_bits, config.acc_depth, 2),
    }


@dataclass(frozen=True)
class FitEstimate:
    """Block RAMs (per part) and multipliers a config needs on a board, against what it has."""

    brams: dict[str, int]
    multipliers: int
    device: Device

    @property
    def total_brams(self) -> int:
        return sum(self.brams.values())

    @property
    def fits(self) -> bool:
        return self.total_brams <= self.device.brams and self.multipliers <= self.device.multipliers


def multipliers(config: Config, family: str) -> int:
    """Hard multipliers: one per GEMM product, the ALU's MUL per lane, and address arithmetic.

    A lane's product wraps to the accumulator width, so of its n×n partial products only the
    n(n+1)/2 that reach the low half are built.
    """
    per = MULT_BITS[family]
    gemm = config.macs_per_cycle * ceil(config.inp_width / per) * ceil(config.wgt_width / per)
    pieces = ceil(config.acc_width / per)
    lanes = config.batch * config.block_out
    return gemm + lanes * pieces * (pieces + 1) // 2 + OTHER_MULTIPLIERS


def estimate(config: Config, b: Board, mem_bytes: int | None = None) -> FitEstimate:
    """The fit estimate of ``config`` with ``mem_bytes`` (default the board's) of on-chip memory."""
    fam = b.device.family
    brams = {name: copies * bram_blocks(w, d, fam) for name, (w, d, copies) in _buffers(config).items()}
    mem = mem_bytes or b.mem_bytes
    brams["memory"] = bram_blocks(config.bus_width, mem // config.bus_bytes, fam)
    brams["fifos"] = READ_DMAS * bram_blocks(config.bus_width, DMA_FIFO_DEPTH, fam)
    return FitEstimate(brams, multipliers(config, fam), b.device)


def suggest_buffers(config: Config, b: Board, mem_bytes: int | None = None) -> Config | None:
    """The config with the largest buffers that fit ``b``'s block RAMs: the largest buffer (in
    block RAMs) is halved until everything fits. None when even the smallest buffers do not."""
    c = config
    while not estimate(c, b, mem_bytes).total_brams <= b.device.brams:
        est = estimate(c, b, mem_bytes).brams
        for name in sorted(("uop", "inp", "wgt", "acc"), key=lambda n: -est[n]):
            field = f"{name}_buffer_bytes"
            try:
                c = replace(c, **{field: getattr(c, field) // 2})
                break
            except ConfigError:  # at its minimum (two entries, or the encodings): try the next one
                continue
        else:
            return None
    return c


def check_fit(config: Config, b: Board, mem_bytes: int | None = None) -> FitEstimate:
    """The estimate, or a `FitError` saying what does not fit and what would."""
    est = estimate(config, b, mem_bytes)
    if est.fits:
        return est
    dev = b.device
    problems = []
    if est.total_brams > dev.brams:
        parts = ", ".join(f"{k} {v}" for k, v in est.brams.items())
        problems.append(f"it needs about {est.total_brams} block RAMs ({parts}), the {dev.name} has {dev.brams}")
    if est.multipliers > dev.multipliers:
        problems.append(f"it needs about {est.multipliers} multipliers (GEMM array {config.batch}x{config.block_in}"
                        f"x{config.block_out}, ALU lanes), the {dev.name} has {dev.multipliers}: use a smaller array "
                        f"(batch, block_in, block_out)")
    advice = ""
    if est.total_brams > dev.brams:
        s = suggest_buffers(config, b, mem_bytes)
        if s is None:
            advice = " No buffer sizes fit: use a smaller array or less on-chip memory."
        else:
            sizes = ", ".join(f"{n}_buffer_bytes={getattr(s, f'{n}_buffer_bytes')}" for n in ("uop", "inp", "wgt", "acc"))
            advice = (f" The largest buffers that fit: {sizes} (config {s.name}, about "
                      f"{estimate(s, b, mem_bytes).total_brams} block RAMs).")
    raise FitError(f"config {config.name} does not fit board {b.name}: " + "; ".join(problems) + "." + advice)
