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

}  // namespace

int run_imatrix(const std::vector<std::string>& args) {
    CommonOptions common;
    std::string text_file, out_file = "imatrix.gguf", format;
    std::vector<std::string> in_files;
    int chunks = -1;
    bool process_output = false;
    appcommon::OptionSet opts(
        "gguf-run",
        "Usage: gguf-run imatrix -m MODEL -f TEXT [-o imatrix.gguf] [-c 512] [--chunks N] [--in-file F]...\n"
        "       gguf-run imatrix --in-file A --in-file B [...] -o combined.gguf\n\n"
        "Sums of squared inputs per column of every matrix of the blocks (per expert for MoE), over chunks of\n"
        "-c tokens as llama-imatrix makes them; runs on the CPU backend.");
    common.add_to(opts, 512);
    opts.section("Importance matrix");
    opts.value({"-f", "--file"}, "FILE", "calibration text", &text_file);
    opts.value({"-o", "--output"}, "FILE", "output file (default imatrix.gguf)", &out_file);
    opts.value({"--output-format"}, "gguf|dat", "gguf or dat (legacy); default: dat when the output ends in .dat, else gguf",
               &format);
    opts.value({"--chunks"}, "N", "chunks of -c tokens to evaluate (-1: all)",
               [&](const std::string& v) { chunks = appcommon::parse_int(v, -1, INT_MAX); });
    opts.value({"--in-file"}, "FILE", "an earlier imatrix (GGUF or .dat) to add to; repeatable", &in_files);
    opts.flag({"--process-output"}, "also collect output.weight", &process_output);
    // llama-imatrix's other options: what they change does not exist here, or is refused with the reason
    opts.ignored({"-ofreq", "--output-frequency", "--save-frequency"}, "N",
                 "the imatrix is written once, when all chunks are done",
                 [](const std::string& v) { appcommon::parse_int(v, 0, INT_MAX); });
    opts.ignored({"--no-ppl"}, "", "the perplexity comes with the pass at no extra cost and is always printed");
    opts.unsupported({"--chunk", "--from-chunk"}, true, "not supported yet: the text is read from its start (cut the file instead)");
    opts.unsupported({"--show-statistics"}, false, "not supported yet: gguf-inspect IMATRIX.gguf --tensors lists its entries");
    opts.unsupported({"--parse-special"}, false, "not supported yet: special-token text is tokenized as plain text");
    add_unsupported_llama_options(opts);
    if (opts.parse(args) == appcommon::OptionSet::Outcome::Exit) return 0;
    if (!opts.positional().empty()) throw appcommon::UsageError{"unexpected argument '" + opts.positional().front() + "'"};
    if (format.empty()) format = ends_with(out_file, ".dat") ? "dat" : "gguf";
    if (format != "gguf" && format != "dat") throw appcommon::UsageError{"--output-format must be gguf or dat"};
    if (text_file.empty() && in_files.empty()) throw appcommon::UsageError{"no text given (-f FILE) and no --in-file"};
    if (common.ctx_size < 4) throw appcommon::UsageError{"-c must be at least 4 for imatrix"};
    if (chunks == 0 || chunks < -1) throw appcommon::UsageError{"--chunks must be -1 (all) or at least 1"};
    if (!text_file.empty()) check_text_length(text_file, common.ctx_size);
    // replaced as llama-imatrix does, but never one of the inputs
    gguf::OutputPolicy policy;
    policy.inputs = in_files;
    if (!text_file.empty()) policy.inputs.insert(policy.inputs.end(), {common.model, text_file});
    gguf::check_output_path(out_file, policy);

    // earlier files first (read before the model loads, so a bad one fails fast)
    runtime::ImatrixParams ip;
    ip.process_output = process_output;
    runtime::ImatrixCollector collector(ip);
    const auto chunk_size = static_cast<uint32_t>(common.ctx_size);
    for (const auto& f : in_files) {
        quant::ImatrixData d = quant::ImatrixData::load(f);
        d.to_raw(chunk_size);  // a legacy file's calls become chunks of -c tokens
        collector.data().merge(d, f);
    }

    runtime::PerplexityResult r;
    if (!text_file.empty()) {
        Loaded l = load(common, true);
        runtime::Context& ctx = *l.context;
        const auto tokens = l.tokenizer->encode(read_text_file(text_file), true, false);
        runtime::PerplexityParams p;
        p.n_ctx = ctx.n_ctx();
        p.n_chunks = chunks;
        p.add_bos = l.tokenizer->add_bos();
        p.bos = l.tokenizer->bos();
        p.progress = chunk_progress;
        std::fprintf(stderr, "%zu tokens, chunks of %d, BOS %s\n", tokens.size(), p.n_ctx, p.add_bos ? "yes" : "no");
        r = runtime::collect_imatrix(ctx, tokens, p, collector);
        collector.data().datasets.push_back(text_file);
    } else if (collector.data().chunk_size == 0) {
        collector.data().chunk_size = chunk_size;
    }

    const quant::ImatrixData& d = collector.data();
    if (d.entries.empty()) throw runtime::Error("no matrix product was collected (is the text long enough?)");
    if (format == "gguf") d.write_gguf(out_file, policy);
    else d.write_legacy(out_file, policy);

    if (common.json) {
        appcommon::JsonWriter j(std::cout);
        j.begin_object()
            .field("output", out_file)
            .field("format", format)
            .field("entries", static_cast<int64_t>(d.entries.size()))
            .field("chunks", static_cast<int64_t>(d.chunk_count))
            .field("chunk_size", static_cast<int64_t>(d.chunk_size));
        if (!text_file.empty()) j.field("ppl", r.ppl);
        j.end_object();
        std::cout << "\n";
    } else {
        if (!text_file.empty()) {
            std::printf("Final estimate: PPL = %.4f +/- %.5f (%d chunks)\n", r.ppl, r.ppl_stderr, r.n_chunks);
        }
        std::printf("imatrix: %zu entries, %u chunks of %u tokens, saved to %s (%s)\n", d.entries.size(), d.chunk_count,
                    d.chunk_size, out_file.c_str(), format.c_str());
    }
    return 0;
}

}  // namespace gguf_run
