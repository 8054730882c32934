"""A UART (8 data bits, no parity, 1 stop bit) with a clock divider: `UartRx`, `UartTx`.

``divisor`` is the number of clock cycles per bit (`uart_divisor` computes it from the clock
and the baud rate). The receiver synchronizes its input with two flip-flops, finds the middle
of the start bit and samples every bit there, so it tolerates a few percent of rate mismatch.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out
from vta.isa.errors import VTAError

MIN_DIVISOR = 4          # the receiver needs a few cycles per bit to find the middle of a bit
MAX_RATE_ERROR = 0.02    # the divided clock may differ from the baud rate by at most 2 %


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_hz``; an error when the rate cannot be met closely enough."""
    if baud <= 0 or clk_hz <= 0:
        raise VTAError(f"the UART needs a positive clock and baud rate, got {clk_hz} Hz and {baud} baud")
    div = round(clk_hz / baud)
    if div < MIN_DIVISOR:
        raise VTAError(f"{baud} baud is too fast for a {clk_hz / 1e6:g} MHz clock (at most "
                       f"{int(clk_hz // MIN_DIVISOR)} baud: the UART needs {MIN_DIVISOR} cycles per bit)")
    error = abs(clk_hz / div - baud) / baud
    if error > MAX_RATE_ERROR:
        raise VTAError(f"{baud} baud cannot be made from a {clk_hz / 1e6:g} MHz clock: the nearest rate, "
                       f"{clk_hz / div:.0f} baud, is off by {error:.1%} (at most {MAX_RATE_ERROR:.0%})")
    return div


class UartTx(wiring.Component):
    """Sends ``data`` when ``valid & ready``; ``ready`` while idle. ``tx`` idles high."""

    def __init__(self, divisor: int) -> None:
        if divisor < MIN_DIVISOR:
            raise VTAError(f"UART divisor {divisor} is below {MIN_DIVISOR}")
        self.divisor = divisor
        super().__init__({"data": In(8), "valid": In(1), "ready": Out(1), "tx": Out(1, init=1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        shift = Signal(10, init=0x3FF)  # stop bit, data (LSB first), start bit; shifted out from bit 0
        bits = Signal(range(11))        # bits left to send
        timer = Signal(range(self.divisor))
        m.d.comb += [self.ready.eq(bits == 0), self.tx.eq(shift[0])]
        with m.If(bits == 0):
            with m.If(self.valid):
                m.d.sync += [shift.eq(Cat(0, self.data, 1)), bits.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shift.eq(Cat(shift[1:], 1)), bits.eq(bits - 1), timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """Receives bytes on ``rx``: ``valid`` pulses for one cycle with ``data``; ``error`` pulses
    instead when the stop bit is low (the byte is dropped)."""

    def __init__(self, divisor: int) -> None:
        if divisor < MIN_DIVISOR:
            raise VTAError(f"UART divisor {divisor} is below {MIN_DIVISOR}")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1), "error": Out(1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        d = self.divisor
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(d))
        bits = Signal(range(10))  # bits sampled so far in this byte: start, 8 data, stop
        shift = Signal(8)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):  # wait to the middle of the start bit; a glitch is not a start
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bits.eq(bits + 1), timer.eq(d - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.comb += [self.valid.eq(rx), self.error.eq(~rx)]
                    m.next = "IDLE"
        m.d.comb += self.data.eq(shift)
        return m
