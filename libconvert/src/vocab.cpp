#include "convert/vocab.h"

#include <filesystem>

#include "convert/error.h"
#include "vocab_loaders.h"

namespace fs = std::filesystem;

namespace convert {

Vocab load_vocab(const std::string& dir, const HfConfig& hparams) {
    if (fs::is_regular_file(fs::path(dir) / "tokenizer.model")) return load_spm_vocab(dir, hparams);
    return load_bpe_vocab(dir, hparams);
}

void add_vocab_metadata(const Vocab& v, gguf::Metadata& m) {
    using gguf::Value;
    m.set("tokenizer.ggml.model", Value::string(v.model));
    // Second, where llama.cpp's converter writes it (its tiny gpt-oss reference file has it there; the
    // shared tiny-dense/tiny-moe fixture files hold it last, see tests/convert/conformance_test.cpp).
    if (!v.pre.empty()) m.set("tokenizer.ggml.pre", Value::string(v.pre));  // gemma4 writes none
    m.set("tokenizer.ggml.tokens", Value::string_array(v.tokens));
    if (!v.scores.empty()) m.set("tokenizer.ggml.scores", Value::f32_array(v.scores));
    std::vector<int32_t> types(v.types.size());
    for (size_t i = 0; i < types.size(); ++i) types[i] = static_cast<int32_t>(v.types[i]);
    m.set("tokenizer.ggml.token_type", Value::i32_array(types));
    if (!v.merges.empty()) m.set("tokenizer.ggml.merges", Value::string_array(v.merges));

    // llama.cpp's key names, "seperator" spelling included.
    const auto id_key = [](const std::string& type) -> std::string {
        if (type == "unk") return "tokenizer.ggml.unknown_token_id";
        if (type == "sep") return "tokenizer.ggml.seperator_token_id";
        if (type == "pad") return "tokenizer.ggml.padding_token_id";
        return "tokenizer.ggml." + type + "_token_id";
    };
    for (const auto& [type, id] : v.special.ids) m.set(id_key(type), Value::u32(id));
    for (const auto& [type, add] : v.special.add)
        if (type == "bos" || type == "eos" || type == "sep")  // the flags llama.cpp has keys for
            m.set("tokenizer.ggml.add_" + type + "_token", Value::boolean(add));

    std::vector<std::string> names;
    for (const auto& [name, text] : v.special.named_chat_templates) {
        m.set("tokenizer.chat_template." + name, Value::string(text));
        names.push_back(name);
    }
    if (!names.empty()) m.set("tokenizer.chat_templates", Value::string_array(names));
    if (v.special.chat_template) m.set("tokenizer.chat_template", Value::string(*v.special.chat_template));
    if (v.add_space_prefix) m.set("tokenizer.ggml.add_space_prefix", Value::boolean(*v.add_space_prefix));
}

}  // namespace convert
