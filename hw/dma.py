"""2-D strided DMA engines between DRAM (AXI4) and element streams (docs/rtl.md, "DMA engines").

A command ``{base, y_size, x_size, x_stride}`` (:data:`DmaCmd`, addresses in elements)
moves ``y_size`` rows of ``x_size`` elements; row ``r`` starts at element
``base + r·x_stride``. Elements are ``E`` bytes and the bus ``B`` bytes, both powers of
two; element ``e`` starts at byte ``e·E``.

Pipeline shared by both engines (:class:`BurstGenerator`)::

    cmd -> [bounds check] -> [row: first beat, beat count, lanes] -> [burst split] -> burst register

Each row covers the whole beats from the one holding its first byte to the one holding
its last byte; it is cut into INCR bursts of full beats (``arsize``/``awsize`` =
log2 B) so that no burst exceeds :data:`~vta.hw.axi.MAX_BURST_BEATS` beats or crosses a
:data:`~vta.hw.axi.BOUNDARY_BYTES` boundary (:func:`split_bursts` is the same rule in
Python). The generator emits one burst per cycle, including across row boundaries.
Along with its address and length each burst carries the element lanes
(``first_lane``, ``last_lane``) that its first and last beats hold when ``E < B``;
every other beat of a burst is full.

- :class:`ReadDMA` issues a burst only when its data FIFO has room reserved for every
  beat of it (credits), so ``rready`` never waits on the consumer: R beats of one
  client can never block the shared R channel behind a stalled consumer. Beats are
  unpacked to elements (``E < B``: one element per cycle from the lanes of each beat;
  ``E ≥ B``: ``E/B`` consecutive beats per element).
- :class:`WriteDMA` packs elements into beats (``E < B``: ``wstrb`` marks the lanes
  that belong to the row; ``E ≥ B``: each element is ``E/B`` full beats), with one AXI
  ID and bursts issued in row order, so where rows overlap the later row's bytes win.
- :class:`ReadArbiter` shares one AXI4 read port among several read engines.

Errors: ``DRAM_BOUNDS`` is checked when the command is accepted, before any transfer;
an error response sets ``BUS_ERROR``. After an error, and while ``abort`` is high (the
core stopping after an error elsewhere), the engine accepts no command, starts no further
burst, completes those already issued (a read drains and discards their beats and
delivers no further element, withdrawing one on offer; a write sends their remaining
beats with ``wstrb`` = 0 and consumes no further element), then drops ``busy``. ``error`` holds until the next
command is accepted. A command is accepted only while the engine is not ``busy``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from vta.isa.spec import DRAM_ADDR_BITS, ERROR_CODE_BITS, SIZE_BITS, ErrorCode

from .axi import (
    ADDR_BITS,
    BOUNDARY_BYTES,
    BURST_INCR,
    MAX_BURST_BEATS,
    RESP_OKAY,
    AXI4ReadSignature,
    AXI4WriteSignature,
)

__all__ = [
    "Burst",
    "BurstGenerator",
    "DmaCmd",
    "ReadArbiter",
    "ReadDMA",
    "WriteDMA",
    "burst_layout",
    "max_burst_beats",
    "plan_bursts",
    "split_bursts",
]

DmaCmd = data.StructLayout({
    "base": DRAM_ADDR_BITS,   # element address of the first row
    "y_size": SIZE_BITS,      # rows
    "x_size": SIZE_BITS,      # elements per row
    "x_stride": SIZE_BITS,    # elements from one row's start to the next
})
"""A 2-D transfer command, in elements of the engine's element size."""

AXI_LEN_BITS = 8  # arlen/awlen: beats - 1


def _log2(x: int, what: str) -> int:
    if x <= 0 or x & (x - 1):
        raise ValueError(f"{what} must be a power of two, got {x}")
    return x.bit_length() - 1


def _sizes(elem_bits: int, bus_bits: int) -> tuple[int, int]:
    """Element and bus bytes, checked: whole bytes, powers of two, bus at most a boundary."""
    if elem_bits % 8 or bus_bits % 8:
        raise ValueError(f"element ({elem_bits}) and bus ({bus_bits}) widths must be whole bytes")
    e, b = elem_bits // 8, bus_bits // 8
    _log2(e, "element bytes")
    _log2(b, "bus bytes")
    if b > BOUNDARY_BYTES:
        raise ValueError(f"a {b}-byte bus beat would cross a {BOUNDARY_BYTES}-byte boundary")
    return e, b


def max_burst_beats(bus_bytes: int) -> int:
    """The longest burst: AXI4's INCR limit, or fewer beats when a boundary is reached first."""
    return min(MAX_BURST_BEATS, BOUNDARY_BYTES // bus_bytes)


# ---- Python model -----------------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    """One INCR burst of a transfer: byte address, beats, and the element lanes of its
    first and last beats (0 and lanes-1 for beats that are full; 0 when ``E ≥ B``)."""

    addr: int
    beats: int
    first_lane: int = 0
    last_lane: int = 0


def split_bursts(addr: int, beats: int, bus_bytes: int) -> list[tuple[int, int]]:
    """Cut ``beats`` bus-aligned beats from byte ``addr`` into ``(addr, beats)`` bursts of at
    most :data:`MAX_BURST_BEATS` beats that do not cross a :data:`BOUNDARY_BYTES` boundary."""
    assert addr % bus_bytes == 0
    out = []
    while beats:
        n = min(beats, MAX_BURST_BEATS, (BOUNDARY_BYTES - addr % BOUNDARY_BYTES) // bus_bytes)
        out.append((addr, n))
        addr += n * bus_bytes
        beats -= n
    return out


def plan_bursts(base: int, y_size: int, x_size: int, x_stride: int, elem_bytes: int,
                bus_bytes: int) -> list[Burst]:
    """The bursts a command issues, in order (the hardware's rule, for tests)."""
    lanes = max(1, bus_bytes // elem_bytes)
    out = []
    if x_size == 0:
        return out
    for r in range(y_size):
        start = (base + r * x_stride) * elem_bytes
        end = start + x_size * elem_bytes
        first = start - start % bus_bytes
        beats = (end - 1) // bus_bytes - start // bus_bytes + 1
        first_lane = start % bus_bytes // elem_bytes if lanes > 1 else 0
        last_lane = (end - 1) % bus_bytes // elem_bytes if lanes > 1 else 0
        parts = split_bursts(first, beats, bus_bytes)
        for i, (a, n) in enumerate(parts):
            out.append(Burst(a, n, first_lane if i == 0 else 0,
                             last_lane if i == len(parts) - 1 else lanes - 1))
    return out


# ---- burst generation --------------------------------------------------------------


def burst_layout(elem_bits: int, bus_bits: int) -> data.StructLayout:
    """A burst as the generator emits it; ``len`` is beats - 1 (AXI ``arlen``/``awlen``).
    The lane fields exist only when ``E < B`` (elements narrower than a beat)."""
    e, b = _sizes(elem_bits, bus_bits)
    fields = {"addr": ADDR_BITS, "len": AXI_LEN_BITS}
    if e < b:
        lane_bits = _log2(b // e, "lanes")
        fields |= {"first_lane": lane_bits, "last_lane": lane_bits}
    return data.StructLayout(fields)


class BurstGenerator(wiring.Component):
    """Checks a command's bounds and turns it into a stream of bursts, one per cycle.

    ``accepted`` pulses when a command is taken (``cmd.ready`` is high only while idle
    and ``hold`` is low); ``bounds_error`` pulses when it fails the DRAM bounds check,
    in which case it emits nothing. ``abort`` stops emitting further bursts (a burst
    already in the output register stays there until taken). ``busy``: a command is
    being split or a burst waits in the output register.
    """

    def __init__(self, elem_bits: int, bus_bits: int) -> None:
        self.elem_bytes, self.bus_bytes = _sizes(elem_bits, bus_bits)
        self.lanes = max(1, self.bus_bytes // self.elem_bytes)
        super().__init__({
            "cmd": In(stream.Signature(DmaCmd)),
            "dram_limit": In(ADDR_BITS),
            "hold": In(1),
            "abort": In(1),
            "burst": Out(stream.Signature(burst_layout(elem_bits, bus_bits))),
            "accepted": Out(1),
            "bounds_error": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        le = _log2(self.elem_bytes, "element bytes")
        lb = _log2(self.bus_bytes, "bus bytes")
        lk = _log2(BOUNDARY_BYTES, "boundary")
        lanes_narrow = self.elem_bytes < self.bus_bytes
        cap = max_burst_beats(self.bus_bytes)

        cmd = Signal(DmaCmd)
        last_off = Signal(2 * SIZE_BITS)      # (y_size - 1) * x_stride
        row_addr = Signal(DRAM_ADDR_BITS)     # element address of the next row to load
        rows_left = Signal(SIZE_BITS)

        # The row being split: its next beat's byte address and remaining beats.
        beat_bits = ADDR_BITS - lb + 1
        seg_valid = Signal()
        seg_addr = Signal(ADDR_BITS)
        seg_beats = Signal(beat_bits)
        seg_first = Signal()
        if lanes_narrow:
            seg_first_lane = Signal.like(self.burst.payload.first_lane)
            seg_last_lane = Signal.like(self.burst.payload.last_lane)

        # ---- the next row's geometry, from row_addr (bounds are checked: fits ADDR_BITS)
        row_start = Signal(ADDR_BITS)
        row_end_m1 = Signal(ADDR_BITS)     # last byte of the row
        row_beats = Signal(beat_bits)
        m.d.comb += [
            row_start.eq(row_addr << le),
            row_end_m1.eq(row_start + (cmd.x_size << le) - 1),
            row_beats.eq(row_end_m1[lb:] - row_start[lb:] + 1),
        ]

        # ---- split the current row: the next burst's length
        to_boundary = Signal(lk - lb + 1)
        n = Signal(range(cap + 1))
        m.d.comb += to_boundary.eq((BOUNDARY_BYTES >> lb) - seg_addr[lb:lk])
        with m.If((seg_beats <= cap) & (seg_beats <= to_boundary)):
            m.d.comb += n.eq(seg_beats)
        with m.Elif(to_boundary <= cap):
            m.d.comb += n.eq(to_boundary)
        with m.Else():
            m.d.comb += n.eq(cap)
        seg_done = n == seg_beats

        out_free = ~self.burst.valid | self.burst.ready
        with m.If(self.burst.ready):
            m.d.sync += self.burst.valid.eq(0)
        emit = Signal()
        load_row = Signal()

        m.d.comb += self.busy.eq(self.burst.valid)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(~self.hold)
                with m.If(self.cmd.valid & self.cmd.ready):
                    p = self.cmd.payload
                    m.d.comb += self.accepted.eq(1)
                    m.d.sync += [
                        cmd.eq(p), row_addr.eq(p.base), rows_left.eq(p.y_size), seg_valid.eq(0),
                        last_off.eq((p.y_size - 1) * p.x_stride),
                    ]
                    with m.If((p.x_size != 0) & (p.y_size != 0)):
                        m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                end = Signal(DRAM_ADDR_BITS + 2 + le)   # one past the last byte: cannot overflow
                m.d.comb += end.eq((cmd.base + last_off + cmd.x_size) << le)
                with m.If(end > self.dram_limit):
                    m.d.comb += self.bounds_error.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "SPLIT"
            with m.State("SPLIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.abort):
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += emit.eq(seg_valid & out_free)
                    with m.If(~seg_valid | (out_free & seg_done)):   # the row is (being) finished
                        with m.If(rows_left != 0):
                            m.d.comb += load_row.eq(1)
                        with m.Else():
                            m.next = "IDLE"

        with m.If(emit):
            b = self.burst.payload
            m.d.sync += [
                self.burst.valid.eq(1),
                b.addr.eq(seg_addr), b.len.eq(n - 1),
                seg_addr.eq(seg_addr + (n << lb)), seg_beats.eq(seg_beats - n), seg_first.eq(0),
            ]
            if lanes_narrow:
                m.d.sync += [
                    b.first_lane.eq(Mux(seg_first, seg_first_lane, 0)),
                    b.last_lane.eq(Mux(seg_done, seg_last_lane, self.lanes - 1)),
                ]
            with m.If(seg_done):
                m.d.sync += seg_valid.eq(0)
        with m.If(load_row):
            m.d.sync += [
                seg_valid.eq(1), seg_first.eq(1),
                seg_addr.eq(Cat(Const(0, lb), row_start[lb:])), seg_beats.eq(row_beats),
                row_addr.eq(row_addr + cmd.x_stride), rows_left.eq(rows_left - 1),
            ]
            if lanes_narrow:
                m.d.sync += [seg_first_lane.eq(row_start[le:lb]), seg_last_lane.eq(row_end_m1[le:lb])]
        return m


def _desc_layout(elem_bits: int, bus_bits: int) -> data.StructLayout:
    """What the data path needs of each issued burst: its length and edge lanes."""
    return data.StructLayout({name: f.shape for name, f in burst_layout(elem_bits, bus_bits) if name != "addr"})


def _desc_of(burst: data.View, lay: data.StructLayout) -> Cat:
    """The descriptor of a burst (its fields but the address)."""
    return Cat(*(getattr(burst, name) for name, _ in lay))



class _LaneCursor:
    """Walks the element lanes of the beats of each burst (``E < B``).

    ``lane`` is the current element's lane in the current beat; ``closing`` is high on
    the beat's last element (the row's last lane on a row's final beat, else the top
    lane); ``last_beat`` on the burst's last beat. The head descriptor ``desc`` gives
    the burst's length and edge lanes.
    """

    def __init__(self, m: Module, desc: data.View, lanes: int) -> None:
        self.m = m
        self.mid = Signal()                 # some lanes of the current beat are done
        self.next_lane = Signal(range(lanes))
        self.beat = Signal(AXI_LEN_BITS)    # beat index within the burst
        self.lane = Signal(range(lanes))
        self.last_beat = Signal()
        self.closing = Signal()
        first = Mux(self.beat == 0, desc.first_lane, 0)
        m.d.comb += [
            self.lane.eq(Mux(self.mid, self.next_lane, first)),
            self.last_beat.eq(self.beat == desc.len),
            self.closing.eq(self.lane == Mux(self.last_beat, desc.last_lane, lanes - 1)),
        ]

    def step(self) -> None:
        """Advance past the current element (call under the transfer's condition)."""
        with self.m.If(self.closing):
            self.next_beat()
        with self.m.Else():
            self.m.d.sync += [self.mid.eq(1), self.next_lane.eq(self.lane + 1)]

    def next_beat(self) -> None:
        """Advance to the next beat (the burst's next, or the next burst's first)."""
        self.m.d.sync += [self.mid.eq(0), self.beat.eq(Mux(self.last_beat, 0, self.beat + 1))]


class ReadDMA(wiring.Component):
    """2-D read DMA: command in, AXI4 INCR read bursts out, elements out row by row.

    ``buffer_beats`` sizes the data FIFO (default: two of the longest bursts); a burst is
    issued only when that FIFO has room reserved for all its beats, so several bursts are
    in flight while the consumer keeps up and R is never held up by a slow consumer.
    ``max_bursts`` bounds the bursts in flight when ``E < B`` (their lane descriptors).
    Throughput when memory keeps up: one beat per cycle (``E ≥ B``), one element per
    cycle (``E < B``).
    """

    def __init__(self, elem_bits: int, bus_bits: int, *, buffer_beats: int | None = None,
                 max_bursts: int = 16) -> None:
        self.elem_bits, self.bus_bits = elem_bits, bus_bits
        self.elem_bytes, self.bus_bytes = _sizes(elem_bits, bus_bits)
        longest = max_burst_beats(self.bus_bytes)
        self.buffer_beats = buffer_beats or 2 * longest
        if self.buffer_beats < longest:
            raise ValueError(f"buffer_beats {self.buffer_beats} cannot hold the longest burst ({longest} beats)")
        self.max_bursts = max_bursts
        super().__init__({
            "cmd": In(stream.Signature(DmaCmd)),
            "elem": Out(stream.Signature(elem_bits)),
            "axi": Out(AXI4ReadSignature(bus_bits)),
            "dram_limit": In(ADDR_BITS),
            "abort": In(1),
            "error": Out(ERROR_CODE_BITS),
            "busy": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        narrow = self.elem_bytes < self.bus_bytes
        m.submodules.gen = gen = BurstGenerator(self.elem_bits, self.bus_bits)
        m.submodules.data = fifo = SyncFIFOBuffered(width=self.bus_bits, depth=self.buffer_beats)
        burst = gen.burst.payload
        beats = burst.len + 1
        failed = (self.error != ErrorCode.NONE) | self.abort  # abort: wind down as after an error
        credits = Signal(range(self.buffer_beats + 1), init=self.buffer_beats)  # data FIFO beats not reserved
        ar = self.axi
        ar_fire = ar.arvalid & ar.arready
        room = credits >= beats

        if narrow:
            desc_lay = _desc_layout(self.elem_bits, self.bus_bits)
            m.submodules.desc = desc_fifo = SyncFIFOBuffered(width=desc_lay.size, depth=self.max_bursts)
            desc = data.View(desc_lay, desc_fifo.r_data)
            m.d.comb += [
                desc_fifo.w_en.eq(ar_fire),
                desc_fifo.w_data.eq(_desc_of(burst, desc_lay)),
            ]
            room &= desc_fifo.w_rdy
            pending = desc_fifo.level != 0
        else:
            pending = Const(0)

        m.d.comb += [
            self.busy.eq(gen.busy | (credits != self.buffer_beats) | pending),
            gen.cmd.payload.eq(self.cmd.payload), gen.cmd.valid.eq(self.cmd.valid & ~self.abort),
            self.cmd.ready.eq(gen.cmd.ready & ~self.abort), gen.hold.eq(self.busy),
            gen.dram_limit.eq(self.dram_limit), gen.abort.eq(failed),
        ]
        with m.If(gen.accepted):
            m.d.sync += self.error.eq(ErrorCode.NONE)
        with m.If(gen.bounds_error):
            m.d.sync += self.error.eq(ErrorCode.DRAM_BOUNDS)

        # ---- AR: arvalid cannot fall before the handshake, as credits and room only grow meanwhile.
        m.d.comb += [
            ar.arvalid.eq(gen.burst.valid & room),
            ar.araddr.eq(burst.addr), ar.arlen.eq(burst.len),
            ar.arsize.eq(_log2(self.bus_bytes, "bus bytes")), ar.arburst.eq(BURST_INCR),
            gen.burst.ready.eq(ar_fire),
        ]
        m.d.sync += credits.eq(credits - Mux(ar_fire, beats, 0) + (fifo.r_en & fifo.r_rdy))

        # ---- R: room is reserved, so rready waits for nobody.
        m.d.comb += [ar.rready.eq(fifo.w_rdy), fifo.w_en.eq(ar.rvalid), fifo.w_data.eq(ar.rdata)]
        with m.If(ar.rvalid & ar.rready & (ar.rresp != RESP_OKAY)):
            m.d.sync += self.error.eq(ErrorCode.BUS_ERROR)

        # ---- beats to elements
        if narrow:
            cur = _LaneCursor(m, desc, self.bus_bytes // self.elem_bytes)
            with m.If(failed):   # drain the bursts in flight, deliver nothing
                m.d.comb += [fifo.r_en.eq(1), desc_fifo.r_en.eq(1)]
                m.d.sync += [cur.mid.eq(0), cur.beat.eq(0)]
            with m.Else():
                m.d.comb += [
                    self.elem.valid.eq(fifo.r_rdy & desc_fifo.r_rdy),
                    self.elem.payload.eq(fifo.r_data.word_select(cur.lane, self.elem_bits)),
                ]
                with m.If(self.elem.valid & self.elem.ready):
                    cur.step()
                    m.d.comb += [fifo.r_en.eq(cur.closing), desc_fifo.r_en.eq(cur.closing & cur.last_beat)]
        else:
            # E/B beats per element: the first k-1 are held, the element leaves with its
            # last beat straight from the FIFO.
            k = self.elem_bytes // self.bus_bytes
            if k > 1:
                part = Signal(range(k))                   # beats of the element taken so far
                held = Signal((k - 1) * self.bus_bits)
                last = part == k - 1
            else:
                part, held, last = None, Cat(), Const(1)
            with m.If(failed):   # drain the bursts in flight, deliver nothing
                m.d.comb += fifo.r_en.eq(1)
                if k > 1:
                    m.d.sync += part.eq(0)
            with m.Else():
                m.d.comb += [
                    self.elem.valid.eq(fifo.r_rdy & last),
                    self.elem.payload.eq(Cat(held, fifo.r_data)),
                    fifo.r_en.eq(~last | self.elem.ready),
                ]
                if k > 1:
                    with m.If(fifo.r_rdy & fifo.r_en):
                        m.d.sync += part.eq(Mux(last, 0, part + 1))
                        with m.Switch(part):
                            for i in range(k - 1):
                                with m.Case(i):
                                    m.d.sync += held.word_select(i, self.bus_bits).eq(fifo.r_data)
        return m


_W_BEAT_DEPTH = 4  # W register FIFO: enough for one beat per cycle through a SyncFIFOBuffered


class WriteDMA(wiring.Component):
    """2-D write DMA: command in, elements in row by row, AXI4 INCR write bursts out.

    Elements are packed into beats; with ``E < B`` a beat at either end of a row writes
    only the row's bytes (``wstrb``). AW runs ahead of W by up to ``max_bursts`` bursts;
    at most ``max_outstanding`` bursts await their B response. ``busy`` falls after the
    command's last B response. Throughput when memory keeps up: one beat per cycle
    (``E ≥ B``), one element per cycle (``E < B``).
    """

    def __init__(self, elem_bits: int, bus_bits: int, *, max_bursts: int = 16, max_outstanding: int = 32) -> None:
        self.elem_bits, self.bus_bits = elem_bits, bus_bits
        self.elem_bytes, self.bus_bytes = _sizes(elem_bits, bus_bits)
        self.max_bursts = max_bursts
        self.max_outstanding = max_outstanding
        super().__init__({
            "cmd": In(stream.Signature(DmaCmd)),
            "elem": In(stream.Signature(elem_bits)),
            "axi": Out(AXI4WriteSignature(bus_bits)),
            "dram_limit": In(ADDR_BITS),
            "abort": In(1),
            "error": Out(ERROR_CODE_BITS),
            "busy": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        e, b = self.elem_bytes, self.bus_bytes
        m.submodules.gen = gen = BurstGenerator(self.elem_bits, self.bus_bits)
        desc_lay = _desc_layout(self.elem_bits, self.bus_bits)
        m.submodules.desc = desc_fifo = SyncFIFOBuffered(width=desc_lay.size, depth=self.max_bursts)
        desc = data.View(desc_lay, desc_fifo.r_data)
        beat_lay = data.StructLayout({"data": self.bus_bits, "strb": b, "last": 1})
        m.submodules.wbuf = wbuf = SyncFIFOBuffered(width=beat_lay.size, depth=_W_BEAT_DEPTH)
        w_in = data.View(beat_lay, wbuf.w_data)
        w_out = data.View(beat_lay, wbuf.r_data)
        burst = gen.burst.payload
        failed = (self.error != ErrorCode.NONE) | self.abort  # abort: wind down as after an error
        outstanding = Signal(range(self.max_outstanding + 1))  # bursts awaiting B
        axi = self.axi
        aw_fire = axi.awvalid & axi.awready
        b_fire = axi.bvalid & axi.bready

        m.d.comb += [
            self.busy.eq(gen.busy | (outstanding != 0) | (desc_fifo.level != 0)),
            gen.cmd.payload.eq(self.cmd.payload), gen.cmd.valid.eq(self.cmd.valid & ~self.abort),
            self.cmd.ready.eq(gen.cmd.ready & ~self.abort), gen.hold.eq(self.busy),
            gen.dram_limit.eq(self.dram_limit), gen.abort.eq(failed),
        ]
        with m.If(gen.accepted):
            m.d.sync += self.error.eq(ErrorCode.NONE)
        with m.If(gen.bounds_error):
            m.d.sync += self.error.eq(ErrorCode.DRAM_BOUNDS)

        # ---- AW (awvalid cannot fall before the handshake: room only grows meanwhile)
        m.d.comb += [
            axi.awvalid.eq(gen.burst.valid & desc_fifo.w_rdy & (outstanding != self.max_outstanding)),
            axi.awaddr.eq(burst.addr), axi.awlen.eq(burst.len),
            axi.awsize.eq(_log2(b, "bus bytes")), axi.awburst.eq(BURST_INCR),
            gen.burst.ready.eq(aw_fire),
            desc_fifo.w_en.eq(aw_fire),
            desc_fifo.w_data.eq(_desc_of(burst, desc_lay)),
        ]
        m.d.sync += outstanding.eq(outstanding + aw_fire - b_fire)

        # ---- B
        m.d.comb += axi.bready.eq(1)
        with m.If(b_fire & (axi.bresp != RESP_OKAY)):
            m.d.sync += self.error.eq(ErrorCode.BUS_ERROR)

        # ---- W, from registered beats
        m.d.comb += [
            axi.wvalid.eq(wbuf.r_rdy), axi.wdata.eq(w_out.data), axi.wstrb.eq(w_out.strb),
            axi.wlast.eq(w_out.last), wbuf.r_en.eq(axi.wready),
        ]

        # ---- elements to beats; after an error the bursts issued are finished with empty strobes
        can_push = desc_fifo.r_rdy & wbuf.w_rdy
        if e < b:
            lanes = b // e
            cur = _LaneCursor(m, desc, lanes)
            acc = Signal(self.bus_bits)   # lanes gathered so far in this beat
            acc_strb = Signal(b)
            merged = Cat(*(Mux(cur.lane == i, self.elem.payload, acc.word_select(i, self.elem_bits))
                           for i in range(lanes)))
            merged_strb = Cat(*(Mux(cur.lane == i, Const((1 << e) - 1, e), acc_strb.word_select(i, e))
                                for i in range(lanes)))
            with m.If(failed):
                m.d.comb += [w_in.last.eq(cur.last_beat), wbuf.w_en.eq(can_push)]
                with m.If(can_push):
                    cur.next_beat()
                    m.d.sync += acc_strb.eq(0)
                    m.d.comb += desc_fifo.r_en.eq(cur.last_beat)
            with m.Else():
                m.d.comb += [
                    self.elem.ready.eq(desc_fifo.r_rdy & (~cur.closing | wbuf.w_rdy)),
                    w_in.data.eq(merged), w_in.strb.eq(merged_strb), w_in.last.eq(cur.last_beat),
                ]
                with m.If(self.elem.valid & self.elem.ready):
                    cur.step()
                    with m.If(cur.closing):
                        m.d.comb += [wbuf.w_en.eq(1), desc_fifo.r_en.eq(cur.last_beat)]
                        m.d.sync += acc_strb.eq(0)
                    with m.Else():
                        m.d.sync += [acc.eq(merged), acc_strb.eq(merged_strb)]
        else:
            # E/B beats per element, sent straight from the element stream's payload.
            k = e // b
            beat = Signal(AXI_LEN_BITS)   # beat of the current burst
            last_beat = beat == desc.len
            push = Signal()
            if k > 1:
                part = Signal(range(k))   # beat of the current element
                last_part = part == k - 1
                word = self.elem.payload.word_select(part, self.bus_bits)
            else:
                part, last_part, word = None, Const(1), self.elem.payload
            m.d.comb += w_in.last.eq(last_beat)
            with m.If(failed):
                m.d.comb += push.eq(can_push)
                if k > 1:
                    m.d.sync += part.eq(0)
            with m.Else():
                m.d.comb += [
                    push.eq(self.elem.valid & can_push),
                    self.elem.ready.eq(can_push & last_part),
                    w_in.data.eq(word),
                    w_in.strb.eq(Const((1 << b) - 1, b)),
                ]
                if k > 1:
                    with m.If(push):
                        m.d.sync += part.eq(Mux(last_part, 0, part + 1))
            m.d.comb += wbuf.w_en.eq(push)
            with m.If(push):
                m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
                m.d.comb += desc_fifo.r_en.eq(last_beat)
        return m


class ReadArbiter(wiring.Component):
    """Shares one AXI4 read port among ``n`` clients (``client0`` .. ``client{n-1}``).

    AR requests are granted round-robin into a register that drives the master's AR
    channel (one per cycle). The granted client's index goes into an ownership FIFO of
    ``depth`` entries (AR stalls while it is full); R beats, which return in order on the
    single ID, go to the client at its head until ``rlast``.
    """

    def __init__(self, n: int, bus_bits: int, *, depth: int = 8) -> None:
        if n < 1:
            raise ValueError("an arbiter needs at least one client")
        self.n, self.bus_bits, self.depth = n, bus_bits, depth
        members = {f"client{i}": In(AXI4ReadSignature(bus_bits)) for i in range(n)}
        members["axi"] = Out(AXI4ReadSignature(bus_bits))
        super().__init__(members)

    @property
    def clients(self) -> list:
        return [getattr(self, f"client{i}") for i in range(self.n)]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n = self.n
        clients = self.clients
        ar = self.axi
        m.submodules.owner = owner = SyncFIFO(width=max(1, (n - 1).bit_length()), depth=self.depth)
        # The client granted last (client0 goes first); one register bit at least.
        last = Signal(range(max(n, 2)), init=n - 1)

        # ---- AR: round-robin into the output register
        with m.If(ar.arready):
            m.d.sync += ar.arvalid.eq(0)
        with m.If((~ar.arvalid | ar.arready) & owner.w_rdy), m.Switch(last):
            for prev in range(n):
                with m.Case(prev):
                    for j in range(n):
                        i = (prev + 1 + j) % n
                        c = clients[i]
                        with (m.If if j == 0 else m.Elif)(c.arvalid):
                            m.d.comb += [c.arready.eq(1), owner.w_en.eq(1), owner.w_data.eq(i)]
                            m.d.sync += [
                                ar.arvalid.eq(1), ar.araddr.eq(c.araddr), ar.arlen.eq(c.arlen),
                                ar.arsize.eq(c.arsize), ar.arburst.eq(c.arburst), last.eq(i),
                            ]

        # ---- R: to the owner of the burst at the FIFO's head
        head = owner.r_data
        for i, c in enumerate(clients):
            m.d.comb += [
                c.rvalid.eq(ar.rvalid & owner.r_rdy & (head == i)),
                c.rdata.eq(ar.rdata), c.rresp.eq(ar.rresp), c.rlast.eq(ar.rlast),
            ]
        with m.Switch(head):
            for i, c in enumerate(clients):
                with m.Case(i):
                    m.d.comb += ar.rready.eq(owner.r_rdy & c.rready)
        m.d.comb += owner.r_en.eq(ar.rvalid & ar.rready & ar.rlast)
        return m
