#include "matmul.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "quant/float16.h"
#include "aligned.h"
#include "profile.h"
#include "quant/gemm.h"
#include "quant/panel.h"
#include "quant/quant.h"
#include "simd.h"

namespace runtime::cpu {

using gguf::GgmlType;

namespace {

// ---- scalar reference ------------------------------------------------------------------------

template <GgmlType T>
inline float load_scalar(const void* p, int64_t i) {
    if constexpr (T == GgmlType::F32) return static_cast<const float*>(p)[i];
    if constexpr (T == GgmlType::F16) return quant::f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    if constexpr (T == GgmlType::BF16) return quant::bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
}

template <GgmlType T>
void dot_tile_scalar(const void* w, const float* const* x, int nt, int64_t n, float* out) {
    for (int t = 0; t < nt; ++t) {
        float s = 0.0f;
        for (int64_t i = 0; i < n; ++i) s += load_scalar<T>(w, i) * x[t][i];
        out[t] = s;
    }
}

// ---- AVX-512 -----------------------------------------------------------------------------------

// GCC 12's AVX-512 headers seed vectors with a self-initialised "undefined" value and then warn about
// it wherever they are inlined (GCC bug 105593); the warning says nothing about this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

RT_TARGET_AVX2 inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}


template <GgmlType T>
RT_TARGET_AVX512 inline __m512 load16_512(const void* p, int64_t i) {
    if constexpr (T == GgmlType::F32) return _mm512_loadu_ps(static_cast<const float*>(p) + i);
    if constexpr (T == GgmlType::F16) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + i)));
    }
    if constexpr (T == GgmlType::BF16) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + i));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

// NT activation rows against one weight row: the weight vector is loaded (and widened) once per
// step and reused for every row, which is what makes batched prompt processing stream weights once.
template <GgmlType T, int NT>
RT_TARGET_AVX512 void dot_tile_512(const void* w, const float* const* x, int64_t n, float* out) {
    int64_t i = 0;
    if constexpr (NT == 1) {
        // one row: four independent accumulators hide the FMA latency
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (; i + 64 <= n; i += 64) {
            a0 = _mm512_fmadd_ps(load16_512<T>(w, i), _mm512_loadu_ps(x[0] + i), a0);
            a1 = _mm512_fmadd_ps(load16_512<T>(w, i + 16), _mm512_loadu_ps(x[0] + i + 16), a1);
            a2 = _mm512_fmadd_ps(load16_512<T>(w, i + 32), _mm512_loadu_ps(x[0] + i + 32), a2);
            a3 = _mm512_fmadd_ps(load16_512<T>(w, i + 48), _mm512_loadu_ps(x[0] + i + 48), a3);
        }
        for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load16_512<T>(w, i), _mm512_loadu_ps(x[0] + i), a0);
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; i < n; ++i) s += load_scalar<T>(w, i) * x[0][i];
        out[0] = s;
    } else {
        __m512 acc[NT];
        for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
        for (; i + 16 <= n; i += 16) {
            const __m512 wv = load16_512<T>(w, i);
            for (int t = 0; t < NT; ++t) acc[t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x[t] + i), acc[t]);
        }
        for (int t = 0; t < NT; ++t) {
            float s = _mm512_reduce_add_ps(acc[t]);
            for (int64_t j = i; j < n; ++j) s += load_scalar<T>(w, j) * x[t][j];
            out[t] = s;
        }
    }
}

// Four weight rows against NT activation rows: with NT = 4, 16 accumulators, so each step's 8 loads
// feed 16 FMAs (the one-row tile needs 5 loads for 4); prompt processing spends most of its time here.
// With NT = 1 (decode) the rows are read one after the other, as the memory prefetchers like best
// when weights stream from DRAM, and the four sums (two accumulators each) overlap their latencies.
template <GgmlType T, int NT>
RT_TARGET_AVX512 void dot_block4_512(const uint8_t* w, size_t row_bytes, const float* const* x, int64_t n,
                                     float* out /* [row][token], 4 tokens a row */) {
    if constexpr (NT == 1) {
        for (int r = 0; r < 4; ++r) {
            const uint8_t* wr = w + r * row_bytes;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;
            int64_t i = 0;
            for (; i + 32 <= n; i += 32) {
                a0 = _mm512_fmadd_ps(load16_512<T>(wr, i), _mm512_loadu_ps(x[0] + i), a0);
                a1 = _mm512_fmadd_ps(load16_512<T>(wr, i + 16), _mm512_loadu_ps(x[0] + i + 16), a1);
            }
            if (i < n) a0 = _mm512_fmadd_ps(load16_512<T>(wr, i), _mm512_loadu_ps(x[0] + i), a0);
            out[r * 4] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        }
        return;
    }
    __m512 acc[4][NT];
    for (auto& r : acc) {
        for (auto& a : r) a = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < n; i += 16) {
        __m512 wv[4];
        for (int r = 0; r < 4; ++r) wv[r] = load16_512<T>(w + r * row_bytes, i);
        for (int t = 0; t < NT; ++t) {
            const __m512 xv = _mm512_loadu_ps(x[t] + i);
            for (int r = 0; r < 4; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    for (int r = 0; r < 4; ++r) {
        for (int t = 0; t < NT; ++t) out[r * 4 + t] = _mm512_reduce_add_ps(acc[r][t]);
    }
}

using BlockFn = void (*)(const uint8_t*, size_t, const float* const*, int64_t, float*);

#pragma GCC diagnostic pop

// ---- AVX2 --------------------------------------------------------------------------------------

template <GgmlType T>
RT_TARGET_AVX2 inline __m256 load8_256(const void* p, int64_t i) {
    if constexpr (T == GgmlType::F32) return _mm256_loadu_ps(static_cast<const float*>(p) + i);
    if constexpr (T == GgmlType::F16) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
    }
    if constexpr (T == GgmlType::BF16) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
}

template <GgmlType T, int NT>
RT_TARGET_AVX2 void dot_tile_256(const void* w, const float* const* x, int64_t n, float* out) {
    int64_t i = 0;
    if constexpr (NT == 1) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (; i + 32 <= n; i += 32) {
            a0 = _mm256_fmadd_ps(load8_256<T>(w, i), _mm256_loadu_ps(x[0] + i), a0);
            a1 = _mm256_fmadd_ps(load8_256<T>(w, i + 8), _mm256_loadu_ps(x[0] + i + 8), a1);
            a2 = _mm256_fmadd_ps(load8_256<T>(w, i + 16), _mm256_loadu_ps(x[0] + i + 16), a2);
            a3 = _mm256_fmadd_ps(load8_256<T>(w, i + 24), _mm256_loadu_ps(x[0] + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load8_256<T>(w, i), _mm256_loadu_ps(x[0] + i), a0);
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; i < n; ++i) s += load_scalar<T>(w, i) * x[0][i];
        out[0] = s;
    } else {
        __m256 acc[NT];
        for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) {
            const __m256 wv = load8_256<T>(w, i);
            for (int t = 0; t < NT; ++t) acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[t] + i), acc[t]);
        }
        for (int t = 0; t < NT; ++t) {
            float s = hsum256(acc[t]);
            for (int64_t j = i; j < n; ++j) s += load_scalar<T>(w, j) * x[t][j];
            out[t] = s;
        }
    }
}

// ---- dispatch ----------------------------------------------------------------------------------

constexpr int kTile = 4;
using TileFn = void (*)(const void*, const float* const*, int64_t, float*);

struct FloatKernels {
    TileFn tile[kTile + 1];                // by number of activation rows 1..kTile
    BlockFn block[kTile + 1] = {nullptr};  // kTile weight rows x 1..kTile activation rows, n a multiple of 16
};

template <GgmlType T>
FloatKernels kernels_for(Simd level) {
    if (level == Simd::Avx512) {
        return {{nullptr, dot_tile_512<T, 1>, dot_tile_512<T, 2>, dot_tile_512<T, 3>, dot_tile_512<T, 4>},
                {nullptr, dot_block4_512<T, 1>, dot_block4_512<T, 2>, dot_block4_512<T, 3>, dot_block4_512<T, 4>}};
    }
    if (level == Simd::Avx2) {
        return {{nullptr, dot_tile_256<T, 1>, dot_tile_256<T, 2>, dot_tile_256<T, 3>, dot_tile_256<T, 4>}};
    }
    return {{nullptr, [](const void* w, const float* const* x, int64_t n, float* o) { dot_tile_scalar<T>(w, x, 1, n, o); },
             [](const void* w, const float* const* x, int64_t n, float* o) { dot_tile_scalar<T>(w, x, 2, n, o); },
             [](const void* w, const float* const* x, int64_t n, float* o) { dot_tile_scalar<T>(w, x, 3, n, o); },
             [](const void* w, const float* const* x, int64_t n, float* o) { dot_tile_scalar<T>(w, x, 4, n, o); }}};
}

const FloatKernels& float_kernels(GgmlType type) {
    static const FloatKernels f32 = kernels_for<GgmlType::F32>(simd());
    static const FloatKernels f16 = kernels_for<GgmlType::F16>(simd());
    static const FloatKernels bf16 = kernels_for<GgmlType::BF16>(simd());
    switch (type) {
        case GgmlType::F16: return f16;
        case GgmlType::BF16: return bf16;
        default: return f32;
    }
}

// Whether one activation row (decode, a token's experts) is better served by the per-row dot than by
// a one-column tile. Measured on one Zen 4 thread (GB/s of weights, tile with the next-tile prefetch
// below / dot), in cache (1024 rows of 2048) and streaming from DRAM (65536 rows):
//   Q8_0 34.6/14.2, 12/17.7   Q4_0 15.5/8.7, 13.1/9.0   Q2_K 12.5/4.4, 11.1/7.8   Q3_K 9.4/5.5, 8.6/5.3
//   Q4_K 12.0/12.6, 10.1/12.1   Q5_K 12.2/13.6, 5.4/12.5   Q6_K 23.8/17.6, 8.9/12.9
// So: Q4_K and Q5_K always take the dot; Q8_0 and Q6_K take it for matrices too large to stay in cache
// from one token to the next (the tiny models' stay; a 30B-A3B's output and experts stream);
// the rest keep the tile.
bool single_row_takes_dot(const Weight& w) {
    constexpr uint64_t kStreams = uint64_t{16} << 20;
    const uint64_t bytes = static_cast<uint64_t>(w.n_mat) * static_cast<uint64_t>(w.n_out) * w.row_bytes;
    switch (w.type) {
        case GgmlType::Q4_K:
        case GgmlType::Q5_K: return true;
        case GgmlType::Q8_0:
        case GgmlType::Q6_K: return bytes > kStreams;
        default: return false;
    }
}

// Tokens from which a batched matmul repacks its rows into panels (quant/panel.h) rather than running
// the 4 x 4 tiles: packing 16 rows costs about what the panel kernel spends on a few tokens.
// GGUF_PANEL_MIN=N moves the threshold (1: decode too), for measuring the paths against each other.
int panel_min_tokens() {
    static const int n = [] {
        const char* e = std::getenv("GGUF_PANEL_MIN");
        const int v = e ? std::atoi(e) : 0;
        return v >= 1 ? v : 8;
    }();
    return n;
}

// The calling thread's panel buffer, grown to `bytes` (prompts only: decode never packs).
uint8_t* panel_scratch(size_t bytes) {
    thread_local AlignedVector<uint8_t> scratch;
    if (scratch.size() < bytes) scratch.resize(bytes);
    return scratch.data();
}

// Rows [r0, r0 + 16 * groups) of matrix `mat` through the panel kernels: each group of 16 rows packed
// once, then multiplied with the tokens kPanelCols at a time.
void panel_rows(const quant::PanelKernels& k, const Weight& w, int64_t mat, const Activations& x, const int32_t* rows,
                const int32_t* out_rows, int n_tok, int64_t r0, int64_t groups, float* y, int64_t ldy) {
    uint8_t* panel = panel_scratch(k.bytes(w.n_in));
    const void* as[quant::kPanelCols];
    float* outs[quant::kPanelCols];
    for (int64_t g = 0; g < groups; ++g) {
        const int64_t rt = r0 + g * quant::kPanelRows;
        k.pack(w.n_in, w.row(mat, rt), w.row_bytes, panel);
        for (int t0 = 0; t0 < n_tok; t0 += quant::kPanelCols) {
            const int nt = std::min(quant::kPanelCols, n_tok - t0);
            for (int j = 0; j < nt; ++j) {
                as[j] = x.packed_row(rows ? rows[t0 + j] : t0 + j);
                outs[j] = y + (out_rows ? out_rows[t0 + j] : t0 + j) * ldy + rt;
            }
            k.gemm(w.n_in, panel, as, nt, outs);
        }
    }
}

// f(b) for b in [0, n_blocks), each thread a contiguous run of about n_blocks / n_threads (as a static
// schedule), with GGUF_PROFILE's per-thread stamps.
template <typename F>
void for_blocks(int64_t n_blocks, int n_threads, F&& f) {
    const bool stamped = profiling();
    if (stamped) region_stamps().start(n_threads);
#pragma omp parallel num_threads(n_threads)
    {
        const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        if (stamped) region_stamps().mark(tid, 0);
        for (int64_t b = n_blocks * tid / nt; b < n_blocks * (tid + 1) / nt; ++b) f(b);
        if (stamped) region_stamps().mark(tid, 1);
    }
    if (stamped) region_stamps().report("matmul:", {"rows"});
}

// Asks for `bytes` from p into L2, a cache line at a time.
inline void prefetch_l2(const uint8_t* p, size_t bytes) {
    for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
}

// GGUF_PREFETCH_ROWS=N: the per-row dot (decode) asks for the row N ahead of the one it reads (default
// 0: none, the hardware prefetchers alone; on one Zen 4 thread N = 2 and 4 made decode 10-20% slower).
// An experiment knob: on the GPU machine's host the experts step streamed a third of what its dot kernel
// can; the cause turned out to be subnormal block-scale products (denormals.h), and N = 4 had given
// 17.3 -> 19.7 tok/s of CPU decode there before that fix (not measured since).
int prefetch_rows() {
    static const int n = [] {
        const char* e = std::getenv("GGUF_PREFETCH_ROWS");
        const int v = e ? std::atoi(e) : 0;
        return v > 0 ? v : 0;
    }();
    return n;
}

}  // namespace

bool is_float_type(GgmlType type) {
    return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

GgmlType activation_format(GgmlType weight_type) {
    return is_float_type(weight_type) ? GgmlType::F32 : quant::vec_dot_type(weight_type);
}

void Activations::reserve(int64_t max_rows, int64_t max_n) {
    // F32 is the widest vec_dot type (4 bytes per value); every block type is smaller
    packed_.assign(static_cast<size_t>(max_rows) * static_cast<size_t>(max_n) * sizeof(float), 0);
}

void Activations::set(const float* data, int64_t n_rows, int64_t n, int64_t ld) {
    data_ = data;
    n_rows_ = n_rows;
    n_ = n;
    ld_ = ld;
    packed_valid_ = false;
}

void Activations::prepare(GgmlType weight_type, int n_threads) {
    if (is_float_type(weight_type)) return;
    const GgmlType act = quant::vec_dot_type(weight_type);
    if (packed_valid_ && packed_type_ == act) return;
    packed_row_bytes_ = gguf::row_size(act, static_cast<uint64_t>(n_));
    if (packed_row_bytes_ * static_cast<size_t>(n_rows_) > packed_.size()) {
        throw std::logic_error("Activations::prepare: buffer not reserved for this size");
    }
    // a few rows (decode, a token's experts) cost less than the parallel loop's barrier
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_rows_ >= 16)
    for (int64_t r = 0; r < n_rows_; ++r) {
        quant::quantize_activations(act, row(r), packed_.data() + static_cast<size_t>(r) * packed_row_bytes_, n_);
    }
    packed_type_ = act;
    packed_valid_ = true;
}

void Activations::format(GgmlType weight_type) {
    if (is_float_type(weight_type)) return;
    const GgmlType act = quant::vec_dot_type(weight_type);
    packed_row_bytes_ = gguf::row_size(act, static_cast<uint64_t>(n_));
    if (packed_row_bytes_ * static_cast<size_t>(n_rows_) > packed_.size()) {
        throw std::logic_error("Activations::format: buffer not reserved for this size");
    }
    packed_type_ = act;
    packed_valid_ = true;  // once every row is converted: the caller's barrier says when
}

void Activations::convert_rows(int64_t r0, int64_t r1) {
    if (!packed_valid_) return;  // float weights read the f32 rows themselves
    for (int64_t r = r0; r < r1; ++r) {
        quant::quantize_activations(packed_type_, row(r), packed_.data() + static_cast<size_t>(r) * packed_row_bytes_, n_);
    }
}

void matmul_rows(const Weight& w, int64_t mat, const Activations& x, const int32_t* rows, const int32_t* out_rows,
                 int n_tok, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    const int64_t n = w.n_in;
    if (is_float_type(w.type)) {
        const FloatKernels& k = float_kernels(w.type);
        const float* xs[kTile];
        float out[kTile * kTile];
        int64_t r = r0;
        // blocks of kTile rows where the shapes allow, the row tiles for what is left
        if (k.block[1] && n % 16 == 0) {
            for (; r + kTile <= r1; r += kTile) {
                const uint8_t* wr = w.row(mat, r);
                for (int t0 = 0; t0 < n_tok; t0 += kTile) {
                    const int nt = std::min(kTile, n_tok - t0);
                    for (int j = 0; j < nt; ++j) xs[j] = x.row(rows ? rows[t0 + j] : t0 + j);
                    k.block[nt](wr, w.row_bytes, xs, n, out);
                    for (int j = 0; j < nt; ++j) {
                        float* yt = y + (out_rows ? out_rows[t0 + j] : t0 + j) * ldy + r;
                        for (int i = 0; i < kTile; ++i) yt[i] = out[i * kTile + j];
                    }
                }
            }
        }
        for (; r < r1; ++r) {
            const uint8_t* wr = w.row(mat, r);
            for (int t0 = 0; t0 < n_tok; t0 += kTile) {
                const int nt = std::min(kTile, n_tok - t0);
                for (int j = 0; j < nt; ++j) xs[j] = x.row(rows ? rows[t0 + j] : t0 + j);
                k.tile[nt](wr, xs, n, out);
                for (int j = 0; j < nt; ++j) y[(out_rows ? out_rows[t0 + j] : t0 + j) * ldy + r] = out[j];
            }
        }
        return;
    }
    // block-quantized: tiles of kGemmRows weight rows x up to kGemmCols tokens, so each weight block is
    // unpacked once per tile; a token's result depends only on its row tile, not on the batch around it.
    // Tokens outside, rows inside: a token's outputs for the rows of [r0, r1) fill one cache line.
    int64_t r = r0;
    if (n_tok >= panel_min_tokens()) {
        if (const quant::PanelKernels* k = quant::panel_kernels(w.type)) {
            const int64_t groups = (r1 - r0) / quant::kPanelRows;
            panel_rows(*k, w, mat, x, rows, out_rows, n_tok, r0, groups, y, ldy);
            r = r0 + groups * quant::kPanelRows;
        }
    }
    const quant::GemmFn gemm = n_tok > 1 || !single_row_takes_dot(w) ? quant::gemm_function(w.type) : nullptr;
    const quant::DotFn dot = quant::dot_function(w.type);
    if (gemm) {
        const int64_t r_tiles = r + (r1 - r) / quant::kGemmRows * quant::kGemmRows;
        const void* as[quant::kGemmCols];
        float out[quant::kGemmRows * quant::kGemmCols];
        for (int t0 = 0; t0 < n_tok; t0 += quant::kGemmCols) {
            const int nt = std::min(quant::kGemmCols, n_tok - t0);
            for (int j = 0; j < nt; ++j) as[j] = x.packed_row(rows ? rows[t0 + j] : t0 + j);
            for (int64_t rt = r; rt < r_tiles; rt += quant::kGemmRows) {
                // A tile reads its rows' blocks in turn, four short interleaved streams that the hardware
                // prefetchers barely follow (Q6_K from DRAM: 3.8 GB/s); asking for the next tile's rows
                // first lets them stream (9 GB/s). Later token groups find them in cache.
                if (t0 == 0 && rt + quant::kGemmRows < r_tiles) {
                    prefetch_l2(w.row(mat, rt + quant::kGemmRows), quant::kGemmRows * w.row_bytes);
                }
                gemm(n, w.row(mat, rt), w.row_bytes, as, nt, out);
                for (int j = 0; j < nt; ++j) {
                    float* yt = y + (out_rows ? out_rows[t0 + j] : t0 + j) * ldy + rt;
                    for (int i = 0; i < quant::kGemmRows; ++i) yt[i] = out[i * quant::kGemmCols + j];
                }
            }
        }
        r = r_tiles;
    }
    const int ahead = prefetch_rows();
    for (; r < r1; ++r) {
        const uint8_t* wr = w.row(mat, r);
        if (ahead && r + ahead < r1) prefetch_l2(w.row(mat, r + ahead), w.row_bytes);
        for (int t = 0; t < n_tok; ++t) {
            y[(out_rows ? out_rows[t] : t) * ldy + r] = dot(n, wr, x.packed_row(rows ? rows[t] : t));
        }
    }
}

void matmul_many(std::span<const MatmulJob> jobs, Activations& x, int n_threads) {
    // one parallel loop, so one barrier, where the matrices take the same activation format
    for (const MatmulJob& j : jobs) {
        if (activation_format(j.w->type) != activation_format(jobs.front().w->type)) {
            for (const MatmulJob& each : jobs) matmul(*each.w, 0, x, each.y, each.ldy, n_threads);
            return;
        }
    }
    x.prepare(jobs.front().w->type, n_threads);
    const int n_tok = static_cast<int>(x.n_rows());
    // blocks of rows small enough to balance, large enough that a thread reuses its activation rows
    const int64_t block = 16;
    int64_t n_blocks = 0;
    for (const MatmulJob& j : jobs) n_blocks += (j.w->n_out + block - 1) / block;
    for_blocks(n_blocks, n_threads, [&](int64_t b) {
        int64_t first = b;  // the block's index within its matrix
        for (const MatmulJob& j : jobs) {
            const int64_t blocks = (j.w->n_out + block - 1) / block;
            if (first < blocks) {
                const int64_t r0 = first * block;
                matmul_rows(*j.w, 0, x, nullptr, nullptr, n_tok, r0, std::min(j.w->n_out, r0 + block), j.y, j.ldy);
                break;
            }
            first -= blocks;
        }
    });
}

void matmul(const Weight& w, int64_t mat, Activations& x, float* y, int64_t ldy, int n_threads) {
    x.prepare(w.type, n_threads);
    const int n_tok = static_cast<int>(x.n_rows());
    const int64_t block = 16;
    const int64_t n_blocks = (w.n_out + block - 1) / block;
    for_blocks(n_blocks, n_threads, [&](int64_t b) {
        const int64_t r0 = b * block;
        matmul_rows(w, mat, x, nullptr, nullptr, n_tok, r0, std::min(w.n_out, r0 + block), y, ldy);
    });
}

}  // namespace runtime::cpu
