"""The host-link protocol: the one definition that the board's RTL (`vta.hw.hostlink`) and the
host code (`vta.runtime.hostlink`) both build from. Nothing here is copied elsewhere.

Frames travel over the board's UART (8 data bits, no parity, 1 stop bit). All multi-byte
numbers are little-endian. Each frame has a header with its own CRC-8 and, where it
carries data, a data part followed by one CRC-8 of the data.

Request, host → board (``REQUEST_HEADER``, 11 bytes)::

    offset  bytes  field
    0       1      sync   0xA5 (SYNC_REQUEST); bytes before it are skipped
    1       1      op     an `Op`
    2       4      arg0   WRITE/READ: byte address; START: address of the first instruction
    6       4      arg1   WRITE/READ: byte count;   START: number of instructions
    10      1      crc    CRC-8 of bytes 1..9
    WRITE only: arg1 data bytes, then 1 byte: CRC-8 of the data bytes

Reply, board → host (``REPLY_HEADER``, 8 bytes), exactly one per request::

    offset  bytes  field
    0       1      sync    0x5A (SYNC_REPLY)
    1       1      status  a `Status`: 0 is OK, anything else says why the request was refused
    2       1      op      the request's op
    3       4      length  bytes of data that follow (0 for every error reply)
    7       1      crc     CRC-8 of bytes 1..6
    8       length data    READ: the bytes; INFO/STATUS/COUNTERS: the fields below
    8+len   1      crc     CRC-8 of the data bytes (0x00 when there are none)

Operations:

- INFO: data `INFO_FIELDS` (protocol version, memory size, `config_id` of the accelerator's
  config, clock frequency), so the host can check it talks to the board it expects.
- WRITE arg0 arg1 + data: store the bytes into the board memory. The board writes them as they
  arrive, so a BAD_DATA_CRC reply means the range may hold damaged bytes: write it again.
- READ arg0 arg1: the reply carries arg1 bytes of board memory from arg0.
- START arg0 arg1: the core's CSRs ``insn_addr`` = arg0, ``insn_count`` = arg1, pulse ``start``.
  The core's ``dram_limit`` is the memory size.
- STATUS: data `STATUS_FIELDS` (busy/done flags, error code and instruction, cycles), a
  consistent snapshot; poll it until ``FLAG_DONE``.
- COUNTERS: data `COUNTER_FIELDS`, every counter of `vta.hw.csr.COUNTERS`, 8 bytes each.

Refusals (the `Status` of the reply): a header whose CRC does not check is BAD_HEADER_CRC (the
board then hunts for the next sync byte); an unknown op BAD_OPCODE; WRITE/READ past the end
of the memory BAD_RANGE (a refused WRITE's data bytes are still consumed, so the link stays
in step); WRITE/READ/START/COUNTERS while the core runs BUSY; a frame with a gap longer than
the board's timeout (about 0.1 s on a board) between two of its bytes TIMEOUT.
"""

from __future__ import annotations

import json
import zlib
from enum import IntEnum

from vta.isa import Config

from .csr import COUNTER_BITS, COUNTERS

VERSION = 1
SYNC_REQUEST = 0xA5
SYNC_REPLY = 0x5A
CRC8_POLY = 0x07  # x^8 + x^2 + x + 1, initial value 0, no reflection (CRC-8/SMBUS)


class Op(IntEnum):
    """Request operations."""

    INFO = 1
    WRITE = 2
    READ = 3
    START = 4
    STATUS = 5
    COUNTERS = 6


class Status(IntEnum):
    """Reply status: OK, or why the board refused the request."""

    OK = 0
    BAD_HEADER_CRC = 1
    BAD_DATA_CRC = 2
    BAD_OPCODE = 3
    BAD_RANGE = 4
    BUSY = 5
    TIMEOUT = 6


STATUS_TEXT = {
    Status.BAD_HEADER_CRC: "the board received a request header whose CRC did not match",
    Status.BAD_DATA_CRC: "the board received write data whose CRC did not match",
    Status.BAD_OPCODE: "the board does not know the requested operation",
    Status.BAD_RANGE: "the address range lies outside the board memory",
    Status.BUSY: "the accelerator is running; memory, start and counters wait until it is done",
    Status.TIMEOUT: "the board timed out waiting for the rest of a request",
}

Fields = tuple[tuple[str, int], ...]  # (name, bytes), in wire order

REQUEST_HEADER: Fields = (("sync", 1), ("op", 1), ("arg0", 4), ("arg1", 4), ("crc", 1))
REPLY_HEADER: Fields = (("sync", 1), ("status", 1), ("op", 1), ("length", 4), ("crc", 1))
INFO_FIELDS: Fields = (("version", 1), ("mem_bytes", 4), ("config_id", 4), ("clock_hz", 4))
STATUS_FIELDS: Fields = (("flags", 1), ("error", 1), ("error_insn", 4), ("cycles", 8))
COUNTER_FIELDS: Fields = tuple((name, COUNTER_BITS // 8) for name in COUNTERS)
REPLY_FIELDS: dict[Op, Fields] = {Op.INFO: INFO_FIELDS, Op.STATUS: STATUS_FIELDS, Op.COUNTERS: COUNTER_FIELDS}

FLAG_BUSY = 1 << 0
FLAG_DONE = 1 << 1


def fields_bytes(fields: Fields) -> int:
    """Bytes a field list occupies on the wire."""
    return sum(n for _, n in fields)


REQUEST_HEADER_BYTES = fields_bytes(REQUEST_HEADER)
REPLY_HEADER_BYTES = fields_bytes(REPLY_HEADER)


def pack_fields(fields: Fields, values: dict[str, int]) -> bytes:
    """The wire bytes of ``values`` laid out as ``fields`` (little-endian; every field required)."""
    missing = [name for name, _ in fields if name not in values]
    if missing:
        raise ValueError(f"missing field values: {', '.join(missing)}")
    return b"".join(int(values[name]).to_bytes(n, "little") for name, n in fields)


def unpack_fields(fields: Fields, raw: bytes) -> dict[str, int]:
    """The values of ``fields`` read from ``raw``, which must have exactly their size."""
    if len(raw) != fields_bytes(fields):
        raise ValueError(f"expected {fields_bytes(fields)} bytes of fields, got {len(raw)}")
    out, at = {}, 0
    for name, n in fields:
        out[name] = int.from_bytes(raw[at : at + n], "little")
        at += n
    return out


def crc8_update(crc: int, byte: int) -> int:
    """CRC-8 (`CRC8_POLY`) of the bytes seen so far (``crc``) followed by ``byte``."""
    c = (crc ^ byte) & 0xFF
    for _ in range(8):
        c = ((c << 1) ^ CRC8_POLY if c & 0x80 else c << 1) & 0xFF
    return c


_CRC_TABLE = tuple(crc8_update(0, b) for b in range(256))


def crc8(data: bytes, crc: int = 0) -> int:
    """CRC-8 of ``data`` (continuing from ``crc``); a message followed by its CRC has CRC 0."""
    for b in data:
        crc = _CRC_TABLE[crc ^ b]
    return crc


def config_id(config: Config) -> int:
    """A 32-bit fingerprint of every field of ``config`` (INFO reports the board's)."""
    return zlib.crc32(json.dumps(config.to_dict(), sort_keys=True).encode())
