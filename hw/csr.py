"""Control and status ports of the core, and its event counters.

``COUNTERS`` is the single list of counter names: the RTL creates one 64-bit
output port ``counters__NAME`` for each, the Verilator harness reads them in
this order, and `counters_to_stats` maps them onto the simulator's RunStats.
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from vta.isa.spec import ERROR_CODE_BITS

COUNTER_BITS = 64

COUNTERS: tuple[str, ...] = (
    "cycles",
    "load_insns", "compute_insns", "store_insns",
    "load_busy", "compute_busy", "store_busy",       # cycles executing an instruction
    "load_wait", "compute_wait", "store_wait",       # cycles an instruction waited for tokens
    "gemm_uops", "gemm_mac_uops", "alu_uops",        # micro-op executions (mac: non-reset GEMM)
    "read_uop_bytes", "read_wgt_bytes", "read_inp_bytes", "read_acc_bytes",
    "write_out_bytes", "write_acc_bytes",
    "fetch_bytes", "pad_entries",
)


def control_members() -> dict:
    """The host-facing members of the core's signature (see docs/rtl.md)."""
    return {
        "start": In(1), "insn_addr": In(32), "insn_count": In(32), "dram_limit": In(32),
        "busy": Out(1), "done": Out(1), "error": Out(ERROR_CODE_BITS), "error_insn": Out(32),
        "counters": Out(wiring.Signature({name: Out(COUNTER_BITS) for name in COUNTERS})),
    }
