#include "cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "denormals.h"
#include "ops.h"
#include "profile.h"
#include "quant/float16.h"
#include "quant/quant.h"
#include "runtime/activation_collector.h"
#include "runtime/kv_cache.h"

namespace runtime::cpu {

using gguf::GgmlType;

namespace {

template <typename T, typename A>
uint64_t vbytes(const std::vector<T, A>& v) {
    return v.size() * sizeof(T);
}

// Row-wise ops over a batch's tokens: split over the threads for prompts (at 16 threads a 512-token
// batch's norms, RoPE and residual adds cost as much as a layer's attention when run on one thread);
// a few rows (decode) are cheaper on the calling thread than the fork and join of a parallel region.
constexpr int64_t kParallelRows = 32;

// One head of a cached key or value row in f32, whatever the cache type.
void head_to_f32(GgmlType type, const uint8_t* src, float* dst, int n) {
    if (type == GgmlType::F16) {
        f16_to_f32_row(reinterpret_cast<const uint16_t*>(src), dst, n);
    } else if (type == GgmlType::F32) {
        std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else {
        quant::dequantize_row(type, src, dst, n);
    }
}

// Rows of f32 into cache rows of `type` (row_bytes apart). F32 and F16 are converted here directly:
// this runs for every token and libquant's entry point opens a parallel region.
void store_rows(GgmlType type, const Tensor& src, uint8_t* dst, size_t row_bytes, int n_threads) {
    if (type != GgmlType::F32 && type != GgmlType::F16 && src.ld == src.cols) {
        quant::quantize_rows(type, src.data, dst, src.rows, src.cols);  // one call: it runs in parallel
        return;
    }
    // a prompt's rows over the threads; a token's row here (see for_rows)
#pragma omp parallel for num_threads(n_threads) schedule(static) if (src.rows >= kParallelRows)
    for (int64_t r = 0; r < src.rows; ++r) {
        const float* s = src.row(r);
        uint8_t* d = dst + static_cast<size_t>(r) * row_bytes;
        if (type == GgmlType::F32) {
            std::memcpy(d, s, static_cast<size_t>(src.cols) * sizeof(float));
        } else if (type == GgmlType::F16) {
            auto* h = reinterpret_cast<uint16_t*>(d);
            for (int64_t i = 0; i < src.cols; ++i) h[i] = quant::f32_to_f16(s[i]);
        } else {
            quant::quantize_rows(type, s, d, 1, src.cols);
        }
    }
}


template <typename F>
void for_rows(int64_t n_rows, int n_threads, F&& f) {
    if (n_rows < kParallelRows || n_threads <= 1) {
        for (int64_t t = 0; t < n_rows; ++t) f(t);
        return;
    }
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t t = 0; t < n_rows; ++t) f(t);
}

}  // namespace

CpuExecutor::CpuExecutor(const HParams& hp, const ContextShape& shape, std::vector<double> rope_inv_freq)
    : hp_(hp),
      n_threads_(shape.n_threads),
      n_batch_(shape.n_batch),
      n_ctx_(shape.n_ctx),
      inv_freq_(std::move(rope_inv_freq)) {
    const size_t B = static_cast<size_t>(shape.n_batch);
    const int64_t n_ff = hp.is_moe() ? 0 : hp.n_ff;
    // the CPU writes logits straight into the context's host rows: no buffer of its own
    for (int i = 0; i < static_cast<int>(Buf::Count); ++i) {
        buf_cols_.push_back(static_cast<Buf>(i) == Buf::Logits ? 0 : buffer_width(hp, static_cast<Buf>(i), 0));
    }
    bufs_.resize(static_cast<size_t>(Buf::Count));
    for (size_t i = 0; i < bufs_.size(); ++i) bufs_[i].resize(B * static_cast<size_t>(buf_cols_[i]));

    rope_cos_.resize(B * inv_freq_.size());
    rope_sin_.resize(B * inv_freq_.size());

    const size_t T = static_cast<size_t>(shape.n_threads);
    const size_t C = static_cast<size_t>(shape.n_ctx);
    scores_ld_ = (C + kAttendPad - 1) / kAttendPad * kAttendPad;
    scores_.resize(T * scores_ld_ * kAttendRows);
    krow_.resize(T * hp.head_dim_k);
    // a row length that is not a power of two: rows 2^k bytes apart would share a few L1 sets
    kt_ld_ = scores_ld_ + 16;
    kt_.resize(static_cast<size_t>(hp.n_head_kv) * hp.head_dim_k * kt_ld_);
    vf_.resize(static_cast<size_t>(hp.n_head_kv) * C * hp.head_dim_v);

    act_.reserve(static_cast<int64_t>(B),
                 std::max<int64_t>({hp.n_embd, hp.n_embd_attn_out(), static_cast<int64_t>(n_ff),
                                    static_cast<int64_t>(hp.n_ff_shexp), static_cast<int64_t>(hp.ssm_d_inner)}));
    if (hp.has_recurrent()) {
        const size_t conv_dim = hp.ssm_conv_dim(), heads = hp.ssm_n_v_heads;
        delta_.mixed.resize(B * conv_dim);
        delta_.window.resize((B + hp.ssm_d_conv - 1) * conv_dim);
        delta_.z.resize(B * hp.ssm_d_inner);
        delta_.core.resize(B * hp.ssm_d_inner);
        delta_.beta.resize(B * heads);
        delta_.alpha.resize(B * heads);
    }
    if (hp.is_moe()) {
        const size_t K = hp.n_expert_used;
        const size_t E = hp.n_expert;
        sel_weight_.resize(B * K);
        sel_expert_.resize(B * K);
        moe_.h_gate.resize(B * K * hp.n_ff_exp);
        moe_.h_up.resize(B * K * hp.n_ff_exp);
        moe_.down.resize(B * K * hp.n_embd);
        moe_.expert_count.resize(E);
        moe_.expert_tokens.resize(E * B);
        moe_.expert_slots.resize(E * B);
        moe_.active.resize(E);
        moe_.progress = std::make_unique<MoeScratch::Progress[]>(E);
        moe_.bounds.resize(T + 1);
        moe_.act_up.reserve(static_cast<int64_t>(B), hp.n_embd);
        moe_.act_h.reserve(static_cast<int64_t>(B * K), hp.n_ff_exp);
    }
    flush_denormals(n_threads_);  // denormals.h: why
}

uint64_t CpuExecutor::bytes() const {
    uint64_t b = vbytes(rope_cos_) + vbytes(rope_sin_) + vbytes(sel_weight_) + vbytes(sel_expert_) + vbytes(scores_) +
                 vbytes(krow_) + vbytes(kt_) + vbytes(vf_) + act_.bytes();
    for (const auto& v : bufs_) b += vbytes(v);
    b += vbytes(moe_.h_gate) + vbytes(moe_.h_up) + vbytes(moe_.down) + vbytes(moe_.expert_count) +
         vbytes(moe_.expert_tokens) + vbytes(moe_.expert_slots) + vbytes(moe_.active) + vbytes(moe_.bounds) +
         moe_.act_up.bytes() + moe_.act_h.bytes();
    b += vbytes(delta_.mixed) + vbytes(delta_.z) + vbytes(delta_.beta) + vbytes(delta_.alpha) + vbytes(delta_.window) +
         vbytes(delta_.core);
    return b;
}

Tensor CpuExecutor::buffer(Buf id, int rows) {
    const int64_t cols = buf_cols_[static_cast<size_t>(id)];
    return {bufs_[static_cast<size_t>(id)].data(), rows, cols, cols, Device::cpu()};
}

Routing CpuExecutor::routing(int n_tokens, int k) {
    return {sel_expert_.data(), sel_weight_.data(), n_tokens, k, Device::cpu()};
}

void CpuExecutor::begin(const BatchInfo& batch) {
    batch_ = batch;
    const size_t half = inv_freq_.size();
    for (int t = 0; t < batch.n_tokens; ++t) {
        const double pos = batch.pos0 + t;
        for (size_t i = 0; i < half; ++i) {
            const double theta = pos * inv_freq_[i];
            // YaRN's attention factor scales both (1 without YaRN)
            rope_cos_[t * half + i] = static_cast<float>(std::cos(theta) * hp_.rope_attn_factor);
            rope_sin_[t * half + i] = static_cast<float>(std::sin(theta) * hp_.rope_attn_factor);
        }
    }
}

void CpuExecutor::copy(const Tensor& src, const Tensor& dst) {
    if (src.data == dst.data) return;
    for (int64_t r = 0; r < src.rows; ++r) {
        std::memcpy(dst.row(r), src.row(r), static_cast<size_t>(src.cols) * sizeof(float));
    }
}

void CpuExecutor::copy(const Routing& src, const Routing& dst) {
    if (src.ids == dst.ids) return;
    const size_t n = static_cast<size_t>(src.n_tokens) * static_cast<size_t>(src.k);
    std::memcpy(dst.ids, src.ids, n * sizeof(int32_t));
    std::memcpy(dst.weights, src.weights, n * sizeof(float));
}

void CpuExecutor::rms_norm(const Tensor& x, const float* w, float eps, const Tensor& out) {
    ProfileScope prof("rms_norm");
    for_rows(x.rows, n_threads_, [&](int64_t t) { cpu::rms_norm(x.row(t), w, out.row(t), x.cols, eps); });
}

void CpuExecutor::rms_norm_heads(const Tensor& x, int head_dim, const float* w, float eps) {
    ProfileScope prof("rms_norm_heads");
    for_rows(x.rows, n_threads_, [&](int64_t t) { norm_heads_row(x.row(t), x.cols, head_dim, w, eps); });
}

void CpuExecutor::norm_heads_row(float* row, int64_t cols, int head_dim, const float* w, float eps) {
    for (int64_t h = 0; h < cols / head_dim; ++h) {
        float* p = row + h * head_dim;
        cpu::rms_norm(p, w, p, head_dim, eps);
    }
}

void CpuExecutor::rope_row(float* row, int64_t cols, int head_dim, int64_t t) const {
    const size_t half = inv_freq_.size();
    const float* c = rope_cos_.data() + t * half;
    const float* s = rope_sin_.data() + t * half;
    for (int64_t h = 0; h < cols / head_dim; ++h) {
        cpu::rope(row + h * head_dim, c, s, static_cast<int>(hp_.n_rot), hp_.rope_mode);
    }
}

void CpuExecutor::norm_rope_qk(const Tensor& q, const float* q_norm, const Tensor& k, const float* k_norm, int head_dim,
                               float eps) {
    ProfileScope prof("norm_rope_qk");
    // per token: the same steps in the same order as the base class's four passes, in one
    for_rows(q.rows, n_threads_, [&](int64_t t) {
        if (q_norm) norm_heads_row(q.row(t), q.cols, head_dim, q_norm, eps);
        if (k_norm) norm_heads_row(k.row(t), k.cols, head_dim, k_norm, eps);
        rope_row(q.row(t), q.cols, head_dim, t);
        rope_row(k.row(t), k.cols, head_dim, t);
    });
}

void CpuExecutor::matmul(std::span<const MatmulOut> outs, const Tensor& x) {
    ProfileScope prof(weight_label(outs[0].w->name));  // attn_q also counts K and V when they run together
    act_.set(x.data, x.rows, x.cols, x.ld);
    if (collector_) {
        for (const auto& o : outs) collector_->matmul_input(*o.w, x);
    }
    if (outs.size() == 1) {
        cpu::matmul(*outs[0].w, 0, act_, outs[0].y.data, outs[0].y.ld, n_threads_);
        return;
    }
    constexpr size_t kMaxJobs = 4;  // Q, K and V at most
    if (outs.size() > kMaxJobs) throw std::logic_error("CpuExecutor::matmul: too many outputs");
    MatmulJob jobs[kMaxJobs];
    for (size_t i = 0; i < outs.size(); ++i) jobs[i] = {outs[i].w, outs[i].y.data, outs[i].y.ld};
    matmul_many(std::span<const MatmulJob>(jobs, outs.size()), act_, n_threads_);
}

void CpuExecutor::add_bias(const Tensor& y, const float* b) {
    for_rows(y.rows, n_threads_, [&](int64_t t) {
        float* r = y.row(t);
        for (int64_t i = 0; i < y.cols; ++i) r[i] += b[i];
    });
}

void CpuExecutor::rope(const Tensor& x, int head_dim) {
    ProfileScope prof("rope");
    for_rows(x.rows, n_threads_, [&](int64_t t) { rope_row(x.row(t), x.cols, head_dim, t); });
}

void CpuExecutor::store_kv(KvCache& kv, int il, const Tensor& k, const Tensor& v) {
    ProfileScope prof("store_kv");
    store_rows(kv.type_k(), k, kv.k_row(il, batch_.pos0), kv.k_row_bytes(), n_threads_);
    store_rows(kv.type_v(), v, kv.v_row(il, batch_.pos0), kv.v_row_bytes(), n_threads_);
}

void CpuExecutor::attention(const KvCache& kv, int il, const Tensor& q, const Tensor& out) {
    attention_masked(kv, il, q, out, AttentionMask{});
}

void CpuExecutor::attention_masked(const KvCache& kv, int il, const Tensor& q, const Tensor& out,
                                   const AttentionMask& mask) {
    ProfileScope prof("attention");
    const int B = static_cast<int>(q.rows);
    const int hd = static_cast<int>(hp_.head_dim_k);
    const int hdv = static_cast<int>(hp_.head_dim_v);
    // the cached keys and values this batch reads, per KV head in f32: keys transposed so that scores
    // vectorize across positions; converted once per layer, then shared by every query head of the group
    const GgmlType tk = kv.type_k(), tv = kv.type_v();
    const int n_kv_max = batch_.pos0 + B;
    const int n_head_kv = static_cast<int>(hp_.n_head_kv);
    const int64_t ld = static_cast<int64_t>(kt_ld_);
    constexpr int kConvert = 64;  // positions per conversion item
    // a sliding window: token t sees positions [first(t), pos0 + t]; the batch reads from first(0) on
    const auto first = [&](int t) { return mask.window > 0 ? std::max(0, batch_.pos0 + t - mask.window + 1) : 0; };
    const int chunk0 = first(0) / kConvert;
    const int n_chunks = (n_kv_max + kConvert - 1) / kConvert - chunk0;
    const int group = static_cast<int>(hp_.n_head / hp_.n_head_kv);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int n_pairs = B * static_cast<int>(hp_.n_head);
    // grouped items where there are enough of them for the threads (prompts; decode keeps one per head)
    constexpr int kMaxGroup = 64;
    const bool grouped = attend_rows_pays(group) && group <= kMaxGroup && B * n_head_kv >= n_threads_;
    const size_t kh_bytes = kv.k_head_bytes(), vh_bytes = kv.v_head_bytes();

#pragma omp parallel num_threads(n_threads_)
    {
        const int tid = omp_get_thread_num();
        float* krow = krow_.data() + static_cast<size_t>(tid) * hd;
#pragma omp for schedule(static)
        for (int item = 0; item < n_head_kv * n_chunks; ++item) {
            const int g = item / n_chunks;
            const int p0 = (chunk0 + item % n_chunks) * kConvert, p1 = std::min(n_kv_max, p0 + kConvert);
            float* kt = kt_.data() + static_cast<size_t>(g) * hd * ld;
            float* vf = vf_.data() + static_cast<size_t>(g) * n_ctx_ * hdv;
            for (int p = p0; p < p1; ++p) {
                head_to_f32(tk, kv.k_row(il, p) + g * kh_bytes, krow, hd);
                for (int d = 0; d < hd; ++d) kt[d * ld + p] = krow[d];
                head_to_f32(tv, kv.v_row(il, p) + g * vh_bytes, vf + static_cast<int64_t>(p) * hdv, hdv);
            }
        }
        if (grouped) {
            // one item per token and KV head: its query heads share each key and value row read
            float* scores = scores_.data() + static_cast<size_t>(tid) * scores_ld_ * kAttendRows;
#pragma omp for schedule(dynamic, 1)
            for (int item = 0; item < B * n_head_kv; ++item) {
                const int t = item / n_head_kv, g = item % n_head_kv;
                const float* qs[kMaxGroup];
                float* outs[kMaxGroup];
                for (int j = 0; j < group; ++j) {
                    qs[j] = q.row(t) + (g * group + j) * hd;
                    outs[j] = out.row(t) + (g * group + j) * hdv;
                }
                const int p0 = first(t);
                attend_rows(group, qs, scale, kt_.data() + static_cast<size_t>(g) * hd * ld + p0, ld, hd,
                            vf_.data() + (static_cast<size_t>(g) * n_ctx_ + p0) * hdv, hdv, batch_.pos0 + t + 1 - p0,
                            scores, static_cast<int64_t>(scores_ld_), outs, mask.sinks ? mask.sinks + g * group : nullptr);
            }
        } else {
#pragma omp for schedule(dynamic, 1)
        for (int pair = 0; pair < n_pairs; ++pair) {
            const int t = pair / static_cast<int>(hp_.n_head);
            const int h = pair % static_cast<int>(hp_.n_head);
            const int g = h / group;
            const int p0 = first(t);
            const int n_kv = batch_.pos0 + t + 1 - p0;  // causal: positions up to this token's own
            attend(q.row(t) + h * hd, scale, kt_.data() + static_cast<size_t>(g) * hd * ld + p0, ld, hd,
                   vf_.data() + (static_cast<size_t>(g) * n_ctx_ + p0) * hdv, hdv, n_kv,
                   scores_.data() + static_cast<size_t>(tid) * scores_ld_, out.row(t) + h * hdv,
                   mask.sinks ? mask.sinks + h : nullptr);
        }
        }
    }
}

void CpuExecutor::add(const Tensor& x, const Tensor& y) {
    ProfileScope prof("add");
    for_rows(x.rows, n_threads_, [&](int64_t t) {
        float* a = x.row(t);
        const float* b = y.row(t);
        for (int64_t i = 0; i < x.cols; ++i) a[i] += b[i];
    });
}

void CpuExecutor::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
    ProfileScope prof("swiglu");
    for_rows(gate.rows, n_threads_, [&](int64_t t) { cpu::swiglu(gate.row(t), up.row(t), out.row(t), gate.cols); });
}

void CpuExecutor::route(const Tensor& logits, const RouterParams& p, const Routing& out) {
    ProfileScope prof("route");
    // a token at a time: route_topk's work is per row
    for_rows(logits.rows, n_threads_, [&](int64_t t) {
        const Tensor l{logits.row(t), 1, logits.cols, logits.ld, logits.device};
        const Routing r{out.ids + t * out.k, out.weights + t * out.k, 1, out.k, out.device};
        route_topk(l, p, r);
    });
}

void CpuExecutor::experts(const LayerWeights& L, const Tensor& x, const Routing& r, const Tensor& out) {
    act_.set(x.data, x.rows, x.cols, x.ld);
    run_experts(hp_, L, act_, r, out, n_threads_, n_batch_, moe_);
    if (collector_) {
        // run_experts leaves each slot's hidden row, silu(gate) * up, in h_gate: the down projection's input
        collector_->expert_input(L.gate_exps, r, x.data, x.ld, false);
        collector_->expert_input(L.up_exps, r, x.data, x.ld, false);
        collector_->expert_input(L.down_exps, r, moe_.h_gate.data(), hp_.n_ff_exp, true);
    }
}

DeviceBuffer CpuBackend::allocate(size_t bytes) const {
    void* p = std::calloc(std::max<size_t>(bytes, 1), 1);
    if (!p) throw std::bad_alloc();
    return DeviceBuffer(p, std::free);
}

std::unique_ptr<Executor> CpuBackend::make_executor(const HParams& hp, const ContextShape& shape,
                                                    std::vector<double> rope_inv_freq) const {
    return std::make_unique<CpuExecutor>(hp, shape, std::move(rope_inv_freq));
}

}  // namespace runtime::cpu
