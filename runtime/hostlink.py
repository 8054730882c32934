"""The host side of the board link: frame encoding and decoding, and `HostLink`, a client of
the protocol over any byte transport (a serial port, `SerialTransport`, or the simulated
board, `vta.sim.rtl.board_sim.BoardSim`). The protocol itself (layout, ops, status codes,
fields) is defined once in `vta.hw.protocol`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from vta.hw.protocol import (
    COUNTER_FIELDS,
    INFO_FIELDS,
    REPLY_FIELDS,
    REPLY_HEADER,
    REPLY_HEADER_BYTES,
    REQUEST_HEADER,
    STATUS_FIELDS,
    STATUS_TEXT,
    SYNC_REPLY,
    SYNC_REQUEST,
    VERSION,
    Op,
    Status,
    crc8,
    fields_bytes,
    pack_fields,
    unpack_fields,
)
from vta.isa.errors import VTAError

CHUNK_BYTES = 4096      # WRITE/READ move at most this much per frame, so a damaged frame costs little
MAX_SKIPPED = 4096      # bytes before a reply's sync byte that a read skips before giving up
RETRYABLE = (Status.BAD_HEADER_CRC, Status.BAD_DATA_CRC, Status.TIMEOUT)


class LinkError(VTAError):
    """The board did not answer, or answered with a damaged or unexpected frame."""


class LinkRefused(LinkError):
    """The board answered with an error status."""

    def __init__(self, status: Status, op: Op, detail: str = "") -> None:
        self.status, self.op = status, op
        text = STATUS_TEXT.get(status, status.name)
        super().__init__(f"{op.name} refused by the board: {status.name} ({text}){detail}")


class Transport(Protocol):
    """Bytes to and from the board."""

    name: str

    def write(self, data: bytes) -> None: ...

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer means the rest did not come in time."""
        ...

    def reset_input(self) -> None: ...


# ---- frames ---------------------------------------------------------------------------

def encode_request(op: Op | int, arg0: int = 0, arg1: int = 0, data: bytes = b"") -> bytes:
    """The bytes of one request frame. WRITE carries ``data`` (``arg1`` is then its length)."""
    for name, v in (("arg0", arg0), ("arg1", arg1)):
        if not 0 <= v < 1 << 32:
            raise VTAError(f"{name} {v} does not fit the frame's 32-bit field")
    body = pack_fields(REQUEST_HEADER[1:-1], {"op": int(op), "arg0": arg0, "arg1": arg1})
    frame = bytes([SYNC_REQUEST]) + body + bytes([crc8(body)])
    if op == Op.WRITE:
        if len(data) != arg1:
            raise VTAError(f"WRITE of {len(data)} bytes with a length field of {arg1}")
        frame += bytes(data) + bytes([crc8(data)])
    elif data:
        raise VTAError(f"{Op(op).name} carries no data")
    return frame


@dataclass(frozen=True)
class Reply:
    status: Status
    op: int
    data: bytes


def encode_reply(status: Status | int, op: Op | int, data: bytes = b"") -> bytes:
    """The bytes of one reply frame (what the board sends; tests and models use it)."""
    body = pack_fields(REPLY_HEADER[1:-1], {"status": int(status), "op": int(op), "length": len(data)})
    return bytes([SYNC_REPLY]) + body + bytes([crc8(body)]) + bytes(data) + bytes([crc8(data)])


def _read_exact(t: Transport, n: int, what: str) -> bytes:
    raw = t.read(n)
    if len(raw) != n:
        raise LinkError(f"no complete reply from {t.name}: {what} ended after {len(raw)} of {n} bytes")
    return raw


def read_reply(t: Transport) -> Reply:
    """One reply frame from ``t``; a damaged frame or silence is a `LinkError`."""
    skipped = 0
    while True:
        b = t.read(1)
        if not b:
            raise LinkError(f"no reply from {t.name}" + (f" (after {skipped} stray bytes)" if skipped else ""))
        if b[0] == SYNC_REPLY:
            break
        skipped += 1
        if skipped > MAX_SKIPPED:
            raise LinkError(f"{t.name} sends bytes that are not replies of the VTA host link")
    head = _read_exact(t, REPLY_HEADER_BYTES - 1, "the reply header")
    if crc8(head) != 0:
        raise LinkError(f"damaged reply header from {t.name} (CRC mismatch): {head.hex()}")
    fields = unpack_fields(REPLY_HEADER[1:-1], head[:-1])
    try:
        status = Status(fields["status"])
    except ValueError:
        raise LinkError(f"{t.name} replied with an unknown status {fields['status']}") from None
    rest = _read_exact(t, fields["length"] + 1, "the reply data")
    if crc8(rest) != 0:
        raise LinkError(f"damaged reply data from {t.name} (CRC mismatch)")
    return Reply(status, fields["op"], rest[:-1])


# ---- the client ---------------------------------------------------------------------------

class HostLink:
    """Requests to a VTA board over ``transport``; damaged frames are retried ``retries`` times."""

    def __init__(self, transport: Transport, retries: int = 2) -> None:
        self.t = transport
        self.retries = retries
        self.t.reset_input()

    def request(self, op: Op, arg0: int = 0, arg1: int = 0, data: bytes = b"") -> bytes:
        """Send one request and return its reply's data; `LinkRefused` when the board refuses it."""
        frame = encode_request(op, arg0, arg1, data)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            self.t.write(frame)
            try:
                reply = read_reply(self.t)
            except LinkError:
                # START must not run twice: a lost reply to it is not retried.
                if last or op == Op.START:
                    raise
                self.t.reset_input()
                continue
            if reply.op != op:
                if last:
                    raise LinkError(f"{self.t.name} answered {op.name} with a reply to op {reply.op}")
                self.t.reset_input()
                continue
            if reply.status == Status.OK:
                return reply.data
            if reply.status in RETRYABLE and not last:
                continue
            raise LinkRefused(reply.status, op)
        raise AssertionError("unreachable")

    def _fields(self, op: Op, raw: bytes) -> dict[str, int]:
        fields = REPLY_FIELDS[op]
        if len(raw) != fields_bytes(fields):
            raise LinkError(f"{op.name} reply of {len(raw)} bytes from {self.t.name}, expected {fields_bytes(fields)}")
        return unpack_fields(fields, raw)

    def info(self) -> dict[str, int]:
        """`INFO_FIELDS`; a board speaking another protocol version is an error."""
        info = self._fields(Op.INFO, self.request(Op.INFO))
        if info["version"] != VERSION:
            raise LinkError(f"the board on {self.t.name} speaks host-link version {info['version']}, this host "
                            f"{VERSION}: rebuild its bitstream with this version of vta")
        return info

    def write(self, addr: int, data: bytes) -> None:
        """Store ``data`` at board memory ``addr``, in chunks."""
        data = bytes(data)
        for at in range(0, len(data), CHUNK_BYTES):
            chunk = data[at : at + CHUNK_BYTES]
            self.request(Op.WRITE, addr + at, len(chunk), chunk)

    def read(self, addr: int, nbytes: int) -> bytes:
        """``nbytes`` of board memory from ``addr``, in chunks."""
        out = bytearray()
        for at in range(0, nbytes, CHUNK_BYTES):
            n = min(CHUNK_BYTES, nbytes - at)
            raw = self.request(Op.READ, addr + at, n)
            if len(raw) != n:
                raise LinkError(f"READ of {n} bytes from {self.t.name} returned {len(raw)}")
            out += raw
        return bytes(out)

    def start(self, insn_addr: int, insn_count: int) -> None:
        """Start the core on ``insn_count`` instructions at ``insn_addr``."""
        self.request(Op.START, insn_addr, insn_count)

    def status(self) -> dict[str, int]:
        """`STATUS_FIELDS`: flags (`FLAG_BUSY`, `FLAG_DONE`), error, error_insn, cycles."""
        return self._fields(Op.STATUS, self.request(Op.STATUS))

    def counters(self) -> dict[str, int]:
        """Every counter of the last run (`COUNTER_FIELDS`)."""
        return self._fields(Op.COUNTERS, self.request(Op.COUNTERS))


class SerialTransport:
    """A serial port (pyserial) as a transport: ``timeout`` seconds per read."""

    def __init__(self, port: str, baud: int, timeout: float = 1.0) -> None:
        try:
            import serial
        except ImportError:
            raise VTAError("the FPGA target needs pyserial: pip install pyserial") from None
        self.name = f"{port} at {baud} baud"
        try:
            self.port = serial.Serial(port, baud, timeout=timeout, write_timeout=max(timeout, 10.0))
        except (serial.SerialException, ValueError, OSError) as e:
            raise VTAError(f"cannot open serial port {port}: {e}") from None

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read(self, n: int) -> bytes:
        return bytes(self.port.read(n))

    def reset_input(self) -> None:
        time.sleep(0.01)  # let bytes in flight arrive before they are dropped
        self.port.reset_input_buffer()

    def idle(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        self.port.close()


__all__ = [
    "CHUNK_BYTES",
    "COUNTER_FIELDS",
    "INFO_FIELDS",
    "STATUS_FIELDS",
    "HostLink",
    "LinkError",
    "LinkRefused",
    "Reply",
    "SerialTransport",
    "Transport",
    "encode_reply",
    "encode_request",
    "read_reply",
]
