"""The board side of the host link: parses request frames from the UART receiver, reads and
writes the board memory, drives the core's CSRs, and sends one reply frame per request.

The frame format, operations, status codes and reply fields are those of `vta.hw.protocol`
(its docstring has the byte layout); every constant here comes from there.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from vta.isa.spec import ERROR_CODE_BITS

from .csr import COUNTER_BITS, COUNTERS
from .protocol import (
    COUNTER_FIELDS,
    FLAG_BUSY,
    FLAG_DONE,
    INFO_FIELDS,
    REPLY_FIELDS,
    REPLY_HEADER_BYTES,
    REQUEST_HEADER_BYTES,
    STATUS_FIELDS,
    SYNC_REPLY,
    SYNC_REQUEST,
    VERSION,
    Op,
    Status,
    crc8_update,
    fields_bytes,
)

_HEADER_BYTES_AFTER_SYNC = REQUEST_HEADER_BYTES - 1


def crc8_next(crc: Value, byte: Value) -> Value:
    """Combinational CRC-8 update: the CRC of the bytes so far (``crc``) then ``byte``.

    CRC-8 is linear over GF(2), so each output bit is the XOR of some bits of ``crc ^ byte``;
    which ones follows from `vta.hw.protocol.crc8_update` (one bit at a time), so the RTL and
    the host compute the same function from the same polynomial.
    """
    c = Value.cast(crc ^ byte)
    cols = [crc8_update(0, 1 << j) for j in range(8)]  # the image of each input bit
    bits = []
    for i in range(8):
        taps = [c[j] for j in range(8) if cols[j] >> i & 1]
        acc = taps[0]
        for t in taps[1:]:
            acc = acc ^ t
        bits.append(acc)
    return Cat(*bits)


def _bytes_of(fields: tuple[tuple[str, int], ...], values: dict[str, Value | int]) -> Value:
    """The wire bytes of ``fields`` as one value, first byte in the low bits (numbers little-endian,
    each zero-extended or truncated to its field)."""
    parts = []
    for name, n in fields:
        v = values[name]
        if isinstance(v, int):
            parts.append(Const(v, 8 * n))
        else:
            v = Value.cast(v).as_unsigned()
            parts.append(v[: 8 * n] if len(v) >= 8 * n else Cat(v, Const(0, 8 * n - len(v))))
    return Cat(*parts)


class HostLink(wiring.Component):
    """Request parser and reply sender between a UART and the board memory and core.

    ``info`` gives INFO's field values (`vta.hw.protocol.INFO_FIELDS` but ``version``); a frame
    with more than ``timeout_cycles`` cycles between two of its bytes is dropped (TIMEOUT reply).
    """

    def __init__(self, mem_bytes: int, info: dict[str, int], timeout_cycles: int) -> None:
        self.mem_bytes = mem_bytes
        self.info = {"version": VERSION, **info}
        self.timeout_cycles = timeout_cycles
        addr_bits = (mem_bytes - 1).bit_length()
        super().__init__({
            # UART
            "rx_data": In(8), "rx_valid": In(1),
            "tx_data": Out(8), "tx_valid": Out(1), "tx_ready": In(1),
            # board memory (host port of `AXI4Bram`; read data arrives the cycle after mem_re)
            "mem_addr": Out(addr_bits), "mem_wdata": Out(8), "mem_we": Out(1), "mem_re": Out(1), "mem_rdata": In(8),
            # core CSRs
            "start": Out(1), "insn_addr": Out(32), "insn_count": Out(32),
            "busy": In(1), "done": In(1), "error": In(ERROR_CODE_BITS), "error_insn": In(32),
            "counters": In(wiring.Signature({name: Out(COUNTER_BITS) for name in COUNTERS})),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        header = Signal(8 * _HEADER_BYTES_AFTER_SYNC)  # op, arg0, arg1, crc as received
        op, arg0, arg1 = header[0:8], header[8:40], header[40:72]
        got = Signal(range(_HEADER_BYTES_AFTER_SYNC))
        crc = Signal(8)
        status = Signal(8)
        ptr = Signal(32)
        left = Signal(32)
        length = Signal(32)  # bytes of the reply's data
        rx_crc = crc8_next(crc, self.rx_data)
        tx_crc = crc8_next(crc, self.tx_data)
        in_range = (Cat(arg0, Const(0, 1)) + arg1) <= self.mem_bytes  # 33 bits: no overflow

        # Reply data of INFO (constants), STATUS (a snapshot taken at decode) and COUNTERS (frozen
        # while the core is idle, and COUNTERS is refused while it runs).
        assert (FLAG_BUSY, FLAG_DONE) == (1, 2)  # the Cat below puts busy in bit 0, done in bit 1
        status_now = _bytes_of(STATUS_FIELDS, {"flags": Cat(self.busy, self.done), "error": self.error,
                                               "error_insn": self.error_insn, "cycles": self.counters.cycles})
        snapshot = Signal(len(status_now))
        info = _bytes_of(INFO_FIELDS, self.info)
        counters = Cat(*(getattr(self.counters, name) for name in COUNTERS))
        reply_index = Signal(range(max(fields_bytes(f) for f in REPLY_FIELDS.values())))
        field_byte = Signal(8)
        with m.Switch(op):
            with m.Case(Op.INFO):
                m.d.comb += field_byte.eq(info.word_select(reply_index, 8))
            with m.Case(Op.STATUS):
                m.d.comb += field_byte.eq(snapshot.word_select(reply_index, 8))
            with m.Case(Op.COUNTERS):
                m.d.comb += field_byte.eq(counters.word_select(reply_index, 8))

        reply_head = Cat(Const(SYNC_REPLY, 8), status, op, length)  # the reply header but its CRC
        hdr_index = Signal(range(REPLY_HEADER_BYTES))
        idle_for = Signal(range(self.timeout_cycles + 1))

        def reply(code: int | Value, data_bytes: int | Value = 0) -> list:
            return [status.eq(code), length.eq(data_bytes), hdr_index.eq(0), crc.eq(0)]

        def watch() -> None:
            """In a state waiting for the rest of a frame: give up after timeout_cycles without a byte."""
            with m.If(self.rx_valid):
                m.d.sync += idle_for.eq(0)
            with m.Elif(idle_for == self.timeout_cycles):
                m.d.sync += reply(Status.TIMEOUT)
                m.next = "REPLY_HEADER"
            with m.Else():
                m.d.sync += idle_for.eq(idle_for + 1)

        with m.FSM():
            with m.State("HUNT"):
                with m.If(self.rx_valid & (self.rx_data == SYNC_REQUEST)):
                    m.d.sync += [got.eq(0), crc.eq(0), idle_for.eq(0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                watch()
                with m.If(self.rx_valid):
                    m.d.sync += [header.eq(Cat(header[8:], self.rx_data)), got.eq(got + 1), crc.eq(rx_crc)]
                    with m.If(got == _HEADER_BYTES_AFTER_SYNC - 1):
                        m.next = "DECODE"
            with m.State("DECODE"):
                m.d.sync += [snapshot.eq(status_now), ptr.eq(arg0), left.eq(arg1), reply_index.eq(0),
                             idle_for.eq(0)]
                with m.If(crc != 0):  # the CRC of a message followed by its CRC is 0
                    m.d.sync += reply(Status.BAD_HEADER_CRC)
                    m.next = "REPLY_HEADER"
                with m.Else():
                    self._decode(m, op, arg0, arg1, in_range, reply)
            with m.State("WRITE_DATA"):  # status OK: store each byte; otherwise only count them
                watch()
                with m.If(self.rx_valid):
                    m.d.comb += self.mem_we.eq(status == Status.OK)
                    m.d.sync += [ptr.eq(ptr + 1), left.eq(left - 1), crc.eq(rx_crc)]
                    with m.If(left == 1):
                        m.next = "WRITE_CRC"
            with m.State("WRITE_CRC"):
                watch()
                with m.If(self.rx_valid):
                    m.d.sync += [hdr_index.eq(0), crc.eq(0)]
                    with m.If((status == Status.OK) & (rx_crc != 0)):
                        m.d.sync += status.eq(Status.BAD_DATA_CRC)
                    m.next = "REPLY_HEADER"
            with m.State("REPLY_HEADER"):
                last = hdr_index == REPLY_HEADER_BYTES - 1
                m.d.comb += [self.tx_valid.eq(1),
                             self.tx_data.eq(Mux(last, crc, reply_head.word_select(hdr_index, 8)))]
                with m.If(self.tx_ready):
                    m.d.sync += hdr_index.eq(hdr_index + 1)
                    with m.If(hdr_index != 0):  # the CRC covers the bytes after the sync byte
                        m.d.sync += crc.eq(tx_crc)
                    with m.If(last):
                        m.d.sync += crc.eq(0)  # the data's CRC starts afresh
                        with m.If(length == 0):
                            m.next = "REPLY_CRC"
                        with m.Elif(op == Op.READ):
                            m.next = "READ_FETCH"
                        with m.Else():
                            m.next = "REPLY_FIELDS"
            with m.State("REPLY_FIELDS"):
                m.d.comb += [self.tx_valid.eq(1), self.tx_data.eq(field_byte)]
                with m.If(self.tx_ready):
                    m.d.sync += [reply_index.eq(reply_index + 1), crc.eq(tx_crc)]
                    with m.If(reply_index == length - 1):
                        m.next = "REPLY_CRC"
            with m.State("READ_FETCH"):  # the memory answers in the next cycle
                m.d.comb += self.mem_re.eq(1)
                m.next = "READ_SEND"
            with m.State("READ_SEND"):
                m.d.comb += [self.tx_valid.eq(1), self.tx_data.eq(self.mem_rdata)]
                with m.If(self.tx_ready):
                    m.d.sync += [ptr.eq(ptr + 1), left.eq(left - 1), crc.eq(tx_crc)]
                    m.next = "READ_FETCH"
                    with m.If(left == 1):
                        m.next = "REPLY_CRC"
            with m.State("REPLY_CRC"):
                m.d.comb += [self.tx_valid.eq(1), self.tx_data.eq(crc)]
                with m.If(self.tx_ready):
                    m.next = "HUNT"
        m.d.comb += [self.mem_addr.eq(ptr), self.mem_wdata.eq(self.rx_data)]
        with m.If(self.start):  # a one-cycle pulse
            m.d.sync += self.start.eq(0)
        return m

    def _decode(self, m: Module, op: Value, arg0: Value, arg1: Value, in_range: Value,
                reply: Callable[..., list]) -> None:
        """DECODE of a header whose CRC checks: act on the request and choose the reply."""
        busy = self.busy
        memory_code = Mux(busy, Status.BUSY, Mux(in_range, Status.OK, Status.BAD_RANGE))
        m.next = "REPLY_HEADER"
        with m.Switch(op):
            with m.Case(Op.INFO):
                m.d.sync += reply(Status.OK, fields_bytes(INFO_FIELDS))
            with m.Case(Op.STATUS):
                m.d.sync += reply(Status.OK, fields_bytes(STATUS_FIELDS))
            with m.Case(Op.COUNTERS):
                m.d.sync += reply(Mux(busy, Status.BUSY, Status.OK), Mux(busy, 0, fields_bytes(COUNTER_FIELDS)))
            with m.Case(Op.START):  # the CSRs are registers, set with the start pulse
                m.d.sync += [reply(Mux(busy, Status.BUSY, Status.OK)), self.start.eq(~busy),
                             self.insn_addr.eq(arg0), self.insn_count.eq(arg1)]
            with m.Case(Op.READ):
                m.d.sync += reply(memory_code, Mux(memory_code == Status.OK, arg1, 0))
            with m.Case(Op.WRITE):  # the data bytes follow in any case: consume them
                m.d.sync += reply(memory_code)
                m.next = "WRITE_DATA"
                with m.If(arg1 == 0):
                    m.next = "WRITE_CRC"
            with m.Default():
                m.d.sync += reply(Status.BAD_OPCODE)
