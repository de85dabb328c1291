// quant-bench: throughput of libquant's quantize, dequantize and dot product per type, on one thread
// and on all of them, printed as a Markdown table.
//
//   quantize    MB/s of f32 input consumed (quantize_rows, imatrix-free unless the type requires one)
//   dequantize  MB/s of f32 output produced (dequantize_row, rows spread over threads)
//   dot         GB/s of weight bytes read by a matrix x vector product (vec_dot per row against one
//               activation row of vec_dot_type, rows spread over threads)
//
// Each figure is the best of several timed repetitions, which is the least disturbed by other load.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "quant/quant.h"

namespace {

using gguf::GgmlType;
using Clock = std::chrono::steady_clock;

struct Options {
    std::vector<GgmlType> types;
    int64_t cols = 4096;        // elements per row
    int64_t rows = 256;         // rows quantized and dequantized
    int64_t dot_rows = 2048;    // rows of the matrix the dot product walks
    double min_seconds = 0.3;   // per measurement
    int threads = 0;            // 0: all OpenMP threads
};

[[noreturn]] void usage(const char* argv0, int code) {
    std::fprintf(code ? stderr : stdout,
                 "usage: %s [--types t1,t2,...] [--cols N] [--rows N] [--dot-rows N] [--seconds S] [--threads N]\n"
                 "Throughput of quantize / dequantize (MB/s of f32) and dot (GB/s of weights) per type,\n"
                 "on one thread and on all threads. Default types: every weight type libquant can quantize.\n"
                 "GGUF_SIMD=scalar|avx2 caps the dot kernels' SIMD level.\n",
                 argv0);
    std::exit(code);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(argv[0], 2);
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") usage(argv[0], 0);
        if (arg == "--types") {
            std::stringstream list(value());
            for (std::string name; std::getline(list, name, ',');) {
                const auto t = gguf::type_from_name(name);
                if (!t || !quant::can_quantize(*t)) {
                    std::fprintf(stderr, "error: unknown or unsupported type '%s'\n", name.c_str());
                    std::exit(2);
                }
                o.types.push_back(*t);
            }
        } else if (arg == "--cols") {
            o.cols = std::stoll(value());
        } else if (arg == "--rows") {
            o.rows = std::stoll(value());
        } else if (arg == "--dot-rows") {
            o.dot_rows = std::stoll(value());
        } else if (arg == "--seconds") {
            o.min_seconds = std::stod(value());
        } else if (arg == "--threads") {
            o.threads = std::stoi(value());
        } else {
            usage(argv[0], 2);
        }
    }
    if (o.cols <= 0 || o.cols % 256 != 0 || o.rows <= 0 || o.dot_rows <= 0) {
        std::fprintf(stderr, "error: --cols must be a positive multiple of 256, --rows and --dot-rows positive\n");
        std::exit(2);
    }
    if (o.types.empty()) {
        for (auto t = gguf::all_types_begin(); t != gguf::all_types_end(); ++t) {
            // Q8_K is only an activation format.
            if (t->type != GgmlType::Q8_K && quant::can_quantize(t->type)) o.types.push_back(t->type);
        }
    }
    return o;
}

// Best wall time of `fn` over repetitions lasting at least `min_seconds` in total (and at least 3).
double best_seconds(const std::function<void()>& fn, double min_seconds) {
    double best = 1e30, total = 0;
    for (int rep = 0; rep < 3 || total < min_seconds; ++rep) {
        const auto t0 = Clock::now();
        fn();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best = std::min(best, s);
        total += s;
    }
    return best;
}

// Rows like trained weights: Gaussian with a few outliers.
std::vector<float> make_weights(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, 0.02f);
    std::uniform_real_distribution<float> unit(0.f, 1.f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = (unit(rng) < 0.01f ? 6.f : 1.f) * normal(rng);
    return v;
}

struct Figures {
    double quantize_mbs, dequantize_mbs, dot_gbs;
};

Figures measure(GgmlType type, const Options& o, int threads, const std::vector<float>& src,
                const std::vector<float>& imatrix, float& checksum) {
    omp_set_num_threads(threads);
    const int64_t cols = o.cols;
    const size_t row_bytes = gguf::row_size(type, static_cast<uint64_t>(cols));
    const float* im = quant::requires_imatrix(type) ? imatrix.data() : nullptr;
    Figures f{};

    std::vector<uint8_t> q(row_bytes * static_cast<size_t>(o.rows));
    const double tq = best_seconds([&] { quant::quantize_rows(type, src.data(), q.data(), o.rows, cols, im); }, o.min_seconds);
    f.quantize_mbs = static_cast<double>(src.size()) * 4 / tq / 1e6;

    std::vector<float> out(src.size());
    const double td = best_seconds(
        [&] {
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < o.rows; ++r) {
                quant::dequantize_row(type, q.data() + static_cast<size_t>(r) * row_bytes, out.data() + r * cols, cols);
            }
        },
        o.min_seconds);
    f.dequantize_mbs = static_cast<double>(out.size()) * 4 / td / 1e6;

    // The dot matrix repeats the quantized rows: quantizing it afresh would only cost time.
    std::vector<uint8_t> matrix(row_bytes * static_cast<size_t>(o.dot_rows));
    for (int64_t r = 0; r < o.dot_rows; ++r) {
        std::memcpy(matrix.data() + static_cast<size_t>(r) * row_bytes, q.data() + static_cast<size_t>(r % o.rows) * row_bytes,
                    row_bytes);
    }
    const GgmlType act_type = quant::vec_dot_type(type);
    std::vector<uint8_t> act(gguf::row_size(act_type, static_cast<uint64_t>(cols)));
    const std::vector<float> act_src = make_weights(cols, 99);
    quant::quantize_activation_row(act_type, act_src.data(), act.data(), cols);
    std::vector<float> result(static_cast<size_t>(o.dot_rows));
    const double tdot = best_seconds(
        [&] {
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < o.dot_rows; ++r) {
                result[r] = quant::vec_dot(type, cols, matrix.data() + static_cast<size_t>(r) * row_bytes, act.data());
            }
        },
        o.min_seconds);
    f.dot_gbs = static_cast<double>(matrix.size()) / tdot / 1e9;
    for (float v : result) checksum += v;  // keeps the products observable
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const int all = o.threads > 0 ? o.threads : omp_get_max_threads();
    const std::vector<float> src = make_weights(o.rows * o.cols, 1);
    std::vector<float> imatrix(static_cast<size_t>(o.cols));
    std::mt19937 rng(2);
    for (float& v : imatrix) v = std::uniform_real_distribution<float>(0.1f, 10.f)(rng);

    // Other processes skew the figures, the multi-threaded ones most: say how busy the machine was.
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
        char load[64] = {};
        if (std::fgets(load, sizeof load, f)) std::printf("load average at start: %s", load);
        std::fclose(f);
    }
    std::printf("quant-bench: %lld x %lld f32 for quantize/dequantize, %lld x %lld for dot; SIMD %s; "
                "1 and %d threads; best of >= %.2f s per figure\n\n",
                static_cast<long long>(o.rows), static_cast<long long>(o.cols), static_cast<long long>(o.dot_rows),
                static_cast<long long>(o.cols), quant::simd_level(), all, o.min_seconds);
    std::printf("| type | bits/weight | quantize MB/s (1 t) | quantize MB/s (%d t) | dequantize MB/s (1 t) | "
                "dequantize MB/s (%d t) | dot GB/s (1 t) | dot GB/s (%d t) |\n",
                all, all, all);
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    float checksum = 0;
    for (GgmlType type : o.types) {
        const auto& traits = gguf::type_traits(type);
        const double bpw = 8.0 * traits.type_size / traits.block_size;
        const Figures one = measure(type, o, 1, src, imatrix, checksum);
        const Figures many = measure(type, o, all, src, imatrix, checksum);
        std::printf("| %s | %.4g | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |\n", std::string(traits.name).c_str(), bpw,
                    one.quantize_mbs, many.quantize_mbs, one.dequantize_mbs, many.dequantize_mbs, one.dot_gbs,
                    many.dot_gbs);
        std::fflush(stdout);
    }
    std::fprintf(stderr, "(checksum %g)\n", static_cast<double>(checksum));
    return std::isfinite(checksum) ? 0 : 1;
}
