// --samplers / --sampler-seq: llama.cpp's names, aliases and letters for the chain's stages.
#include <algorithm>
#include <map>

#include "runtime/error.h"
#include "runtime/sampler.h"

namespace runtime {

namespace {

struct Named {
    const char* name;
    char letter;
    SamplerStage stage;
};
constexpr Named kStages[] = {
    {"penalties", 'e', SamplerStage::Penalties}, {"dry", 'd', SamplerStage::Dry},
    {"top_n_sigma", 's', SamplerStage::TopNSigma}, {"top_k", 'k', SamplerStage::TopK},
    {"typ_p", 'y', SamplerStage::TypicalP}, {"top_p", 'p', SamplerStage::TopP},
    {"min_p", 'm', SamplerStage::MinP}, {"xtc", 'x', SamplerStage::Xtc},
    {"temperature", 't', SamplerStage::Temperature},
};

const std::map<std::string, SamplerStage>& names() {
    static const std::map<std::string, SamplerStage> m = [] {
        std::map<std::string, SamplerStage> out;
        for (const Named& n : kStages) {
            std::string name = n.name;
            out[name] = n.stage;
            std::string kebab = name, joined;
            std::replace(kebab.begin(), kebab.end(), '_', '-');
            out[kebab] = n.stage;
            for (char c : name) {
                if (c != '_') joined += c;
            }
            out[joined] = n.stage;
        }
        out["nucleus"] = SamplerStage::TopP;
        out["temp"] = SamplerStage::Temperature;
        out["typ"] = SamplerStage::TypicalP;
        return out;
    }();
    return m;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

std::vector<SamplerStage> default_sampler_order() {
    std::vector<SamplerStage> out;
    for (const Named& n : kStages) out.push_back(n.stage);
    return out;
}

std::vector<SamplerStage> sampler_order_from_names(const std::string& list) {
    std::vector<SamplerStage> out;
    size_t pos = 0;
    while (pos <= list.size()) {
        const size_t end = std::min(list.find_first_of(";,", pos), list.size());
        const std::string name = lower(list.substr(pos, end - pos));
        pos = end + 1;
        if (name.empty()) continue;
        if (name == "infill" || name == "adaptive_p" || name == "adaptive-p") {
            throw Error("sampler '" + name + "' is not supported");
        }
        const auto it = names().find(name);
        if (it == names().end()) {
            throw Error("unknown sampler '" + name + "' (known: penalties, dry, top_n_sigma, top_k, typ_p, top_p, min_p, xtc, temperature)");
        }
        out.push_back(it->second);
    }
    return out;
}

std::vector<SamplerStage> sampler_order_from_letters(const std::string& letters) {
    std::vector<SamplerStage> out;
    for (char c : letters) {
        const auto it = std::find_if(std::begin(kStages), std::end(kStages), [c](const Named& n) { return n.letter == c; });
        if (it == std::end(kStages)) {
            throw Error(std::string("unknown sampler letter '") + c + "' (known: e d s k y p m x t)");
        }
        out.push_back(it->stage);
    }
    return out;
}

std::string sampler_order_to_string(const std::vector<SamplerStage>& order) {
    std::string out;
    for (SamplerStage s : order) {
        const auto it = std::find_if(std::begin(kStages), std::end(kStages), [s](const Named& n) { return n.stage == s; });
        out += (out.empty() ? "" : ";") + std::string(it->name);
    }
    return out;
}

}  // namespace runtime
