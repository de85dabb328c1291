// A model loaded from GGUF: hyper-parameters, weights bound by name and checked, the placement plan
// that put each weight on a device, and the backends that hold them.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "runtime/backend.h"
#include "runtime/fit.h"
#include "runtime/hparams.h"
#include "runtime/placement.h"
#include "runtime/weights.h"

namespace runtime {

struct ModelOptions {
    PlacementOptions placement;
    // --fit: choose -ngl and the expert rules under a memory budget (user overrides are kept; an
    // explicit -ngl with it is an error)
    std::optional<FitOptions> fit;
    // Read every CPU-resident weight into RAM while loading, on `load_threads` threads,
    // instead of page by page as the first tokens touch them (docs/run.md, "Loading").
    bool prefault = false;
    int load_threads = 0;  // 0: max(8, cores)
    // Lock the CPU-resident weights in RAM (mlock) so that memory pressure cannot evict them; a refusal
    // (RLIMIT_MEMLOCK) is a warning on stderr, not an error.
    bool mlock = false;
};

// The checks Model::load makes before reading any weight data — hyper-parameters, block count
// against the blk.N tensors, every tensor's name, shape and type — on a header alone, so that a
// writer (gguf-convert) can refuse a file this runtime would reject before writing it. Throws
// runtime::Error naming `path` and the key or tensor.
void check_model_layout(const gguf::Metadata& metadata, const std::vector<gguf::TensorInfo>& tensors,
                        const std::string& path);

class Model {
public:
    // Opens, validates and places a model. A file llama.cpp would refuse (unknown architecture, a
    // missing tensor, a wrong shape, a type with no kernel) throws runtime::Error naming the file and
    // the tensor or key.
    static std::unique_ptr<Model> load(const std::string& path, const ModelOptions& options = {});

    const std::string& path() const { return file_.path(); }
    const gguf::File& file() const { return file_; }
    const gguf::Metadata& metadata() const { return file_.metadata(); }
    const HParams& hparams() const { return hp_; }
    const ModelWeights& weights() const { return weights_; }
    const PlacementPlan& plan() const { return plan_; }
    // What --fit chose and why; empty without --fit.
    const std::string& fit_report() const { return fit_report_; }
    int n_vocab() const { return static_cast<int>(weights_.token_embd.n_out); }
    uint64_t n_params() const { return n_params_; }
    uint64_t weight_bytes() const;

    // The backend of a device the plan uses.
    const Backend& backend(Device device) const;

    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

private:
    explicit Model(gguf::File file) : file_(std::move(file)) {}
    void bind_and_place(const ModelOptions& options);
    void make_resident(const ModelOptions& options) const;
    void pin_streamed_experts();
    Backend& backend_for(Device device) const;

    gguf::File file_;
    HParams hp_;
    ModelWeights weights_;
    PlacementPlan plan_;
    std::string fit_report_;
    std::vector<std::unique_ptr<Backend>> backends_;
    uint64_t n_params_ = 0;
};

}  // namespace runtime
