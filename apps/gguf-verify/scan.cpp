#include "scan.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "quant/blocks.h"
#include "quant/float16.h"
#include "prefault.h"

namespace verify {

namespace {

using gguf::GgmlType;

// Where a block type keeps its scales. The offsets come from the public block layouts; each scale's factor
// bounds the values of its block: |x| <= sum of factor * |scale| (for Q4_K, x = d*sc*q - dmin*m with 6-bit
// sc, m and 4-bit q: 63*15 per unit of d, 63 per unit of dmin).
struct ScaleLayout {
    int n_f16 = 0;
    size_t offset[2]{};
    double factor[2]{};
    bool e8m0 = false;  // one E8M0 exponent at byte 0 (MXFP4): x = 6 * 2^(e - 127) at most
    bool iq1m = false;  // IQ1_M: the fp16 scale is spread over the top nibbles of its four scale words
};

ScaleLayout layout_of(GgmlType t) {
    using namespace quant;
    auto one = [](size_t off, double f) {
        ScaleLayout l;
        l.n_f16 = 1;
        l.offset[0] = off;
        l.factor[0] = f;
        return l;
    };
    auto two = [](size_t off_d, double fd, size_t off_m, double fm) {
        ScaleLayout l;
        l.n_f16 = 2;
        l.offset[0] = off_d;
        l.factor[0] = fd;
        l.offset[1] = off_m;
        l.factor[1] = fm;
        return l;
    };
    switch (t) {
        case GgmlType::Q4_0: return one(offsetof(BlockQ4_0, d), 8);
        case GgmlType::Q4_1: return two(offsetof(BlockQ4_1, d), 15, offsetof(BlockQ4_1, m), 1);
        case GgmlType::Q5_0: return one(offsetof(BlockQ5_0, d), 16);
        case GgmlType::Q5_1: return two(offsetof(BlockQ5_1, d), 31, offsetof(BlockQ5_1, m), 1);
        case GgmlType::Q8_0: return one(offsetof(BlockQ8_0, d), 128);
        case GgmlType::Q2_K: return two(offsetof(BlockQ2_K, d), 45, offsetof(BlockQ2_K, dmin), 15);
        case GgmlType::Q3_K: return one(offsetof(BlockQ3_K, d), 128);
        case GgmlType::Q4_K: return two(offsetof(BlockQ4_K, d), 945, offsetof(BlockQ4_K, dmin), 63);
        case GgmlType::Q5_K: return two(offsetof(BlockQ5_K, d), 1953, offsetof(BlockQ5_K, dmin), 63);
        case GgmlType::Q6_K: return one(offsetof(BlockQ6_K, d), 4096);
        case GgmlType::IQ4_NL: return one(offsetof(BlockIQ4NL, d), 127);
        case GgmlType::IQ4_XS: return one(offsetof(BlockIQ4XS, d), 32 * 127);
        case GgmlType::IQ2_XXS: return one(offsetof(BlockIQ2XXS, d), 3.875 * 43);
        case GgmlType::IQ2_XS: return one(offsetof(BlockIQ2XS, d), 3.875 * 43);
        case GgmlType::IQ2_S: return one(offsetof(BlockIQ2S, d), 3.875 * 43);
        case GgmlType::IQ3_XXS: return one(offsetof(BlockIQ3XXS, d), 7.75 * 62);
        case GgmlType::IQ3_S: return one(offsetof(BlockIQ3S, d), 31 * 15);
        case GgmlType::IQ1_S: return one(offsetof(BlockIQ1S, d), 15 * 1.125);
        case GgmlType::TQ1_0: return one(offsetof(BlockTQ1_0, d), 1);
        case GgmlType::TQ2_0: return one(offsetof(BlockTQ2_0, d), 2);
        case GgmlType::IQ1_M: {
            ScaleLayout l;
            l.iq1m = true;
            l.factor[0] = 15 * 1.125;
            return l;
        }
        case GgmlType::MXFP4: {
            ScaleLayout l;
            l.e8m0 = true;
            l.factor[0] = 6;
            return l;
        }
        default: return {};
    }
}

// A run of rows of one tensor: the unit of work handed to a thread.
struct Item {
    size_t tensor;
    uint64_t row0, rows;
};

struct Partial {
    uint64_t non_finite = 0;
    int64_t first_bad_row = -1;
    double max_abs = 0;
    int64_t max_abs_row = -1;
    bool all_zero = true;
    bool constant = true;
};

// Float rows as their bit patterns: |x| orders like its bits for finite values, NaN/Inf have every exponent
// bit set, and "equal to the first element" is a bitwise test. Integer operations only, so it vectorizes.
template <typename U>
void scan_float_rows(const U* x, uint64_t ne0, uint64_t row0, uint64_t rows, U abs_mask, U exp_mask, U first,
                     double (*to_double)(U), Partial& p) {
    for (uint64_t r = 0; r < rows; ++r) {
        const U* row = x + r * ne0;
        U mx = 0, nonzero = 0, differs = 0;
        uint64_t bad = 0;
        for (uint64_t i = 0; i < ne0; ++i) {
            const U a = row[i] & abs_mask;
            const bool nf = a >= exp_mask;
            bad += nf;
            mx = std::max<U>(mx, nf ? U{0} : a);
            nonzero |= a;
            differs |= row[i] ^ first;
        }
        const auto row_index = static_cast<int64_t>(row0 + r);
        if (bad) {
            if (p.non_finite == 0) p.first_bad_row = row_index;
            p.non_finite += bad;
        }
        const double m = to_double(mx);
        if (m > p.max_abs) {
            p.max_abs = m;
            p.max_abs_row = row_index;
        }
        p.all_zero &= nonzero == 0;
        p.constant &= differs == 0;
    }
}

double f32_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
double f16_bits(uint16_t h) { return quant::f16_to_f32(h); }
double bf16_bits(uint16_t h) { return quant::bf16_to_f32(h); }
double f64_bits(uint64_t u) {
    double d;
    std::memcpy(&d, &u, 8);
    return d;
}

uint16_t load16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// IQ1_M keeps its fp16 scale in the top nibbles of the four 16-bit words of its `scales` field.
uint16_t iq1m_scale(const uint8_t* block) {
    const uint8_t* s = block + offsetof(quant::BlockIQ1M, scales);
    const uint16_t w0 = load16(s), w1 = load16(s + 2), w2 = load16(s + 4), w3 = load16(s + 6);
    return static_cast<uint16_t>((w0 >> 12) | ((w1 >> 8) & 0x00f0) | ((w2 >> 4) & 0x0f00) | (w3 & 0xf000));
}

// Per block only integer work on the raw fp16 scale bits (|h| orders like its bits, NaN/Inf have every
// exponent bit set); the magnitude bound of a row is taken from its largest scales, which bounds every block's.
void scan_block_rows(const uint8_t* data, const gguf::TypeTraits& tt, const ScaleLayout& l, uint64_t blocks_per_row,
                     uint64_t row0, uint64_t rows, const uint8_t* first_block, Partial& p) {
    const size_t bs = tt.type_size;
    for (uint64_t r = 0; r < rows; ++r) {
        const uint8_t* row = data + r * blocks_per_row * bs;
        const auto row_index = static_cast<int64_t>(row0 + r);
        uint64_t bad = 0;
        double bound_max = 0;
        bool zero = true;
        if (l.e8m0) {
            uint8_t e_max = 0, qs_or = 0;
            for (uint64_t b = 0; b < blocks_per_row; ++b) {
                const uint8_t* block = row + b * bs;
                const uint8_t e = block[0];
                bad += e == 0xff;  // E8M0 has no infinity: 0xff is its NaN
                e_max = std::max<uint8_t>(e_max, e == 0xff ? 0 : e);
                for (size_t i = 1; i < bs; ++i) qs_or |= block[i];
            }
            bound_max = l.factor[0] * std::ldexp(1.0, static_cast<int>(e_max) - 127);
            zero = qs_or == 0;
        } else if (l.n_f16 > 0 || l.iq1m) {
            const int n = l.iq1m ? 1 : l.n_f16;
            uint16_t mx[2] = {0, 0};
            for (uint64_t b = 0; b < blocks_per_row; ++b) {
                const uint8_t* block = row + b * bs;
                // the scales are a few bytes every type_size: ask for the lines well ahead, as a stride the
                // hardware prefetcher would otherwise only find late leaves each load waiting on memory
                __builtin_prefetch(block + 32 * bs);
                bool nf = false;
                for (int k = 0; k < n; ++k) {
                    const uint16_t a = (l.iq1m ? iq1m_scale(block) : load16(block + l.offset[k])) & 0x7fff;
                    nf |= a >= 0x7c00;
                    mx[k] = std::max<uint16_t>(mx[k], a >= 0x7c00 ? 0 : a);
                }
                bad += nf;
            }
            for (int k = 0; k < n; ++k) bound_max += l.factor[k] * quant::f16_to_f32(mx[k]);
            zero = bound_max == 0 && bad == 0;
        } else {
            for (uint64_t i = 0; i < blocks_per_row * bs; ++i) zero &= row[i] == 0;
        }
        // only until the first difference: a real tensor stops comparing after a block or two
        for (uint64_t b = 0; p.constant && b < blocks_per_row; ++b) {
            if (std::memcmp(row + b * bs, first_block, bs) != 0) p.constant = false;
        }
        if (bad) {
            if (p.non_finite == 0) p.first_bad_row = row_index;
            p.non_finite += bad;
        }
        if (bound_max > p.max_abs) {
            p.max_abs = bound_max;
            p.max_abs_row = row_index;
        }
        p.all_zero &= zero;
    }
}

void scan_item(const gguf::File& file, const Item& it, Partial& p) {
    const gguf::TensorInfo& t = file.tensors()[it.tensor];
    const auto bytes = file.tensor_data(t);
    const uint64_t ne0 = t.dims.empty() ? 1 : static_cast<uint64_t>(t.dims[0]);
    const gguf::TypeTraits& tt = gguf::type_traits(t.type);
    const uint64_t row_bytes = gguf::row_size(t.type, ne0);
    const uint8_t* rows = bytes.data() + it.row0 * row_bytes;
    prefault(rows, it.rows * row_bytes);
    switch (t.type) {
        case GgmlType::F32: {
            uint32_t first;
            std::memcpy(&first, bytes.data(), 4);
            scan_float_rows<uint32_t>(reinterpret_cast<const uint32_t*>(rows), ne0, it.row0, it.rows, 0x7fffffffu,
                                      0x7f800000u, first, f32_bits, p);
            return;
        }
        case GgmlType::F16:
        case GgmlType::BF16: {
            const bool f16 = t.type == GgmlType::F16;
            scan_float_rows<uint16_t>(reinterpret_cast<const uint16_t*>(rows), ne0, it.row0, it.rows, 0x7fff,
                                      f16 ? 0x7c00 : 0x7f80, load16(bytes.data()), f16 ? f16_bits : bf16_bits, p);
            return;
        }
        case GgmlType::F64: {
            uint64_t first;
            std::memcpy(&first, bytes.data(), 8);
            scan_float_rows<uint64_t>(reinterpret_cast<const uint64_t*>(rows), ne0, it.row0, it.rows,
                                      0x7fffffffffffffffull, 0x7ff0000000000000ull, first, f64_bits, p);
            return;
        }
        default: break;
    }
    if (!tt.quantized) {  // integer tensors: only the zero / constant tests
        for (uint64_t i = 0; i < it.rows * row_bytes; ++i) p.all_zero &= rows[i] == 0;
        p.constant = false;
        return;
    }
    scan_block_rows(rows, tt, layout_of(t.type), ne0 / tt.block_size, it.row0, it.rows, bytes.data(), p);
}

void merge(TensorFindings& f, const Partial& p) {
    if (p.non_finite) {
        if (f.non_finite == 0 || p.first_bad_row < f.first_bad_row) f.first_bad_row = p.first_bad_row;
        f.non_finite += p.non_finite;
    }
    if (p.max_abs > f.max_abs) {
        f.max_abs = p.max_abs;
        f.max_abs_row = p.max_abs_row;
    }
    f.all_zero &= p.all_zero;
    f.constant &= p.constant;
}

std::string format_double(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

}  // namespace

std::vector<TensorFindings> scan_tensors(const gguf::File& file, const ScanOptions& options) {
    // Work items of about 4 MiB, so that threads stay busy to the end on files of a few huge tensors.
    constexpr uint64_t kItemBytes = 4u << 20;
    const auto& tensors = file.tensors();
    std::vector<Item> items;
    uint64_t total = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        if (t.n_elements() == 0) continue;
        const uint64_t ne0 = t.dims.empty() ? 1 : static_cast<uint64_t>(t.dims[0]);
        const uint64_t row_bytes = gguf::row_size(t.type, ne0);
        const uint64_t rows = t.n_rows();
        const uint64_t per_item = std::max<uint64_t>(1, kItemBytes / std::max<uint64_t>(row_bytes, 1));
        for (uint64_t r = 0; r < rows; r += per_item) items.push_back({i, r, std::min(per_item, rows - r)});
        total += t.n_bytes();
    }
    std::vector<Partial> partials(items.size());
    std::atomic<uint64_t> done{0};
    const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t k = 0; k < items.size(); ++k) {
        scan_item(file, items[k], partials[k]);
        const auto& t = tensors[items[k].tensor];
        const uint64_t b = items[k].rows * gguf::row_size(t.type, t.dims.empty() ? 1 : static_cast<uint64_t>(t.dims[0]));
        const uint64_t now = done.fetch_add(b) + b;
        if (options.progress && omp_get_thread_num() == 0) options.progress(now, total);
    }
    std::vector<TensorFindings> out(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        if (tensors[i].n_elements() == 0) out[i].all_zero = out[i].constant = false;
    }
    for (size_t k = 0; k < items.size(); ++k) merge(out[items[k].tensor], partials[k]);
    return out;
}

CheckResult scan_check(const gguf::File& file, const ScanOptions& options) {
    CheckResult r;
    r.name = "scan";
    const auto start = std::chrono::steady_clock::now();
    const auto findings = scan_tensors(file, options);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    uint64_t bytes = 0;
    for (size_t i = 0; i < findings.size(); ++i) {
        const auto& t = file.tensors()[i];
        const auto& f = findings[i];
        bytes += t.n_bytes();
        const bool quantized = gguf::type_traits(t.type).quantized;
        if (f.non_finite) {
            r.problems.push_back(t.name + ": " + std::to_string(f.non_finite) +
                                 (quantized ? (f.non_finite == 1 ? " block" : " blocks") + std::string(" with a NaN/Inf scale")
                                            : std::string(" NaN/Inf values")) +
                                 ", first in row " + std::to_string(f.first_bad_row));
        }
        if (f.max_abs > options.max_abs) {
            r.problems.push_back(t.name + ": " + (quantized ? "block scales allow |values| up to " : "|values| up to ") +
                                 format_double(f.max_abs) + " in row " + std::to_string(f.max_abs_row) + " (limit " +
                                 format_double(options.max_abs) + ", --max-abs)");
        }
        // Matrices only: a zero or constant vector can be a real bias or an untrained norm.
        const bool matrix = t.dims.size() >= 2 && t.n_elements() > 0 && t.n_rows() > 1;  // n_rows divides by dims[0]
        if (matrix && f.all_zero) {
            r.problems.push_back(t.name + ": all zero");
        } else if (matrix && f.constant && !f.non_finite) {
            r.problems.push_back(t.name + ": constant (every " + (quantized ? "block" : "element") + " the same)");
        }
    }
    const double gbs = seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0;
    char fig[160];
    std::snprintf(fig, sizeof fig, "%zu tensors, %.2f GB in %.2f s (%.2f GB/s)", findings.size(),
                  static_cast<double>(bytes) / 1e9, seconds, gbs);
    r.figure = fig;
    r.metrics = {{"tensors", static_cast<double>(findings.size())},
                 {"bytes", static_cast<double>(bytes)},
                 {"seconds", seconds},
                 {"gb_per_s", gbs}};
    r.conclude();
    return r;
}

}  // namespace verify
