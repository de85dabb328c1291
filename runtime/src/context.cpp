#include "runtime/context.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "quant/quant.h"
#include "runtime/error.h"

namespace runtime {

namespace {

std::vector<Device> attention_devices(const Model& model) {
    std::vector<Device> out;
    for (const auto& L : model.weights().layers) out.push_back(L.attention_device());
    return out;
}

int resolve_threads(int n_threads) {
    if (n_threads > ContextParams::kMaxThreads) {
        throw Error("thread count " + std::to_string(n_threads) + " exceeds the " +
                    std::to_string(ContextParams::kMaxThreads) + " this runtime supports");
    }
    return n_threads > 0 ? n_threads : omp_get_max_threads();
}

int resolve_ctx(const Model& model, int n_ctx) {
    if (n_ctx < 0) throw Error("context size must be >= 0, got " + std::to_string(n_ctx));
    if (n_ctx == 0) return static_cast<int>(std::min<uint32_t>(model.hparams().n_ctx_train, ContextParams::kDefaultMaxCtx));
    return n_ctx;
}

}  // namespace

Context::Context(const Model& model, const ContextParams& params)
    : model_(model),
      n_ctx_(resolve_ctx(model, params.n_ctx)),
      n_batch_(std::min(params.n_batch, n_ctx_)),
      n_threads_(resolve_threads(params.n_threads)),
      kv_(model.hparams(), n_ctx_, params.type_k, params.type_v, attention_devices(model)) {
    if (n_ctx_ < 1) throw Error("context size must be at least 1");
    if (n_batch_ < 1) throw Error("batch size must be at least 1, got " + std::to_string(params.n_batch));
    const HParams& hp = model.hparams();
    const ContextShape shape{n_ctx_, n_batch_, n_threads_};
    auto exec_for = [&](Device d) {
        auto& ws = workspaces_[d];
        if (!ws) ws = model.backend(d).make_workspace(hp, shape);
        return Exec{&model.backend(d), ws.get()};
    };
    for (const auto& L : model.weights().layers) {
        attn_exec_.push_back(exec_for(L.attention_device()));
        ffn_exec_.push_back(exec_for(L.ffn_device()));
    }
    out_exec_ = exec_for(model.weights().output.device);

    const size_t half = hp.n_rot / 2;
    x_.resize(static_cast<size_t>(n_batch_) * hp.n_embd);
    rope_cos_.resize(static_cast<size_t>(n_batch_) * half);
    rope_sin_.resize(static_cast<size_t>(n_batch_) * half);
    logits_.resize(static_cast<size_t>(n_batch_) * static_cast<size_t>(model.n_vocab()));
    const auto& factors = model.weights().rope_freqs;
    for (size_t i = 0; i < half; ++i) {
        double f = hp.rope_freq_scale * std::pow(static_cast<double>(hp.rope_freq_base), -2.0 * static_cast<double>(i) / hp.n_rot);
        if (!factors.empty()) f /= factors[i];
        inv_freq_.push_back(f);
    }
}

void Context::truncate(int n) {
    if (n < 0 || n > n_past_) {
        throw Error("cannot truncate the context to " + std::to_string(n) + " of " + std::to_string(n_past_) +
                    " positions");
    }
    n_past_ = n;
}

std::span<const float> Context::decode(std::span<const int32_t> tokens, bool all_logits) {
    const int n = static_cast<int>(tokens.size());
    const int n_vocab = model_.n_vocab();
    if (n == 0) throw Error("decode: no tokens");
    if (n_past_ + n > n_ctx_) {
        throw Error("the context is full: " + std::to_string(n_past_) + " + " + std::to_string(n) +
                    " tokens exceed the context size " + std::to_string(n_ctx_));
    }
    if (all_logits && n > n_batch_) {
        throw Error("decode: logits for all of " + std::to_string(n) + " tokens exceed the batch size " +
                    std::to_string(n_batch_));
    }
    for (int32_t t : tokens) {
        if (t < 0 || t >= n_vocab) {
            throw Error("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                        std::to_string(n_vocab - 1) + ")");
        }
    }
    for (int start = 0; start < n; start += n_batch_) {
        const int m = std::min(n_batch_, n - start);
        const bool last = start + m == n;
        forward(tokens.data() + start, m, all_logits || last, all_logits ? logits_.data() : nullptr);
        if (!all_logits && last) {
            return {logits_.data(), static_cast<size_t>(n_vocab)};
        }
    }
    return {logits_.data(), static_cast<size_t>(n) * static_cast<size_t>(n_vocab)};
}

void Context::forward(const int32_t* tokens, int n, bool want_logits, float* all_logits) {
    const HParams& hp = model_.hparams();
    const ModelWeights& w = model_.weights();
    const int64_t n_embd = hp.n_embd;
    // the input layer stays on the CPU, as in llama.cpp: one row lookup per token
    for (int t = 0; t < n; ++t) {
        quant::dequantize_row(w.token_embd.type, w.token_embd.row(0, tokens[t]), x_.data() + t * n_embd, n_embd);
    }
    const size_t half = inv_freq_.size();
    for (int t = 0; t < n; ++t) {
        const double pos = n_past_ + t;
        for (size_t i = 0; i < half; ++i) {
            const double theta = pos * inv_freq_[i];
            rope_cos_[t * half + i] = static_cast<float>(std::cos(theta));
            rope_sin_[t * half + i] = static_cast<float>(std::sin(theta));
        }
    }
    const BatchInfo batch{n, n_past_, rope_cos_.data(), rope_sin_.data()};
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const LayerWeights& L = w.layers[il];
        attn_exec_[il].backend->attention(hp, L, kv_, static_cast<int>(il), x_.data(), batch, *attn_exec_[il].ws);
        ffn_exec_[il].backend->feed_forward(hp, L, x_.data(), batch, *ffn_exec_[il].ws);
    }
    n_past_ += n;
    if (!want_logits) return;
    if (all_logits) {
        out_exec_.backend->output(hp, w, x_.data(), n, all_logits, *out_exec_.ws);
    } else {
        out_exec_.backend->output(hp, w, x_.data() + (n - 1) * n_embd, 1, logits_.data(), *out_exec_.ws);
    }
}

MemoryBreakdown Context::memory() const {
    MemoryBreakdown m;
    for (const auto& [dev, bytes] : model_.plan().weight_bytes()) m[dev].weights += bytes;
    for (const auto& [dev, bytes] : kv_.bytes_per_device()) m[dev].kv_cache += bytes;
    for (const auto& [dev, ws] : workspaces_) m[dev].scratch += ws->bytes();
    // the host-side residual stream, RoPE angles and logits
    m[Device::cpu()].scratch += (x_.size() + rope_cos_.size() + rope_sin_.size() + logits_.size()) * sizeof(float);
    return m;
}

}  // namespace runtime
