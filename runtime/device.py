"""Devices: one interface (allocate, copy in/out, run an instruction stream,
synchronize) over the simulators and, later, hardware."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from vta.isa import INSN_BYTES, Config, MemType
from vta.isa.errors import VTAError
from vta.sim.fsim import Fsim, RunStats, TimingParams

from .allocator import DramAllocator


@dataclass(frozen=True)
class Buffer:
    """A range of device DRAM: physical byte address and size."""

    device: Device
    addr: int
    nbytes: int

    def elem(self, mem: MemType, offset: int = 0) -> int:
        """The DRAM field value addressing element ``offset`` of this buffer as ``mem`` elements."""
        size = self.device.config.elem_bytes(mem)
        if self.addr % size:
            raise VTAError(f"buffer at {self.addr:#x} is not aligned to {mem.name} elements of {size} bytes")
        return self.addr // size + offset

    def write(self, data: np.ndarray | bytes, offset: int = 0) -> None:
        self.device.copy_in(self, data, offset)

    def read(self, nbytes: int | None = None, offset: int = 0) -> np.ndarray:
        return self.device.copy_out(self, nbytes, offset)


class Device(ABC):
    """An accelerator with its DRAM."""

    config: Config
    allocator: DramAllocator

    def alloc(self, nbytes: int, align: int | None = None) -> Buffer:
        """Allocate device DRAM, aligned by default to every element size of the config."""
        align = align or default_alignment(self.config)
        return Buffer(self, self.allocator.alloc(nbytes, align), nbytes)

    def reserve(self, addr: int, nbytes: int) -> Buffer:
        """Allocate the exact range [addr, addr + nbytes)."""
        self.allocator.reserve(addr, nbytes)
        return Buffer(self, addr, nbytes)

    def free(self, buf: Buffer) -> None:
        self.allocator.free(buf.addr)

    def copy_in(self, buf: Buffer, data: np.ndarray | bytes, offset: int = 0) -> None:
        raw = np.frombuffer(bytes(data), np.uint8) if isinstance(data, (bytes, bytearray)) else \
            np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if offset < 0 or offset + raw.size > buf.nbytes:
            raise VTAError(f"copy of {raw.size} bytes at offset {offset} overflows a {buf.nbytes}-byte buffer")
        self._write(buf.addr + offset, raw)

    def copy_out(self, buf: Buffer, nbytes: int | None = None, offset: int = 0) -> np.ndarray:
        nbytes = buf.nbytes - offset if nbytes is None else nbytes
        if offset < 0 or offset + nbytes > buf.nbytes:
            raise VTAError(f"read of {nbytes} bytes at offset {offset} overflows a {buf.nbytes}-byte buffer")
        return self._read(buf.addr + offset, nbytes)

    @abstractmethod
    def _write(self, addr: int, raw: np.ndarray) -> None: ...

    @abstractmethod
    def _read(self, addr: int, nbytes: int) -> np.ndarray: ...

    @abstractmethod
    def run(self, insns: Buffer, count: int) -> RunStats:
        """Start the instruction stream of ``count`` instructions held in ``insns``."""

    @abstractmethod
    def synchronize(self) -> RunStats:
        """Wait for the last run to finish and return its statistics."""


def default_alignment(config: Config) -> int:
    """An alignment that suits every element size of the config (they are powers of two) and 64 bytes."""
    return max([64, INSN_BYTES] + [config.elem_bytes(m) for m in MemType])


class FsimDevice(Device):
    """The functional simulator as a device. Runs complete before `run` returns."""

    name = "fsim"

    def __init__(self, config: Config, dram_bytes: int = 1 << 26, timing: TimingParams | None = None,
                 check_races: bool = True) -> None:
        self.config = config
        self.sim = Fsim(config, dram_bytes, timing, check_races)
        self.allocator = DramAllocator(dram_bytes, default_alignment(config))
        self._last: RunStats | None = None

    def _write(self, addr: int, raw: np.ndarray) -> None:
        self.sim.dram[addr : addr + raw.size] = raw

    def _read(self, addr: int, nbytes: int) -> np.ndarray:
        return self.sim.dram[addr : addr + nbytes].copy()

    def run(self, insns: Buffer, count: int) -> RunStats:
        self._last = self.sim.run(insns.addr, count)
        return self._last

    def synchronize(self) -> RunStats:
        if self._last is None:
            raise VTAError("synchronize before any run")
        return self._last


def _rtl(config: Config, **options: object) -> Device:
    from .rtl_device import RtlDevice  # imported on use: it loads the Verilator build machinery

    return RtlDevice(config, **options)  # type: ignore[arg-type]


def _fpga(config: Config, **options: object) -> Device:
    from .fpga_device import FpgaDevice  # imported on use: it needs pyserial and the board protocol

    return FpgaDevice(config, **options)  # type: ignore[arg-type]


DEVICES: dict[str, Callable[..., Device]] = {"fsim": FsimDevice, "rtl": _rtl, "fpga": _fpga}


def open_device(target: str, config: Config, **options: object) -> Device:
    """A device by name: 'fsim' (functional simulator), 'rtl' (the RTL under Verilator) or 'fpga'
    (a board over its serial link: options ``port``/``baud``, else $VTA_FPGA_PORT/$VTA_FPGA_BAUD)."""
    try:
        factory = DEVICES[target]
    except KeyError:
        raise VTAError(f"unknown target '{target}'; available: {', '.join(DEVICES)}") from None
    return factory(config, **options)
