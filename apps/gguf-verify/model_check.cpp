#include "model_check.h"

#include <cstdio>

#include "runtime/chat_template.h"
#include "runtime/hparams.h"

namespace verify {

CheckResult structure_check(const gguf::File& file) {
    CheckResult r;
    r.name = "structure";
    uint64_t data_bytes = 0;
    for (const auto& t : file.tensors()) {
        data_bytes += t.n_bytes();
        // the reader accepts a zero dimension (ggml can describe one); no model has such a weight
        if (t.n_elements() == 0) r.problems.push_back(t.name + ": no elements (shape " + t.shape_string() + ")");
        // Q8_1 and Q8_K are the formats activations are converted to, never a stored weight's
        if (t.type == gguf::GgmlType::Q8_1 || t.type == gguf::GgmlType::Q8_K) {
            r.problems.push_back(t.name + ": " + std::string(gguf::type_name(t.type)) +
                                 " is an activation format no runtime reads weights in");
        }
    }
    char fig[200];
    std::snprintf(fig, sizeof fig, "GGUF v%u, %zu tensors, %zu metadata keys, alignment %u, %.2f MB of tensor data",
                  file.version(), file.tensors().size(), file.metadata().size(), file.alignment(),
                  static_cast<double>(data_bytes) / 1e6);
    r.figure = fig;
    r.metrics = {{"tensors", static_cast<double>(file.tensors().size())},
                 {"metadata_keys", static_cast<double>(file.metadata().size())},
                 {"tensor_bytes", static_cast<double>(data_bytes)}};
    r.conclude();
    return r;
}

CheckResult model_check(const std::string& path, const runtime::ModelOptions& options, LoadedModel& out) {
    CheckResult r;
    r.name = "model";
    try {
        out.model = runtime::Model::load(path, options);
    } catch (const std::exception& e) {
        r.problems.push_back(e.what());
        r.figure = "the runtime cannot load it";
        r.conclude();
        return r;
    }
    const runtime::HParams& hp = out.model->hparams();
    std::string tokenizer_kind = "none", chat = "no chat template";
    try {
        out.tokenizer = runtime::Tokenizer::from_metadata(out.model->metadata());
        tokenizer_kind = out.model->metadata().get_string_or("tokenizer.ggml.model", "?");
        if (out.tokenizer->n_vocab() != static_cast<size_t>(out.model->n_vocab())) {
            r.problems.push_back("the tokenizer has " + std::to_string(out.tokenizer->n_vocab()) +
                                 " tokens, token_embd.weight " + std::to_string(out.model->n_vocab()) + " rows");
        }
    } catch (const std::exception& e) {
        r.problems.push_back(std::string("tokenizer: ") + e.what());
    }
    if (const gguf::Value* t = out.model->metadata().find("tokenizer.chat_template")) {
        try {
            chat = std::string("chat template ") +
                   runtime::chat_format_name(runtime::detect_chat_format(t->as_string()));
        } catch (const std::exception& e) {
            chat = "chat template not recognised";
            r.problems.push_back(std::string("tokenizer.chat_template: ") + e.what());
        }
    }
    char fig[240];
    std::snprintf(fig, sizeof fig, "%s, %u layers, %u/%u heads, %u experts, vocab %d, tokenizer %s, %s",
                  hp.arch_name.c_str(), hp.n_layer, hp.n_head, hp.n_head_kv, hp.n_expert, out.model->n_vocab(),
                  tokenizer_kind.c_str(), chat.c_str());
    r.figure = fig;
    r.metrics = {{"n_vocab", static_cast<double>(out.model->n_vocab())}, {"n_layer", static_cast<double>(hp.n_layer)}};
    r.conclude();
    return r;
}

}  // namespace verify
