#include "convert/converter.h"

#include <filesystem>
#include <fstream>

#include "convert/architecture.h"
#include "convert/checkpoint.h"
#include "convert/error.h"
#include "convert/gemma4.h"
#include "convert/model_metadata.h"
#include "convert/tensor_data.h"
#include "convert/tensor_plan.h"
#include "convert/vocab.h"
#include "gguf/error.h"
#include "gguf/writer.h"

namespace fs = std::filesystem;

namespace convert {

namespace {

// ggml's GGML_QNT_VERSION, which llama.cpp records in every file it converts.
constexpr uint32_t kQuantizationVersion = 2;
// llama.cpp's LLAMA_FTYPE_MOSTLY_MXFP4_MOE.
constexpr uint32_t kFileTypeMxfp4Moe = 38;

bool is_float_outtype(OutType t) { return t == OutType::F32 || t == OutType::F16 || t == OutType::BF16; }

std::string directory_name(const std::string& dir) {
    fs::path p = fs::weakly_canonical(fs::absolute(dir));
    std::string name = p.filename().string();
    return name.empty() ? p.parent_path().filename().string() : name;
}

// LlamaModel also carries tokenizer_config.json's add_prefix_space.
std::optional<bool> add_prefix_space(const std::string& dir) {
    const fs::path p = fs::path(dir) / "tokenizer_config.json";
    if (!fs::is_regular_file(p)) return std::nullopt;
    json::Value tc = json::parse_file(p.string());
    const json::Value* v = tc.is_object() ? tc.find("add_prefix_space") : nullptr;
    if (v && v->is_bool()) return v->as_bool();
    return std::nullopt;
}

}  // namespace

ConvertSummary convert_checkpoint(const ConvertOptions& opt) {
    const Checkpoint checkpoint = Checkpoint::open(opt.input_dir);
    const HfConfig& h = checkpoint.hparams();
    const Architecture& arch = find_architecture(h);
    const OutType outtype = opt.outtype == OutType::Auto ? resolve_auto_outtype(checkpoint) : opt.outtype;

    Vocab vocab = arch.experts == ExpertLayout::Gemma4 ? load_gemma4_vocab(opt.input_dir, h) : load_vocab(opt.input_dir, h);
    if (arch.llama_layout) vocab.add_space_prefix = add_prefix_space(opt.input_dir);
    TensorPlan plan = plan_tensors(arch, checkpoint, outtype);

    ConvertSummary s;
    s.output_path = opt.output_path;
    s.hf_architecture = arch.hf_class;
    s.architecture = arch.name;
    s.outtype = outtype_name(outtype);
    s.file_type = outtype_file_type(outtype);
    // llama.cpp records a float conversion of an MXFP4 checkpoint (gpt-oss, its experts kept) as MXFP4_MOE
    if (arch.experts == ExpertLayout::GptOss && is_float_outtype(outtype)) s.file_type = kFileTypeMxfp4Moe;
    s.name = model_title(directory_name(opt.input_dir));
    s.size_label = size_label(plan);
    s.tokenizer_model = vocab.model;
    s.tokenizer_pre = vocab.pre;
    s.n_vocab = vocab.tokens.size();
    s.warnings = vocab.warnings;
    s.warnings.insert(s.warnings.end(), plan.warnings.begin(), plan.warnings.end());

    gguf::OutputPolicy policy;
    policy.replace_existing = opt.replace_existing;
    policy.inputs = checkpoint.input_files();
    policy.inputs.insert(policy.inputs.end(), vocab.input_files.begin(), vocab.input_files.end());

    try {
        gguf::check_output_path(opt.output_path, policy);
        gguf::Writer w(opt.output_path, 3, policy);
        gguf::Metadata& m = w.metadata();
        add_general_metadata(m, arch, s.name, s.size_label);
        add_hparams_metadata(m, arch, h, s.file_type, s.warnings);
        m.set("general.quantization_version", gguf::Value::u32(kQuantizationVersion));
        add_vocab_metadata(vocab, m);

        for (const PlannedTensor& t : plan.tensors) {
            w.add_tensor(t.name, t.type, t.ggml_dims());
            s.n_parameters += t.n_elements();
            ++s.tensors_per_type[std::string(gguf::type_name(t.type))];
        }
        s.file_size = w.expected_file_size();
        if (opt.check_header) opt.check_header(w.metadata(), w.tensors());
        for (size_t i = 0; i < plan.tensors.size(); ++i) {
            if (opt.on_tensor) opt.on_tensor(i, plan.tensors.size(), plan.tensors[i].name);
            produce_tensor_data(plan.tensors[i], [&](std::span<const uint8_t> bytes) { w.write_data(bytes); });
        }
        w.finish();
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
    s.n_tensors = plan.tensors.size();
    return s;
}

}  // namespace convert
