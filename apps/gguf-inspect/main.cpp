// gguf-inspect: what is in a GGUF file (summary, metadata, tensors, layers) and how two differ.
#include <boost/program_options.hpp>
#include <iostream>

#include "appcommon/cli.h"
#include "report.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
    return appcommon::run_main([&] {
        po::options_description visible(
            "Usage: gguf-inspect [options] FILE.gguf\n"
            "       gguf-inspect --diff A.gguf B.gguf\n\nOptions");
        std::string tensor_regex;
        InspectOptions opt;
        visible.add_options()
            ("help,h", "show this help")
            ("tensors", po::value<std::string>(&tensor_regex)->implicit_value(""),
             "list tensors (name, type, shape, bytes, offset); optional REGEX filters names (ECMAScript, search)")
            ("layers", "per-block summary: bytes per block split into attention / dense FFN / experts")
            ("checksums", "add an xxh64 checksum per tensor (reads all tensor data)")
            ("diff", "compare two files: tensor types/shapes, sizes, metadata")
            ("json", "machine-readable output")
            ("array-preview", po::value<size_t>(&opt.array_preview)->default_value(8),
             "entries shown of long metadata arrays");
        po::variables_map vm;
        const std::vector<std::string> files = appcommon::parse_command_line(argc, argv, visible, vm);
        if (vm.count("help")) {
            std::cout << visible << "\n";
            return 0;
        }
        const bool diff = vm.count("diff") > 0, json = vm.count("json") > 0;
        if (diff && files.size() != 2) throw appcommon::UsageError{"--diff needs exactly two files"};
        if (!diff && files.size() != 1) throw appcommon::UsageError{"expected one GGUF file"};
        opt.tensors = vm.count("tensors") > 0;
        opt.layers = vm.count("layers") > 0;
        opt.checksums = vm.count("checksums") > 0;
        if (opt.checksums) opt.tensors = true;
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
