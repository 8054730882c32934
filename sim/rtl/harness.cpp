// Verilator harness for `vta_core`: an AXI4 slave memory (the DRAM), a host driver
// (start a run, clock until done) and a C ABI that Python calls through ctypes.
//
// Everything per cycle happens here in C++; Python only calls run() once per program.
// Port names and the counter list follow docs/rtl.md; `vta_counters.h` is generated at
// build time from vta.hw.csr.COUNTERS so that the two can never disagree.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "Vvta_core.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif
#include "vta_counters.h"  // VTA_COUNTERS(X): X(cycles) X(load_insns) ...

#define VTA_API extern "C" __attribute__((visibility("default")))

// Verilator escapes "__" in port names as "___05F": the Verilog port `m_axi__arvalid`
// is the C++ member `m_axi___05Farvalid`, `counters__cycles` is `counters___05Fcycles`.
#define AXI(sig) m_axi___05F##sig
#define CTR(name) counters___05F##name

namespace {

// ---- bus data: 64-bit ports are QData (uint64_t), wider ones VlWide<N> (N 32-bit words,
// least significant first). On a little-endian host both are the beat's bytes in address
// order, so a memcpy moves a whole beat.
using RData = std::remove_reference_t<decltype(std::declval<Vvta_core>().AXI(rdata))>;
constexpr unsigned BUS_BYTES = sizeof(RData);
static_assert(BUS_BYTES == 8 || BUS_BYTES == 16 || BUS_BYTES == 32 || BUS_BYTES == 64,
              "m_axi__rdata must be 64, 128, 256 or 512 bits wide");
static_assert(sizeof(std::remove_reference_t<decltype(std::declval<Vvta_core>().AXI(wdata))>) == BUS_BYTES,
              "m_axi__wdata and m_axi__rdata differ in width");

template <typename T> void put_beat(T& port, const uint8_t* src) { std::memcpy(&port, src, BUS_BYTES); }
template <typename T> void get_beat(const T& port, uint8_t* dst) { std::memcpy(dst, &port, BUS_BYTES); }

constexpr uint8_t RESP_OKAY = 0, RESP_SLVERR = 2;
constexpr uint8_t BURST_INCR = 1;
constexpr size_t MAX_OUTSTANDING = 16;  // AR and AW requests the memory queues before stalling
constexpr int RESET_CYCLES = 4;

// One burst (read or write) accepted on its address channel.
struct Burst {
    uint64_t addr;      // start address
    unsigned beats;     // arlen/awlen + 1
    unsigned size;      // bytes per beat (1 << arsize)
    bool legal = false; // see is_legal(); an illegal burst is answered with SLVERR, touching nothing
    unsigned done = 0;  // beats transferred so far
    uint64_t ready_at;  // cycle from which the first R beat (or the B response) may be presented
    bool error = false; // some beat fell outside the DRAM (write bursts)

    Burst() = default;
    Burst(uint64_t addr, unsigned len, unsigned size_log2, unsigned burst, uint64_t ready_at)
        : addr(addr), beats(len + 1), size(1u << size_log2), ready_at(ready_at) {
        legal = is_legal(burst);
    }

    // The AXI4 rules the core promises to keep (docs/rtl.md): INCR bursts, beats no wider
    // than the bus, no burst crossing a 4 KiB boundary. Breaking one is a bug in the core,
    // which a slave error makes visible (the core reports BUS_ERROR) instead of hiding.
    bool is_legal(unsigned burst) const {
        const uint64_t first = addr & ~uint64_t(size - 1);
        const uint64_t last = first + uint64_t(beats) * size - 1;
        return burst == BURST_INCR && size <= BUS_BYTES && first >> 12 == last >> 12;
    }

    // Bus-aligned address of beat `i`. The whole aligned bus word is returned/written,
    // which also serves narrow or unaligned transfers correctly (AXI byte lanes follow
    // the address).
    uint64_t beat_addr(unsigned i) const {
        const uint64_t a = i == 0 ? addr : (addr & ~uint64_t(size - 1)) + uint64_t(i) * size;
        return a & ~uint64_t(BUS_BYTES - 1);
    }
};

struct Sim {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vvta_core> top;
#if VM_TRACE
    std::unique_ptr<VerilatedVcdC> vcd;
#endif
    std::vector<uint8_t> dram;
    uint64_t read_latency, write_latency;
    uint64_t cycle = 0;  // clock cycles simulated since creation

    std::deque<Burst> reads;   // accepted AR bursts, answered in order (single ID)
    std::deque<Burst> writes;  // accepted AW bursts whose W beats are not all in
    std::deque<Burst> resps;   // write bursts complete, waiting for their B response

    bool in_dram(uint64_t a) const { return a + BUS_BYTES <= dram.size(); }

    // Half-cycle evaluation with optional waveform dump.
    void eval() {
        top->eval();
#if VM_TRACE
        if (vcd) vcd->dump(ctx->time());
#endif
        ctx->timeInc(1);
    }

    // One clock cycle. The memory's outputs are a function of its state only (never of
    // the core's outputs in the same cycle), so there is no combinational loop between
    // the two: drive them, let the core settle with clk low, sample both sides of each
    // handshake, then apply the rising edge to the core and the memory together.
    void tick() {
        Vvta_core& t = *top;

        // -- drive the memory's outputs for this cycle. The memory shares the core's reset:
        // while rst is high it takes no request, so a core stopped mid-transfer (cycle limit)
        // cannot leave stale bursts behind for the next run.
        const bool live = !t.rst;
        t.AXI(arready) = live && reads.size() < MAX_OUTSTANDING;
        t.AXI(awready) = live && writes.size() + resps.size() < MAX_OUTSTANDING;
        t.AXI(wready) = live && !writes.empty();  // a slave may wait for AW before taking W beats
        const bool r_valid = live && !reads.empty() && cycle >= reads.front().ready_at;
        t.AXI(rvalid) = r_valid;
        if (r_valid) {
            const Burst& b = reads.front();
            const uint64_t a = b.beat_addr(b.done);
            const bool ok = b.legal && in_dram(a);
            static const uint8_t zeros[64] = {};
            put_beat(t.AXI(rdata), ok ? &dram[a] : zeros);
            t.AXI(rresp) = ok ? RESP_OKAY : RESP_SLVERR;
            t.AXI(rlast) = b.done + 1 == b.beats;
        } else {
            t.AXI(rlast) = 0;
        }
        const bool b_valid = live && !resps.empty() && cycle >= resps.front().ready_at;
        t.AXI(bvalid) = b_valid;
        t.AXI(bresp) = b_valid && resps.front().error ? RESP_SLVERR : RESP_OKAY;

        t.clk = 0;
        eval();

        // -- sample handshakes (both sides see the same values at the rising edge)
        const bool ar = t.AXI(arvalid) && t.AXI(arready);
        const bool r = r_valid && t.AXI(rready);
        const bool aw = t.AXI(awvalid) && t.AXI(awready);
        const bool w = t.AXI(wvalid) && t.AXI(wready);
        const bool bh = b_valid && t.AXI(bready);
        Burst ar_b{}, aw_b{};
        if (ar) ar_b = Burst(t.AXI(araddr), t.AXI(arlen), t.AXI(arsize), t.AXI(arburst), cycle + read_latency);
        if (aw) aw_b = Burst(t.AXI(awaddr), t.AXI(awlen), t.AXI(awsize), t.AXI(awburst), 0);
        if (w) write_beat(t);  // reads wdata/wstrb before the edge changes them

        t.clk = 1;
        eval();
        ++cycle;

        // -- the memory's state changes at the same edge
        if (r && ++reads.front().done == reads.front().beats) reads.pop_front();
        if (bh) resps.pop_front();
        if (ar) reads.push_back(ar_b);
        if (aw) writes.push_back(aw_b);
    }

    // Accept one W beat for the oldest write burst, honouring wstrb. Beats outside the
    // DRAM (or of an illegal burst) write nothing and turn the response into SLVERR.
    void write_beat(Vvta_core& t) {
        Burst& b = writes.front();
        const uint64_t a = b.beat_addr(b.done);
        if (b.legal && in_dram(a)) {
            uint8_t data[BUS_BYTES];
            get_beat(t.AXI(wdata), data);
            const uint64_t strb = t.AXI(wstrb);
            for (unsigned i = 0; i < BUS_BYTES; ++i)
                if (strb >> i & 1) dram[a + i] = data[i];
        } else {
            b.error = true;
        }
        // The burst ends on its last beat by count; wlast is the master's business.
        if (++b.done == b.beats) {
            b.ready_at = cycle + write_latency;  // as for reads: latency 1 answers in the next cycle
            resps.push_back(b);
            writes.pop_front();
        }
    }

    void reset() {
        reads.clear();  // transfers in flight are dropped with the core's state
        writes.clear();
        resps.clear();
        top->start = 0;
        top->rst = 1;
        for (int i = 0; i < RESET_CYCLES; ++i) tick();
        top->rst = 0;
        tick();
    }
};

thread_local std::string last_error;

}  // namespace

// ---- C ABI ---------------------------------------------------------------------------

VTA_API const char* vta_rtl_last_error() { return last_error.c_str(); }
VTA_API unsigned vta_rtl_bus_bytes() { return BUS_BYTES; }
VTA_API unsigned vta_rtl_num_counters() {
#define X(name) +1
    return 0 VTA_COUNTERS(X);
#undef X
}
VTA_API const char* vta_rtl_counter_name(unsigned i) {
#define X(name) #name,
    static const char* names[] = {VTA_COUNTERS(X)};
#undef X
    return i < sizeof(names) / sizeof(names[0]) ? names[i] : nullptr;
}
VTA_API int vta_rtl_has_trace() { return VM_TRACE; }

// A model with `dram_bytes` of zeroed DRAM, reset and ready. Latencies are in cycles
// (at least 1). Returns NULL on failure (see vta_rtl_last_error).
VTA_API void* vta_rtl_create(uint64_t dram_bytes, uint32_t read_latency, uint32_t write_latency,
                             const char* vcd_path) {
    if (dram_bytes == 0 || dram_bytes % BUS_BYTES || dram_bytes > 0xFFFFFFFFull) {
        last_error = "dram_bytes must be a positive multiple of the bus width below 4 GiB";
        return nullptr;
    }
    try {
        auto s = std::make_unique<Sim>();
        s->ctx = std::make_unique<VerilatedContext>();
        s->dram.assign(dram_bytes, 0);
        s->read_latency = std::max<uint32_t>(read_latency, 1);
        s->write_latency = std::max<uint32_t>(write_latency, 1);
#if VM_TRACE
        if (vcd_path) s->ctx->traceEverOn(true);  // before the model exists, so it builds its trace code
#else
        if (vcd_path) {
            last_error = "this library was built without tracing; build with trace=True";
            return nullptr;
        }
#endif
        s->top = std::make_unique<Vvta_core>(s->ctx.get(), "TOP");
#if VM_TRACE
        if (vcd_path) {
            s->vcd = std::make_unique<VerilatedVcdC>();
            s->top->trace(s->vcd.get(), 99);
            s->vcd->open(vcd_path);
            if (!s->vcd->isOpen()) {
                last_error = std::string("cannot open waveform file ") + vcd_path;
                return nullptr;
            }
        }
#endif
        s->reset();
        return s.release();
    } catch (const std::exception& e) {
        last_error = e.what();
        return nullptr;
    }
}

VTA_API void vta_rtl_destroy(void* h) {
    auto* s = static_cast<Sim*>(h);
    if (!s) return;
#if VM_TRACE
    if (s->vcd) s->vcd->close();
#endif
    s->top->final();
    delete s;
}

VTA_API uint8_t* vta_rtl_dram(void* h) { return static_cast<Sim*>(h)->dram.data(); }
VTA_API uint64_t vta_rtl_dram_bytes(void* h) { return static_cast<Sim*>(h)->dram.size(); }
VTA_API uint64_t vta_rtl_cycles(void* h) { return static_cast<Sim*>(h)->cycle; }

// Assert rst for a few cycles and drop transfers in flight. On-chip buffers keep their
// contents (the core does not clear them on reset, by design).
VTA_API void vta_rtl_reset(void* h) { static_cast<Sim*>(h)->reset(); }

// Clock until `done` or `budget` cycles, then report the counters and error registers.
static int clock_and_report(Sim* s, uint64_t budget, uint64_t* counters_out, uint32_t* error_code,
                            uint32_t* error_insn) {
    Vvta_core& t = *s->top;
    for (uint64_t n = 0; !t.done && n < budget; ++n) s->tick();
#if VM_TRACE
    if (s->vcd) s->vcd->flush();  // a run's waveform is readable as soon as it returns
#endif
    unsigned i = 0;
#define X(name) counters_out[i++] = t.CTR(name);
    VTA_COUNTERS(X)
#undef X
    *error_code = t.error;
    *error_insn = t.error_insn;
    return !t.done ? 2 : t.error ? 1 : 0;
}

// Run the instruction stream: pulse start, clock until `done` or `max_cycles` in all.
// counters_out receives vta_rtl_num_counters() values in COUNTERS order.
// Returns 0 done, 1 done with an error (error_code/error_insn set), 2 cycle limit reached
// (the core is left as it is: vta_rtl_resume continues, vta_rtl_reset abandons the run),
// 3 the core was still busy with an unfinished run (nothing started).
VTA_API int vta_rtl_run(void* h, uint32_t insn_addr, uint32_t insn_count, uint64_t max_cycles,
                        uint64_t* counters_out, uint32_t* error_code, uint32_t* error_insn) {
    auto* s = static_cast<Sim*>(h);
    Vvta_core& t = *s->top;
    if (t.busy) {
        clock_and_report(s, 0, counters_out, error_code, error_insn);
        return 3;
    }
    t.insn_addr = insn_addr;
    t.insn_count = insn_count;
    t.dram_limit = static_cast<uint32_t>(s->dram.size());
    t.start = 1;
    s->tick();  // the core sees start at this edge and clears done (docs/rtl.md)
    t.start = 0;
    return clock_and_report(s, max_cycles ? max_cycles - 1 : 0, counters_out, error_code, error_insn);
}

// Continue a run that returned 2, for up to `max_cycles` more cycles; same results as run.
// (Python runs long programs in slices this way, so Ctrl-C is noticed between slices.)
VTA_API int vta_rtl_resume(void* h, uint64_t max_cycles, uint64_t* counters_out, uint32_t* error_code,
                           uint32_t* error_insn) {
    return clock_and_report(static_cast<Sim*>(h), max_cycles, counters_out, error_code, error_insn);
}
