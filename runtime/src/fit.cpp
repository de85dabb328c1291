#include "runtime/fit.h"

#include <algorithm>
#include <map>
#include <set>

#include "cuda/attention_split.h"
#include "runtime/backend.h"
#include "runtime/error.h"

namespace runtime {

namespace {

// What a plan puts on the GPU: its weights, the KV cache of the layers whose attention is there, the
// executor's scratch, the logits rows if the output layer is there, and the context's overhead.
uint64_t gpu_bytes(const PlacementPlan& plan, const FitRequest& r, Device gpu) {
    const auto weights = plan.weight_bytes();
    const auto it = weights.find(gpu);
    if (it == weights.end()) return 0;
    std::set<int> attention_layers, router_layers;
    std::map<int, uint64_t> host_experts;  // by layer
    bool output = false;
    for (const auto& t : plan.tensors()) {
        if (t.device.is_cpu() && t.name.find("_exps.") != std::string::npos) host_experts[t.layer] += device_aligned(t.bytes);
        if (t.device != gpu) continue;
        if (t.name.find(".attn_q.weight") != std::string::npos) attention_layers.insert(t.layer);
        if (t.name.find(".ffn_gate_inp.") != std::string::npos) router_layers.insert(t.layer);
        if (t.name == "output.weight") output = true;
    }
    // the slot that streams host-resident experts in for prompts (Executor::stage_experts)
    uint64_t slot = 0;
    for (const auto& [layer, bytes] : host_experts) {
        if (router_layers.count(layer)) slot = std::max(slot, bytes);
    }
    return it->second + r.kv_bytes_per_layer * attention_layers.size() + r.scratch + (output ? r.output_scratch : 0) +
           (r.expert_slot ? slot : 0) + r.overhead;
}

bool has_experts(const std::vector<TensorDesc>& tensors) {
    for (const auto& t : tensors) {
        if (t.name.find("_exps.") != std::string::npos) return true;
    }
    return false;
}

}  // namespace

uint64_t gpu_scratch_bytes(const HParams& hp, int n_batch, int n_ctx) {
    const uint64_t B = static_cast<uint64_t>(n_batch), K = std::max<uint32_t>(hp.n_expert_used, 1);
    const uint64_t n_ff = hp.is_moe() ? 0 : hp.n_ff;
    const uint64_t widest = std::max<uint64_t>({hp.n_embd, n_ff, hp.n_expert, hp.n_embd_q(), hp.n_ff_exp,
                                                hp.n_embd_attn_out()});
    uint64_t b = B * 4 * (3ull * hp.n_embd + hp.n_embd_q() + hp.n_embd_k() + hp.n_embd_v() + hp.n_embd_attn_out() +
                          2 * n_ff + hp.n_expert);
    if (hp.is_moe()) b += B * K * (8 + 12 + 4ull * (2ull * hp.n_ff_exp + hp.n_embd));
    const uint64_t padded = (widest + 511) / 512 * 512;
    b += B * K * (padded / 32 * 36 + widest * 2);  // q8_1 and f16 activation rows
    b += 64ull << 20;                              // dequantized weight slices for cuBLAS
    // attention: the partial results of decode-size batches' splits of the context (attention_split.h)
    b += cuda::attention_scratch_bytes(n_batch, static_cast<int>(hp.n_head), static_cast<int>(hp.head_dim_v), n_ctx);
    return b;
}

uint64_t kv_layer_bytes(const HParams& hp, int n_ctx, gguf::GgmlType type_k, gguf::GgmlType type_v) {
    return static_cast<uint64_t>(n_ctx) * (gguf::row_size(type_k, hp.n_embd_k()) + gguf::row_size(type_v, hp.n_embd_v()));
}

FitResult fit_placement(const std::vector<TensorDesc>& tensors, int n_layer, const FitRequest& request, Device gpu,
                        const std::vector<PlacementRule>& user) {
    const std::vector<Device> gpus{gpu};
    const uint64_t limit = request.budget > request.margin ? request.budget - request.margin : 0;
    FitResult out;
    auto explain_budget = [&] {
        return "fit: " + format_bytes(request.budget) + " for " + gpu.name() + ", " + format_bytes(request.margin) +
               " kept free, " + format_bytes(request.overhead) + " for the CUDA context, KV cache " +
               format_bytes(request.kv_bytes_per_layer) + " per layer, scratch " +
               format_bytes(request.scratch + request.output_scratch) + "\n";
    };
    auto try_plan = [&](int ngl, const std::vector<PlacementRule>& extra) {
        PlacementOptions o;
        o.n_gpu_layers = ngl;
        o.overrides = user;
        o.overrides.insert(o.overrides.end(), extra.begin(), extra.end());
        const PlacementPlan plan = PlacementPlan::build(tensors, n_layer, o, gpus);
        return std::make_pair(o, gpu_bytes(plan, request, gpu));
    };

    // 1. everything
    auto [all, all_bytes] = try_plan(-1, {});
    if (all_bytes <= limit) {
        out.options = all;
        out.gpu_bytes = all_bytes;
        out.explanation = explain_budget() + "fit: the whole model fits: " + format_bytes(all_bytes) + " on " +
                          gpu.name() + "\n";
        return out;
    }
    // 2. the routed experts of the last layers on the CPU, one more layer at a time
    if (has_experts(tensors)) {
        std::vector<int> layers;
        for (int il = n_layer - 1; il >= 0; --il) {
            layers.insert(layers.begin(), il);
            const auto rules = expert_layer_rules(layers, Device::cpu(), "--fit");
            auto [o, bytes] = try_plan(-1, rules);
            if (bytes <= limit) {
                out.options = o;
                out.gpu_bytes = bytes;
                out.n_cpu_expert_layers = static_cast<int>(layers.size());
                out.explanation = explain_budget() + "fit: the whole model needs " + format_bytes(all_bytes) +
                                  "; the experts of the last " + std::to_string(layers.size()) + " of " +
                                  std::to_string(n_layer) + " layers stay on the CPU (blocks " +
                                  std::to_string(layers.front()) + "-" + std::to_string(layers.back()) + "): " +
                                  format_bytes(bytes) + " on " + gpu.name() + "\n";
                return out;
            }
        }
    }
    // 3. whole layers on the CPU, from the first one (as -ngl counts)
    std::vector<int> every_layer;
    if (has_experts(tensors)) {
        for (int il = 0; il < n_layer; ++il) every_layer.push_back(il);
    }
    const auto no_experts = expert_layer_rules(every_layer, Device::cpu(), "--fit");
    for (int ngl = n_layer; ngl >= 1; --ngl) {
        auto [o, bytes] = try_plan(ngl, no_experts);
        if (bytes <= limit) {
            out.options = o;
            out.gpu_bytes = bytes;
            out.n_cpu_expert_layers = has_experts(tensors) ? n_layer : 0;
            out.explanation = explain_budget() + "fit: " +
                              (has_experts(tensors) ? std::string("even with every expert on the CPU the model needs more; ")
                                                    : std::string()) +
                              "-ngl " + std::to_string(ngl) + " (the output layer and the last " +
                              std::to_string(ngl - 1) + " blocks): " + format_bytes(bytes) + " on " + gpu.name() +
                              "\n";
            return out;
        }
    }
    throw Error("--fit: not even the output layer fits in " + format_bytes(limit) + " on " + gpu.name() +
                " (budget " + format_bytes(request.budget) + " less the " + format_bytes(request.margin) +
                " margin); run on the CPU without --fit, or lower --fit-target");
}

}  // namespace runtime
