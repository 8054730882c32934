"""The accelerator on an FPGA board, through the host link (`vta.runtime.hostlink`), as a device.

The same class drives a real board over a serial port (``port``, with pyserial) and the
Verilated board-level design (``transport=BoardSim(...)``), so the protocol code the tests
run is the code a board sees.
"""

from __future__ import annotations

import os
import time

import numpy as np
from vta.hw.protocol import FLAG_DONE, config_id
from vta.isa import PRESETS, Config
from vta.isa.errors import VTAError
from vta.sim.fsim import RunStats

from .allocator import DramAllocator
from .device import Buffer, Device, default_alignment
from .hostlink import HostLink, LinkError, SerialTransport, Transport

DEFAULT_BAUD = 115200
PORT_ENV, BAUD_ENV = "VTA_FPGA_PORT", "VTA_FPGA_BAUD"


def known_configs() -> dict[int, tuple[str, Config]]:
    """Configs a board might run, by `config_id`: the presets and the board presets' configs."""
    from vta.hw.boards import BOARDS

    out = {config_id(c): (name, c) for name, c in PRESETS.items()}
    out.update({config_id(b.config): (f"{name} (board preset)", b.config) for name, b in BOARDS.items()})
    return out


def open_transport(port: str | None, baud: int | None) -> SerialTransport:
    """The serial port named by ``port`` (else $VTA_FPGA_PORT) at ``baud`` (else $VTA_FPGA_BAUD, else 115200)."""
    port = port or os.environ.get(PORT_ENV)
    if not port:
        raise VTAError(f"the fpga target needs the board's serial port: --port /dev/ttyUSB0 (or ${PORT_ENV})")
    try:
        rate = int(baud or os.environ.get(BAUD_ENV) or DEFAULT_BAUD)
    except ValueError:
        raise VTAError(f"${BAUD_ENV} must be a number of baud, got {os.environ.get(BAUD_ENV)!r}") from None
    return SerialTransport(port, rate)


def probe(link: HostLink) -> dict[str, int]:
    """The board's INFO, or a clear error when nothing that speaks the host link answers."""
    try:
        return link.info()
    except LinkError as e:
        raise VTAError(f"no VTA board answered on {link.t.name} ({e}); check that the board is powered, its "
                       "bitstream is loaded (vta hw bitstream) and the baud rate matches its preset") from None


def board_config(port: str | None = None, baud: int | None = None) -> Config:
    """The config of the board on ``port``, when it is one this vta knows (presets, board presets)."""
    t = open_transport(port, baud)
    try:
        info = probe(HostLink(t))
    finally:
        t.close()
    known = known_configs().get(info["config_id"])
    if known is None:
        raise VTAError(f"the board on {t.name} runs a config this vta does not know (id {info['config_id']:#010x}); "
                       "name it with --config")
    return known[1]


class FpgaDevice(Device):
    """A board running the `vta.hw.board` design. Runs complete before `run` returns.

    ``port``/``baud`` open a serial port (defaults from $VTA_FPGA_PORT/$VTA_FPGA_BAUD); a
    ``transport`` (e.g. the simulated board) replaces it. The board's memory size comes from
    the board, so ``dram_bytes`` (a common device option) is only checked against it when
    ``strict_dram`` is set. ``poll_interval`` is the wait between STATUS polls; ``timeout``
    (seconds) bounds a run; ``check_races`` is accepted and ignored (hardware has no checker).
    """

    name = "fpga"

    def __init__(self, config: Config, port: str | None = None, baud: int | None = None, *,
                 transport: Transport | None = None, dram_bytes: int | None = None, strict_dram: bool = False,
                 poll_interval: float = 0.001, timeout: float = 600.0, check_races: bool = True) -> None:
        self.config = config
        self.transport = transport if transport is not None else open_transport(port, baud)
        self.link = HostLink(self.transport)
        info = self.info = probe(self.link)
        if info["config_id"] != config_id(config):
            known = known_configs().get(info["config_id"])
            has = f"config {known[0]} ({known[1].name})" if known else f"a config unknown here (id {info['config_id']:#010x})"
            hint = ("" if known is None else f"; run with --config {known[0]}" if known[0] in PRESETS
                    else "; run without --config to use the board's")
            raise VTAError(f"the board on {self.transport.name} runs {has}, not {config.name}{hint}, or load the "
                           f"bitstream for {config.name}")
        self.mem_bytes = info["mem_bytes"]
        if strict_dram and dram_bytes and dram_bytes > self.mem_bytes:
            raise VTAError(f"{dram_bytes:#x} bytes of device memory asked for; the board has {self.mem_bytes:#x}")
        self.allocator = DramAllocator(self.mem_bytes, default_alignment(config))
        self.poll_interval, self.timeout = poll_interval, timeout
        self._last: RunStats | None = None
        self.last_status: dict[str, int] | None = None

    def _write(self, addr: int, raw: np.ndarray) -> None:
        self.link.write(addr, raw.tobytes())

    def _read(self, addr: int, nbytes: int) -> np.ndarray:
        return np.frombuffer(self.link.read(addr, nbytes), np.uint8).copy()

    def run(self, insns: Buffer, count: int) -> RunStats:
        from vta.sim.rtl.sim import error_for

        from .rtl_device import counters_to_stats

        self.link.start(insns.addr, count)
        deadline = time.monotonic() + self.timeout
        status = self.link.status()
        while not status["flags"] & FLAG_DONE:
            if time.monotonic() > deadline:
                raise VTAError(f"the run on {self.transport.name} did not finish within {self.timeout:g} s "
                               f"({status['cycles']:,} cycles so far)")
            idle = getattr(self.transport, "idle", None)
            if idle is not None:
                idle(self.poll_interval)
            status = self.link.status()
        self.last_status = status
        if status["error"]:
            raise error_for(status["error"], status["error_insn"], self.mem_bytes)
        self._last = counters_to_stats(self.link.counters(), self.config)
        return self._last

    def synchronize(self) -> RunStats:
        if self._last is None:
            raise VTAError("synchronize before any run")
        return self._last

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()
