// The data scan: every byte of tensor data read once, on all threads: NaN/Inf in float tensors and in the
// scales of quantized blocks (fp16 d/dmin, E8M0 exponents), all-zero or constant matrices, and absurd
// magnitudes (a float beyond max_abs, or a block scale that lets its values reach beyond it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "check.h"
#include "gguf/file.h"

namespace verify {

struct ScanOptions {
    double max_abs = 1e4;  // larger weights are no trained model's
    int threads = 0;       // 0: all
    // called now and then with (bytes done, bytes in all); from one thread at a time
    std::function<void(uint64_t, uint64_t)> progress;
};

// What the scan found in one tensor.
struct TensorFindings {
    uint64_t non_finite = 0;        // elements (float tensors) or blocks (quantized) with NaN/Inf
    int64_t first_bad_row = -1;     // row of the first of them
    double max_abs = 0;             // largest |value| (float) or bound on it from the block scales
    int64_t max_abs_row = -1;
    bool all_zero = true;
    bool constant = true;           // every element (float) or block (quantized) identical to the first
};

std::vector<TensorFindings> scan_tensors(const gguf::File& file, const ScanOptions& options);

// The scan as a check: the findings turned into problems, and the speed as a figure.
CheckResult scan_check(const gguf::File& file, const ScanOptions& options);

}  // namespace verify
