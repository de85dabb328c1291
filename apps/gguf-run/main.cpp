// gguf-run: run a GGUF model on this machine. Modes: generate (default), chat, bench, perplexity, imatrix, devices.
// Options in, runtime calls out; the modes live beside this file.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "appcommon/cli.h"
#include "modes.h"
#include "options.h"

namespace {

constexpr const char* kUsage =
    "Usage: gguf-run [generate] -m MODEL -p PROMPT [-n N] [options]   generate text\n"
    "       gguf-run chat -m MODEL [-sys TEXT]                       chat, one message per stdin line (or -cnv)\n"
    "       gguf-run bench -m MODEL [-p 512] [-n 128] [-r 5]          prompt and generation speed\n"
    "       gguf-run perplexity -m MODEL -f TEXT [-c 512]            perplexity / KL divergence\n"
    "       gguf-run imatrix -m MODEL -f TEXT [-o imatrix.gguf]      importance matrix (llama.cpp's format)\n"
    "       gguf-run devices [--bandwidth]                           CPU and GPUs this build can use\n"
    "\n"
    "Placement (shared by every mode): -ngl N, --n-cpu-moe N, --cpu-moe, -ot REGEX=DEVICE (first match\n"
    "wins); the plan and memory per device are printed at start. 'gguf-run MODE --help' lists a mode's options;\n"
    "llama.cpp's spellings are accepted (-ngl, -ctk, -sys, -cnv, -fa...), see docs/cli.md.\n";

}  // namespace

int main(int argc, char** argv) {
    return appcommon::run_main([&] {
        std::string mode = "generate";
        int first = 1;
        if (argc > 1 && argv[1][0] != '-') {
            mode = argv[1];
            first = 2;
        }
        const std::vector<std::string> args(argv + first, argv + argc);
        if (argc == 1) {
            std::fputs(kUsage, stderr);
            return 2;
        }
        for (const auto& a : args) {
            if (a == "--list-devices") return gguf_run::run_devices({});  // llama.cpp's spelling of the devices mode
        }
        if (mode == "generate") {
            if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h") && first == 1) {
                std::fputs(kUsage, stdout);
                std::fputs("\n", stdout);
            }
            return gguf_run::run_generate(args);
        }
        if (mode == "chat") return gguf_run::run_chat(args);
        if (mode == "bench") return gguf_run::run_bench(args);
        if (mode == "perplexity") return gguf_run::run_perplexity(args);
        if (mode == "imatrix") return gguf_run::run_imatrix(args);
        if (mode == "devices") return gguf_run::run_devices(args);
        throw appcommon::UsageError{"unknown mode '" + mode + "' (generate, chat, bench, perplexity, imatrix, devices)"};
    });
}
