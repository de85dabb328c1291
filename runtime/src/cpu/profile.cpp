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
    bool detail = false;  // a part of an op (a phase, a thread's wait): not in the totals
};

struct Table {
    std::mutex mu;
    std::vector<Counter> counters;  // a handful of names: a linear search is cheapest

    ~Table() { print(); }
    void add(const char* name, int64_t wall, int64_t cpu, bool detail = false) {
        std::lock_guard lock(mu);
        for (auto& c : counters) {
            if (c.name == name) {
                ++c.calls, c.wall_ns += wall, c.cpu_ns += cpu;
                return;
            }
        }
        counters.push_back({name, 1, wall, cpu, detail});
    }
    void print() {
        if (counters.empty()) return;
        std::sort(counters.begin(), counters.end(), [](auto& a, auto& b) {
            return a.detail != b.detail ? b.detail : a.detail ? a.name < b.name : a.cpu_ns > b.cpu_ns;
        });
        int64_t wall = 0, cpu = 0;
        for (auto& c : counters) {
            if (!c.detail) wall += c.wall_ns, cpu += c.cpu_ns;
        }
        std::fprintf(stderr, "profile (GGUF_PROFILE): ops of the CPU backend, caller thread's CPU time\n");
        std::fprintf(stderr, "%-22s %10s %12s %12s %12s %7s\n", "op", "calls", "wall ms", "cpu ms", "cpu us/call", "cpu %");
        for (auto& c : counters) {
            if (c.detail) continue;
            std::fprintf(stderr, "%-22s %10lld %12.1f %12.1f %12.1f %6.1f%%\n", c.name.c_str(), static_cast<long long>(c.calls),
                         c.wall_ns / 1e6, c.cpu_ns / 1e6, c.cpu_ns / 1e3 / static_cast<double>(c.calls),
                         100.0 * static_cast<double>(c.cpu_ns) / static_cast<double>(std::max<int64_t>(cpu, 1)));
        }
        std::fprintf(stderr, "%-22s %10s %12.1f %12.1f\n", "total", "", wall / 1e6, cpu / 1e6);
        bool header = false;
        for (auto& c : counters) {
            if (!c.detail) continue;
            if (!header) {
                std::fprintf(stderr, "parts of ops (wall time; not in the total)\n%-42s %10s %12s %12s\n", "part", "calls",
                             "wall ms", "us/call");
                header = true;
            }
            std::fprintf(stderr, "%-42s %10lld %12.1f %12.1f\n", c.name.c_str(), static_cast<long long>(c.calls),
                         c.wall_ns / 1e6, c.wall_ns / 1e3 / static_cast<double>(c.calls));
        }
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

int64_t profile_clock() { return now(CLOCK_MONOTONIC); }

void profile_part(const char* name, int64_t wall_ns) { table().add(name, wall_ns, 0, true); }

RegionStamps& region_stamps() {
    static RegionStamps r;
    return r;
}

void RegionStamps::start(int n_threads) {
    n_threads_ = std::min(n_threads, kMaxThreads);
    t0_ = profile_clock();
}

void RegionStamps::report(const char* prefix, std::initializer_list<const char*> phases) {
    const int64_t t1 = profile_clock();
    const std::string p(prefix);
    int64_t in = 0, out = 0;
    for (int t = 0; t < n_threads_; ++t) {
        in = std::max(in, stamps_[t][0] - t0_);
        out = std::max(out, stamps_[t][phases.size()]);
    }
    profile_part((p + " 0 fork").c_str(), in);
    int k = 1;
    for (const char* name : phases) {
        int64_t sum = 0, most = 0;
        for (int t = 0; t < n_threads_; ++t) {
            const int64_t d = stamps_[t][k] - stamps_[t][k - 1];
            sum += d;
            most = std::max(most, d);
        }
        profile_part((p + " " + std::to_string(k) + " " + name + " mean").c_str(), sum / std::max(n_threads_, 1));
        profile_part((p + " " + std::to_string(k) + " " + name + " slowest").c_str(), most);
        ++k;
    }
    profile_part((p + " " + std::to_string(k) + " join").c_str(), t1 - out);
}

void ProfileScope::start() {
    wall0_ = now(CLOCK_MONOTONIC);
    cpu0_ = now(CLOCK_THREAD_CPUTIME_ID);
}

void ProfileScope::stop() { table().add(name_, now(CLOCK_MONOTONIC) - wall0_, now(CLOCK_THREAD_CPUTIME_ID) - cpu0_); }

}  // namespace runtime::cpu
