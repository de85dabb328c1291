#include "profile.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace runtime::cpu {

namespace {

struct Counter {
    std::string name;  // a copy: the weights whose names label matmuls are gone when the table prints
    int64_t calls = 0, wall_ns = 0, cpu_ns = 0;
};

struct Table {
    std::mutex mu;
    std::vector<Counter> counters;  // a handful of names: a linear search is cheapest

    ~Table() { print(); }
    void add(const char* name, int64_t wall, int64_t cpu) {
        std::lock_guard lock(mu);
        for (auto& c : counters) {
            if (c.name == name) {
                ++c.calls, c.wall_ns += wall, c.cpu_ns += cpu;
                return;
            }
        }
        counters.push_back({name, 1, wall, cpu});
    }
    void print() {
        if (counters.empty()) return;
        std::sort(counters.begin(), counters.end(), [](auto& a, auto& b) { return a.cpu_ns > b.cpu_ns; });
        int64_t wall = 0, cpu = 0;
        for (auto& c : counters) wall += c.wall_ns, cpu += c.cpu_ns;
        std::fprintf(stderr, "profile (GGUF_PROFILE): ops of the CPU backend, caller thread's CPU time\n");
        std::fprintf(stderr, "%-22s %10s %12s %12s %12s %7s\n", "op", "calls", "wall ms", "cpu ms", "cpu us/call", "cpu %");
        for (auto& c : counters) {
            std::fprintf(stderr, "%-22s %10lld %12.1f %12.1f %12.1f %6.1f%%\n", c.name.c_str(), static_cast<long long>(c.calls),
                         c.wall_ns / 1e6, c.cpu_ns / 1e6, c.cpu_ns / 1e3 / static_cast<double>(c.calls),
                         100.0 * static_cast<double>(c.cpu_ns) / static_cast<double>(std::max<int64_t>(cpu, 1)));
        }
        std::fprintf(stderr, "%-22s %10s %12.1f %12.1f\n", "total", "", wall / 1e6, cpu / 1e6);
    }
};

Table& table() {
    static Table t;
    return t;
}

int64_t now(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

bool profiling() {
    static const bool on = [] {
        const char* v = std::getenv("GGUF_PROFILE");
        if (!v || !*v || std::string(v) == "0") return false;
        table();  // constructed now, so destroyed (and printed) after everything that profiles
        return true;
    }();
    return on;
}

void ProfileScope::start() {
    wall0_ = now(CLOCK_MONOTONIC);
    cpu0_ = now(CLOCK_THREAD_CPUTIME_ID);
}

void ProfileScope::stop() { table().add(name_, now(CLOCK_MONOTONIC) - wall0_, now(CLOCK_THREAD_CPUTIME_ID) - cpu0_); }

}  // namespace runtime::cpu
