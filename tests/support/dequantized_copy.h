// A copy of a GGUF whose tensors of one block type are stored as F32 instead (their exact values:
// MXFP4 and the other formats dequantize exactly into f32). Tests use it to run a model's arithmetic
// with float weights, where the runtime dots f32 activations directly instead of first rounding them
// to the block type's activation format (q8_0 for MXFP4, as ggml does).
#pragma once

#include <string>
#include <vector>

#include "gguf/file.h"
#include "gguf/writer.h"
#include "quant/quant.h"

namespace testing_support {

inline void write_dequantized_copy(const std::string& in_path, const std::string& out_path, gguf::GgmlType type) {
    const gguf::File in = gguf::File::open(in_path);
    gguf::Writer w(out_path);
    w.metadata() = in.metadata();
    for (const auto& t : in.tensors()) w.add_tensor(t.name, t.type == type ? gguf::GgmlType::F32 : t.type, t.dims);
    for (const auto& t : in.tensors()) {
        const auto bytes = in.tensor_data(t);
        if (t.type != type) {
            w.write_data(bytes);
            continue;
        }
        const int64_t n_per_row = t.dims[0];
        const size_t row_bytes = gguf::row_size(t.type, static_cast<uint64_t>(n_per_row));
        std::vector<float> row(static_cast<size_t>(n_per_row));
        for (size_t off = 0; off < bytes.size(); off += row_bytes) {
            quant::dequantize_row(t.type, bytes.data() + off, row.data(), n_per_row);
            w.write_data({reinterpret_cast<const uint8_t*>(row.data()), row.size() * sizeof(float)});
        }
    }
    w.finish();
}

}  // namespace testing_support
