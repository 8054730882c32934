"""`RtlSim`: the Verilated core with its DRAM model, driven through the harness's C ABI.

One `run` call simulates a whole instruction stream in C++ (no Python per cycle; the
GIL is released while it runs) and returns the core's counters.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vta.isa import Config
from vta.isa.errors import VTAError
from vta.isa.spec import ErrorCode

from ..errors import BoundsError, DeadlockError, InvalidInsnError, SimError
from ..fsim.timing import TimingParams
from .build import BuildError, BuildResult, build

DEFAULT_MAX_CYCLES = 100_000_000

# Status codes of vta_rtl_run.
DONE, DONE_WITH_ERROR, CYCLE_LIMIT, STILL_BUSY = 0, 1, 2, 3

_ERROR_CLASSES: dict[ErrorCode, type[SimError]] = {
    ErrorCode.BAD_OPCODE: InvalidInsnError,
    ErrorCode.BAD_FIELD: InvalidInsnError,
    ErrorCode.BAD_FINISH: InvalidInsnError,
    ErrorCode.SRAM_BOUNDS: BoundsError,
    ErrorCode.DRAM_BOUNDS: BoundsError,
    ErrorCode.DEADLOCK: DeadlockError,
    ErrorCode.BUS_ERROR: SimError,
}
_ERROR_TEXT = {
    ErrorCode.BAD_OPCODE: "unknown opcode",
    ErrorCode.BAD_FIELD: "a field value no instruction of its kind may have",
    ErrorCode.BAD_FINISH: "FINISH before the end of the stream, or a stream not ending in FINISH",
    ErrorCode.SRAM_BOUNDS: "an on-chip buffer region or micro-op index past a buffer's end",
    ErrorCode.DRAM_BOUNDS: "a DRAM access or the instruction fetch past the DRAM limit",
    ErrorCode.DEADLOCK: "deadlock: no module can proceed before completion",
    ErrorCode.BUS_ERROR: "the memory answered a transfer with an error response",
}


@dataclass
class RtlResult:
    """What one run returned: the core's counters (COUNTERS order) and its error status."""

    counters: dict[str, int]
    error: ErrorCode
    error_insn: int
    sim_cycles: int       # cycles the harness clocked for this run (start pulse included)
    wall_seconds: float

    @property
    def cycles_per_second(self) -> float:
        return self.sim_cycles / self.wall_seconds if self.wall_seconds else 0.0


def error_for(code: int, insn: int, dram_bytes: int | None = None) -> SimError:
    """The project's exception for an ErrorCode the core reported about instruction ``insn``."""
    try:
        ec = ErrorCode(code)
    except ValueError:
        return SimError(f"the core reported an unknown error code {code}", insn)
    text = _ERROR_TEXT.get(ec, ec.name)
    if ec == ErrorCode.DRAM_BOUNDS and dram_bytes is not None:
        text += f" ({dram_bytes:#x} bytes)"
    return _ERROR_CLASSES.get(ec, SimError)(f"{ec.name}: {text} (reported by the RTL)", insn, ec)


# ---- the library ------------------------------------------------------------------

_LIBS: dict[Path, ctypes.CDLL] = {}


def _load(path: Path) -> ctypes.CDLL:
    """Load a harness library once per process and declare its C ABI."""
    if path in _LIBS:
        return _LIBS[path]
    lib = ctypes.CDLL(str(path))
    u32, u64, vp, p = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_void_p, ctypes.POINTER
    sigs = {
        "vta_rtl_last_error": ([], ctypes.c_char_p),
        "vta_rtl_bus_bytes": ([], ctypes.c_uint),
        "vta_rtl_num_counters": ([], ctypes.c_uint),
        "vta_rtl_counter_name": ([ctypes.c_uint], ctypes.c_char_p),
        "vta_rtl_has_trace": ([], ctypes.c_int),
        "vta_rtl_create": ([u64, u32, u32, ctypes.c_char_p], vp),
        "vta_rtl_destroy": ([vp], None),
        "vta_rtl_dram": ([vp], vp),
        "vta_rtl_dram_bytes": ([vp], u64),
        "vta_rtl_cycles": ([vp], u64),
        "vta_rtl_reset": ([vp], None),
        "vta_rtl_run": ([vp, u32, u32, u64, p(u64), p(u32), p(u32)], ctypes.c_int),
        "vta_rtl_resume": ([vp, u64, p(u64), p(u32), p(u32)], ctypes.c_int),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    _LIBS[path] = lib
    return lib


class _Handle:
    """Owns one C++ simulation; destroyed when nothing (the RtlSim or a DRAM view) refers to it."""

    def __init__(self, lib: ctypes.CDLL, ptr: int) -> None:
        self.lib, self.ptr = lib, ptr

    def __del__(self) -> None:
        if self.ptr:
            self.lib.vta_rtl_destroy(self.ptr)
            self.ptr = 0


class _DramBuffer:
    """Exposes the C++ DRAM to numpy without a copy; numpy keeps this (and so the handle) alive."""

    def __init__(self, handle: _Handle) -> None:
        self.handle = handle
        n = handle.lib.vta_rtl_dram_bytes(handle.ptr)
        self.__array_interface__ = {"shape": (n,), "typestr": "|u1", "version": 3,
                                    "data": (handle.lib.vta_rtl_dram(handle.ptr), False)}


class RtlSim:
    """The core of ``config`` under Verilator with ``dram_bytes`` of DRAM.

    Latencies are in cycles, by default the fsim timing model's ``dram_latency`` so
    the two simulators are comparable: ``read_latency`` from an accepted read request
    to its first data beat, ``write_latency`` from a burst's last data beat to its
    response. ``trace`` names a VCD file to record every cycle into (slow; off by
    default). ``verilog`` replaces the generated Verilog (tests use a stand-in core).
    On-chip buffers keep their contents between runs and across `reset`. Not thread-safe:
    one run at a time per instance (runs release the GIL, so instances run in parallel).
    """

    slice_cycles = 1 << 18  # cycles per foreign call of a run; Ctrl-C is noticed between calls

    def __init__(self, config: Config, dram_bytes: int = 1 << 26, read_latency: int | None = None,
                 write_latency: int | None = None, trace: str | Path | None = None, *,
                 verilog: str | None = None, cache_dir: str | Path | None = None) -> None:
        timing = TimingParams()
        self.config = config
        self.read_latency = timing.dram_latency if read_latency is None else read_latency
        self.write_latency = timing.dram_latency if write_latency is None else write_latency
        if not 1 <= self.read_latency < 1 << 32 or not 1 <= self.write_latency < 1 << 32:
            raise VTAError(f"DRAM latencies must be at least 1 cycle, got read {self.read_latency}, "
                           f"write {self.write_latency}")
        if dram_bytes <= 0 or dram_bytes % config.bus_bytes or dram_bytes >= 1 << 32:
            raise VTAError(f"dram_bytes {dram_bytes:#x} must be a positive multiple of the bus width "
                           f"({config.bus_bytes} bytes) below 4 GiB (the core's dram_limit is 32 bits)")
        self.trace = Path(trace) if trace is not None else None
        self.build: BuildResult = build(config, verilog, trace=self.trace is not None, cache_dir=cache_dir)
        lib = self._lib = _load(self.build.library)
        if lib.vta_rtl_bus_bytes() != config.bus_bytes:
            raise BuildError(f"the Verilog's AXI data bus is {8 * lib.vta_rtl_bus_bytes()} bits, "
                             f"config {config.name} has bus_width {config.bus_width}")
        self.counter_names = tuple(lib.vta_rtl_counter_name(i).decode() for i in range(lib.vta_rtl_num_counters()))
        ptr = lib.vta_rtl_create(dram_bytes, self.read_latency, self.write_latency,
                                 str(self.trace).encode() if self.trace else None)
        if not ptr:
            raise SimError(f"cannot create the RTL simulation: {lib.vta_rtl_last_error().decode()}")
        self._h = _Handle(lib, ptr)
        self.dram: np.ndarray = np.asarray(_DramBuffer(self._h))
        self._counters = (ctypes.c_uint64 * len(self.counter_names))()

    @property
    def cycles(self) -> int:
        """Clock cycles simulated since creation (resets and all runs)."""
        return int(self._lib.vta_rtl_cycles(self._h.ptr))

    def reset(self) -> None:
        """Assert ``rst`` for a few cycles and drop memory transfers in flight (buffers keep their contents)."""
        self._lib.vta_rtl_reset(self._h.ptr)

    def run(self, insn_addr: int, insn_count: int, max_cycles: int = DEFAULT_MAX_CYCLES, *,
            check: bool = True) -> RtlResult:
        """Run ``insn_count`` instructions at DRAM byte ``insn_addr`` until the core is done.

        Raises the `vta.sim.errors` exception matching the core's error code (unless
        ``check`` is false; the result then carries the code), and `SimError` when the
        run needs more than ``max_cycles`` cycles (the core is then left running:
        `reset` it before the next run).
        """
        for name, v in (("insn_addr", insn_addr), ("insn_count", insn_count)):
            if not 0 <= v < 1 << 32:
                raise VTAError(f"{name} {v} does not fit the core's 32-bit port")
        if max_cycles < 1:
            raise VTAError(f"max_cycles must be positive, got {max_cycles}")
        code, insn = ctypes.c_uint32(), ctypes.c_uint32()
        outs = (self._counters, ctypes.byref(code), ctypes.byref(insn))
        before = self.cycles
        t0 = time.perf_counter()
        # In slices of slice_cycles, so that Ctrl-C (raised between foreign calls) stops a long run.
        budget = min(max_cycles, self.slice_cycles)
        status = self._lib.vta_rtl_run(self._h.ptr, insn_addr, insn_count, budget, *outs)
        while status == CYCLE_LIMIT and budget < max_cycles:
            step = min(max_cycles - budget, self.slice_cycles)
            status = self._lib.vta_rtl_resume(self._h.ptr, step, *outs)
            budget += step
        wall = time.perf_counter() - t0
        if status == STILL_BUSY:
            raise SimError("the core is still busy with a run that hit its cycle limit; call reset() first")
        counters = dict(zip(self.counter_names, (int(v) for v in self._counters)))
        try:
            err = ErrorCode(code.value)
        except ValueError:
            err = code.value  # type: ignore[assignment]
        result = RtlResult(counters, err, int(insn.value), self.cycles - before, wall)
        if status == CYCLE_LIMIT:
            e = SimError(f"the run did not finish within {max_cycles:,} cycles (the max_cycles limit); the core "
                         "was left running, call reset() before the next run. If the program is just long, "
                         "raise the limit (--max-cycles, or max_cycles=)")
            e.result = result  # type: ignore[attr-defined]
            raise e
        if status == DONE_WITH_ERROR and check:
            e = error_for(code.value, int(insn.value), self.dram.size)
            e.result = result  # type: ignore[attr-defined]
            raise e
        return result
