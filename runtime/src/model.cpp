#include "runtime/model.h"

#include <omp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

#include <unistd.h>

#include "cpu/matmul.h"
#include "gguf/error.h"
#include "gguf/text.h"
#include "quant/finite.h"
#include "quant/quant.h"
#include "model_layout.h"
#include "residency.h"
#include "runtime/error.h"
#include "runtime/gpu_info.h"

namespace runtime {

using gguf::GgmlType;

std::unique_ptr<Model> Model::load(const std::string& path, const ModelOptions& options) {
    gguf::File file = [&] {
        try {
            return gguf::File::open(path);
        } catch (const gguf::Error& e) {
            throw Error(e.what());
        }
    }();
    std::unique_ptr<Model> model(new Model(std::move(file)));
    try {
        model->hp_ = HParams::from_metadata(model->file_.metadata());
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
    model->bind_and_place(options);
    if (options.prefault || options.mlock) model->make_resident(options);
    return model;
}

void Model::make_resident(const ModelOptions& options) const {
    std::vector<std::span<const uint8_t>> ranges;
    auto add = [&](const Weight& w) {
        if (w.present() && w.device.is_cpu()) ranges.emplace_back(w.data, static_cast<size_t>(w.n_mat * w.n_out) * w.row_bytes);
    };
    add(weights_.token_embd);
    add(weights_.output);
    for (const auto& L : weights_.layers) {
        for (const Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.gate_inp,
                                &L.gate_exps, &L.up_exps, &L.down_exps, &L.gate_shexp, &L.up_shexp, &L.down_shexp,
                                &L.gate_inp_shexp, &L.delta.qkv, &L.delta.gate, &L.delta.beta, &L.delta.alpha,
                                &L.delta.out}) {
            add(*w);
        }
    }
    // the readers mostly wait for the disk: more of them than cores keeps more requests in flight
    if (options.prefault) prefault(ranges, options.load_threads > 0 ? options.load_threads : std::max(8, omp_get_num_procs()));
    if (options.mlock) {
        const std::string why = lock_in_memory(ranges);
        if (!why.empty()) std::fprintf(stderr, "warning: --mlock: the weights could not be locked in RAM: %s\n", why.c_str());
    }
}

namespace {

// Every tensor the model reads, for the placement plan. Tied: the output layer reads the embedding, a
// copy of it where the output layer runs (as llama.cpp).
std::vector<TensorDesc> plan_descs(const gguf::TensorInfo& embd, const Binder& b, bool tied) {
    std::vector<TensorDesc> descs{{"token_embd.weight", embd.n_bytes()}};
    for (const auto& [info, name] : b.bound()) descs.push_back({name, info->n_bytes()});
    if (tied) descs.push_back({"output.weight", embd.n_bytes()});
    return descs;
}

// GPUs are looked for only when the options ask for one: on a CUDA build that loads the CUDA module.
bool wants_gpu(const ModelOptions& options) {
    const PlacementOptions& placement = options.placement;
    return options.fit || placement.n_gpu_layers != 0 ||
           std::any_of(placement.overrides.begin(), placement.overrides.end(),
                       [](const PlacementRule& r) { return !r.device.is_cpu(); });
}

// --fit: as many layers on the first GPU as its free memory (or the budget) holds beside the context.
FitResult fit_to_gpu(const ModelOptions& options, const HParams& hp, const std::vector<TensorDesc>& descs,
                     const std::vector<Device>& gpus, int64_t n_vocab) {
    if (gpus.empty()) {
        const std::string why = built_with_cuda() ? "none found" : "this build has no CUDA";
        throw Error("--fit: no GPU is available (" + why + ")");
    }
    // -ngl all (or 99) with --fit is the common spelling of "as much on the GPU as fits"
    const int ngl = options.placement.n_gpu_layers;
    if (ngl > 0 && ngl <= static_cast<int>(hp.n_layer)) {
        throw Error("--fit chooses the GPU layers itself, -ngl " + std::to_string(ngl) +
                    " would limit them: drop one of the two");
    }
    const FitOptions& f = *options.fit;
    FitRequest r;
    r.budget = f.budget ? f.budget : query_gpus().front().free_bytes;
    r.margin = f.margin;
    r.overhead = kCudaContextBytes;
    r.kv_bytes_per_layer = kv_layer_bytes(hp, f.n_ctx, f.type_k, f.type_v);
    r.scratch = gpu_scratch_bytes(hp, f.n_batch, f.n_ctx);
    r.output_scratch = static_cast<uint64_t>(std::clamp(f.n_outputs, 1, f.n_batch)) * static_cast<uint64_t>(n_vocab) * sizeof(float);
    r.expert_slot = true;  // prompts stream the CPU's experts in (Context::forward)
    return fit_placement(descs, static_cast<int>(hp.n_layer), r, gpus.front(), options.placement.overrides);
}

// The weights must fit before any is copied: a clear error, not a failed allocation halfway.
void check_gpu_room(const PlacementPlan& plan, const std::vector<Device>& gpus) {
    for (const GpuInfo& g : gpus.empty() ? std::vector<GpuInfo>{} : query_gpus()) {
        const auto bytes = plan.weight_bytes();
        const auto it = bytes.find(g.device);
        if (it != bytes.end() && it->second + kCudaContextBytes > g.free_bytes) {
            throw Error("the placement puts " + format_bytes(it->second) + " of weights on " + g.device.name() +
                        ", which has " + format_bytes(g.free_bytes) +
                        " free: use --fit, a smaller -ngl or --n-cpu-moe N");
        }
    }
}

// Architectures that not every backend runs yet, refused by name before any weight is copied.
void check_backends_run(const HParams& hp, const std::string& path,
                        const std::vector<std::unique_ptr<Backend>>& backends, bool any_gpu) {
    if (hp.is_gemma4() && any_gpu) {
        throw Error(path + ": " + hp.arch_name + " runs on the CPU only for now: use -ngl 0");
    }
    if (hp.arch == Arch::Qwen35Moe) {
        for (const auto& b : backends) {
            if (!b->supports_qwen35()) {
                throw Error(path + ": qwen35moe runs on the CPU only for now (the " + b->device().name() +
                            " backend has no Gated DeltaNet layers, gated attention or shared experts): use -ngl 0");
            }
        }
    }
    if (hp.arch == Arch::GptOss) {
        for (const auto& b : backends) {
            if (!b->supports_gpt_oss()) {
                throw Error(path + ": gpt-oss runs on the CPU only for now (the " + b->device().name() +
                            " backend has no sink or sliding-window attention, biased experts or YaRN): use -ngl 0");
            }
        }
    }
}

// Each matrix to the backend of the device the plan gives it, each vector to where the step that reads it
// runs; backend_for(device) is the model's backend of a device. Each backend first reserves room for all
// it will hold, then places them.
template <class BackendFor>
void place_on_devices(ModelWeights& weights, const PlacementPlan& plan, const gguf::File& file, bool tied,
                      BackendFor backend_for) {
    struct Job {
        Device device;
        size_t bytes;
        std::function<void(Backend&)> run;
    };
    std::vector<Job> jobs;
    auto place = [&](Weight& w, const std::string& plan_name) {
        if (w.name.empty()) return;
        const std::span<const uint8_t> bytes = file.tensor_data(file.tensor(w.name));
        w.device = plan.device_of(plan_name);
        w.data = bytes.data();  // until placed: present() (which layers' devices ask) holds from here
        jobs.push_back({w.device, bytes.size(), [&w, bytes](Backend& b) { w.data = b.place_weights(bytes); }});
    };
    place(weights.token_embd, weights.token_embd.name);
    // a tied output layer on the embedding's device reads the embedding's placed bytes (set below)
    const bool shares_embedding = tied && plan.device_of("output.weight") == weights.token_embd.device;
    if (tied) {
        weights.output = weights.token_embd;
        weights.output.device = plan.device_of("output.weight");
        if (!shares_embedding) place(weights.output, "output.weight");
    } else {
        place(weights.output, weights.output.name);
    }
    // a vector goes where the step that reads it runs, whatever the plan says of its few bytes
    auto place_vector = [&](Vector& v, Device device) {
        if (v.empty()) return;
        v.device = device;
        jobs.push_back({device, v.values.size() * sizeof(float), [&v](Backend& b) { v.placed = b.place_vector(v.values); }});
    };
    place_vector(weights.output_norm, weights.output.device);
    place(weights.nextn_proj_pre, weights.nextn_proj_pre.name);
    place(weights.nextn_proj_post, weights.nextn_proj_post.name);
    for (auto& L : weights.layers) {
        for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.gate_inp, &L.gate_exps,
                          &L.up_exps, &L.down_exps, &L.gate_up_exps, &L.gate_shexp, &L.up_shexp, &L.down_shexp,
                          &L.gate_inp_shexp, &L.delta.qkv, &L.delta.gate, &L.delta.beta, &L.delta.alpha, &L.delta.out}) {
            place(*w, w->name);
        }
        for (Vector* v : {&L.attn_post_norm, &L.out_scale}) place_vector(*v, L.attention_device());
        for (Vector* v : {&L.ffn_post_norm, &L.ffn_pre_norm_2, &L.ffn_post_norm_1, &L.ffn_post_norm_2, &L.gate_inp_s,
                          &L.down_exps_s}) {
            place_vector(*v, L.ffn_device());
        }
        for (Vector* v : {&L.attn_norm, &L.q_norm, &L.k_norm, &L.bq, &L.bk, &L.bv, &L.bo, &L.attn_sinks, &L.delta.conv,
                          &L.delta.dt_bias, &L.delta.a, &L.delta.norm}) {
            place_vector(*v, L.attention_device());
        }
        place_vector(L.ffn_norm, L.ffn_device());
        place_vector(L.gate_inp_b, L.ffn_device());
        for (Vector* v : {&L.gate_exps_b, &L.up_exps_b, &L.down_exps_b}) place_vector(*v, L.experts_device());
    }
    std::map<Device, uint64_t> reserve;
    for (const Job& j : jobs) reserve[j.device] += device_aligned(j.bytes);
    for (const auto& [device, bytes] : reserve) backend_for(device).reserve_placements(bytes);
    for (const Job& j : jobs) j.run(backend_for(j.device));
    if (shares_embedding) weights.output.data = weights.token_embd.data;
}

}  // namespace

void Model::bind_and_place(const ModelOptions& options) {
    const HParams& hp = hp_;
    Binder b(file_);
    const bool tied = bind_weights(hp, file_.metadata(), b, weights_);
    const gguf::TensorInfo* embd = file_.find_tensor("token_embd.weight");

    // plan every tensor the model reads, then hand each matrix to the backend of its device
    const std::vector<TensorDesc> descs = plan_descs(*embd, b, tied);
    PlacementOptions placement = options.placement;
    const std::vector<Device> gpus = wants_gpu(options) ? available_gpus() : std::vector<Device>{};
    if (options.fit) {
        const FitResult fit = fit_to_gpu(options, hp, descs, gpus, embd->dims[1]);
        placement = fit.options;
        fit_report_ = fit.explanation;
    }
    plan_ = PlacementPlan::build(descs, static_cast<int>(hp.n_layer), placement, gpus);
    check_gpu_room(plan_, gpus);
    std::vector<Device> used;
    for (const auto& [dev, bytes] : plan_.weight_bytes()) {
        if (!dev.is_cpu()) used.push_back(dev);
    }
    backends_ = create_backends(used);
    check_backends_run(hp, file_.path(), backends_, !used.empty());

    n_params_ = 0;
    for (const auto& t : file_.tensors()) n_params_ += t.n_elements();
    place_on_devices(weights_, plan_, file_, tied, [&](Device d) -> Backend& { return backend_for(d); });
    pin_streamed_experts();
}

// Experts that stay in host memory while their layer's router is on a GPU are streamed to it for large
// batches: page-locked, the copies run at the bus's speed (and the pages cannot be evicted).
void Model::pin_streamed_experts() {
    std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
    Device gpu = Device::cpu();
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGE_SIZE));
    for (const auto& L : weights_.layers) {
        if (!L.experts_streamable()) continue;
        gpu = L.ffn_device();
        for (const Weight* w : {&L.gate_exps, &L.up_exps, &L.down_exps}) {
            const auto begin = reinterpret_cast<uintptr_t>(w->data);
            const uintptr_t end = begin + static_cast<uintptr_t>(w->n_mat * w->n_out) * w->row_bytes;
            ranges.emplace_back(begin / page * page, (end + page - 1) / page * page);
        }
    }
    if (ranges.empty()) return;
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uintptr_t, uintptr_t>> merged{ranges.front()};
    for (const auto& r : ranges) {
        if (r.first <= merged.back().second) {
            merged.back().second = std::max(merged.back().second, r.second);
        } else {
            merged.push_back(r);
        }
    }
    uint64_t pinned = 0, total = 0;
    for (const auto& [b, e] : merged) {
        total += e - b;
        if (backend_for(gpu).pin_host({reinterpret_cast<const uint8_t*>(b), e - b})) pinned += e - b;
    }
    if (pinned < total) {
        std::fprintf(stderr, "warning: could not page-lock %s of the CPU's experts for %s: prompts copy them more slowly\n",
                     format_bytes(total - pinned).c_str(), gpu.name().c_str());
    }
}

uint64_t Model::weight_bytes() const {
    uint64_t total = 0;
    for (const auto& t : plan_.tensors()) {
        // a tied output layer is a placed copy of the embedding, not more of the file
        if (t.name == "output.weight" && !file_.find_tensor(t.name)) continue;
        total += t.bytes;
    }
    return total;
}

Backend& Model::backend_for(Device device) const {
    for (const auto& b : backends_) {
        if (b->device() == device) return *b;
    }
    throw Error("no backend for device " + device.name());
}

const Backend& Model::backend(Device device) const { return backend_for(device); }

}  // namespace runtime
