// gguf-run imatrix: an importance matrix from calibration text, in llama.cpp's formats, optionally
// combined with earlier files (--in-file); with --in-file alone, only combines them.
#include <climits>
#include <cstdio>
#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "gguf/output_file.h"
#include "modes.h"
#include "options.h"
#include "quant/imatrix_data.h"
#include "quant/quant.h"
#include "runtime/error.h"
#include "runtime/imatrix_collector.h"
#include "text_input.h"

namespace gguf_run {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct ImatrixOptions {
    CommonOptions common;
    std::string text_file, out_file = "imatrix.gguf", format;
    std::vector<std::string> in_files;
    int chunks = -1;
    bool process_output = false;
    gguf::OutputPolicy policy;  // the output is replaced as llama-imatrix does, but never one of the inputs
};

// Parses and checks `args` before any file is read; false when they only asked for help.
bool parse_imatrix_options(const std::vector<std::string>& args, ImatrixOptions& o) {
    appcommon::OptionSet opts(
        "gguf-run",
        "Usage: gguf-run imatrix -m MODEL -f TEXT [-o imatrix.gguf] [-c 512] [--chunks N] [--in-file F]...\n"
        "       gguf-run imatrix --in-file A --in-file B [...] -o combined.gguf\n\n"
        "Sums of squared inputs per column of every matrix of the blocks (per expert for MoE), over chunks of\n"
        "-c tokens as llama-imatrix makes them; runs on the CPU backend.");
    o.common.add_to(opts, 512);
    opts.section("Importance matrix");
    opts.value({"-f", "--file"}, "FILE", "calibration text", &o.text_file);
    opts.value({"-o", "--output"}, "FILE", "output file (default imatrix.gguf)", &o.out_file);
    opts.value({"--output-format"}, "gguf|dat", "gguf or dat (legacy); default: dat when the output ends in .dat, else gguf",
               &o.format);
    opts.value({"--chunks"}, "N", "chunks of -c tokens to evaluate (-1: all)",
               [&](const std::string& v) { o.chunks = appcommon::parse_int(v, -1, INT_MAX); });
    opts.value({"--in-file"}, "FILE", "an earlier imatrix (GGUF or .dat) to add to; repeatable", &o.in_files);
    opts.flag({"--process-output"}, "also collect output.weight", &o.process_output);
    // llama-imatrix's other options: what they change does not exist here, or is refused with the reason
    opts.ignored({"-ofreq", "--output-frequency", "--save-frequency"}, "N",
                 "the imatrix is written once, when all chunks are done",
                 [](const std::string& v) { appcommon::parse_int(v, 0, INT_MAX); });
    opts.ignored({"--no-ppl"}, "", "the perplexity comes with the pass at no extra cost and is always printed");
    opts.unsupported({"--chunk", "--from-chunk"}, true, "not supported yet: the text is read from its start (cut the file instead)");
    opts.unsupported({"--show-statistics"}, false, "not supported yet: gguf-inspect IMATRIX.gguf --tensors lists its entries");
    opts.unsupported({"--parse-special"}, false, "not supported yet: special-token text is tokenized as plain text");
    add_unsupported_llama_options(opts);
    if (opts.parse(args) == appcommon::OptionSet::Outcome::Exit) return false;
    if (!opts.positional().empty()) throw appcommon::UsageError{"unexpected argument '" + opts.positional().front() + "'"};
    if (o.format.empty()) o.format = ends_with(o.out_file, ".dat") ? "dat" : "gguf";
    if (o.format != "gguf" && o.format != "dat") throw appcommon::UsageError{"--output-format must be gguf or dat"};
    if (o.text_file.empty() && o.in_files.empty()) throw appcommon::UsageError{"no text given (-f FILE) and no --in-file"};
    if (o.common.ctx_size < 4) throw appcommon::UsageError{"-c must be at least 4 for imatrix"};
    if (o.chunks == 0 || o.chunks < -1) throw appcommon::UsageError{"--chunks must be -1 (all) or at least 1"};
    if (!o.text_file.empty()) check_text_length(o.text_file, o.common.ctx_size);
    o.policy.inputs = o.in_files;
    if (!o.text_file.empty()) o.policy.inputs.insert(o.policy.inputs.end(), {o.common.model, o.text_file});
    gguf::check_output_path(o.out_file, o.policy);
    return true;
}

void print_imatrix(const ImatrixOptions& o, const quant::ImatrixData& d, const runtime::PerplexityResult& r) {
    if (o.common.json) {
        appcommon::JsonWriter j(std::cout);
        j.begin_object()
            .field("output", o.out_file)
            .field("format", o.format)
            .field("entries", static_cast<int64_t>(d.entries.size()))
            .field("chunks", static_cast<int64_t>(d.chunk_count))
            .field("chunk_size", static_cast<int64_t>(d.chunk_size));
        if (!o.text_file.empty()) j.field("ppl", r.ppl);
        j.end_object();
        std::cout << "\n";
        return;
    }
    if (!o.text_file.empty()) std::printf("Final estimate: PPL = %.4f +/- %.5f (%d chunks)\n", r.ppl, r.ppl_stderr, r.n_chunks);
    std::printf("imatrix: %zu entries, %u chunks of %u tokens, saved to %s (%s)\n", d.entries.size(), d.chunk_count,
                d.chunk_size, o.out_file.c_str(), o.format.c_str());
}

}  // namespace

int run_imatrix(const std::vector<std::string>& args) {
    ImatrixOptions o;
    if (!parse_imatrix_options(args, o)) return 0;
    // earlier files first (read before the model loads, so a bad one fails fast)
    runtime::ImatrixParams ip;
    ip.process_output = o.process_output;
    runtime::ImatrixCollector collector(ip);
    const auto chunk_size = static_cast<uint32_t>(o.common.ctx_size);
    for (const auto& f : o.in_files) {
        quant::ImatrixData d = quant::ImatrixData::load(f);
        d.to_raw(chunk_size);  // a legacy file's calls become chunks of -c tokens
        collector.data().merge(d, f);
    }

    runtime::PerplexityResult r;
    if (!o.text_file.empty()) {
        Loaded l = load(o.common, true);
        const ChunkedText text = chunked_text(l, o.text_file, o.chunks);
        r = runtime::collect_imatrix(*l.context, text.tokens, text.params, collector);
        collector.data().datasets.push_back(o.text_file);
    } else if (collector.data().chunk_size == 0) {
        collector.data().chunk_size = chunk_size;
    }

    const quant::ImatrixData& d = collector.data();
    if (d.entries.empty()) throw runtime::Error("no matrix product was collected (is the text long enough?)");
    if (o.format == "gguf") d.write_gguf(o.out_file, o.policy);
    else d.write_legacy(o.out_file, o.policy);
    print_imatrix(o, d, r);
    return 0;
}

}  // namespace gguf_run
