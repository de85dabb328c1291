#include "convert/architecture.h"

#include "convert/error.h"

namespace convert {

namespace {

// llama.cpp converts Mistral and Mixtral as `llama` (Mixtral with stacked experts).
constexpr Architecture kArchitectures[] = {
    {"LlamaForCausalLM", "llama", true, ExpertLayout::None, false, true},
    {"MistralForCausalLM", "llama", true, ExpertLayout::None, false, true},
    {"MixtralForCausalLM", "llama", true, ExpertLayout::Mixtral, false, false},
    {"Qwen2ForCausalLM", "qwen2", false, ExpertLayout::None, false, true},
    {"Qwen3ForCausalLM", "qwen3", false, ExpertLayout::None, true, true},
    {"Qwen3MoeForCausalLM", "qwen3moe", false, ExpertLayout::Qwen, true, false},
    {"GptOssForCausalLM", "gpt-oss", false, ExpertLayout::GptOss, false, false},
    {"Gemma4ForCausalLM", "gemma4", false, ExpertLayout::Gemma4, true, true},
    {"Gemma4ForConditionalGeneration", "gemma4", false, ExpertLayout::Gemma4, true, true},
    {"Gemma4AssistantForCausalLM", "gemma4-assistant", false, ExpertLayout::Gemma4, true, true},
    // the text model of Qwen3.5/3.6-MoE; the released checkpoints are the multimodal class
    {"Qwen3_5MoeForCausalLM", "qwen35moe", false, ExpertLayout::Qwen35, true, false},
    {"Qwen3_5MoeForConditionalGeneration", "qwen35moe", false, ExpertLayout::Qwen35, true, false},
};

}  // namespace

std::string supported_architectures() {
    std::string s;
    for (const Architecture& a : kArchitectures) {
        if (!s.empty()) s += ", ";
        s += a.hf_class;
    }
    return s;
}

const Architecture& find_architecture(const HfConfig& hparams) {
    const std::string cls = hparams.architecture();
    for (const Architecture& a : kArchitectures)
        if (a.hf_class == cls) return a;
    throw Error(hparams.source() + ": architecture " + cls + " is not supported (supported: " +
                supported_architectures() + ")");
}

}  // namespace convert
