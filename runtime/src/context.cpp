#include "runtime/context.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>

#include <unistd.h>

#include <map>

#include "finite_probe.h"
#include "forward.h"
#include "gemma4/gemma4.h"
#include "quant/quant.h"
#include "rope_yarn.h"
#include "runtime/error.h"
#include "runtime/fit.h"
#include "runtime/gpu_info.h"

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
    if (hp.rope_yarn) return yarn_inv_freq(hp);
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

// From this many tokens on, a batch streams the host-resident experts to the GPU instead of running
// them on the CPU (GGUF_STREAM_MIN_TOKENS overrides it, for measuring where the two cross).
int stream_min_tokens() {
    const char* env = std::getenv("GGUF_STREAM_MIN_TOKENS");
    return env && *env ? std::max(1, std::atoi(env)) : 32;
}

uint64_t physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

// The context size, planned before anything is allocated: the KV cache of the layers on each device
// must fit in that device's memory (the host's RAM, a GPU's free memory), or the run fails here with
// the figures instead of in the allocator (or the OOM killer) later.
int resolve_ctx(const Model& model, const ContextParams& params) {
    const int n_ctx_arg = params.n_ctx;
    if (n_ctx_arg < 0) throw Error("context size must be >= 0, got " + std::to_string(n_ctx_arg));
    const HParams& hp = model.hparams();
    const int n_ctx =
        n_ctx_arg == 0 ? static_cast<int>(std::min<uint32_t>(hp.n_ctx_train, ContextParams::kDefaultMaxCtx)) : n_ctx_arg;
    const uint64_t per_layer = kv_layer_bytes(hp, n_ctx, params.type_k, params.type_v);
    std::map<Device, uint64_t> need;
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        // a linear-attention layer keeps a fixed-size recurrent state instead of a KV cache
        need[model.weights().layers[il].attention_device()] +=
            hp.is_recurrent(il) ? RecurrentState::layer_bytes(hp) : per_layer;
    }
    // the CPU attention also keeps one layer's keys and values in f32
    need[Device::cpu()] += static_cast<uint64_t>(n_ctx) * (hp.n_embd_k() + hp.n_embd_v()) * sizeof(float);
    std::map<Device, uint64_t> have{{Device::cpu(), physical_memory()}};
    if (need.size() > 1) {
        for (const GpuInfo& g : query_gpus()) have[g.device] = g.free_bytes;
    }
    for (const auto& [dev, bytes] : need) {
        const auto it = have.find(dev);
        if (it == have.end() || it->second == 0 || bytes <= it->second) continue;
        throw Error("a context of " + std::to_string(n_ctx) + " tokens needs " + format_bytes(bytes) +
                    " of KV cache on " + dev.name() + ", more than its " + format_bytes(it->second) +
                    (dev.is_cpu() ? " of memory" : " free") + "; use a smaller -c (the model was trained on " +
                    std::to_string(hp.n_ctx_train) + ") or -ctk/-ctv q8_0");
    }
    return n_ctx;
}

}  // namespace

Context::Context(const Model& model, const ContextParams& params)
    : model_(model),
      n_ctx_(resolve_ctx(model, params)),
      n_batch_(std::min(params.n_batch, n_ctx_)),
      n_outputs_(params.n_outputs > 0 ? std::min(params.n_outputs, n_batch_) : n_batch_),
      n_threads_(resolve_threads(params.n_threads)),
      kv_(model.hparams(), n_ctx_, params.type_k, params.type_v, attention_backends(model)),
      rs_(model.hparams(), attention_backends(model)) {
    if (n_ctx_ < 1) throw Error("context size must be at least 1");
    if (n_batch_ < 1) throw Error("batch size must be at least 1, got " + std::to_string(params.n_batch));
    if (params.n_outputs < 0) throw Error("n_outputs must be at least 0, got " + std::to_string(params.n_outputs));
    const HParams& hp = model.hparams();
    if (static_cast<uint64_t>(n_ctx_) > hp.n_ctx_train) {
        warnings_.push_back("the context of " + std::to_string(n_ctx_) + " tokens exceeds the " +
                            std::to_string(hp.n_ctx_train) +
                            " the model was trained on; output past that position is unreliable");
    }
    ContextShape shape{n_ctx_, n_batch_, n_outputs_, n_threads_, model.n_vocab()};
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const LayerWeights& L = model.weights().layers[il];
        if (!L.experts_streamable()) continue;
        streamable_.push_back(il);
        shape.streamed_expert_bytes = std::max(shape.streamed_expert_bytes, expert_slot_bytes(L));
    }
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
    if (!streamable_.empty() && !ffn_exec_[streamable_.front()]->streams_experts()) {
        warnings_.push_back("no room on " + ffn_exec_[streamable_.front()]->device().name() +
                            " for the expert slot that streams the CPU's experts in for prompts (" +
                            format_bytes(shape.streamed_expert_bytes) + "): prompts run them on the CPU");
        streamable_.clear();
    }
    stream_min_tokens_ = stream_min_tokens();
    // every step on the same GPU: decode steps can be recorded (GGUF_CUDA_GRAPHS=0 turns that off)
    std::set<Executor*> steps(attn_exec_.begin(), attn_exec_.end());
    steps.insert(ffn_exec_.begin(), ffn_exec_.end());
    steps.insert(experts_exec_.begin(), experts_exec_.end());
    steps.insert(out_exec_);
    const char* graphs = std::getenv("GGUF_CUDA_GRAPHS");
    graphs_enabled_ = !(graphs && std::string(graphs) == "0");
    if (steps.size() == 1 && !out_exec_->device().is_cpu() && graphs_enabled_) graph_exec_ = out_exec_;
    // else the runs of layers whose every step is on one GPU: gpu_run_end_[il] is where layer il's run ends
    const auto on_one_gpu = [&](uint32_t il) {
        return attn_exec_[il] == ffn_exec_[il] && ffn_exec_[il] == experts_exec_[il] && !attn_exec_[il]->device().is_cpu();
    };
    gpu_run_end_.assign(hp.n_layer, 0);
    // and the layers whose mixer and router share a GPU while their routed experts run on the CPU: the GPU's
    // part up to the router's top-k is recorded on its own (the experts' transfer waits on the host)
    split_on_gpu_.assign(hp.n_layer, false);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        split_on_gpu_[il] = model.weights().layers[il].is_moe() && attn_exec_[il] == ffn_exec_[il] &&
                            !attn_exec_[il]->device().is_cpu() && experts_exec_[il]->device().is_cpu();
    }
    for (uint32_t il = hp.n_layer; il-- > 0;) {
        if (!on_one_gpu(il)) continue;
        const bool joins = il + 1 < hp.n_layer && on_one_gpu(il + 1) && attn_exec_[il + 1] == attn_exec_[il];
        gpu_run_end_[il] = joins ? gpu_run_end_[il + 1] : il + 1;
    }

    if (hp.arch == Arch::Gemma4Assistant) {
        throw Error(model.path() + ": a gemma4-assistant is a draft head that reads its target's KV cache; "
                    "it cannot run alone (use it as the draft model of a gemma4 target)");
    }
    if (hp.arch == Arch::Gemma4) gemma4_ = std::make_unique<Gemma4Forward>(hp, model.weights(), kv_, n_batch_, n_threads_);
    embd_.resize(static_cast<size_t>(n_batch_) * hp.n_embd);
    logits_.resize(static_cast<size_t>(n_batch_) * static_cast<size_t>(model.n_vocab()));
    if (executors_.size() > 1) {
        const size_t slots = static_cast<size_t>(n_batch_) * std::max<uint32_t>(hp.n_expert_used, 1);
        stage_rows_.resize(static_cast<size_t>(n_batch_) * hp.n_embd);
        stage_ids_.resize(slots);
        stage_weights_.resize(slots);
    }
}

Context::~Context() = default;

Executor& Context::executor(Device device) { return *executors_.at(device); }

void Context::set_collector(ActivationCollector* c) {
    // gemma4's own forward pass does not report its matrix products' inputs yet
    if (gemma4_ && c) throw Error("imatrix collection is not implemented for gemma4 yet");
    for (auto& [dev, ex] : executors_) {
        if (ex->set_collector(c)) continue;
        for (auto& [d, e] : executors_) e->set_collector(nullptr);
        throw Error("imatrix collection runs on the CPU backend: weights placed on " + dev.name() +
                    " cannot report their inputs (run with -ngl 0)");
    }
}

void Context::truncate(int n) {
    if (n < 0 || n > n_past_) {
        throw Error("cannot truncate the context to " + std::to_string(n) + " of " + std::to_string(n_past_) +
                    " positions");
    }
    if (!can_truncate(n)) {
        throw Error("cannot truncate the context to " + std::to_string(n) + " of " + std::to_string(n_past_) +
                    " positions: the linear-attention state of this model holds only the last one (0 starts over)");
    }
    if (n == 0) rs_.clear();
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
    if (all_logits && n > n_outputs_) {
        throw Error("decode: logits for all of " + std::to_string(n) + " tokens exceed the " +
                    std::to_string(n_outputs_) + " rows this context returns (batch size, or n_outputs)");
    }
    for (int32_t t : tokens) {
        if (t < 0 || t >= n_vocab) {
            throw Error("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                        std::to_string(n_vocab - 1) + ")");
        }
    }
    const int pos0 = n_past_;
    for (int start = 0; start < n; start += n_batch_) {
        const int m = std::min(n_batch_, n - start);
        const bool last = start + m == n;
        forward(tokens.data() + start, m, all_logits || last, all_logits ? logits_.data() : nullptr);
    }
    const std::span<const float> out(logits_.data(), static_cast<size_t>(all_logits ? n : 1) * n_vocab);
    // finite logits are the contract: a NaN must stop here, not turn into a sampled token or a PPL of nan
    if (!all_finite(out)) throw Error(locate_non_finite(tokens, pos0, all_logits));
    return out;
}

std::string Context::locate_non_finite(std::span<const int32_t> tokens, int pos0, bool all_logits) {
    if (!rs_.empty()) {
        // the recurrent state went through the failed tokens and cannot be restored: the located pass
        // can replay only a sequence from its start, and the context starts over either way
        rs_.clear();
        n_past_ = 0;
        if (pos0 > 0) {
            return "non-finite logits in positions " + std::to_string(pos0) + ".." +
                   std::to_string(pos0 + static_cast<int>(tokens.size()) - 1) +
                   " (not located: the linear-attention state cannot be replayed); the context was reset";
        }
    }
    // Re-running from pos0 rewrites the same KV-cache rows, so the second pass sees what the first did.
    FiniteProbe probe;
    probe_ = &probe;
    n_past_ = pos0;
    const int n = static_cast<int>(tokens.size());
    try {
        for (int start = 0; start < n && !probe.found(); start += n_batch_) {
            const int m = std::min(n_batch_, n - start);
            forward(tokens.data() + start, m, true, all_logits ? logits_.data() : nullptr);
        }
    } catch (...) {
        probe_ = nullptr;
        n_past_ = pos0;
        throw;
    }
    probe_ = nullptr;
    n_past_ = pos0;  // the failed tokens are not kept
    rs_.clear();     // (pos0 is 0 where there is a recurrent state)
    return probe.describe(model_, tokens);
}

bool Context::probe_finite(Executor& ex, const Tensor& t, int stage, int layer) {
    if (!probe_) return false;
    // the residual stream may live on a GPU: copied to the host, only in this diagnostic pass
    probe_rows_.resize(static_cast<size_t>(t.rows * t.cols));
    const Tensor host{probe_rows_.data(), t.rows, t.cols, t.cols, Device::cpu()};
    if (t.device.is_cpu()) {
        for (int64_t r = 0; r < t.rows; ++r) std::copy_n(t.row(r), t.cols, host.row(r));
    } else {
        ex.download(t, host);
        ex.sync();
    }
    return probe_->check(probe_rows_, static_cast<int>(t.rows), static_cast<FiniteProbe::Stage>(stage), layer, n_past_);
}

// Replays what `ex` recorded under `key`; else records `steps` once an eager run under the same key has
// shown that nothing in it waits on the host (Executor::recordable); else runs them eagerly.
void Context::recorded(Executor& ex, int key, const std::function<void()>& steps) {
    if (ex.replay(key)) return;
    int& eager = eager_runs_[key];
    if (eager == 0 || !ex.recordable()) {
        ++eager;
        steps();
        return;
    }
    ex.capture_begin();
    try {
        steps();
    } catch (...) {
        ex.capture_abort();
        throw;
    }
    ex.capture_end(key);
}

void Context::forward(const int32_t* tokens, int n, bool want_logits, float* all_logits) {
    const HParams& hp = model_.hparams();
    if (gemma4_) {
        const int first = all_logits ? 0 : n - 1;
        hidden_.resize(static_cast<size_t>(n - first) * hp.n_embd);
        gemma4_->forward(tokens, n, n_past_, kv_, first, want_logits ? (all_logits ? all_logits : logits_.data()) : nullptr,
                         want_logits ? hidden_.data() : nullptr);
        n_past_ += n;
        return;
    }
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

    // only while locating a NaN: the residual stream checked after each stage (see finite_probe.h)
    using Stage = FiniteProbe::Stage;
    bool stop = probe_finite(*at, x, static_cast<int>(Stage::Input), -1);
    // a large batch streams the CPU's experts in through one slot: the first streamed layer's copy is
    // queued before the layers, each next one's once the streamed layer before it has queued its experts
    // (on the GPU the copy waits for them, then overlaps the work up to its layer's experts); never
    // sooner, since it overwrites the experts that layer reads
    const bool stream = n >= stream_min_tokens_ && !streamable_.empty();
    size_t next_stage = 0;
    auto stage_next = [&] {
        if (!stream || next_stage == streamable_.size()) return;
        const uint32_t il = streamable_[next_stage++];
        ffn_exec_[il]->stage_experts(w.layers[il]);
    };
    stage_next();
    auto layer = [&](uint32_t il) {
        const LayerWeights& L = w.layers[il];
        x = transfers.move(*at, x, *attn_exec_[il], Buf::X);
        at = attn_exec_[il];
        mixer_block(*at, hp, L, kv_, rs_, static_cast<int>(il), x);
        if ((stop = probe_finite(*at, x, static_cast<int>(Stage::Attention), static_cast<int>(il)))) return;
        x = transfers.move(*at, x, *ffn_exec_[il], Buf::X);
        at = ffn_exec_[il];
        const bool streamed = stream && L.experts_streamable();
        ffn_block(*at, streamed ? *at : *experts_exec_[il], transfers, hp, L, x);
        if (streamed) stage_next();
        stop = probe_finite(*at, x, static_cast<int>(Stage::FeedForward), static_cast<int>(il));
    };
    // a decode step split between a GPU and the CPU records each run of layers wholly on the GPU
    const bool segments = !graph_exec_ && n == 1 && !probe_ && graphs_enabled_;
    auto body = [&] {
        for (uint32_t il = 0; il < hp.n_layer && !stop;) {
            const uint32_t end = segments ? gpu_run_end_[il] : 0;
            if (end > il + 1) {
                x = transfers.move(*at, x, *attn_exec_[il], Buf::X);
                at = attn_exec_[il];
                recorded(*at, -1 - static_cast<int>(il), [&] {
                    for (uint32_t l = il; l < end; ++l) layer(l);
                });
                il = end;
            } else if (segments && split_on_gpu_[il]) {
                const LayerWeights& L = w.layers[il];
                x = transfers.move(*at, x, *attn_exec_[il], Buf::X);
                at = attn_exec_[il];
                const MoeRouted m = moe_buffers(*at, hp, L, static_cast<int>(x.rows));
                recorded(*at, kSplitLayerKey - static_cast<int>(il), [&] {
                    mixer_block(*at, hp, L, kv_, rs_, static_cast<int>(il), x);
                    moe_route(*at, hp, L, x, m);
                });
                moe_experts(*at, *experts_exec_[il], transfers, L, x, m);
                ++il;
            } else {
                layer(il++);
            }
        }
        if (!want_logits || stop) return;
        x = transfers.move(*at, x, out, Buf::X);
        const Tensor xs{x.row(first), rows, x.cols, x.ld, x.device};
        const Tensor xn = out.buffer(Buf::XN, rows);
        out.rms_norm(xs, w.output_norm.data(), hp.rms_eps, xn);
        const Executor::MatmulOut proj[] = {{&w.output, y}};
        out.matmul(proj, xn);
    };
    // a decode step wholly on one GPU is recorded once and replayed: one launch per token
    const int key = n * 2 + (want_logits ? 1 : 0);
    // never while locating a NaN: the probe reads the stream back on the host, which recording forbids
    if (graph_exec_ && n == 1 && !probe_) {
        recorded(*graph_exec_, key, body);
    } else {
        body();
    }
    for (auto& [dev, ex] : executors_) {
        if (stop) ex->sync();
    }
    if (stop) return;
    n_past_ += n;
    if (want_logits && !out.device().is_cpu()) out.download(y, host);
    for (auto& [dev, ex] : executors_) ex->sync();
    if (probe_ && want_logits) probe_finite(executor(Device::cpu()), host, static_cast<int>(Stage::Output), -1);
}

MemoryBreakdown Context::memory() const {
    MemoryBreakdown m;
    for (const auto& [dev, bytes] : model_.plan().weight_bytes()) m[dev].weights += bytes;
    for (const auto& [dev, bytes] : kv_.bytes_per_device()) m[dev].kv_cache += bytes;
    for (const auto& [dev, bytes] : rs_.bytes_per_device()) m[dev].kv_cache += bytes;
    for (const auto& [dev, ex] : executors_) m[dev].scratch += ex->bytes();
    // the host-side embeddings, logits and staging rows
    m[Device::cpu()].scratch += (embd_.size() + logits_.size() + stage_rows_.size() + stage_weights_.size() +
                                 stage_ids_.size()) * sizeof(float);
    return m;
}

}  // namespace runtime
