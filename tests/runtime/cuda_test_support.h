// Helpers of the CUDA kernel tests: device buffers, the no-GPU skip, poisoned outputs and comparisons that
// report every mismatch's extent (count, first bad index, worst error) in one message.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cuda_test {

// Every CUDA call of the tests goes through here: a failure throws, which gtest reports with the message.
inline void ok(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Empty when a device is usable, else why not.
inline std::string no_gpu_reason() {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) return std::string("no CUDA device (") + cudaGetErrorString(err) + ")";
    if (n == 0) return "no CUDA device";
    return {};
}

#define REQUIRE_GPU()                                                     \
    do {                                                                  \
        const std::string why_ = cuda_test::no_gpu_reason();              \
        if (!why_.empty()) GTEST_SKIP() << why_ << "; skipping GPU test"; \
    } while (0)

// Bytes of device memory, freed on scope exit.
class DevMem {
public:
    explicit DevMem(size_t bytes) : bytes_(bytes) { ok(cudaMalloc(&p_, bytes ? bytes : 1), "cudaMalloc"); }
    ~DevMem() { cudaFree(p_); }
    DevMem(const DevMem&) = delete;
    DevMem& operator=(const DevMem&) = delete;
    template <typename T = void>
    T* get() const {
        return static_cast<T*>(p_);
    }
    size_t bytes() const { return bytes_; }
    template <typename T>
    void upload(const std::vector<T>& v) {
        if (v.size() * sizeof(T) > bytes_) throw std::runtime_error("upload larger than the buffer");
        ok(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
    }
    template <typename T>
    std::vector<T> download() const {
        std::vector<T> v(bytes_ / sizeof(T));
        ok(cudaMemcpy(v.data(), p_, v.size() * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
        return v;
    }
    // Fills with a byte pattern: 0xFF makes every f32 and f16 a NaN, so an unwritten output shows.
    void poison(uint8_t byte = 0xFF) { ok(cudaMemset(p_, byte, bytes_), "cudaMemset"); }

private:
    void* p_ = nullptr;
    size_t bytes_;
};

template <typename T>
std::unique_ptr<DevMem> to_device(const std::vector<T>& v) {
    auto d = std::make_unique<DevMem>(v.size() * sizeof(T));
    d->upload(v);
    return d;
}

inline void sync() { ok(cudaDeviceSynchronize(), "kernel execution"); }

// Uniform values in [-amp, amp], never exactly zero.
inline std::vector<float> random_floats(size_t n, uint32_t seed, float amp = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-amp, amp);
    std::vector<float> v(n);
    for (auto& x : v) {
        do x = dist(rng);
        while (x == 0.0f);
    }
    return v;
}

// Compares n values (got[i*ld_got + j] against want[i*ld_want + j] for i < rows, j < cols): passes when every
// |got - want| <= atol + rtol * |want| and got is not NaN; otherwise says how many, where the first is and
// how large the worst error is.
inline testing::AssertionResult close(const std::string& what, const float* got, int64_t ld_got, const float* want,
                                      int64_t ld_want, int64_t rows, int64_t cols, double rtol, double atol,
                                      double* max_err_out = nullptr) {
    int64_t n_bad = 0, first = -1, worst_at = -1;
    double worst = 0.0, max_err = 0.0;
    for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) {
            const double g = got[i * ld_got + j], w = want[i * ld_want + j];
            const double err = std::fabs(g - w);
            const double excess = std::isnan(g) || std::isnan(w) ? INFINITY : err == 0 ? 0 : err / (atol + rtol * std::fabs(w));
            if (!std::isnan(err)) max_err = std::max(max_err, err);
            if (excess > 1.0) {
                if (first < 0) first = i * cols + j;
                ++n_bad;
            }
            if (excess > worst || (worst_at < 0 && excess > 0)) {
                worst = excess;
                worst_at = i * cols + j;
            }
        }
    }
    if (max_err_out) *max_err_out = std::max(*max_err_out, max_err);
    if (n_bad == 0) return testing::AssertionSuccess() << what << ": max |error| " << max_err;
    auto at = [&](int64_t k) {
        std::ostringstream s;
        const int64_t i = k / cols, j = k % cols;
        s << "[row " << i << ", col " << j << "] got " << got[i * ld_got + j] << " want " << want[i * ld_want + j];
        return s.str();
    };
    return testing::AssertionFailure() << what << ": " << n_bad << " of " << rows * cols << " values off (rtol "
                                       << rtol << ", atol " << atol << "); first " << at(first) << "; worst "
                                       << at(worst_at) << "; max |error| " << max_err;
}

// Bit-for-bit equality of two byte ranges, with the first differing offset.
inline testing::AssertionResult same_bytes(const std::string& what, const void* got, const void* want, size_t n) {
    const auto* g = static_cast<const uint8_t*>(got);
    const auto* w = static_cast<const uint8_t*>(want);
    size_t n_bad = 0, first = 0;
    for (size_t i = 0; i < n; ++i) {
        if (g[i] != w[i]) {
            if (n_bad++ == 0) first = i;
        }
    }
    if (n_bad == 0) return testing::AssertionSuccess();
    return testing::AssertionFailure() << what << ": " << n_bad << " of " << n << " bytes differ; first at byte "
                                       << first << " (got 0x" << std::hex << int(g[first]) << ", want 0x"
                                       << int(w[first]) << ")";
}

// The elements of rows [0, rows) from column `from` to `ld` (the padding between rows) are still all-ones
// bytes: nothing wrote outside the output.
inline testing::AssertionResult padding_untouched(const std::string& what, const std::vector<float>& buf, int64_t ld,
                                                  int64_t from, int64_t rows) {
    for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = from; j < ld; ++j) {
            uint32_t bits;
            std::memcpy(&bits, &buf[static_cast<size_t>(i * ld + j)], 4);
            if (bits != 0xFFFFFFFFu) {
                return testing::AssertionFailure() << what << ": padding element [row " << i << ", col " << j
                                                   << "] was written (" << buf[static_cast<size_t>(i * ld + j)] << ")";
            }
        }
    }
    return testing::AssertionSuccess();
}

}  // namespace cuda_test
