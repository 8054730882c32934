"""The board-level design: the accelerator with what it needs on a board driven by a host
with no other CPU in between.

`BoardTop` holds the core (`vta.hw.core.VTACore`), its memory (`vta.hw.bram.AXI4Bram`: block
RAM behind an AXI4 slave, serving both the core's instruction fetch and its data) and the
host link (`vta.hw.uart` and `vta.hw.hostlink`, protocol in `vta.hw.protocol`). Its ports are
the UART lines and three status lines, so the same design is Verilated for simulation
(`vta.sim.rtl.board_sim`) and placed on a board (`PlatformTop`, `vta.hw.bitstream`).
"""

from __future__ import annotations

from amaranth import Cat, Elaboratable, Module
from amaranth.back import verilog
from amaranth.build import ResourceError
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out
from vta.isa import Config

from .bram import AXI4Bram
from .core import VTACore
from .hostlink import HostLink
from .protocol import config_id
from .uart import UartRx, UartTx

TOP = "vta_board"
STATUS_LEDS = ("busy", "done", "error")  # the bits of BoardTop.status, lowest first


class BoardTop(wiring.Component):
    """Core + ``mem_bytes`` of on-chip memory + a UART host link at ``divisor`` clock cycles per bit.

    ``clk_hz`` is what INFO reports as the clock; ``timeout_cycles`` (default: a tenth of a
    second) is how long the link waits for the next byte of a frame before dropping it.
    """

    def __init__(self, config: Config, mem_bytes: int, clk_hz: int, divisor: int,
                 timeout_cycles: int | None = None) -> None:
        self.config = config
        self.mem_bytes = mem_bytes
        self.clk_hz = int(clk_hz)
        self.divisor = divisor
        self.timeout_cycles = timeout_cycles if timeout_cycles is not None else max(self.clk_hz // 10, 1)
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "status": Out(len(STATUS_LEDS))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.config
        core = m.submodules.core = VTACore(c)
        ram = m.submodules.ram = AXI4Bram(self.mem_bytes, c.bus_width)
        rx = m.submodules.uart_rx = UartRx(self.divisor)
        tx = m.submodules.uart_tx = UartTx(self.divisor)
        info = {"mem_bytes": self.mem_bytes, "config_id": config_id(c), "clock_hz": self.clk_hz}
        link = m.submodules.link = HostLink(self.mem_bytes, info, self.timeout_cycles)

        wiring.connect(m, core.m_axi, ram.s_axi)
        wiring.connect(m, core.counters, link.counters)
        m.d.comb += [
            # the core owns the memory while it runs; the host link while it is idle
            ram.enable.eq(core.busy), ram.host_sel.eq(~core.busy),
            ram.host_addr.eq(link.mem_addr), ram.host_wdata.eq(link.mem_wdata),
            ram.host_we.eq(link.mem_we), ram.host_re.eq(link.mem_re), link.mem_rdata.eq(ram.host_rdata),
            core.start.eq(link.start), core.insn_addr.eq(link.insn_addr), core.insn_count.eq(link.insn_count),
            core.dram_limit.eq(self.mem_bytes),
            link.busy.eq(core.busy), link.done.eq(core.done), link.error.eq(core.error),
            link.error_insn.eq(core.error_insn),
            # UART
            rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx),
            link.rx_data.eq(rx.data), link.rx_valid.eq(rx.valid),
            tx.data.eq(link.tx_data), tx.valid.eq(link.tx_valid), link.tx_ready.eq(tx.ready),
            self.status.eq(Cat(core.busy, core.done, core.error != 0)),  # STATUS_LEDS order
        ]
        return m


class PlatformTop(Elaboratable):
    """`BoardTop` on an Amaranth platform: its UART on the platform's ``uart`` resource and its
    status on the first LEDs (where the board has them)."""

    def __init__(self, board: BoardTop) -> None:
        self.board = board

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.board = b = self.board
        uart = platform.request("uart", 0, dir="-")  # type: ignore[attr-defined]
        m.submodules.uart_rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx = io.Buffer("o", uart.tx)
        m.d.comb += [b.uart_rx.eq(rx.i), tx.o.eq(b.uart_tx)]
        for i in range(len(STATUS_LEDS)):
            try:
                pin = platform.request("led", i, dir="-")  # type: ignore[attr-defined]
            except ResourceError:  # a board with fewer LEDs: show what fits
                break
            led = m.submodules[f"led_{STATUS_LEDS[i]}"] = io.Buffer("o", pin)
            m.d.comb += led.o.eq(b.status[i])
        return m


def generate(config: Config, mem_bytes: int, clk_hz: int, divisor: int, timeout_cycles: int | None = None) -> str:
    """The board-level design as one Verilog file, top module ``vta_board``."""
    top = BoardTop(config, mem_bytes, clk_hz, divisor, timeout_cycles)
    return verilog.convert(top, name=TOP, emit_src=False)
