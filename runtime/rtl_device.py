"""The Verilator simulation of the RTL as a device."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vta.isa import Config, Module
from vta.isa.errors import VTAError
from vta.sim.fsim import RunStats
from vta.sim.rtl import DEFAULT_MAX_CYCLES, RtlResult, RtlSim

from .allocator import DramAllocator
from .device import Buffer, Device, default_alignment

_MODULES = tuple(m.name.lower() for m in Module)
_READ_MEMS = ("uop", "wgt", "inp", "acc")
_WRITE_MEMS = ("out", "acc")


def counters_to_stats(counters: dict[str, int], config: Config) -> RunStats:
    """RunStats from the core's counters (`vta.hw.csr.COUNTERS`), so fsim and rtl report alike.

    Every counter is used; ``cycles`` is exact here, where fsim's is an estimate.
    """
    c = counters
    insns = {m: c[f"{m}_insns"] for m in _MODULES}
    return RunStats(
        config=config.name,
        macs_per_cycle=config.macs_per_cycle,
        insns=sum(insns.values()),
        insns_per_module=insns,
        dram_read_bytes={k: c[f"read_{k}_bytes"] for k in _READ_MEMS},
        dram_write_bytes={k: c[f"write_{k}_bytes"] for k in _WRITE_MEMS},
        insn_fetch_bytes=c["fetch_bytes"],
        pad_entries=c["pad_entries"],
        gemm_uops=c["gemm_uops"],
        alu_uops=c["alu_uops"],
        macs=c["gemm_mac_uops"] * config.macs_per_cycle,
        cycles=c["cycles"],
        busy_cycles={m: c[f"{m}_busy"] for m in _MODULES},
        token_wait_cycles={m: c[f"{m}_wait"] for m in _MODULES},
    )


class RtlDevice(Device):
    """The RTL under Verilator as a device. Runs complete before `run` returns.

    ``read_latency``/``write_latency`` (cycles) default to the fsim timing model's
    DRAM latency; ``trace`` names a VCD file; ``max_cycles`` bounds each run.
    ``dram_bytes`` is rounded up to whole bus words.
    ``check_races`` is accepted for the common device options and ignored: the
    hardware has no race checker.
    """

    name = "rtl"

    def __init__(self, config: Config, dram_bytes: int = 1 << 26, read_latency: int | None = None,
                 write_latency: int | None = None, trace: str | Path | None = None,
                 max_cycles: int = DEFAULT_MAX_CYCLES, check_races: bool = True, *,
                 verilog: str | None = None, cache_dir: str | Path | None = None) -> None:
        self.config = config
        self.max_cycles = max_cycles
        dram_bytes = -(-dram_bytes // config.bus_bytes) * config.bus_bytes  # whole bus words
        self.sim = RtlSim(config, dram_bytes, read_latency, write_latency, trace, verilog=verilog,
                          cache_dir=cache_dir)
        self.allocator = DramAllocator(dram_bytes, default_alignment(config))
        self._last: RunStats | None = None
        self.last_result: RtlResult | None = None  # the raw result of the last run (simulated cycles, wall time)

    def _write(self, addr: int, raw: np.ndarray) -> None:
        self.sim.dram[addr : addr + raw.size] = raw

    def _read(self, addr: int, nbytes: int) -> np.ndarray:
        return self.sim.dram[addr : addr + nbytes].copy()

    def run(self, insns: Buffer, count: int) -> RunStats:
        result = self.last_result = self.sim.run(insns.addr, count, self.max_cycles)
        self._last = counters_to_stats(result.counters, self.config)
        return self._last

    def reset(self) -> None:
        """Reset the core (needed after a run hit max_cycles); on-chip buffers keep their contents."""
        self.sim.reset()

    def synchronize(self) -> RunStats:
        if self._last is None:
            raise VTAError("synchronize before any run")
        return self._last
