// Matrix times activation rows with the weights kept in their file type. Float weights (F32, F16,
// BF16) are dotted with the f32 activations directly; block-quantized weights are dotted with the
// activations quantized once per matmul to the weight type's vec_dot type, as ggml does.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "gguf/types.h"
#include "runtime/weights.h"

namespace runtime::cpu {

bool is_float_type(gguf::GgmlType type);
// The activation format a weight type is dotted with (float weights dot the f32 rows themselves).
gguf::GgmlType activation_format(gguf::GgmlType weight_type);

// Rows of f32 activations feeding one or more matmuls, plus their conversion to one vec_dot type,
// made on first use and kept until the rows change. Buffers are sized once by reserve().
class Activations {
public:
    void reserve(int64_t max_rows, int64_t max_n);
    void set(const float* data, int64_t n_rows, int64_t n, int64_t ld);
    // Converts the rows for weights of `weight_type` unless already done (no-op for float weights).
    void prepare(gguf::GgmlType weight_type, int n_threads);
    // The same in two steps, for callers that convert inside their own parallel region: format() on
    // one thread before it, then convert_rows() over disjoint ranges covering every row, then a barrier
    // before any thread reads them.
    void format(gguf::GgmlType weight_type);
    void convert_rows(int64_t r0, int64_t r1);

    uint64_t bytes() const { return packed_.size(); }
    int64_t n() const { return n_; }
    int64_t n_rows() const { return n_rows_; }
    int64_t ld() const { return ld_; }
    const float* row(int64_t i) const { return data_ + i * ld_; }
    const uint8_t* packed_row(int64_t i) const { return packed_.data() + static_cast<size_t>(i) * packed_row_bytes_; }

private:
    const float* data_ = nullptr;
    int64_t n_rows_ = 0, n_ = 0, ld_ = 0;
    std::vector<uint8_t> packed_;
    size_t packed_row_bytes_ = 0;
    gguf::GgmlType packed_type_ = gguf::GgmlType::F32;
    bool packed_valid_ = false;
};

// y[out_rows[t] * ldy + r] = dot(row r of matrix `mat` of w, activation row rows[t]) for t < n_tok and
// r in [r0, r1); a null `rows` or `out_rows` means t. The activations must have been prepared for w.type.
void matmul_rows(const Weight& w, int64_t mat, const Activations& x, const int32_t* rows, const int32_t* out_rows,
                 int n_tok, int64_t r0, int64_t r1, float* y, int64_t ldy);

// All rows of one matrix for all activation rows, spread over n_threads.
void matmul(const Weight& w, int64_t mat, Activations& x, float* y, int64_t ldy, int n_threads);

// Several matrices (matrix 0 of each) on the same activation rows, as matmul does each, but in one
// parallel loop where their types take the same activation format (Q, K and V; gate and up).
struct MatmulJob {
    const Weight* w;
    float* y;
    int64_t ldy;
};
void matmul_many(std::span<const MatmulJob> jobs, Activations& x, int n_threads);

}  // namespace runtime::cpu
