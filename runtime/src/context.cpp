#include "runtime/context.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>

#include "forward.h"
#include "quant/quant.h"
#include "runtime/error.h"

namespace runtime {

namespace {

std::vector<const Backend*> attention_backends(const Model& model) {
    std::vector<const Backend*> out;
    for (const auto& L : model.weights().layers) out.push_back(&model.backend(L.attention_device()));
    return out;
}

// Per rotated pair of a head, the angle per position, with linear scaling and llama 3.1-style
// frequency factors folded in.
std::vector<double> rope_inv_freq(const HParams& hp, const std::vector<float>& factors) {
    std::vector<double> out;
    for (size_t i = 0; i < hp.n_rot / 2; ++i) {
        double f = hp.rope_freq_scale * std::pow(static_cast<double>(hp.rope_freq_base), -2.0 * static_cast<double>(i) / hp.n_rot);
        if (!factors.empty()) f /= factors[i];
        out.push_back(f);
    }
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
      kv_(model.hparams(), n_ctx_, params.type_k, params.type_v, attention_backends(model)) {
    if (n_ctx_ < 1) throw Error("context size must be at least 1");
    if (n_batch_ < 1) throw Error("batch size must be at least 1, got " + std::to_string(params.n_batch));
    const HParams& hp = model.hparams();
    const ContextShape shape{n_ctx_, n_batch_, n_threads_, model.n_vocab()};
    const std::vector<double> inv_freq = rope_inv_freq(hp, model.weights().rope_freqs);
    auto exec_for = [&](Device d) {
        auto& ex = executors_[d];
        if (!ex) ex = model.backend(d).make_executor(hp, shape, inv_freq);
        return ex.get();
    };
    exec_for(Device::cpu());  // the embedding lookup runs there
    for (const auto& L : model.weights().layers) {
        attn_exec_.push_back(exec_for(L.attention_device()));
        ffn_exec_.push_back(exec_for(L.ffn_device()));
        experts_exec_.push_back(L.is_moe() ? exec_for(L.experts_device()) : ffn_exec_.back());
    }
    out_exec_ = exec_for(model.weights().output.device);
    // every step on the same GPU: decode steps can be recorded (GGUF_CUDA_GRAPHS=0 turns that off)
    std::set<Executor*> steps(attn_exec_.begin(), attn_exec_.end());
    steps.insert(ffn_exec_.begin(), ffn_exec_.end());
    steps.insert(experts_exec_.begin(), experts_exec_.end());
    steps.insert(out_exec_);
    const char* graphs = std::getenv("GGUF_CUDA_GRAPHS");
    if (steps.size() == 1 && !out_exec_->device().is_cpu() && !(graphs && std::string(graphs) == "0")) {
        graph_exec_ = out_exec_;
    }

    embd_.resize(static_cast<size_t>(n_batch_) * hp.n_embd);
    logits_.resize(static_cast<size_t>(n_batch_) * static_cast<size_t>(model.n_vocab()));
    if (executors_.size() > 1) {
        const size_t slots = static_cast<size_t>(n_batch_) * std::max<uint32_t>(hp.n_expert_used, 1);
        stage_rows_.resize(static_cast<size_t>(n_batch_) * hp.n_embd);
        stage_ids_.resize(slots);
        stage_weights_.resize(slots);
    }
}

Executor& Context::executor(Device device) { return *executors_.at(device); }

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
        quant::dequantize_row(w.token_embd.type, w.token_embd.row(0, tokens[t]), embd_.data() + t * n_embd, n_embd);
    }
    const BatchInfo batch{n, n_past_};
    for (auto& [dev, ex] : executors_) ex->begin(batch);

    Transfers transfers(stage_rows_, stage_ids_, stage_weights_);
    Executor& cpu = executor(Device::cpu());
    const Tensor embd{embd_.data(), n, n_embd, n_embd, Device::cpu()};
    Executor* at = attn_exec_.empty() ? out_exec_ : attn_exec_[0];
    Tensor x = transfers.move(cpu, embd, *at, Buf::X);
    if (x.data == embd.data) {
        // the CPU's residual stream is its own buffer, not the embedding rows
        x = at->buffer(Buf::X, n);
        at->upload(embd, x);
    }
    // the output rows: all of them, or the last token's
    Executor& out = *out_exec_;
    const int first = all_logits ? 0 : n - 1;
    const int rows = n - first;
    const int64_t n_vocab = w.output.n_out;
    const Tensor host{all_logits ? all_logits : logits_.data(), rows, n_vocab, n_vocab, Device::cpu()};
    const Tensor y = out.device().is_cpu() ? host : out.buffer(Buf::Logits, rows);

    auto body = [&] {
        for (uint32_t il = 0; il < hp.n_layer; ++il) {
            const LayerWeights& L = w.layers[il];
            x = transfers.move(*at, x, *attn_exec_[il], Buf::X);
            at = attn_exec_[il];
            attention_block(*at, hp, L, kv_, static_cast<int>(il), x);
            x = transfers.move(*at, x, *ffn_exec_[il], Buf::X);
            at = ffn_exec_[il];
            ffn_block(*at, *experts_exec_[il], transfers, hp, L, x);
        }
        if (!want_logits) return;
        x = transfers.move(*at, x, out, Buf::X);
        const Tensor xs{x.row(first), rows, x.cols, x.ld, x.device};
        const Tensor xn = out.buffer(Buf::XN, rows);
        out.rms_norm(xs, w.output_norm.data(), hp.rms_eps, xn);
        const Executor::MatmulOut proj[] = {{&w.output, y}};
        out.matmul(proj, xn);
    };
    // a decode step wholly on one GPU is recorded once and replayed: one launch per token
    const int key = n * 2 + (want_logits ? 1 : 0);
    if (graph_exec_ && n == 1 && !graph_exec_->replay(key)) {
        if (graph_exec_->recordable()) {
            graph_exec_->capture_begin();
            try {
                body();
            } catch (...) {
                graph_exec_->capture_abort();
                throw;
            }
            graph_exec_->capture_end(key);
        } else {
            body();
        }
    } else if (!(graph_exec_ && n == 1)) {
        body();
    }
    n_past_ += n;
    if (want_logits && !out.device().is_cpu()) out.download(y, host);
    for (auto& [dev, ex] : executors_) ex->sync();
}

MemoryBreakdown Context::memory() const {
    MemoryBreakdown m;
    for (const auto& [dev, bytes] : model_.plan().weight_bytes()) m[dev].weights += bytes;
    for (const auto& [dev, bytes] : kv_.bytes_per_device()) m[dev].kv_cache += bytes;
    for (const auto& [dev, ex] : executors_) m[dev].scratch += ex->bytes();
    // the host-side embeddings, logits and staging rows
    m[Device::cpu()].scratch += (embd_.size() + logits_.size() + stage_rows_.size() + stage_weights_.size() +
                                 stage_ids_.size()) * sizeof(float);
    return m;
}

}  // namespace runtime
