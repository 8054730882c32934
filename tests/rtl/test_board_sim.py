"""The board-level design under Verilator with the RTL UART in the loop: programs loaded,
started, polled and read back over the host link match fsim byte for byte; bad frames get
the error replies of `vta.hw.protocol`; and `vta run --target fpga --port` works against the
simulated board behind a pseudo-terminal, through pyserial, as against a real board."""

from __future__ import annotations

import os
import select
import threading
import time

import numpy as np
import pytest
from conftest import needs_rtl
from vta.hw.protocol import FLAG_BUSY, FLAG_DONE, INFO_FIELDS, Op, Status, config_id, fields_bytes
from vta.isa import INSN_BYTES, PRESETS, encode_insns
from vta.runtime import Buffer, CommandQueue, FsimDevice, KernelRecorder
from vta.runtime.hostlink import LinkRefused, encode_request, read_reply
from vta.sim import BoundsError, SimError
from vta.sim.fsim import Fsim
from vta.sim.randprog import random_program

pytestmark = needs_rtl
CFG = PRESETS["tiny"]


@pytest.fixture(scope="module")
def board():  # type: ignore[no-untyped-def]
    from vta.sim.rtl.board_sim import BoardSim

    t0 = time.perf_counter()
    sim = BoardSim(CFG)
    print(f"board build: {'cached' if sim.build.cached else f'{time.perf_counter() - t0:.1f} s'}")
    return sim


@pytest.fixture
def device(board):  # type: ignore[no-untyped-def]
    from vta.runtime.fpga_device import FpgaDevice

    board.reset_input()
    return FpgaDevice(CFG, transport=board, poll_interval=2e-5)


def _fsim_run(image: np.ndarray, insn_addr: int, count: int, size: int) -> tuple[np.ndarray, SimError | None]:
    fs = Fsim(CFG, size)
    fs.dram[: image.size] = image
    try:
        fs.run(insn_addr, count)
    except SimError as e:
        return fs.dram[: image.size].copy(), e
    return fs.dram[: image.size].copy(), None


def test_info_identifies_the_board(device) -> None:  # type: ignore[no-untyped-def]
    assert device.info["mem_bytes"] == device.transport.params.mem_bytes
    assert device.info["config_id"] == config_id(CFG)
    assert device.info["clock_hz"] == device.transport.params.clk_hz


def test_gemm_demo_matches_fsim(device) -> None:  # type: ignore[no-untyped-def]
    from vta.demo import run_gemm

    t0 = time.perf_counter()
    cycles0 = device.transport.cycles
    r = run_gemm(device)
    wall = time.perf_counter() - t0
    ref = run_gemm(FsimDevice(CFG))
    print(f"GEMM through the link: {device.transport.cycles - cycles0:,} board cycles, {wall:.2f} s")
    assert r.exact and np.array_equal(r.output, ref.output)
    assert r.output.tobytes() == ref.output.tobytes()
    # the counters over the link are the same events fsim counts
    assert (r.stats.gemm_uops, r.stats.alu_uops, r.stats.insns) == (ref.stats.gemm_uops, ref.stats.alu_uops,
                                                                  ref.stats.insns)
    assert r.stats.dram_read_bytes == ref.stats.dram_read_bytes
    assert r.stats.dram_write_bytes == ref.stats.dram_write_bytes
    assert r.stats.cycles > 0 and device.last_status["cycles"] == r.stats.cycles
    assert device.transport.status_lines & 0b011 == 0b010  # not busy, done, no error


@pytest.mark.parametrize("seed", [3, 11, 5])
def test_random_program_dram_matches_fsim(board, seed: int) -> None:  # type: ignore[no-untyped-def]
    """A fresh board per program: on-chip buffers keep their contents across runs, and random
    programs may read entries they did not write (fsim starts with zeroed buffers)."""
    from vta.runtime.fpga_device import FpgaDevice
    from vta.sim.rtl.board_sim import BoardSim

    device = FpgaDevice(CFG, transport=BoardSim(CFG), poll_interval=2e-5)  # the library is built already
    prog = random_program(CFG, seed)
    image = prog.dram_image()
    device.link.write(0, image.tobytes())
    assert device.link.read(0, image.size) == image.tobytes()
    device.run(Buffer(device, prog.insn_addr, len(prog.insns) * INSN_BYTES), len(prog.insns))
    after = np.frombuffer(device.link.read(0, image.size), np.uint8)
    want, err = _fsim_run(image, prog.insn_addr, len(prog.insns), device.mem_bytes)
    assert err is None
    diff = np.flatnonzero(after != want)
    assert not diff.size, f"{diff.size} bytes differ from fsim, first at {diff[0]:#x}"


def test_core_errors_are_reported_like_fsim(device) -> None:  # type: ignore[no-untyped-def]
    """A stream that runs off the end of the board memory: the same error, the same instruction."""
    mem = device.mem_bytes
    image = np.zeros(mem, np.uint8)
    _, want = _fsim_run(image, mem - 2 * INSN_BYTES, 4, mem)
    assert want is not None
    with pytest.raises(BoundsError) as e:
        device.run(Buffer(device, mem - 2 * INSN_BYTES, 2 * INSN_BYTES), 4)
    assert (e.value.code, e.value.insn_index) == (want.code, want.insn_index)
    assert device.transport.status_lines & 0b110 == 0b110  # done, with an error
    from vta.demo import run_gemm

    assert run_gemm(device).exact  # the next run starts clean


def _raw(board, frame: bytes):  # type: ignore[no-untyped-def]
    board.write(frame)
    return read_reply(board)


def test_bad_frames_get_error_replies(board) -> None:  # type: ignore[no-untyped-def]
    board.reset_input()
    ok = encode_request(Op.INFO)
    bad = bytearray(encode_request(Op.READ, 0, 4))
    bad[3] ^= 0x01  # the address changes, its CRC does not
    assert _raw(board, bytes(bad)).status == Status.BAD_HEADER_CRC

    body = bytes([0x7F]) + bytes(8)
    from vta.hw.protocol import crc8

    assert _raw(board, bytes([0xA5]) + body + bytes([crc8(body)])).status == Status.BAD_OPCODE

    w = bytearray(encode_request(Op.WRITE, 256, 8, bytes(range(8))))
    w[-1] ^= 0xFF
    assert _raw(board, bytes(w)).status == Status.BAD_DATA_CRC

    mem = board.params.mem_bytes
    r = _raw(board, encode_request(Op.READ, mem - 4, 8))
    assert (r.status, r.data) == (Status.BAD_RANGE, b"")
    assert _raw(board, encode_request(Op.READ, 0xFFFF_FFFC, 8)).status == Status.BAD_RANGE  # no wrap-around
    # a refused WRITE still consumes its data (here: bytes that look like a request), so the link stays in step
    assert _raw(board, encode_request(Op.WRITE, mem - 4, len(ok), ok)).status == Status.BAD_RANGE
    # garbage before the sync byte is skipped
    r = _raw(board, b"\x00\x13\x37" + ok)
    assert r.status == Status.OK and len(r.data) == fields_bytes(INFO_FIELDS)


def test_truncated_frame_times_out(board) -> None:  # type: ignore[no-untyped-def]
    board.reset_input()
    before = board.cycles
    r = _raw(board, encode_request(Op.READ, 0, 4)[:6])
    assert r.status == Status.TIMEOUT
    assert board.cycles - before >= board.params.timeout_cycles
    assert _raw(board, encode_request(Op.INFO)).status == Status.OK


def test_framing_errors_do_not_wedge_the_link(board) -> None:  # type: ignore[no-untyped-def]
    board.reset_input()
    board.write(encode_request(Op.INFO), bad_stop_bits=True)
    board.clock(3 * board.params.timeout_cycles)  # whatever the receiver made of them has timed out
    board.reset_input()
    assert _raw(board, encode_request(Op.INFO)).status == Status.OK


def test_busy_core_refuses_memory_start_and_counters(device) -> None:  # type: ignore[no-untyped-def]
    """While a long GEMM runs, STATUS reports progress and everything else but INFO waits."""
    cq = CommandQueue(device)
    rec = KernelRecorder()
    with rec.loop(400), rec.loop(50):
        rec.uop(0, 0, 0)
    cq.gemm(rec.kernel("busy-test"), reset=True)
    insns = cq.finish()
    raw = encode_insns(insns, CFG).reshape(-1)
    buf = device.alloc(raw.size)
    buf.write(raw)
    link = device.link
    link.start(buf.addr, len(insns))
    s1 = link.status()
    assert s1["flags"] & FLAG_BUSY and not s1["flags"] & FLAG_DONE
    for call in (lambda: link.read(0, 4), lambda: link.write(0, b"abcd"), lambda: link.start(buf.addr, 1),
                 link.counters):
        with pytest.raises(LinkRefused, match="BUSY"):
            call()
    assert link.info()["config_id"] == config_id(CFG)
    s2 = link.status()
    assert s2["cycles"] > s1["cycles"]
    while not link.status()["flags"] & FLAG_DONE:
        device.transport.idle(2e-5)
    assert link.counters()["gemm_uops"] == 400 * 50
    cq.close()


# ---- the CLI against the simulated board behind a pseudo-terminal ------------------------

class PtyBridge:
    """Connects the simulated board to a pseudo-terminal: what is written to the terminal goes
    onto the board's UART line, what the board sends comes out of it. Runs in a thread."""

    def __init__(self, board) -> None:  # type: ignore[no-untyped-def]
        self.board = board
        self.master, self.slave = os.openpty()
        self.port = os.ttyname(self.slave)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        b = self.board
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0)
            if ready:
                b.write(os.read(self.master, 4096))
            b.clock(20 * b.byte_cycles)
            n = int(b._lib.vta_rtl_board_available(b._ptr))
            if n:
                os.write(self.master, b.read(n))
            elif not ready and not int(b._lib.vta_rtl_board_pending(b._ptr)):
                time.sleep(0.0005)

    def __enter__(self) -> PtyBridge:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)


def test_vta_run_target_fpga_over_a_serial_port(board, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from vta.cli import main

    board.reset_input()
    monkeypatch.delenv("VTA_FPGA_PORT", raising=False)
    with PtyBridge(board) as bridge:
        # no --config: the CLI asks the board which config it runs
        res = CliRunner().invoke(main, ["run", "--demo", "gemm", "--target", "fpga", "--port", bridge.port, "--json"])
        assert res.exit_code == 0, res.output
        r = json.loads(res.output[res.output.index("{"):])
        assert r["target"] == "fpga" and r["config"] == CFG.name and r["bit_exact"]
        res = CliRunner().invoke(main, ["run", "--demo", "gemm", "--target", "fpga", "--port", bridge.port,
                                        "--config", "default"])
        assert res.exit_code == 1 and "runs config tiny" in res.output and "--config tiny" in res.output
