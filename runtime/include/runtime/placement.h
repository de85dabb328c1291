// The placement model: every weight tensor gets one device from one plan built from rules, with
// llama.cpp's semantics for -ngl, --n-cpu-moe, --cpu-moe and -ot (first matching override wins).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/text.h"
#include "runtime/device.h"

namespace runtime {

// One override: tensors whose name matches `pattern` (std::regex_search, as llama.cpp) go to `device`.
struct PlacementRule {
    std::string pattern;
    Device device;
    std::string origin;  // the option it came from, for messages: "-ot", "--cpu-moe", "--n-cpu-moe"
    std::regex regex;
    // When >= 0 the rule only covers blocks 0..below_layer-1 (--n-cpu-moe N): the layer limit is kept
    // as a number, not spelled into the regex, so N costs nothing and is checked against the model.
    int below_layer = -1;

    PlacementRule(std::string pattern, Device device, std::string origin, int below_layer = -1);
};

// -ot "REGEX=DEV[,REGEX=DEV...]"; a malformed entry or regex throws runtime::Error quoting it.
std::vector<PlacementRule> parse_override_rules(std::string_view text);
// --cpu-moe: the expert tensors of every layer stay on the CPU.
std::vector<PlacementRule> cpu_moe_rules();
// --n-cpu-moe N: the expert tensors of layers 0..N-1 stay on the CPU. N above the model's block
// count is clamped to it when the plan is built (the model is not known here), with a warning.
std::vector<PlacementRule> n_cpu_moe_rules(int n_layers);
// One rule putting the expert tensors of the given blocks on `device`.
std::vector<PlacementRule> expert_layer_rules(const std::vector<int>& layers, Device device, const std::string& origin);

// Why a GPU device or -ngl cannot be honoured when no GPU is available, for messages: the driver's or
// the build's reason ("this build has no CUDA support ...", "no CUDA device found", ...).
std::string no_gpu_reason();

struct PlacementOptions {
    // Layers offloaded to the GPU counting from the output end, as llama.cpp's -ngl: the output layer
    // first, then the last N-1 blocks; negative means all. The token embedding always stays on the CPU.
    int n_gpu_layers = 0;
    // Overrides in command-line order; the first match decides.
    std::vector<PlacementRule> overrides;
};

// A tensor as the planner sees it.
struct TensorDesc {
    std::string name;
    uint64_t bytes = 0;
};

struct TensorPlacement {
    std::string name;
    uint64_t bytes = 0;
    int layer = 0;    // block index; -1 for the input (token embedding), n_layer for the output layer
    Device device;
    int rule = -1;    // index into the options' overrides that decided it; -1 when -ngl did
};

class PlacementPlan {
public:
    // `gpus` are the GPU devices the build can use, in order (empty for a CPU-only build). -ngl with no
    // GPU places everything on the CPU and records a warning, as llama.cpp does; an override naming a
    // device that is not available throws runtime::Error naming the rule and the device.
    static PlacementPlan build(const std::vector<TensorDesc>& tensors, int n_layer, const PlacementOptions& options,
                               const std::vector<Device>& gpus);

    const std::vector<TensorPlacement>& tensors() const { return tensors_; }
    const TensorPlacement& at(std::string_view name) const;  // unknown name throws
    Device device_of(std::string_view name) const { return at(name).device; }
    std::map<Device, uint64_t> weight_bytes() const;
    const std::vector<std::string>& warnings() const { return warnings_; }
    const std::vector<PlacementRule>& rules() const { return rules_; }
    int n_gpu_layers() const { return n_gpu_layers_; }

    // A few lines: the rules in force, layers per device and how many tensors each override moved.
    std::string describe() const;

private:
    std::vector<TensorPlacement> tensors_;
    std::vector<PlacementRule> rules_;
    std::vector<std::string> warnings_;
    int n_layer_ = 0;
    int n_gpu_layers_ = 0;
};

// Bytes a run needs on each device, printed before loading so a user sees where memory goes.
struct DeviceMemory {
    uint64_t weights = 0;
    uint64_t kv_cache = 0;
    uint64_t scratch = 0;
    uint64_t total() const { return weights + kv_cache + scratch; }
};
using MemoryBreakdown = std::map<Device, DeviceMemory>;

std::string describe_memory(const MemoryBreakdown& memory);
// "12.34 MiB": libgguf's formatter, the one every tool's reports use.
using gguf::format_bytes;

}  // namespace runtime
