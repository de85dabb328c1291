#include "runtime/model.h"

#include <omp.h>

#include <cstdio>

#include "cpu/matmul.h"
#include "gguf/error.h"
#include "gguf/text.h"
#include "quant/quant.h"
#include "residency.h"
#include "runtime/error.h"
#include "runtime/gpu_info.h"

namespace runtime {

using gguf::GgmlType;

namespace {

constexpr uint32_t kMaxExperts = 512;  // llama.cpp's LLAMA_MAX_EXPERTS

bool can_matmul(GgmlType type) {
    if (cpu::is_float_type(type)) return true;
    try {
        return quant::can_quantize(quant::vec_dot_type(type));
    } catch (const quant::Error&) {
        return false;
    }
}

// Looks tensors up by llama.cpp's names, checks their shapes against the hyper-parameters and
// remembers which ones the model uses, for the placement plan.
class Binder {
public:
    explicit Binder(const gguf::File& file) : file_(file) {}

    Weight matrix(const std::string& name, std::vector<int64_t> dims, bool required = true) {
        const gguf::TensorInfo* t = find(name, dims, required);
        if (!t) return {};
        if (!can_matmul(t->type)) {
            fail("tensor " + name + " has type " + std::string(gguf::type_name(t->type)) +
                 ", which this build cannot multiply with");
        }
        Weight w;
        w.name = name;
        w.type = t->type;
        w.n_in = dims[0];
        w.n_out = dims[1];
        w.n_mat = dims.size() > 2 ? dims[2] : 1;
        w.row_bytes = gguf::row_size(t->type, static_cast<uint64_t>(w.n_in));
        bound_.push_back({t, name});
        return w;
    }

    Vector vector(const std::string& name, int64_t n, bool required = true) {
        const gguf::TensorInfo* t = find(name, {n}, required);
        if (!t) return {};
        if (!quant::can_dequantize(t->type)) {
            fail("tensor " + name + " has type " + std::string(gguf::type_name(t->type)) + ", which cannot be read");
        }
        Vector out;
        out.name = name;
        out.values.resize(static_cast<size_t>(n));
        quant::dequantize_row(t->type, file_.tensor_data(*t).data(), out.values.data(), n);
        bound_.push_back({t, name});
        return out;
    }

    bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }

    const std::vector<std::pair<const gguf::TensorInfo*, std::string>>& bound() const { return bound_; }

    [[noreturn]] void fail(const std::string& what) const { throw Error(file_.path() + ": " + what); }

private:
    const gguf::TensorInfo* find(const std::string& name, const std::vector<int64_t>& dims, bool required) {
        const gguf::TensorInfo* t = file_.find_tensor(name);
        if (!t) {
            if (required) fail("tensor " + name + " is missing");
            return nullptr;
        }
        if (t->dims != dims) {
            fail("tensor " + name + " has shape " + gguf::shape_text(t->dims) + ", expected " + gguf::shape_text(dims));
        }
        return t;
    }

    const gguf::File& file_;
    std::vector<std::pair<const gguf::TensorInfo*, std::string>> bound_;
};

}  // namespace

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
                                &L.gate_exps, &L.up_exps, &L.down_exps}) {
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

void Model::bind_and_place(const ModelOptions& options) {
    const HParams& hp = hp_;
    Binder b(file_);
    if (hp.n_expert > kMaxExperts) {
        b.fail("expert_count " + std::to_string(hp.n_expert) + " exceeds " + std::to_string(kMaxExperts));
    }
    const int64_t n_embd = hp.n_embd;

    const gguf::TensorInfo* embd = file_.find_tensor("token_embd.weight");
    if (!embd) b.fail("tensor token_embd.weight is missing");
    if (embd->dims.size() != 2 || embd->dims[0] != n_embd) {
        b.fail("tensor token_embd.weight has shape " + gguf::shape_text(embd->dims) + ", expected [" +
               std::to_string(n_embd) + ", n_vocab]");
    }
    if (!quant::can_dequantize(embd->type)) {
        b.fail("tensor token_embd.weight has type " + std::string(gguf::type_name(embd->type)) +
               ", which cannot be read");
    }
    const int64_t n_vocab = embd->dims[1];
    if (const gguf::Value* v = file_.metadata().find(hp.arch_name + ".vocab_size")) {
        if (v->as_u64() != static_cast<uint64_t>(n_vocab)) {
            b.fail(hp.arch_name + ".vocab_size " + std::to_string(v->as_u64()) + " differs from token_embd.weight's " +
                   std::to_string(n_vocab) + " rows");
        }
    }
    // the embedding is read a row at a time (dequantized), not multiplied: bind it without the dot check
    weights_.token_embd.name = "token_embd.weight";
    weights_.token_embd.type = embd->type;
    weights_.token_embd.n_in = n_embd;
    weights_.token_embd.n_out = n_vocab;
    weights_.token_embd.row_bytes = gguf::row_size(embd->type, static_cast<uint64_t>(n_embd));

    weights_.output_norm = b.vector("output_norm.weight", n_embd);
    const bool tied = !b.has("output.weight");
    if (!tied) {
        weights_.output = b.matrix("output.weight", {n_embd, n_vocab});
    } else if (!can_matmul(embd->type)) {
        b.fail("tensor output.weight is missing and token_embd.weight's type " +
               std::string(gguf::type_name(embd->type)) + " cannot serve as the output projection");
    }
    if (hp.arch == Arch::Llama && b.has("rope_freqs.weight")) {
        weights_.rope_freqs = b.vector("rope_freqs.weight", hp.n_rot / 2).values;
    }

    const bool biased_qkv = hp.arch == Arch::Qwen2;
    weights_.layers.resize(hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        LayerWeights& L = weights_.layers[il];
        const std::string p = "blk." + std::to_string(il) + ".";
        L.attn_norm = b.vector(p + "attn_norm.weight", n_embd);
        L.wq = b.matrix(p + "attn_q.weight", {n_embd, hp.n_embd_q()});
        L.wk = b.matrix(p + "attn_k.weight", {n_embd, hp.n_embd_k()});
        L.wv = b.matrix(p + "attn_v.weight", {n_embd, hp.n_embd_v()});
        L.wo = b.matrix(p + "attn_output.weight", {hp.n_embd_attn_out(), n_embd});
        // qwen2 requires the q/k/v biases; llama files may carry them (and an output bias) optionally
        L.bq = b.vector(p + "attn_q.bias", hp.n_embd_q(), biased_qkv);
        L.bk = b.vector(p + "attn_k.bias", hp.n_embd_k(), biased_qkv);
        L.bv = b.vector(p + "attn_v.bias", hp.n_embd_v(), biased_qkv);
        L.bo = b.vector(p + "attn_output.bias", n_embd, false);
        if (hp.has_qk_norm()) {
            L.q_norm = b.vector(p + "attn_q_norm.weight", hp.head_dim_k);
            L.k_norm = b.vector(p + "attn_k_norm.weight", hp.head_dim_k);
        }
        L.ffn_norm = b.vector(p + "ffn_norm.weight", n_embd);
        if (hp.is_moe()) {
            const int64_t E = hp.n_expert, F = hp.n_ff_exp;
            L.gate_inp = b.matrix(p + "ffn_gate_inp.weight", {n_embd, E});
            L.gate_exps = b.matrix(p + "ffn_gate_exps.weight", {n_embd, F, E});
            L.up_exps = b.matrix(p + "ffn_up_exps.weight", {n_embd, F, E});
            L.down_exps = b.matrix(p + "ffn_down_exps.weight", {F, n_embd, E});
        } else {
            L.ffn_gate = b.matrix(p + "ffn_gate.weight", {n_embd, hp.n_ff});
            L.ffn_up = b.matrix(p + "ffn_up.weight", {n_embd, hp.n_ff});
            L.ffn_down = b.matrix(p + "ffn_down.weight", {hp.n_ff, n_embd});
        }
    }

    // plan every tensor the model reads, then hand each matrix to the backend of its device
    std::vector<TensorDesc> descs{{"token_embd.weight", embd->n_bytes()}};
    for (const auto& [info, name] : b.bound()) descs.push_back({name, info->n_bytes()});
    // tied: the output layer reads the embedding, a copy of it where the output layer runs (as llama.cpp)
    if (tied) descs.push_back({"output.weight", embd->n_bytes()});
    const std::vector<Device> gpus = available_gpus();
    PlacementOptions placement = options.placement;
    if (options.fit) {
        if (gpus.empty()) throw Error("--fit: no GPU is available (" + std::string(built_with_cuda() ? "none found" : "this build has no CUDA") + ")");
        // -ngl all (or 99) with --fit is the common spelling of "as much on the GPU as fits"
        const int ngl = placement.n_gpu_layers;
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
        r.output_scratch = static_cast<uint64_t>(f.n_batch) * static_cast<uint64_t>(n_vocab) * sizeof(float);
        const FitResult fit = fit_placement(descs, static_cast<int>(hp.n_layer), r, gpus.front(), placement.overrides);
        placement = fit.options;
        fit_report_ = fit.explanation;
    }
    plan_ = PlacementPlan::build(descs, static_cast<int>(hp.n_layer), placement, gpus);
    // the weights must fit before any is copied: a clear error, not a failed allocation halfway
    for (const GpuInfo& g : gpus.empty() ? std::vector<GpuInfo>{} : query_gpus()) {
        const auto bytes = plan_.weight_bytes();
        const auto it = bytes.find(g.device);
        if (it != bytes.end() && it->second + kCudaContextBytes > g.free_bytes) {
            throw Error("the placement puts " + format_bytes(it->second) + " of weights on " + g.device.name() +
                        ", which has " + format_bytes(g.free_bytes) +
                        " free: use --fit, a smaller -ngl or --n-cpu-moe N");
        }
    }
    std::vector<Device> used;
    for (const auto& [dev, bytes] : plan_.weight_bytes()) {
        if (!dev.is_cpu()) used.push_back(dev);
    }
    backends_ = create_backends(used);

    n_params_ = 0;
    for (const auto& t : file_.tensors()) n_params_ += t.n_elements();

    auto place = [&](Weight& w, const std::string& plan_name) {
        if (w.name.empty()) return;
        const gguf::TensorInfo& info = file_.tensor(w.name);
        w.device = plan_.device_of(plan_name);
        w.data = backend_for(w.device).place_weights(file_.tensor_data(info));
    };
    place(weights_.token_embd, weights_.token_embd.name);
    if (tied) {
        weights_.output = weights_.token_embd;
        if (plan_.device_of("output.weight") != weights_.token_embd.device) place(weights_.output, "output.weight");
        weights_.output.device = plan_.device_of("output.weight");
    } else {
        place(weights_.output, weights_.output.name);
    }
    // a vector goes where the step that reads it runs, whatever the plan says of its few bytes
    auto place_vector = [&](Vector& v, Device device) {
        if (v.empty()) return;
        v.device = device;
        v.placed = backend_for(device).place_vector(v.values);
    };
    place_vector(weights_.output_norm, weights_.output.device);
    for (auto& L : weights_.layers) {
        for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.gate_inp, &L.gate_exps,
                          &L.up_exps, &L.down_exps}) {
            place(*w, w->name);
        }
        for (Vector* v : {&L.attn_norm, &L.q_norm, &L.k_norm, &L.bq, &L.bk, &L.bv, &L.bo}) {
            place_vector(*v, L.attention_device());
        }
        place_vector(L.ffn_norm, L.ffn_device());
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
