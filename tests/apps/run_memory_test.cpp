// gguf-run's footprint on CPU-only work: the CUDA backend is a module opened only when a GPU is asked for
// (runtime/src/cuda_module.h), so a CPU run of a tiny model maps neither it nor the CUDA runtime and cuBLAS,
// which took ~200 MiB of resident memory when every run loaded them (issue 14: 216 MiB for a tiny model).
// The dynamic loader's own trace (LD_DEBUG=files) says which libraries a run opened; GNU time gives the
// peak resident set of gguf-run alone.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "run_command.h"

namespace {

namespace fs = std::filesystem;

struct TracedRun {
    testing_support::CommandResult result;
    uint64_t peak_kib = 0;
};

TracedRun run_traced(const std::string& args) {
    const fs::path report = fs::temp_directory_path() / ("run-memory-" + std::to_string(::getpid()));
    const fs::path bin = fs::path(GGUF_BUILD_DIR) / "apps" / "gguf-run" / "gguf-run";
    TracedRun r;
    r.result = testing_support::run_binary("/usr/bin/env", "LD_DEBUG=files /usr/bin/time -f %M -o '" + report.string() +
                                                               "' '" + bin.string() + "' " + args);
    std::ifstream f(report);
    f >> r.peak_kib;
    fs::remove(report);
    return r;
}

std::string model() { return "-m '" + (fs::path(GGUF_SOURCE_DIR) / "testdata" / "tiny-dense-q8_0.gguf").string() + "'"; }

// Whether the loader's trace has a "file=.../LIBRARY..." line (a path or a bare name, as it was asked for).
bool opened(const std::string& trace, const std::string& library) {
    std::istringstream lines(trace);
    for (std::string line; std::getline(lines, line);) {
        const size_t at = line.find("file=");
        if (at != std::string::npos && line.find(library, at) != std::string::npos) return true;
    }
    return false;
}

TEST(RunMemory, CpuRunLoadsNoCudaLibrary) {
    if (!fs::exists("/usr/bin/time")) GTEST_SKIP() << "GNU time (Debian package time) is not installed";
    const TracedRun r = run_traced(model() + " -p 'def add(a, b):' -n 8 -t 1 --temp 0");
    ASSERT_EQ(r.result.status, 0) << r.result.err;
    EXPECT_FALSE(opened(r.result.err, "libgguf-cuda.so")) << "the CUDA module was opened";
    EXPECT_FALSE(opened(r.result.err, "libcudart")) << "the CUDA runtime was loaded";
    EXPECT_FALSE(opened(r.result.err, "libcublas")) << "cuBLAS was loaded";
    std::printf("gguf-run, 7 MiB model, 8 tokens on the CPU: peak RSS %.1f MiB\n", r.peak_kib / 1024.0);
    // measured: ~31 MiB (the mapped model, the KV cache and the binary); 216 MiB when the CUDA libraries
    // were loaded at start
    ASSERT_GT(r.peak_kib, 0u);
    EXPECT_LT(r.peak_kib, 80u * 1024);
}

// The check above can see a load: asking for a GPU on a CUDA build opens the module (whether or not the
// machine has a GPU; without one the run goes on on the CPU with a warning).
TEST(RunMemory, GpuRequestLoadsTheModuleOnACudaBuild) {
    if (!fs::exists("/usr/bin/time")) GTEST_SKIP() << "GNU time (Debian package time) is not installed";
    const auto devices = testing_support::run_app("gguf-run", "devices --json");
    if (devices.out.find("\"cuda_build\": true") == std::string::npos) GTEST_SKIP() << "a build without CUDA";
    const TracedRun r = run_traced(model() + " -p 'def add(a, b):' -n 2 -t 1 --temp 0 -ngl 99");
    ASSERT_EQ(r.result.status, 0) << r.result.err;
    EXPECT_TRUE(opened(r.result.err, "libgguf-cuda.so")) << r.result.err.substr(0, 4000);
}

// A module that cannot be found is a reason in the message, not a failure to start.
TEST(RunMemory, MissingModuleIsExplained) {
    const auto devices = testing_support::run_app("gguf-run", "devices --json");
    if (devices.out.find("\"cuda_build\": true") == std::string::npos) GTEST_SKIP() << "a build without CUDA";
    const auto r = testing_support::run_binary(
        "/usr/bin/env", "GGUF_CUDA_MODULE=/nonexistent/libgguf-cuda.so '" +
                            (fs::path(GGUF_BUILD_DIR) / "apps" / "gguf-run" / "gguf-run").string() + "' " + model() +
                            " -p hi -n 1 -t 1 --temp 0 -ngl 99");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("libgguf-cuda.so not found (looked in /nonexistent/libgguf-cuda.so)"), std::string::npos)
        << r.err;
}

}  // namespace
