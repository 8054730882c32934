"""`BoardSim`: the board-level design (`vta.hw.board.BoardTop`) under Verilator, with a host UART
model bit by bit on its lines (``board_harness.cpp``), used as the byte transport of the host
link (`vta.runtime.hostlink.HostLink`) exactly as a serial port is.

Builds are cached like the core's (`vta.sim.rtl.build.build_library`): by a hash of the
Verilog, the harness and the flags, under ``<cache>/vta/rtl``; the Verilog itself is kept under
``<cache>/vta/rtl/verilog/board-<fingerprint>.v`` (fingerprint of the design's parameters and
the sources of `vta.hw` and `vta.isa`).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vta.isa import Config
from vta.isa.errors import VTAError

from ..errors import SimError
from .build import BuildResult, _verilog_fingerprint, build_library, cache_root

TOP = "vta_board"
HARNESS = ("board_harness.cpp",)
# A board clock for simulation: INFO reports it; the UART divisor is what sets the bit time.
SIM_CLOCK_HZ = 100_000_000
SIM_DIVISOR = 8              # clock cycles per UART bit: fast, and the RTL receiver still samples mid-bit
SIM_MEM_BYTES = 1 << 16
SIM_TIMEOUT_BYTES = 64       # the link's inter-byte timeout, in byte times


@dataclass(frozen=True)
class BoardParams:
    """What the simulated board is built with (all of it goes into the cache key)."""

    config: Config
    mem_bytes: int = SIM_MEM_BYTES
    divisor: int = SIM_DIVISOR
    clk_hz: int = SIM_CLOCK_HZ
    timeout_cycles: int = SIM_TIMEOUT_BYTES * 10 * SIM_DIVISOR

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "mem_bytes": self.mem_bytes, "divisor": self.divisor,
                "clk_hz": self.clk_hz, "timeout_cycles": self.timeout_cycles}


def board_verilog(params: BoardParams, cache: Path | None = None) -> str:
    """The board-level Verilog for ``params`` (kept in ``cache`` by fingerprint when given)."""
    fp = hashlib.sha256((_verilog_fingerprint(params.config) + json.dumps(params.to_dict(), sort_keys=True))
                        .encode()).hexdigest()[:20]
    path = cache / f"board-{fp}.v" if cache is not None else None
    if path is not None and path.is_file():
        return path.read_text()
    from vta.hw.board import generate

    text = generate(params.config, params.mem_bytes, params.clk_hz, params.divisor, params.timeout_cycles)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return text


def build_board(params: BoardParams, *, trace: bool = False, cache_dir: Path | str | None = None) -> BuildResult:
    """The cached shared library simulating the board of ``params``."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    verilog = board_verilog(params, root / "verilog")
    return build_library(verilog, TOP, HARNESS, "", label=f"board {params.config.name}", trace=trace, cache_dir=root)


_LIBS: dict[Path, ctypes.CDLL] = {}


def _load(path: Path) -> ctypes.CDLL:
    if path in _LIBS:
        return _LIBS[path]
    lib = ctypes.CDLL(str(path))
    u32, u64, vp = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_void_p
    sigs = {
        "vta_rtl_board_last_error": ([], ctypes.c_char_p),
        "vta_rtl_board_create": ([u32, ctypes.c_char_p], vp),
        "vta_rtl_board_destroy": ([vp], None),
        "vta_rtl_board_cycles": ([vp], u64),
        "vta_rtl_board_status": ([vp], u32),
        "vta_rtl_board_framing_errors": ([vp], u64),
        "vta_rtl_board_pending": ([vp], u64),
        "vta_rtl_board_send": ([vp, ctypes.c_char_p, u64, ctypes.c_int], None),
        "vta_rtl_board_recv": ([vp, ctypes.c_char_p, u64, u64], u64),
        "vta_rtl_board_clock": ([vp, u64], None),
        "vta_rtl_board_available": ([vp], u64),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    _LIBS[path] = lib
    return lib


class BoardSim:
    """A simulated board: its UART lines are driven and sampled by a host UART model.

    As a host-link transport: `write` queues bytes for the line, `read` clocks the design
    until ``n`` bytes came back or the time that many bytes (and those still queued) take on
    the line, plus ``slack_cycles``, has passed (it then returns what it has: a timeout).
    ``trace`` names a VCD file to record every cycle into.
    """

    def __init__(self, config: Config, mem_bytes: int = SIM_MEM_BYTES, divisor: int = SIM_DIVISOR, *,
                 timeout_cycles: int | None = None, trace: str | Path | None = None,
                 cache_dir: str | Path | None = None, slack_cycles: int = 100_000) -> None:
        self.params = BoardParams(config, mem_bytes, divisor, SIM_CLOCK_HZ,
                                  timeout_cycles if timeout_cycles is not None else SIM_TIMEOUT_BYTES * 10 * divisor)
        self.config = config
        self.name = f"simulated board ({config.name})"
        self.slack_cycles = slack_cycles
        self.build = build_board(self.params, trace=trace is not None, cache_dir=cache_dir)
        self._lib = _load(self.build.library)
        ptr = self._lib.vta_rtl_board_create(divisor, str(trace).encode() if trace else None)
        if not ptr:
            raise SimError(f"cannot create the board simulation: {self._lib.vta_rtl_board_last_error().decode()}")
        self._ptr = ptr

    def __del__(self) -> None:
        if getattr(self, "_ptr", None):
            self._lib.vta_rtl_board_destroy(self._ptr)
            self._ptr = None

    @property
    def byte_cycles(self) -> int:
        """Clock cycles one byte takes on the line (start, 8 data and stop bits)."""
        return 10 * self.params.divisor

    @property
    def cycles(self) -> int:
        """Clock cycles simulated so far."""
        return int(self._lib.vta_rtl_board_cycles(self._ptr))

    @property
    def status_lines(self) -> int:
        """The board's status output (bits: busy, done, error; `vta.hw.board.STATUS_LEDS`)."""
        return int(self._lib.vta_rtl_board_status(self._ptr))

    @property
    def framing_errors(self) -> int:
        """Bytes from the board whose stop bit the host model found low."""
        return int(self._lib.vta_rtl_board_framing_errors(self._ptr))

    # ---- the transport interface ----------------------------------------------------
    def write(self, data: bytes, *, bad_stop_bits: bool = False) -> None:
        """Queue ``data`` for the line (``bad_stop_bits``: send them with low stop bits)."""
        self._lib.vta_rtl_board_send(self._ptr, bytes(data), len(data), int(bad_stop_bits))

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes from the board (fewer when they do not come in time)."""
        if n <= 0:
            return b""
        pending = int(self._lib.vta_rtl_board_pending(self._ptr))
        budget = (pending + n) * self.byte_cycles + self.params.timeout_cycles + self.slack_cycles
        buf = ctypes.create_string_buffer(n)
        got = int(self._lib.vta_rtl_board_recv(self._ptr, buf, n, budget))
        return buf.raw[:got]

    def reset_input(self) -> None:
        """Drop bytes received and not yet read."""
        while int(self._lib.vta_rtl_board_available(self._ptr)):
            self.read(int(self._lib.vta_rtl_board_available(self._ptr)))

    def idle(self, seconds: float) -> None:
        """Let the board run for ``seconds`` of its clock with nothing new on the line."""
        self.clock(max(1, int(seconds * self.params.clk_hz)))

    def clock(self, cycles: int) -> None:
        """Advance ``cycles`` clock cycles."""
        if cycles < 0:
            raise VTAError(f"cannot clock {cycles} cycles")
        self._lib.vta_rtl_board_clock(self._ptr, cycles)

    def close(self) -> None:
        """Nothing to release until the object goes (the simulation lives with it)."""
