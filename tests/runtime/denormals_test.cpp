// The CPU backend's threads flush subnormal results to zero and read subnormal operands as zero
// (runtime/src/cpu/denormals.h): after flush_denormals on the calling thread and on each thread of a
// later parallel region, and after a CpuExecutor is made.
#include <gtest/gtest.h>
#include <omp.h>
#include <pmmintrin.h>
#include <xmmintrin.h>

#include <thread>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/denormals.h"

namespace {

// 1e-30 * 1e-10 is 1e-40, subnormal; a flushing thread gets 0. 1e-40 read as an operand is 0 too.
bool flushes_arithmetic() {
    volatile float a = 1e-30f, b = 1e-10f, sub = 1e-40f, one = 1.0f;
    return a * b == 0.0f && sub * one == 0.0f && sub + 0.0f == 0.0f;
}

std::vector<int> team_flushes(int n_threads) {
    std::vector<int> ok(static_cast<size_t>(n_threads), -1);
#pragma omp parallel num_threads(n_threads)
    {
        const int t = omp_get_thread_num();
        ok[static_cast<size_t>(t)] = runtime::cpu::flushes_denormals() && flushes_arithmetic();
    }
    return ok;
}

TEST(Denormals, FlushedOnTheCallerAndTheTeam) {
    runtime::cpu::flush_denormals(3);
    EXPECT_TRUE(runtime::cpu::flushes_denormals());
    EXPECT_TRUE(flushes_arithmetic());
    for (int ok : team_flushes(3)) EXPECT_EQ(ok, 1);
}

TEST(Denormals, ACpuExecutorSetsItsThreads) {
    // a thread with the default modes (threads inherit their creator's, so they are reset here), and
    // its own OpenMP team (a team belongs to the thread that starts it)
    std::vector<int> results;
    std::thread th([&] {
        _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_OFF);
        _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_OFF);
        results.push_back(runtime::cpu::flushes_denormals());
        runtime::HParams hp;
        hp.arch = runtime::Arch::Qwen3;
        hp.n_embd = 64;
        hp.n_layer = 1;
        hp.n_head = 4;
        hp.n_head_kv = 2;
        hp.head_dim_k = hp.head_dim_v = 16;
        hp.n_ff = 128;
        hp.n_rot = 16;
        runtime::cpu::CpuExecutor ex(hp, {16, 4, 2, 4}, std::vector<double>(8, 1.0));
        results.push_back(runtime::cpu::flushes_denormals());
        for (int ok : team_flushes(2)) results.push_back(ok);
    });
    th.join();
    ASSERT_EQ(results.size(), 4u);
    EXPECT_EQ(results[0], 0);
    for (size_t i = 1; i < results.size(); ++i) EXPECT_EQ(results[i], 1) << i;
}

}  // namespace
