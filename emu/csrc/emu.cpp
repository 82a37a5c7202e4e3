// The scheduler: up to kResident blocks at a time (interleaved: one scheduling round of each in
// turn, each with its own copy of the kernels' static shared memory, swapped in and out of the
// `circot_shared` section), and within a block every ready fiber runs until it waits or exits, in
// the mode's lane order (forward, reverse, or a seeded shuffle per round); then waiting
// collectives are resolved. Dynamic shared memory, and static shared memory in the section, is
// poisoned (0xff: NaN) at the start of every block of every launch. g++ ignores the section
// attribute on the statics of template functions (they stay in their own COMDAT .bss sections), so
// the crate's kernels declare their static shared memory in the (non-template) stamped entry
// points, where it is in the section: per block and poisoned. The mode may also perturb the SFU approximations (see mufu_*). A launch fails, with a message naming the kernel, block, warp,
// lane and mask, on what a GPU would hang on or silently corrupt (see `resolve` and `diagnose`).
#include "emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CIRCOT_EMU_VALGRIND 1
#endif

// The kernels' static __shared__ variables (host_compat.h places them in this section).
extern "C" {
extern char __start_circot_shared[] __attribute__((weak));
extern char __stop_circot_shared[] __attribute__((weak));
}

namespace circot_emu {
namespace {
constexpr unsigned kResident = 3;  // blocks in flight when interleaving

constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kMaxDynamicShared = 48 * 1024;  // without cudaFuncSetAttribute opt-in

enum class State { Ready, AtBarrier, InCollective, Exited };
enum class Op { ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All, SyncWarp };

const char* op_name(Op op) {
    switch (op) {
        case Op::ShflIdx: return "__shfl_sync";
        case Op::ShflUp: return "__shfl_up_sync";
        case Op::ShflDown: return "__shfl_down_sync";
        case Op::ShflXor: return "__shfl_xor_sync";
        case Op::Ballot: return "__ballot_sync";
        case Op::Any: return "__any_sync";
        case Op::All: return "__all_sync";
        case Op::SyncWarp: return "__syncwarp";
    }
    return "?";
}

struct Thread {
    Fiber fiber;
    uint3 idx;
    unsigned warp, lane;
    State state;
    // The collective this thread waits in.
    Op op;
    unsigned mask;
    uint32_t value;
    int arg, width;
    uint32_t result;
};

// Fiber stacks for one block, each above a PROT_NONE guard page so an overflow faults.
class Stacks {
   public:
    explicit Stacks(size_t n) : n_(n) {
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        stride_ = kStackBytes + page;
        base_ = static_cast<char*>(
            mmap(nullptr, n * stride_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
        if (base_ == MAP_FAILED) throw std::runtime_error("cannot map fiber stacks");
        for (size_t i = 0; i < n; ++i) {
            mprotect(base_ + i * stride_, page, PROT_NONE);
#ifdef CIRCOT_EMU_VALGRIND
            ids_.push_back(VALGRIND_STACK_REGISTER(stack(i), stack(i) + kStackBytes));
#endif
        }
    }
    ~Stacks() {
#ifdef CIRCOT_EMU_VALGRIND
        for (unsigned id : ids_) VALGRIND_STACK_DEREGISTER(id);
#endif
        munmap(base_, n_ * stride_);
    }
    Stacks(const Stacks&) = delete;
    Stacks& operator=(const Stacks&) = delete;
    char* stack(size_t i) const { return base_ + i * stride_ + (stride_ - kStackBytes); }

   private:
    size_t n_, stride_;
    char* base_;
#ifdef CIRCOT_EMU_VALGRIND
    std::vector<unsigned> ids_;
#endif
};

struct Block {
    uint3 idx;
    std::vector<Thread> threads;
    std::unique_ptr<Stacks> stacks;
    std::vector<char> shared;     // this block's static shared memory while another one runs
    std::vector<float4> dynamic;  // float4: 16-byte alignment
    uint64_t round = 0;
};

struct Launch {
    const KernelInfo* kernel;
    const void* params;
    dim3 grid, block;
    CircotEmuMode mode;
    Block* cur = nullptr;     // the block being scheduled
    Block* loaded = nullptr;  // the block whose static shared memory is in the section
    Thread* current = nullptr;
    Fiber scheduler;
    std::string error;
    uint64_t sfu[3] = {0, 0, 0};  // ex2, lg2, rcp evaluations
};

size_t static_shared_bytes() {
    return __start_circot_shared == nullptr ? 0 : static_cast<size_t>(__stop_circot_shared - __start_circot_shared);
}

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

Launch* g = nullptr;    // the launch in progress
std::mutex g_launch;    // kernels' shared memory is static storage: one launch at a time

std::string hex(unsigned m) {
    char buf[16];
    snprintf(buf, sizeof buf, "0x%08x", m);
    return buf;
}

std::string where(const Thread& t) {
    const uint3 b = g->cur->idx;
    return "kernel " + std::string(g->kernel->name) + ", block (" + std::to_string(b.x) + "," +
           std::to_string(b.y) + "," + std::to_string(b.z) + "), warp " + std::to_string(t.warp) + ", lane " +
           std::to_string(t.lane);
}

std::string in_collective(const Thread& t) { return std::string(op_name(t.op)) + " with mask " + hex(t.mask); }

void set_error(std::string msg) {
    if (g->error.empty()) g->error = std::move(msg);
}

// Called on a fiber: hands control back to the scheduler, which resumes it when it may go on.
void yield() { switch_fiber(g->current->fiber, g->scheduler); }

// Called on a fiber: records the error and never resumes it.
[[noreturn]] void fail(const std::string& msg) {
    set_error(msg);
    yield();
    __builtin_trap();  // the scheduler never resumes a failed or exited fiber
}

void fiber_main() {
    g->kernel->entry(g->params);
    g->current->state = State::Exited;
    yield();
    __builtin_trap();  // the scheduler never resumes a failed or exited fiber
}

uint32_t collective(Op op, unsigned mask, uint32_t value, int arg, int width) {
    Thread& t = *g->current;
    t.op = op;
    t.mask = mask;
    if (!((mask >> t.lane) & 1u)) fail(where(t) + ": " + in_collective(t) + ": the calling lane is not in the mask");
    if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
        fail(where(t) + ": " + in_collective(t) + ": width " + std::to_string(width) + " is not a power of two <= 32");
    }
    t.value = value;
    t.arg = arg;
    t.width = width;
    t.state = State::InCollective;
    yield();
    return t.result;
}

// Source lane of a shuffle, as PTX shfl.sync defines it (c = clamp and segment mask).
unsigned shuffle_source(Op op, unsigned lane, int b, int width) {
    const unsigned segmask = static_cast<unsigned>(32 - width);
    const unsigned clamp = op == Op::ShflUp ? 0u : 31u;
    const int min_lane = static_cast<int>(lane & segmask);
    const int max_lane = min_lane | static_cast<int>(clamp & ~segmask);
    const int l = static_cast<int>(lane);
    int j = l;
    bool ok = false;
    switch (op) {
        case Op::ShflUp: j = l - b, ok = j >= max_lane; break;
        case Op::ShflDown: j = l + b, ok = j <= max_lane; break;
        case Op::ShflXor: j = l ^ b, ok = j <= max_lane; break;
        default: j = min_lane | (b & 31 & static_cast<int>(~segmask)), ok = j <= max_lane; break;
    }
    return static_cast<unsigned>(ok ? j : l);
}

Thread* lane_of(unsigned warp, unsigned lane) {
    const size_t i = warp * 32u + lane;
    return i < g->cur->threads.size() ? &g->cur->threads[i] : nullptr;
}

// Completes the collective that every lane of t's mask waits in.
void complete(const Thread& t) {
    unsigned ballot = 0;
    for (unsigned l = 0; l < 32; ++l) {
        const Thread* o = lane_of(t.warp, l);
        if (((t.mask >> l) & 1u) && o->value != 0) ballot |= 1u << l;
    }
    for (unsigned l = 0; l < 32; ++l) {
        if (!((t.mask >> l) & 1u)) continue;
        Thread& o = *lane_of(t.warp, l);
        switch (t.op) {
            case Op::Ballot: o.result = ballot; break;
            case Op::Any: o.result = ballot != 0; break;
            case Op::All: o.result = ballot == t.mask; break;
            case Op::SyncWarp: break;
            default: {
                const unsigned src = shuffle_source(t.op, l, o.arg, o.width);
                if (!((t.mask >> src) & 1u)) {
                    set_error(where(o) + ": " + in_collective(o) + " reads lane " + std::to_string(src) +
                              ", which is not in the mask");
                    return;
                }
                o.result = lane_of(t.warp, src)->value;
            }
        }
    }
    for (unsigned l = 0; l < 32; ++l) {
        if ((t.mask >> l) & 1u) lane_of(t.warp, l)->state = State::Ready;
    }
}

// Completes every collective and barrier that can complete; reports whether any did.
bool resolve() {
    bool progress = false;
    for (Thread& t : g->cur->threads) {
        if (t.state != State::InCollective) continue;
        bool ready = true;
        for (unsigned l = 0; l < 32 && ready; ++l) {
            if (!((t.mask >> l) & 1u)) continue;
            const Thread* o = lane_of(t.warp, l);
            if (o == nullptr || o->state == State::Exited) {
                set_error(where(t) + ": " + in_collective(t) + ": lane " + std::to_string(l) +
                          (o == nullptr ? " does not exist (the block ends before it)" : " has exited"));
                return false;
            }
            ready = o->state == State::InCollective && o->op == t.op && o->mask == t.mask;
        }
        if (ready) {
            complete(t);
            if (!g->error.empty()) return false;
            progress = true;
        }
    }
    // __syncthreads completes when every thread that has not exited waits in it (exited threads
    // count as arrived, as on the hardware).
    size_t waiting = 0, live = 0;
    for (const Thread& t : g->cur->threads) {
        waiting += t.state == State::AtBarrier;
        live += t.state != State::Exited;
    }
    if (waiting > 0 && waiting == live) {
        for (Thread& t : g->cur->threads) {
            if (t.state == State::AtBarrier) t.state = State::Ready;
        }
        progress = true;
    }
    return progress;
}

// Nothing can run: names the most specific cause.
void diagnose() {
    const Thread* barrier = nullptr;
    const Thread* coll = nullptr;
    for (const Thread& t : g->cur->threads) {
        if (t.state == State::AtBarrier && barrier == nullptr) barrier = &t;
        if (t.state == State::InCollective && coll == nullptr) coll = &t;
    }
    if (barrier != nullptr && coll != nullptr) {
        set_error(where(*barrier) + ": __syncthreads while warp " + std::to_string(coll->warp) + ", lane " +
                  std::to_string(coll->lane) + " waits in " + in_collective(*coll));
        return;
    }
    for (const Thread& t : g->cur->threads) {
        if (t.state != State::InCollective) continue;
        for (unsigned l = 0; l < 32; ++l) {
            const Thread* o = lane_of(t.warp, l);
            if (o && o->state == State::InCollective && (o->op != t.op || o->mask != t.mask)) {
                set_error(where(t) + ": waits in " + in_collective(t) + " while lane " + std::to_string(l) +
                          " of the same warp waits in " + in_collective(*o));
                return;
            }
        }
    }
    set_error(where(coll ? *coll : *barrier) + ": deadlock in " +
              (coll ? in_collective(*coll) : std::string("__syncthreads")));
}

// Starts block `idx`: fibers at the entry, shared memory poisoned.
void start_block(Block& blk, uint3 idx) {
    const dim3 b = g->block;
    blk.idx = idx;
    blk.round = 0;
    blk.threads.assign(static_cast<size_t>(b.x) * b.y * b.z, Thread{});
    if (!blk.stacks) blk.stacks = std::make_unique<Stacks>(blk.threads.size());
    size_t i = 0;
    for (unsigned z = 0; z < b.z; ++z) {
        for (unsigned y = 0; y < b.y; ++y) {
            for (unsigned x = 0; x < b.x; ++x, ++i) {
                Thread& t = blk.threads[i];
                t.idx = {x, y, z};
                t.warp = static_cast<unsigned>(i / 32);
                t.lane = static_cast<unsigned>(i % 32);
                t.state = State::Ready;
                t.fiber.init(blk.stacks->stack(i), kStackBytes, fiber_main);
            }
        }
    }
    blk.shared.assign(static_shared_bytes(), static_cast<char>(0xff));
    for (float4& v : blk.dynamic) memset(static_cast<void*>(&v), 0xff, sizeof v);
    if (g->loaded == &blk) g->loaded = nullptr;  // its section contents are stale: reload poison
}

// Puts blk's static shared memory in the section (saving the previous block's).
void load_shared(Block& blk) {
    if (g->loaded == &blk) return;
    const size_t n = static_shared_bytes();
    if (n > 0) {
        if (g->loaded) memcpy(g->loaded->shared.data(), __start_circot_shared, n);
        memcpy(__start_circot_shared, blk.shared.data(), n);
    }
    g->loaded = &blk;
}

enum class Step { Running, Done, Failed };

// One scheduling round of blk: every ready fiber runs until it waits or exits, then collectives
// and barriers are resolved.
Step step_block(Block& blk) {
    g->cur = &blk;
    load_shared(blk);
    const size_t n = blk.threads.size();
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = g->mode.lane_order == CIRCOT_EMU_ORDER_REVERSE ? n - 1 - i : i;
    if (g->mode.lane_order == CIRCOT_EMU_ORDER_SHUFFLE) {
        uint64_t r = mix(g->mode.order_seed ^ mix(blk.idx.x + 65536ull * (blk.idx.y + 65536ull * blk.idx.z)) ^
                         mix(blk.round));
        for (size_t i = n; i > 1; --i) {
            r = mix(r);
            std::swap(order[i - 1], order[r % i]);
        }
    }
    ++blk.round;
    bool ran = false, live = false;
    for (size_t i : order) {
        Thread& t = blk.threads[i];
        if (t.state != State::Ready) continue;
        g->current = &t;
        switch_fiber(g->scheduler, t.fiber);
        if (!g->error.empty()) return Step::Failed;
        ran = true;
    }
    const bool resolved = resolve();
    if (!g->error.empty()) return Step::Failed;
    for (const Thread& t : blk.threads) live |= t.state != State::Exited;
    if (!live) return Step::Done;
    if (!ran && !resolved) {
        diagnose();
        return Step::Failed;
    }
    return Step::Running;
}

// Runs every block of the grid, kResident at a time in turn when interleaving.
void run_grid(size_t dyn_floats) {
    const dim3 gd = g->grid;
    const uint64_t total = 1ull * gd.x * gd.y * gd.z;
    const unsigned resident = g->mode.interleave_blocks ? kResident : 1;
    std::vector<Block> blocks(static_cast<size_t>(std::min<uint64_t>(resident, total)));
    for (Block& b : blocks) b.dynamic.resize(dyn_floats);
    std::vector<Block*> live;
    uint64_t next = 0;
    auto admit = [&](Block& b) {
        const uint64_t x = next % gd.x, y = next / gd.x % gd.y, z = next / gd.x / gd.y;
        ++next;
        start_block(b, {static_cast<unsigned>(x), static_cast<unsigned>(y), static_cast<unsigned>(z)});
        live.push_back(&b);
    };
    for (Block& b : blocks) admit(b);
    size_t turn = 0;
    while (!live.empty()) {
        turn %= live.size();
        Block& b = *live[turn];
        const Step st = step_block(b);
        if (st == Step::Failed) return;
        if (st == Step::Done) {
            live.erase(live.begin() + static_cast<long>(turn));
            if (next < total) {
                admit(b);
                std::swap(live.back(), live[turn]);  // the new block takes the finished one's turn
            }
        } else {
            ++turn;
        }
    }
}

std::string check_launch(const KernelInfo& k, const dim3& grid, const dim3& block, size_t dyn, size_t params_size) {
    const std::string name = k.name;
    if (params_size != k.params_size) {
        return "kernel " + name + " takes " + std::to_string(k.params_size) + " bytes of parameters, got " +
               std::to_string(params_size);
    }
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0) return "kernel " + name + ": empty grid or block";
    if (grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu) return "kernel " + name + ": grid too large";
    if (block.x > 1024 || block.y > 1024 || block.z > 64 || threads > k.max_threads) {
        return "kernel " + name + ": block of " + std::to_string(threads) + " threads exceeds its limit of " +
               std::to_string(k.max_threads);
    }
    if (dyn > kMaxDynamicShared) return "kernel " + name + ": more than 48 KiB of dynamic shared memory";
    return "";
}

CircotEmuMufu g_mufu{CIRCOT_EMU_MUFU_EXACT, 0, 0};

std::string run(const KernelInfo& k, const dim3& grid, const dim3& block, size_t dyn, const void* params,
                const CircotEmuMode& mode, uint64_t* sfu_counts) {
    std::lock_guard<std::mutex> lock(g_launch);
    Launch launch;
    launch.kernel = &k;
    launch.params = params;
    launch.grid = grid;
    launch.block = block;
    launch.mode = mode;
    g = &launch;
    g_mufu = mode.mufu;
#if defined(__SSE__)
    // The kernels are built with -ftz=true: flush subnormal results (FTZ) and inputs (DAZ) here too.
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);
#endif
    run_grid((dyn + sizeof(float4) - 1) / sizeof(float4));
#if defined(__SSE__)
    _mm_setcsr(csr);
#endif
    g = nullptr;
    g_mufu = {CIRCOT_EMU_MUFU_EXACT, 0, 0};
    if (sfu_counts) memcpy(sfu_counts, launch.sfu, sizeof launch.sfu);
    return launch.error;
}

// x moved by `ulps` units in the last place, kept exact where that would leave the normal range
// (0, infinities, NaN and results that would cross into subnormals or overflow).
float nudge(float x, int ulps) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t mag = u & 0x7fffffffu;
    if (ulps == 0 || mag < 0x00800000u || mag >= 0x7f800000u) return x;
    const int64_t m = static_cast<int64_t>(mag) + ulps;
    if (m < 0x00800000 || m >= 0x7f800000) return x;
    u = (u & 0x80000000u) | static_cast<uint32_t>(m);
    memcpy(&x, &u, sizeof x);
    return x;
}

// The error of one SFU evaluation of op at input bits `in`: +bias, or seeded in [-2, 2] ulp.
int ulp_error(uint32_t op, uint32_t in) {
    switch (g_mufu.kind) {
        case CIRCOT_EMU_MUFU_BIAS: return g_mufu.bias_ulps;
        case CIRCOT_EMU_MUFU_SEEDED: return static_cast<int>(mix(g_mufu.seed ^ mix((uint64_t{op} << 32) | in)) % 5) - 2;
        default: return 0;
    }
}

uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

}  // namespace

const uint3& thread_idx() { return g->current->idx; }
const uint3& block_idx() { return g->cur->idx; }
const dim3& block_dim() { return g->block; }
const dim3& grid_dim() { return g->grid; }
void* dynamic_shared() { return g->cur->dynamic.data(); }

// Each counts itself in the launch in progress (none outside a launch).
static void count_sfu(int op) {
    if (g) ++g->sfu[op];
}
float mufu_ex2(float x) {
    count_sfu(0);
    return nudge(exp2f(x), ulp_error(1, bits_of(x)));
}
float mufu_lg2(float x) {
    count_sfu(1);
    return nudge(log2f(x), ulp_error(2, bits_of(x)));
}
// __fdividef(a, b) = a·rcp.approx(b): the reciprocal's error carries into the quotient.
float mufu_div(float a, float b) {
    count_sfu(2);
    return nudge(a / b, ulp_error(3, bits_of(b)));
}

void syncthreads() {
    g->current->state = State::AtBarrier;
    yield();
}

void syncwarp(unsigned mask) { collective(Op::SyncWarp, mask, 0, 0, 32); }

uint32_t shfl(Shfl kind, unsigned mask, uint32_t value, int arg, int width) {
    static constexpr Op ops[] = {Op::ShflIdx, Op::ShflUp, Op::ShflDown, Op::ShflXor};
    return collective(ops[static_cast<int>(kind)], mask, value, arg, width);
}

unsigned vote(Vote kind, unsigned mask, int predicate) {
    static constexpr Op ops[] = {Op::Ballot, Op::Any, Op::All};
    return collective(ops[static_cast<int>(kind)], mask, predicate != 0, 0, 32);
}

}  // namespace circot_emu

extern "C" int circot_emu_launch(const char* kernel, const uint32_t grid[3], const uint32_t block[3],
                                 size_t dynamic_shared_bytes, const void* params, size_t params_size,
                                 const CircotEmuMode* mode, char* err, size_t err_cap,
                                 uint64_t* sfu_counts) {
    using namespace circot_emu;
    std::string msg;
    const KernelInfo* k = nullptr;
    for (size_t i = 0; i < kKernelCount; ++i) {
        if (strcmp(kKernels[i].name, kernel) == 0) k = &kKernels[i];
    }
    try {
        const dim3 gd{grid[0], grid[1], grid[2]}, bd{block[0], block[1], block[2]};
        msg = k == nullptr ? "unknown kernel " + std::string(kernel)
                           : check_launch(*k, gd, bd, dynamic_shared_bytes, params_size);
        if (msg.empty()) msg = run(*k, gd, bd, dynamic_shared_bytes, params, *mode, sfu_counts);
    } catch (const std::exception& e) {
        msg = std::string("emulator: ") + e.what();
    }
    if (msg.empty()) return 0;
    if (err_cap > 0) snprintf(err, err_cap, "%s", msg.c_str());
    return 1;
}

extern "C" const char* circot_emu_kernel_name(size_t i) {
    using namespace circot_emu;
    for (size_t j = 0; j < kKernelCount; ++j) {
        if (kKernels[j].listed && i-- == 0) return kKernels[j].name;
    }
    return nullptr;
}
