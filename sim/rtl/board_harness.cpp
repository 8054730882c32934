// Verilator harness for `vta_board` (vta.hw.board.BoardTop): the whole board-level design with
// its UART in the loop, and a host-side UART model that drives the board's `uart_rx` line and
// samples its `uart_tx` line bit by bit, `divisor` clock cycles per bit, 8N1, LSB first.
//
// Python (vta.sim.rtl.board_sim) speaks the host-link protocol at the byte level through the
// C ABI below (named vta_rtl_*, the symbols build.py exports): vta_rtl_board_send queues bytes for the line, vta_rtl_board_recv clocks the design
// until enough bytes came back. Everything per cycle happens here in C++.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "Vvta_board.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

#define VTA_API extern "C" __attribute__((visibility("default")))

namespace {

constexpr int RESET_CYCLES = 4;

// Host → board: serializes queued bytes onto a line (idle high), one bit every `divisor` cycles.
struct LineSender {
    unsigned divisor;
    std::deque<uint16_t> queue;  // 10-bit frames: start bit, 8 data bits, stop bit (bit 0 first)
    uint16_t frame = 0;
    int bits_left = 0;           // bits of `frame` still to put on the line
    unsigned timer = 0;          // cycles the current bit has been on the line

    void push(uint8_t byte, bool good_stop) { queue.push_back(uint16_t(byte) << 1 | uint16_t(good_stop) << 9); }
    bool idle() const { return bits_left == 0 && queue.empty(); }

    // The line level for this cycle; advances by one cycle.
    bool step() {
        if (bits_left == 0) {
            if (queue.empty()) return true;
            frame = queue.front();
            queue.pop_front();
            bits_left = 10;
            timer = 0;
        }
        const bool level = frame & 1;
        if (++timer == divisor) {
            timer = 0;
            frame >>= 1;
            --bits_left;
        }
        return level;
    }
};

// Board → host: a receiver like the RTL's, sampling in the middle of each bit.
struct LineReceiver {
    unsigned divisor;
    std::deque<uint8_t> bytes;
    uint64_t framing_errors = 0;
    int state = 0;               // 0 idle, 1 start bit, 2 data bits, 3 stop bit
    unsigned timer = 0;
    int bit = 0;
    uint8_t shift = 0;

    void step(bool line) {
        switch (state) {
        case 0:
            if (!line) { state = 1; timer = divisor / 2; }
            break;
        case 1:
            if (--timer == 0) {
                if (line) state = 0;  // a glitch, not a start bit
                else { state = 2; timer = divisor; bit = 0; shift = 0; }
            }
            break;
        case 2:
            if (--timer == 0) {
                shift = uint8_t(shift >> 1 | (line ? 0x80 : 0));
                timer = divisor;
                if (++bit == 8) state = 3;
            }
            break;
        default:
            if (--timer == 0) {
                if (line) bytes.push_back(shift);
                else ++framing_errors;
                state = 0;
            }
        }
    }
};

struct Board {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vvta_board> top;
#if VM_TRACE
    std::unique_ptr<VerilatedVcdC> vcd;
#endif
    LineSender sender;
    LineReceiver receiver;
    uint64_t cycle = 0;

    void eval() {
        top->eval();
#if VM_TRACE
        if (vcd) vcd->dump(ctx->time());
#endif
        ctx->timeInc(1);
    }

    void tick() {
        top->uart_rx = sender.step();
        top->clk = 0;
        eval();
        receiver.step(top->uart_tx);  // the line as the board drives it in this cycle
        top->clk = 1;
        eval();
        ++cycle;
    }

    void reset() {
        top->uart_rx = 1;
        top->rst = 1;
        for (int i = 0; i < RESET_CYCLES; ++i) tick();
        top->rst = 0;
        tick();
    }
};

thread_local std::string last_error;

}  // namespace

VTA_API const char* vta_rtl_board_last_error() { return last_error.c_str(); }
VTA_API int vta_rtl_board_has_trace() { return VM_TRACE; }

// A board whose UART runs at `divisor` clock cycles per bit, reset and idle. NULL on failure.
VTA_API void* vta_rtl_board_create(uint32_t divisor, const char* vcd_path) {
    if (divisor < 4) {
        last_error = "the UART divisor must be at least 4 cycles per bit";
        return nullptr;
    }
    try {
        auto b = std::make_unique<Board>();
        b->ctx = std::make_unique<VerilatedContext>();
        b->sender.divisor = divisor;
        b->receiver.divisor = divisor;
#if VM_TRACE
        if (vcd_path) b->ctx->traceEverOn(true);
#else
        if (vcd_path) {
            last_error = "this library was built without tracing; build with trace=True";
            return nullptr;
        }
#endif
        b->top = std::make_unique<Vvta_board>(b->ctx.get(), "TOP");
#if VM_TRACE
        if (vcd_path) {
            b->vcd = std::make_unique<VerilatedVcdC>();
            b->top->trace(b->vcd.get(), 99);
            b->vcd->open(vcd_path);
            if (!b->vcd->isOpen()) {
                last_error = std::string("cannot open waveform file ") + vcd_path;
                return nullptr;
            }
        }
#endif
        b->reset();
        return b.release();
    } catch (const std::exception& e) {
        last_error = e.what();
        return nullptr;
    }
}

VTA_API void vta_rtl_board_destroy(void* h) {
    auto* b = static_cast<Board*>(h);
    if (!b) return;
#if VM_TRACE
    if (b->vcd) b->vcd->close();
#endif
    b->top->final();
    delete b;
}

VTA_API uint64_t vta_rtl_board_cycles(void* h) { return static_cast<Board*>(h)->cycle; }
VTA_API uint32_t vta_rtl_board_status(void* h) { return static_cast<Board*>(h)->top->status; }
VTA_API uint64_t vta_rtl_board_framing_errors(void* h) { return static_cast<Board*>(h)->receiver.framing_errors; }
VTA_API uint64_t vta_rtl_board_pending(void* h) {  // bytes queued for the line, not yet fully sent
    auto* b = static_cast<Board*>(h);
    return b->sender.queue.size() + (b->sender.bits_left ? 1 : 0);
}

// Queue `n` bytes for the line. With `bad_stop`, their stop bits are low (framing errors).
VTA_API void vta_rtl_board_send(void* h, const uint8_t* data, uint64_t n, int bad_stop) {
    auto* b = static_cast<Board*>(h);
    for (uint64_t i = 0; i < n; ++i) b->sender.push(data[i], !bad_stop);
}

// Clock until `n` received bytes are available or `max_cycles` have passed; move up to `n`
// of them into `out`. Returns how many were moved.
VTA_API uint64_t vta_rtl_board_recv(void* h, uint8_t* out, uint64_t n, uint64_t max_cycles) {
    auto* b = static_cast<Board*>(h);
    for (uint64_t c = 0; b->receiver.bytes.size() < n && c < max_cycles; ++c) b->tick();
#if VM_TRACE
    if (b->vcd) b->vcd->flush();
#endif
    uint64_t got = 0;
    while (got < n && !b->receiver.bytes.empty()) {
        out[got++] = b->receiver.bytes.front();
        b->receiver.bytes.pop_front();
    }
    return got;
}

// Clock `cycles` cycles (the line keeps sending what is queued); received bytes are kept.
VTA_API void vta_rtl_board_clock(void* h, uint64_t cycles) {
    auto* b = static_cast<Board*>(h);
    for (uint64_t c = 0; c < cycles; ++c) b->tick();
}

// Received bytes not yet taken by vta_rtl_board_recv.
VTA_API uint64_t vta_rtl_board_available(void* h) { return static_cast<Board*>(h)->receiver.bytes.size(); }
