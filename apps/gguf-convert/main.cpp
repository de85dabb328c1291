// gguf-convert: a Hugging Face checkpoint directory (config.json, safetensors, tokenizer) to GGUF.
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "appcommon/options.h"
#include "convert/architecture.h"
#include "convert/converter.h"
#include "gguf/output_file.h"
#include "runtime/model.h"

namespace {

// This process's peak resident memory (Linux VmHWM): what streaming conversion is meant to keep
// small, reported so users and tests can see it.
std::optional<uint64_t> peak_rss_bytes() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    return std::nullopt;
}

// "A, B, C" wrapped to lines of about `width` characters, each indented by two spaces.
std::string wrap_list(const std::string& list, size_t width) {
    std::string out = "  ", word;
    size_t line = 2;
    for (size_t i = 0; i <= list.size(); ++i) {
        if (i < list.size() && list[i] != ' ') {
            word += list[i];
            continue;
        }
        if (word.empty()) continue;
        if (line + word.size() > width && line > 2) {
            out += "\n  ";
            line = 2;
        } else if (line > 2) {
            out += ' ';
            ++line;
        }
        out += word;
        line += word.size();
        word.clear();
    }
    return out;
}

void print_json(std::ostream& out, const convert::ConvertSummary& s) {
    appcommon::JsonWriter j(out);
    j.begin_object();
    j.field("output", s.output_path);
    j.field("hf_architecture", s.hf_architecture);
    j.field("architecture", s.architecture);
    j.field("outtype", s.outtype);
    j.field("file_type", s.file_type);
    j.field("name", s.name);
    j.field("size_label", s.size_label);
    j.field("parameters", s.n_parameters);
    j.field("tensors", static_cast<uint64_t>(s.n_tensors));
    j.key("tensors_per_type").begin_object();
    for (const auto& [type, n] : s.tensors_per_type) j.field(type, static_cast<uint64_t>(n));
    j.end_object();
    j.field("file_size", s.file_size);
    j.key("tokenizer").begin_object();
    j.field("model", s.tokenizer_model);
    j.field("pre", s.tokenizer_pre);
    j.field("tokens", static_cast<uint64_t>(s.n_vocab));
    j.end_object();
    if (auto peak = peak_rss_bytes()) j.field("peak_rss_bytes", *peak);
    j.key("warnings").begin_array();
    for (const std::string& w : s.warnings) j.value(w);
    j.end_array();
    j.end_object();
    out << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    return appcommon::run_main([&] {
        std::string output, outtype_arg = "auto";
        bool json = false, force = false;
        appcommon::OptionSet opts(
            "gguf-convert",
            "Usage: gguf-convert HF_DIR -o OUT.gguf [--outtype f32|f16|bf16|q8_0|auto] [--force]\n\n"
            "Converts a Hugging Face checkpoint (config.json, safetensors, tokenizer.json or\n"
            "tokenizer.model) to GGUF with llama.cpp's names and metadata.\n"
            "Architectures:\n" + wrap_list(convert::supported_architectures(), 78));
        opts.value({"-o", "--outfile"}, "OUT.gguf", "output GGUF file (written via a temp file, then renamed)", &output);
        opts.value({"--outtype"}, "TYPE",
                   "f32, f16, bf16, q8_0, or auto (the checkpoint's: bf16 stays bf16, else f16); 1-D tensors stay f32",
                   &outtype_arg);
        opts.flag({"--force"}, "replace OUT.gguf if it exists (never an input of the conversion)", &force);
        opts.flag({"--json"}, "print a machine-readable summary on stdout", &json);
        // convert_hf_to_gguf.py's options gguf-convert does not have
        opts.unsupported({"--vocab-only", "--no-lazy", "--use-temp-file", "--bigendian", "--no-tensor-first-split",
                          "--remote", "--mmproj", "--mistral-format", "--print-supported-models"},
                         false, "not supported by gguf-convert");
        opts.unsupported({"--model-name", "--metadata", "--split-max-tensors", "--split-max-size"}, true,
                         "not supported by gguf-convert yet");
        if (opts.parse(argc, argv) == appcommon::OptionSet::Outcome::Exit) return 0;
        const std::vector<std::string>& inputs = opts.positional();
        if (inputs.size() != 1) throw appcommon::UsageError{"expected one HF_DIR"};
        if (output.empty()) throw appcommon::UsageError{"missing -o OUT.gguf"};
        const auto outtype = convert::parse_outtype(outtype_arg);
        if (!outtype) throw appcommon::UsageError{"unknown --outtype '" + outtype_arg + "' (f32, f16, bf16, q8_0, auto)"};

        convert::ConvertOptions opt;
        opt.input_dir = inputs[0];
        opt.output_path = output;
        opt.outtype = *outtype;
        opt.replace_existing = force;
        // the output path is checked before the checkpoint is read; inputs are checked once known
        gguf::OutputPolicy policy;
        policy.replace_existing = opt.replace_existing;
        gguf::check_output_path(output, policy);
        // the same checks gguf-run makes when it loads the file, before anything is written
        opt.check_header = [&](const gguf::Metadata& md, const std::vector<gguf::TensorInfo>& tensors) {
            runtime::check_model_layout(md, tensors, output);
        };
        std::unique_ptr<appcommon::Progress> progress;
        opt.on_tensor = [&](size_t, size_t total, const std::string& name) {
            if (!progress) progress = std::make_unique<appcommon::Progress>(total);
            progress->step(name);
        };
        convert::ConvertSummary s;
        try {
            s = convert::convert_checkpoint(opt);
        } catch (...) {
            if (progress) progress->done();  // the error line must not land on the progress line
            throw;
        }
        if (progress) progress->done();
        for (const std::string& w : s.warnings) std::cerr << "warning: " << w << "\n";
        if (json) {
            print_json(std::cout, s);
        } else {
            std::cout << s.output_path << ": " << s.architecture << " (" << s.hf_architecture << "), " << s.outtype
                      << ", " << s.n_tensors << " tensors, " << s.n_parameters << " parameters, " << s.file_size
                      << " bytes; tokenizer " << s.tokenizer_model << "/" << s.tokenizer_pre << " with " << s.n_vocab
                      << " tokens\n";
        }
        return 0;
    });
}
