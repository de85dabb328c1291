#include "convert/tensor_data.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "convert/error.h"
#include "quant/float16.h"
#include "quant/quant.h"

namespace convert {

namespace {

// Elements converted per chunk: 16 MiB of float32 scratch, whatever the tensor's size.
constexpr int64_t kChunkElements = int64_t{4} << 20;

void to_f32(Dtype src, const uint8_t* in, float* out, int64_t n) {
    switch (src) {
        case Dtype::F32: std::memcpy(out, in, static_cast<size_t>(n) * 4); return;
        case Dtype::F16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, in + 2 * i, 2);
                out[i] = quant::f16_to_f32(h);
            }
            return;
        case Dtype::BF16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, in + 2 * i, 2);
                out[i] = quant::bf16_to_f32(h);
            }
            return;
        case Dtype::U8: break;  // the planner lets raw bytes through only as MXFP4 blocks
    }
    throw Error("U8 data cannot be converted to floats");
}

bool same_encoding(Dtype src, gguf::GgmlType dst) {
    return (src == Dtype::F32 && dst == gguf::GgmlType::F32) || (src == Dtype::F16 && dst == gguf::GgmlType::F16) ||
           (src == Dtype::BF16 && dst == gguf::GgmlType::BF16);
}

// Converts `n_rows` rows of `row_len` elements (already gathered as float32) into `dst`.
void encode(gguf::GgmlType type, const float* src, uint8_t* dst, int64_t n_rows, int64_t row_len, int64_t ne0) {
    const int64_t n = n_rows * row_len;
    switch (type) {
        case gguf::GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
        case gguf::GgmlType::F16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = quant::f32_to_f16(src[i]);
                std::memcpy(dst + 2 * i, &h, 2);
            }
            return;
        case gguf::GgmlType::BF16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = quant::f32_to_bf16(src[i]);
                std::memcpy(dst + 2 * i, &h, 2);
            }
            return;
        default:
            // Block types quantize along ggml's rows (ne0 elements each).
            quant::quantize_rows(type, src, dst, n / ne0, ne0);
    }
}

// Drops a source tensor's pages from the resident set once it is written. The mapping is of the
// file, so nothing is lost (the pages stay in the page cache); without this the process would
// grow to the checkpoint's size over a conversion.
void release_pages(std::span<const uint8_t> bytes) {
    static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = reinterpret_cast<uintptr_t>(bytes.data()) & ~(page - 1);
    const uintptr_t end = reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size();
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// gpt-oss's MXFP4 experts: per expert and selected row, each group of 32 values becomes ggml's block
// (the E8M0 scale byte, then 16 bytes whose low nibbles are values 0..15 and high nibbles 16..31);
// the checkpoint packs values 2j and 2j+1 into byte j (low nibble first) after its scales.
void produce_mxfp4(const PlannedTensor& t, const std::function<void(std::span<const uint8_t>)>& sink) {
    const SafeTensor& blocks = *t.mxfp4.blocks;
    const SafeTensor& scales = *t.mxfp4.scales;
    const int64_t n_exp = blocks.shape[0], src_rows = blocks.shape[1], groups = blocks.shape[2];
    const int64_t rows = t.shape[1];
    std::vector<uint8_t> out(static_cast<size_t>(rows * groups * 17));
    for (int64_t e = 0; e < n_exp; ++e) {
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t src = e * src_rows + t.mxfp4.row_offset + r * t.mxfp4.row_step;
            const uint8_t* b = blocks.data.data() + static_cast<size_t>(src * groups * 16);
            const uint8_t* sc = scales.data.data() + static_cast<size_t>(src * groups);
            uint8_t* o = out.data() + static_cast<size_t>(r * groups * 17);
            for (int64_t g = 0; g < groups; ++g, b += 16, o += 17) {
                o[0] = sc[g];
                uint8_t v[32];
                for (int j = 0; j < 16; ++j) {
                    v[2 * j] = b[j] & 0x0F;
                    v[2 * j + 1] = b[j] >> 4;
                }
                for (int j = 0; j < 16; ++j) o[1 + j] = static_cast<uint8_t>(v[j] | (v[j + 16] << 4));
            }
        }
        sink(out);
    }
    release_pages(blocks.data);
    release_pages(scales.data);
}

// Every inner_step-th element of each innermost row (gpt-oss's interleaved gate/up biases).
void produce_strided(const PlannedTensor& t, const std::function<void(std::span<const uint8_t>)>& sink) {
    const SafeTensor& part = *t.parts.front();
    const int64_t src_len = part.shape.back(), rows = static_cast<int64_t>(part.n_elements()) / src_len;
    const int64_t len = t.shape.back();
    const size_t src_row_bytes = static_cast<size_t>(src_len) * dtype_size(part.dtype);
    std::vector<float> src(static_cast<size_t>(src_len)), picked(static_cast<size_t>(len));
    std::vector<uint8_t> out(gguf::row_size(t.type, static_cast<uint64_t>(len)));
    for (int64_t r = 0; r < rows; ++r) {
        to_f32(part.dtype, part.data.data() + r * src_row_bytes, src.data(), src_len);
        for (int64_t i = 0; i < len; ++i) picked[static_cast<size_t>(i)] = src[static_cast<size_t>(t.inner_offset + i * t.inner_step)];
        encode(t.type, picked.data(), out.data(), 1, len, len);
        sink(out);
    }
}

// Qwen3.5's row and column maps and value transforms (PlannedTensor::Remap), one output row at a time.
void produce_remapped(const PlannedTensor& t, const std::function<void(std::span<const uint8_t>)>& sink) {
    const SafeTensor& part = *t.parts.front();
    const PlannedTensor::Remap& m = t.remap;
    const int64_t len = t.shape.empty() ? 1 : t.shape.back();
    const int64_t src_len = m.col_map.empty() ? len : static_cast<int64_t>(m.col_map.size());
    const int64_t per_mat = m.src_rows * src_len;
    const int64_t n_mat = per_mat ? static_cast<int64_t>(part.n_elements()) / per_mat : 0;
    if (n_mat * per_mat != static_cast<int64_t>(part.n_elements()))
        throw Error("tensor '" + part.name + "' in " + *part.file + ": " + std::to_string(part.n_elements()) +
                    " elements are not whole matrices of " + std::to_string(m.src_rows) + " x " + std::to_string(src_len));
    const size_t src_row_bytes = static_cast<size_t>(src_len) * dtype_size(part.dtype);
    const int64_t rows = m.row_map.empty() ? m.src_rows : static_cast<int64_t>(m.row_map.size());
    std::vector<float> src(static_cast<size_t>(src_len)), row(static_cast<size_t>(len));
    std::vector<uint8_t> out(gguf::row_size(t.type, static_cast<uint64_t>(len)));
    for (int64_t mat = 0; mat < n_mat; ++mat) {
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t sr = mat * m.src_rows + (m.row_map.empty() ? r : m.row_map[static_cast<size_t>(r)]);
            to_f32(part.dtype, part.data.data() + static_cast<size_t>(sr) * src_row_bytes, src.data(), src_len);
            for (int64_t i = 0; i < len; ++i) {
                float v = src[static_cast<size_t>(m.col_map.empty() ? i : m.col_map[static_cast<size_t>(i)])];
                // as llama.cpp computes them in float32: -exp(A_log), 1 + w
                if (m.op == PlannedTensor::ValueOp::NegExp) v = -std::exp(v);
                if (m.op == PlannedTensor::ValueOp::AddOne) v = v + 1.0f;
                row[static_cast<size_t>(i)] = v;
            }
            try {
                encode(t.type, row.data(), out.data(), 1, len, len);
            } catch (const quant::Error& e) {
                throw Error("tensor '" + part.name + "' in " + *part.file + ": " + e.what());
            }
            sink(out);
        }
    }
    release_pages(part.data);
}

}  // namespace

int64_t permuted_source_row(int64_t r, int64_t rows, int64_t heads) {
    const int64_t d = rows / heads;
    const int64_t h = r / d, within = r % d;
    return h * d + (within % 2) * (d / 2) + within / 2;
}

void produce_tensor_data(const PlannedTensor& t, const std::function<void(std::span<const uint8_t>)>& sink) {
    if (t.mxfp4.blocks) return produce_mxfp4(t, sink);
    if (t.inner_step > 1) return produce_strided(t, sink);
    if (t.remap.src_rows > 0) return produce_remapped(t, sink);
    if (t.parts.empty()) {  // computed values, always F32
        if (t.type != gguf::GgmlType::F32) throw Error("tensor '" + t.name + "': computed values must be F32");
        sink({reinterpret_cast<const uint8_t*>(t.values.data()), t.values.size() * sizeof(float)});
        return;
    }
    const int64_t ne0 = t.shape.empty() ? 1 : t.shape.back();
    std::vector<float> scratch;
    std::vector<uint8_t> out;
    for (const SafeTensor* part : t.parts) {
        const int64_t n = static_cast<int64_t>(part->n_elements());
        // Rows along the outermost dimension: the unit the Q/K permute moves.
        const int64_t rows = part->shape.empty() ? 1 : part->shape[0];
        if (rows == 0 || n == 0) continue;
        const int64_t row_len = n / rows;
        const size_t src_row_bytes = static_cast<size_t>(row_len) * dtype_size(part->dtype);
        const bool copy = same_encoding(part->dtype, t.type) && t.permute_heads == 0;
        const int64_t chunk_rows = std::max<int64_t>(1, kChunkElements / row_len);
        // An outer row spans whole ggml rows (ne0 divides row_len), so its encoded size is exact.
        const size_t dst_row_bytes = gguf::row_size(t.type, static_cast<uint64_t>(row_len));
        for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
            const int64_t nr = std::min(chunk_rows, rows - r0);
            const std::span<const uint8_t> src = part->data.subspan(static_cast<size_t>(r0) * src_row_bytes,
                                                                    static_cast<size_t>(nr) * src_row_bytes);
            if (copy) {
                sink(src);
            } else if (same_encoding(part->dtype, t.type)) {  // permute only: move bytes
                out.resize(static_cast<size_t>(nr) * dst_row_bytes);
                for (int64_t r = 0; r < nr; ++r) {
                    const int64_t src_row = permuted_source_row(r0 + r, rows, t.permute_heads);
                    std::memcpy(out.data() + r * src_row_bytes, part->data.data() + src_row * src_row_bytes, src_row_bytes);
                }
                sink(out);
            } else {
                out.resize(static_cast<size_t>(nr) * dst_row_bytes);
                scratch.resize(static_cast<size_t>(nr * row_len));
                for (int64_t r = 0; r < nr; ++r) {
                    const int64_t src_row = t.permute_heads ? permuted_source_row(r0 + r, rows, t.permute_heads) : r0 + r;
                    to_f32(part->dtype, part->data.data() + src_row * src_row_bytes, scratch.data() + r * row_len, row_len);
                }
                try {
                    encode(t.type, scratch.data(), out.data(), nr, row_len, ne0);
                } catch (const quant::Error& e) {
                    throw Error("tensor '" + part->name + "' in " + *part->file + ": " + e.what());
                }
                sink(out);
            }
            // A permuted chunk reads rows from across its heads, so those wait for the whole part.
            if (t.permute_heads == 0) release_pages(src);
        }
        if (t.permute_heads != 0) release_pages(part->data);
    }
}

}  // namespace convert
