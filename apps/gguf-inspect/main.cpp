// gguf-inspect: what is in a GGUF file (summary, metadata, tensors, layers) and how two differ.
#include <climits>
#include <filesystem>
#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/options.h"
#include "report.h"

int main(int argc, char** argv) {
    return appcommon::run_main([&] {
        std::string tensor_regex;
        InspectOptions opt;
        bool diff = false, json = false;
        appcommon::OptionSet opts("gguf-inspect",
                                  "Usage: gguf-inspect [options] FILE.gguf\n"
                                  "       gguf-inspect --diff A.gguf B.gguf");
        // --tensors takes the next argument as its regex unless it is a file (or ends in .gguf), so
        // "gguf-inspect --tensors model.gguf" lists every tensor instead of filtering by the file name
        opts.optional_value_if({"--tensors"}, "REGEX",
                               "list tensors (name, type, shape, bytes, offset); REGEX filters names (ECMAScript, search)",
                               [](const std::string& next) {
                                   return !next.starts_with("-") && !next.ends_with(".gguf") &&
                                          !std::filesystem::is_regular_file(next);  // a directory is no model: "." is a regex
                               },
                               [&](const std::string& v) {
                                   opt.tensors = true;
                                   tensor_regex = v;
                               });
        opts.flag({"--layers"}, "per-block summary: bytes per block split into attention / dense FFN / experts", &opt.layers);
        opts.flag({"--checksums"}, "add an xxh64 checksum per tensor (reads all tensor data)", &opt.checksums);
        opts.flag({"--diff"}, "compare two files: tensor types/shapes, sizes, metadata", &diff);
        opts.flag({"--json"}, "machine-readable output: everything (metadata, tensors, layers)", &json);
        opts.value({"--array-preview"}, "N", "entries shown of long metadata arrays (default 8)",
                   [&](const std::string& v) { opt.array_preview = appcommon::parse_int(v, 0, INT_MAX); });
        // gguf_dump.py's spellings
        opts.flag({"--no-tensors"}, "summary and metadata only (the default for text; JSON then leaves tensors out)",
                  [&] { opt.no_tensors = true; });
        opts.unsupported({"--markdown", "--json-array", "--data-offset", "--data-alignment"}, false,
                         "not supported by gguf-inspect");
        if (opts.parse(argc, argv) == appcommon::OptionSet::Outcome::Exit) return 0;
        const std::vector<std::string>& files = opts.positional();
        if (diff && files.size() != 2) throw appcommon::UsageError{"--diff needs exactly two files"};
        if (!diff && files.size() != 1) throw appcommon::UsageError{"expected one GGUF file"};
        if (opt.checksums) opt.tensors = true;
        // JSON is for programs: it holds every view unless --no-tensors asks for less
        if (json && !opt.no_tensors) opt.tensors = opt.layers = true;
        if (!tensor_regex.empty()) {
            try {
                opt.tensor_filter.emplace(tensor_regex);
            } catch (const std::regex_error& e) {
                throw appcommon::UsageError{"invalid --tensors regex '" + tensor_regex + "': " + e.what()};
            }
        }

        if (diff) {
            gguf::File a = gguf::File::open(files[0]);
            gguf::File b = gguf::File::open(files[1]);
            json ? print_diff_json(std::cout, a, b) : print_diff_text(std::cout, a, b);
            return 0;
        }
        gguf::File f = gguf::File::open(files[0]);
        json ? print_json(std::cout, f, opt) : print_text(std::cout, f, opt);
        return 0;
    });
}
