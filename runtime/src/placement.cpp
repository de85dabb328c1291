#include "runtime/placement.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "runtime/error.h"
#include "runtime/gpu_info.h"

namespace runtime {

namespace {

// llama.cpp's expert-tensor pattern for --cpu-moe / --n-cpu-moe (also matches fused gate_up and
// chunked "chexps" variants).
constexpr const char* kExpertPattern = "\\.ffn_(up|down|gate|gate_up)_(ch|)exps";

// "blk.12.attn_q.weight" -> 12; token_embd -> -1; everything else belongs to the output layer.
int layer_of(const std::string& name, int n_layer) {
    if (name.starts_with("token_embd.")) return -1;
    if (name.starts_with("blk.")) {
        int il = 0;
        const char* begin = name.data() + 4;
        const auto [end, ec] = std::from_chars(begin, name.data() + name.size(), il);
        if (ec == std::errc() && end != begin && *end == '.') return il;
    }
    // rope_freqs is shared by every layer; llama.cpp gives it layer 0's device
    if (name.starts_with("rope_freqs.")) return 0;
    return n_layer;
}

}  // namespace

std::string no_gpu_reason() {
    // said only when there is nothing to offload to, so asking the driver costs nothing that matters
    std::string why;
    query_gpus(&why);
    return why.empty() ? "no GPU is available" : why;
}

PlacementRule::PlacementRule(std::string pattern_, Device device_, std::string origin_, int below_layer_)
    : pattern(std::move(pattern_)), device(device_), origin(std::move(origin_)), below_layer(below_layer_) {
    try {
        regex = std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw Error(origin + ": invalid regular expression '" + pattern + "': " + e.what());
    }
}

std::vector<PlacementRule> parse_override_rules(std::string_view text) {
    std::vector<PlacementRule> rules;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        const std::string_view entry = text.substr(start, comma - start);
        const size_t eq = entry.rfind('=');
        if (eq == std::string_view::npos || eq == 0 || eq + 1 == entry.size()) {
            throw Error("-ot: expected REGEX=DEVICE, got '" + std::string(entry) + "'");
        }
        rules.emplace_back(std::string(entry.substr(0, eq)), Device::parse(entry.substr(eq + 1)), "-ot");
        start = comma + 1;
    }
    return rules;
}

std::vector<PlacementRule> cpu_moe_rules() { return {PlacementRule(kExpertPattern, Device::cpu(), "--cpu-moe")}; }

std::vector<PlacementRule> n_cpu_moe_rules(int n_layers) {
    if (n_layers < 0) throw Error("--n-cpu-moe must be >= 0, got " + std::to_string(n_layers));
    if (n_layers == 0) return {};
    // one rule for blocks 0..N-1, so the plan lists it once however many layers it covers; N is kept as
    // a layer limit, not spelled into the regex, so a huge N costs nothing and is checked against the model
    return {PlacementRule(kExpertPattern, Device::cpu(), "--n-cpu-moe " + std::to_string(n_layers), n_layers)};
}

std::vector<PlacementRule> expert_layer_rules(const std::vector<int>& layers, Device device, const std::string& origin) {
    if (layers.empty()) return {};
    // one rule for all the blocks, so the plan lists it once however many layers it covers
    std::string blocks;
    for (size_t i = 0; i < layers.size(); ++i) blocks += (i ? "|" : "") + std::to_string(layers[i]);
    return {PlacementRule("blk\\.(" + blocks + ")" + kExpertPattern, device, origin)};
}

PlacementPlan PlacementPlan::build(const std::vector<TensorDesc>& tensors, int n_layer,
                                   const PlacementOptions& options, const std::vector<Device>& gpus) {
    PlacementPlan plan;
    plan.rules_ = options.overrides;
    plan.n_layer_ = n_layer;
    for (auto& rule : plan.rules_) {
        // llama.cpp takes any N (its rules for blocks past the last match nothing), and "--n-cpu-moe 99"
        // is a common spelling of "all of them", as "-ngl 99" is: clamped, and said so
        if (rule.below_layer > n_layer) {
            plan.warnings_.push_back(rule.origin + ": the model has " + std::to_string(n_layer) +
                                     " blocks; the experts of all " + std::to_string(n_layer) + " stay on the CPU");
            rule.below_layer = n_layer;
        }
        if (!rule.device.is_cpu() && std::find(gpus.begin(), gpus.end(), rule.device) == gpus.end()) {
            throw Error(rule.origin + " " + rule.pattern + "=" + rule.device.name() + ": device " +
                        rule.device.name() +
                        (gpus.empty() ? " is not available (" + no_gpu_reason() + ")" : std::string(" is not available")));
        }
    }
    int ngl = options.n_gpu_layers < 0 ? n_layer + 1 : std::min(options.n_gpu_layers, n_layer + 1);
    if (ngl > 0 && gpus.empty()) {
        plan.warnings_.push_back("-ngl " + std::to_string(options.n_gpu_layers) + ": no GPU offload (" +
                                 no_gpu_reason() + "); running on the CPU");
        ngl = 0;
    }
    plan.n_gpu_layers_ = ngl;
    const int i_gpu_start = n_layer + 1 - ngl;  // slots 0..n_layer, the last being the output layer

    for (const auto& t : tensors) {
        TensorPlacement p;
        p.name = t.name;
        p.bytes = t.bytes;
        p.layer = layer_of(t.name, n_layer);
        // one GPU for now: the layer split across several GPUs comes with multi-GPU support
        p.device = (p.layer >= 0 && p.layer >= i_gpu_start) ? gpus.front() : Device::cpu();
        for (size_t i = 0; i < plan.rules_.size(); ++i) {
            const int below = plan.rules_[i].below_layer;
            if (below >= 0 && (p.layer < 0 || p.layer >= below)) continue;
            if (std::regex_search(t.name, plan.rules_[i].regex)) {
                p.device = plan.rules_[i].device;
                p.rule = static_cast<int>(i);
                break;
            }
        }
        plan.tensors_.push_back(std::move(p));
    }
    return plan;
}

const TensorPlacement& PlacementPlan::at(std::string_view name) const {
    for (const auto& t : tensors_) {
        if (t.name == name) return t;
    }
    throw Error("placement: no tensor named " + std::string(name));
}

std::map<Device, uint64_t> PlacementPlan::weight_bytes() const {
    std::map<Device, uint64_t> bytes;
    for (const auto& t : tensors_) bytes[t.device] += t.bytes;
    return bytes;
}

std::string PlacementPlan::describe() const {
    std::string out = "placement: -ngl " + std::to_string(n_gpu_layers_) + " (" + std::to_string(n_layer_) +
                      " blocks + output)";
    if (rules_.empty()) out += ", no overrides";
    out += "\n";
    for (const auto& w : warnings_) out += "  warning: " + w + "\n";
    for (size_t i = 0; i < rules_.size(); ++i) {
        size_t n = 0;
        uint64_t bytes = 0;
        for (const auto& t : tensors_) {
            if (t.rule == static_cast<int>(i)) {
                ++n;
                bytes += t.bytes;
            }
        }
        out += "  rule " + std::to_string(i + 1) + " " + rules_[i].origin + " " + rules_[i].pattern + "=" +
               rules_[i].device.name() + ": " + std::to_string(n) + " tensors, " + format_bytes(bytes) + "\n";
    }
    std::map<Device, std::pair<size_t, uint64_t>> per_device;
    for (const auto& t : tensors_) {
        per_device[t.device].first++;
        per_device[t.device].second += t.bytes;
    }
    for (const auto& [dev, nb] : per_device) {
        out += "  " + dev.name() + ": " + std::to_string(nb.first) + " tensors, " + format_bytes(nb.second) + "\n";
    }
    return out;
}


std::string describe_memory(const MemoryBreakdown& memory) {
    std::string out = "memory:\n";
    char line[160];
    std::snprintf(line, sizeof line, "  %-8s %12s %12s %12s %12s\n", "device", "weights", "kv cache", "scratch",
                  "total");
    out += line;
    for (const auto& [dev, m] : memory) {
        std::snprintf(line, sizeof line, "  %-8s %12s %12s %12s %12s\n", dev.name().c_str(),
                      format_bytes(m.weights).c_str(), format_bytes(m.kv_cache).c_str(),
                      format_bytes(m.scratch).c_str(), format_bytes(m.total()).c_str());
        out += line;
    }
    return out;
}

}  // namespace runtime
