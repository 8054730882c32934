"""The host-link protocol in pure Python: CRC, frame encoding and decoding, the client's
retries and refusals against scripted replies, and a serial port where no board answers."""

from __future__ import annotations

import os

import pytest
from vta.hw.csr import COUNTERS
from vta.hw.protocol import (
    COUNTER_FIELDS,
    INFO_FIELDS,
    REPLY_HEADER_BYTES,
    REQUEST_HEADER_BYTES,
    STATUS_FIELDS,
    SYNC_REPLY,
    SYNC_REQUEST,
    VERSION,
    Op,
    Status,
    config_id,
    crc8,
    crc8_update,
    fields_bytes,
    pack_fields,
    unpack_fields,
)
from vta.hw.uart import uart_divisor
from vta.isa import PRESETS
from vta.isa.errors import VTAError
from vta.runtime.hostlink import (
    HostLink,
    LinkError,
    LinkRefused,
    SerialTransport,
    encode_reply,
    encode_request,
    read_reply,
)


class Scripted:
    """A transport that records what the host writes and answers each write with the next scripted reply."""

    name = "scripted board"

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = list(replies)
        self.sent: list[bytes] = []
        self.inbox = b""

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))
        if self.replies:
            self.inbox += self.replies.pop(0)

    def read(self, n: int) -> bytes:
        out, self.inbox = self.inbox[:n], self.inbox[n:]
        return out

    def reset_input(self) -> None:
        self.inbox = b""


def test_crc8_is_crc8_smbus() -> None:
    assert crc8(b"123456789") == 0xF4  # the catalogued check value of CRC-8/SMBUS
    assert crc8(b"") == 0
    data = bytes(range(37))
    assert crc8(data + bytes([crc8(data)])) == 0
    assert crc8(data[5:], crc8(data[:5])) == crc8(data)
    c = 0
    for b in data:
        c = crc8_update(c, b)
    assert c == crc8(data)


def test_request_layout() -> None:
    f = encode_request(Op.READ, 0x11223344, 0x100)
    assert len(f) == REQUEST_HEADER_BYTES == 11
    assert f[0] == SYNC_REQUEST and f[1] == Op.READ
    assert f[2:6] == bytes([0x44, 0x33, 0x22, 0x11]) and f[6:10] == (0x100).to_bytes(4, "little")
    assert f[10] == crc8(f[1:10]) and crc8(f[1:]) == 0

    w = encode_request(Op.WRITE, 64, 3, b"\x01\x02\x03")
    assert len(w) == REQUEST_HEADER_BYTES + 3 + 1
    assert w[11:14] == b"\x01\x02\x03" and w[14] == crc8(b"\x01\x02\x03")


def test_request_errors() -> None:
    with pytest.raises(VTAError, match="length field"):
        encode_request(Op.WRITE, 0, 4, b"abc")
    with pytest.raises(VTAError, match="carries no data"):
        encode_request(Op.READ, 0, 3, b"abc")
    with pytest.raises(VTAError, match="32-bit"):
        encode_request(Op.START, 1 << 32, 1)


def test_reply_roundtrip_and_garbage_before_sync() -> None:
    data = bytes(range(200))
    t = Scripted([])
    t.inbox = b"\x00\xff\x13" + encode_reply(Status.OK, Op.READ, data)
    r = read_reply(t)
    assert (r.status, r.op, r.data) == (Status.OK, Op.READ, data)
    raw = encode_reply(Status.BUSY, Op.START)
    assert len(raw) == REPLY_HEADER_BYTES + 1 and raw[0] == SYNC_REPLY and raw[-1] == 0


@pytest.mark.parametrize("where", [1, 3, 7, REPLY_HEADER_BYTES + 2])
def test_damaged_reply_is_an_error(where: int) -> None:
    raw = bytearray(encode_reply(Status.OK, Op.READ, b"hello"))
    raw[where] ^= 0x10
    t = Scripted([])
    t.inbox = bytes(raw)
    with pytest.raises(LinkError, match="damaged|unknown status|no complete"):
        read_reply(t)


def test_truncated_and_silent_replies() -> None:
    t = Scripted([])
    t.inbox = encode_reply(Status.OK, Op.READ, b"hello")[:-3]
    with pytest.raises(LinkError, match="no complete reply"):
        read_reply(t)
    with pytest.raises(LinkError, match="no reply"):
        read_reply(Scripted([]))


def test_fields() -> None:
    assert fields_bytes(INFO_FIELDS) == 13 and fields_bytes(STATUS_FIELDS) == 14
    assert [n for n, _ in COUNTER_FIELDS] == list(COUNTERS) and fields_bytes(COUNTER_FIELDS) == 8 * len(COUNTERS)
    values = {"flags": 3, "error": 5, "error_insn": 0xDEADBEEF, "cycles": 1 << 40}
    assert unpack_fields(STATUS_FIELDS, pack_fields(STATUS_FIELDS, values)) == values
    with pytest.raises(ValueError, match="missing"):
        pack_fields(STATUS_FIELDS, {"flags": 1})
    ids = {config_id(c) for c in PRESETS.values()}
    assert len(ids) == len(PRESETS)


def test_client_retries_damaged_frames_and_reports_refusals() -> None:
    info = pack_fields(INFO_FIELDS, {"version": VERSION, "mem_bytes": 1 << 16, "config_id": 7, "clock_hz": 10})
    t = Scripted([encode_reply(Status.BAD_DATA_CRC, Op.INFO), b"\x5a\x00garbage", encode_reply(Status.OK, Op.INFO, info)])
    link = HostLink(t, retries=2)
    assert link.info() == {"version": VERSION, "mem_bytes": 1 << 16, "config_id": 7, "clock_hz": 10}
    assert len(t.sent) == 3 and len(set(t.sent)) == 1  # the same frame, three times

    t = Scripted([encode_reply(Status.BAD_RANGE, Op.READ)])
    with pytest.raises(LinkRefused, match="BAD_RANGE") as e:
        HostLink(t).read(0xFFF0, 32)
    assert e.value.status == Status.BAD_RANGE and len(t.sent) == 1  # a refusal is final

    t = Scripted([b""])  # a START whose reply is lost is not sent again: it might have started
    with pytest.raises(LinkError):
        HostLink(t).start(0, 4)
    assert len(t.sent) == 1


def test_client_chunks_transfers() -> None:
    n = 4096 + 100
    t = Scripted([encode_reply(Status.OK, Op.WRITE), encode_reply(Status.OK, Op.WRITE)])
    HostLink(t).write(64, bytes(n))
    assert [len(f) - REQUEST_HEADER_BYTES - 1 for f in t.sent] == [4096, 100]
    assert int.from_bytes(t.sent[1][2:6], "little") == 64 + 4096


def test_other_protocol_version_is_refused() -> None:
    info = pack_fields(INFO_FIELDS, {"version": VERSION + 1, "mem_bytes": 1, "config_id": 0, "clock_hz": 1})
    with pytest.raises(LinkError, match="version"):
        HostLink(Scripted([encode_reply(Status.OK, Op.INFO, info)])).info()


def test_uart_divisor() -> None:
    assert uart_divisor(25e6, 115200) == 217
    with pytest.raises(VTAError, match="too fast"):
        uart_divisor(1e6, 921600)
    with pytest.raises(VTAError, match="off by"):
        uart_divisor(12e6, 2_200_000)


def test_no_board_on_the_port() -> None:
    """A serial port where nothing answers: a clear error naming the port."""
    from vta.runtime.fpga_device import FpgaDevice

    master, slave = os.openpty()
    try:
        t = SerialTransport(os.ttyname(slave), 115200, timeout=0.05)
        with pytest.raises(VTAError, match="no VTA board answered on .* at 115200 baud"):
            FpgaDevice(PRESETS["tiny"], transport=t)
        t.close()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_port_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from vta.runtime import open_device

    monkeypatch.delenv("VTA_FPGA_PORT", raising=False)
    with pytest.raises(VTAError, match="--port"):
        open_device("fpga", PRESETS["tiny"])
    with pytest.raises(VTAError, match="cannot open serial port /dev/nonexistent-tty"):
        open_device("fpga", PRESETS["tiny"], port="/dev/nonexistent-tty")
