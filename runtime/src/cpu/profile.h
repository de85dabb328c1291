// Opt-in time per CPU operation (GGUF_PROFILE=1 in the environment): each instrumented op adds its
// wall time and the calling thread's CPU time to a named counter, and the table goes to stderr when
// the process exits. On a shared machine the CPU time is the figure to read: it leaves out the time
// the thread waited for a core. Off, an op costs one branch on a cached flag.
#pragma once

#include <cstdint>
#include <string>

namespace runtime::cpu {

bool profiling();

// A weight's name without its "blk.N." prefix ("attn_q.weight"): the same counter for every layer.
inline const char* weight_label(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return name.c_str();
    const size_t dot = name.find('.', 4);
    return dot == std::string::npos ? name.c_str() : name.c_str() + dot + 1;
}

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
