// Opt-in time per CPU operation (GGUF_PROFILE=1 in the environment): each instrumented op adds its
// wall time and the calling thread's CPU time to a named counter, and the table goes to stderr when
// the process exits. On a shared machine the CPU time is the figure to read: it leaves out the time
// the thread waited for a core. Off, an op costs one branch on a cached flag.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

namespace runtime::cpu {

bool profiling();

// A weight's name without its "blk.N." prefix ("attn_q.weight"): the same counter for every layer.
inline const char* weight_label(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return name.c_str();
    const size_t dot = name.find('.', 4);
    return dot == std::string::npos ? name.c_str() : name.c_str() + dot + 1;
}

// For the parts of an op (phases of a parallel region, how long threads wait): a monotonic clock in ns,
// and a part's wall time added to its own counter, listed under the ops and kept out of their totals.
// Only while profiling().
int64_t profile_clock();
void profile_part(const char* name, int64_t wall_ns);

// Where a parallel region's time goes (GGUF_PROFILE): each thread stamps the end of each phase, and
// report() adds, per phase, the mean and the slowest thread's time, plus the fork (until the last
// thread is in) and the join (from the last thread's end until the caller goes on). Static storage:
// one region at a time (the executor's ops do not nest), nothing allocated per call.
class RegionStamps {
public:
    static constexpr int kMaxPhases = 3, kMaxThreads = 512;
    void start(int n_threads);
    void mark(int tid, int phase) { stamps_[tid][phase] = profile_clock(); }  // phase 0: the thread is in
    // `phases` names phases 1..n (n <= kMaxPhases); counters are "<prefix> <name> mean" and so on.
    void report(const char* prefix, std::initializer_list<const char*> phases);

private:
    int64_t t0_ = 0;
    int n_threads_ = 0;
    int64_t stamps_[kMaxThreads][kMaxPhases + 1] = {};
};
RegionStamps& region_stamps();

class ProfileScope {
public:
    explicit ProfileScope(const char* name) : name_(profiling() ? name : nullptr) {
        if (name_) start();
    }
    ~ProfileScope() {
        if (name_) stop();
    }
    ProfileScope(const ProfileScope&) = delete;
    ProfileScope& operator=(const ProfileScope&) = delete;

private:
    void start();
    void stop();
    const char* name_;
    int64_t wall0_ = 0, cpu0_ = 0;
};

}  // namespace runtime::cpu
