"""The AXI4 memory interface, as a wiring signature seen from the master.

Member names follow the AXI specification in lower case, so a component's
``m_axi`` port appears in Verilog as ``m_axi__arvalid`` and so on, which
cocotbext-axi finds with the prefix ``m_axi_``. Only INCR bursts of full
bus-width beats are used; there is a single transaction ID (responses arrive
in order).
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

ADDR_BITS = 32
MAX_BURST_BEATS = 256   # AXI4 INCR
BOUNDARY_BYTES = 4096   # a burst may not cross a 4 KiB boundary
BURST_INCR = 1
RESP_OKAY = 0
ID_BITS = 1  # one transaction ID, always 0; present because memory models such as cocotbext-axi expect it


class AXI4Signature(wiring.Signature):
    """AXI4 master: read address/data and write address/data/response channels."""

    def __init__(self, data_bits: int, addr_bits: int = ADDR_BITS) -> None:
        self.data_bits = data_bits
        self.addr_bits = addr_bits
        super().__init__(read_members(data_bits, addr_bits) | write_members(data_bits, addr_bits))


def read_members(data_bits: int, addr_bits: int = ADDR_BITS) -> dict:
    return {
        "arvalid": Out(1), "arready": In(1), "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3),
        "arburst": Out(2), "arid": Out(ID_BITS),
        "rvalid": In(1), "rready": Out(1), "rdata": In(data_bits), "rresp": In(2), "rlast": In(1), "rid": In(ID_BITS),
    }


def write_members(data_bits: int, addr_bits: int = ADDR_BITS) -> dict:
    return {
        "awvalid": Out(1), "awready": In(1), "awaddr": Out(addr_bits), "awlen": Out(8), "awsize": Out(3),
        "awburst": Out(2), "awid": Out(ID_BITS),
        "wvalid": Out(1), "wready": In(1), "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wlast": Out(1),
        "bvalid": In(1), "bready": Out(1), "bresp": In(2), "bid": In(ID_BITS),
    }


class AXI4ReadSignature(wiring.Signature):
    """The read half only (what a read DMA client drives)."""

    def __init__(self, data_bits: int, addr_bits: int = ADDR_BITS) -> None:
        self.data_bits = data_bits
        super().__init__(read_members(data_bits, addr_bits))


class AXI4WriteSignature(wiring.Signature):
    """The write half only."""

    def __init__(self, data_bits: int, addr_bits: int = ADDR_BITS) -> None:
        self.data_bits = data_bits
        super().__init__(write_members(data_bits, addr_bits))
