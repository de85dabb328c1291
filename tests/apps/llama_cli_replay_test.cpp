// Real-world llama.cpp command lines (from llama.cpp's docs, model cards and the runs this project's
// users make), replayed against our apps with the program name swapped and the model path pointing
// at a fixture: each one either works or fails with one usage error naming the offending flag.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fixtures.h"
#include "run_command.h"

namespace {

using testing_support::fixture;
using testing_support::run_app;

struct Replay {
    const char* app;
    std::string args;  // MODEL stands for the fixture model's path
    const char* refused_flag;  // nullptr: must run; else: exit 2 and an error naming this flag
};

std::string with_model(std::string args, const std::string& model) {
    for (size_t at; (at = args.find("MODEL")) != std::string::npos;) args.replace(at, 5, "'" + model + "'");
    return args;
}

void replay(const std::vector<Replay>& lines, const std::string& model) {
    for (const auto& l : lines) {
        const auto r = run_app(l.app, with_model(l.args, model) + " < /dev/null");
        if (!l.refused_flag) {
            EXPECT_EQ(r.status, 0) << l.app << " " << l.args << "\n" << r.err;
            continue;
        }
        EXPECT_EQ(r.status, 2) << l.app << " " << l.args << "\n" << r.err;
        const size_t at = r.err.find("error: ");
        ASSERT_NE(at, std::string::npos) << l.app << " " << l.args << "\n" << r.err;
        EXPECT_NE(r.err.find(l.refused_flag, at), std::string::npos)
            << l.app << " " << l.args << " should name " << l.refused_flag << "\n" << r.err;
    }
}

TEST(LlamaCliReplay, GgufRunTakesLlamaCliAndLlamaServerLines) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const std::string gen = " -n 4 --temp 0 -t 1";
    const auto prompt_file = std::filesystem::temp_directory_path() / ("replay_prompt_" + std::to_string(::getpid()));
    std::ofstream(prompt_file) << "def add(a, b):\n";
    replay({
        // the MoE offload line the seeds run, with a system prompt and the model's template (--n-cpu-moe 3:
        // the fixture has 4 blocks, and more than the model has is an error, see below)
        {"gguf-run", "-m MODEL -ngl 99 --n-cpu-moe 3 -fa on -ctk q8_0 -ctv q8_0 -c 32768 -ub 512 -sys 'You are terse.' --jinja -cnv" + gen, nullptr},
        {"gguf-run", "-m MODEL -ngl 99 -ot '.ffn_.*_exps.=CPU' -fa -c 4096 -p 'def add(a, b):'" + gen, nullptr},
        {"gguf-run", "-m MODEL --n-gpu-layers 99 --cpu-moe --flash-attn auto --ctx-size 8192 --batch-size 2048 "
                     "--ubatch-size 512 -p hello" + gen, nullptr},
        {"gguf-run", "-m MODEL -c 4096 --temp 0.6 --top-k 20 --top-p 0.95 --min-p 0 --presence-penalty 0 -p hi -n 4 -t 1", nullptr},
        {"gguf-run", "-m MODEL --mlock --no-mmap -np 1 -mg 0 -ts 1 -sm layer --fit off -p 'a\\nb'" + gen, nullptr},
        {"gguf-run", "-m MODEL -cnv -sys 'be nice' -st -p 'hello'" + gen, nullptr},
        {"gguf-run", "-m MODEL -f '" + prompt_file.string() + "' -n 2 --temp 0 -t 1 --no-perf --no-display-prompt --no-warmup --log-disable", nullptr},
        {"gguf-run", "-m MODEL -p 'x' -r 'def' -e --seed 42 --repeat-penalty 1.1 --repeat-last-n 64 --ignore-eos" + gen, nullptr},
        {"gguf-run", "chat -m MODEL --chat-template chatml -sys hi" + gen, nullptr},
        {"gguf-run", "bench -m MODEL -p 16 -n 4 -r 1 -ngl 99 -fa 1 -t 1", nullptr},
        {"gguf-run", "perplexity -m MODEL -f '" + fixture("text/dev_eval.txt").string() + "' -c 128 --chunks 1 -b 128 -t 1", nullptr},
        // what gguf-run does not do (yet) is refused by name
        {"gguf-run", "-m MODEL --grammar 'root ::= \"a\"' -p hi" + gen, "--grammar"},
        {"gguf-run", "-m MODEL --json-schema '{}' -p hi" + gen, "--json-schema"},
        {"gguf-run", "-m MODEL -j '{}' -p hi" + gen, "-j"},
        {"gguf-run", "-m MODEL --presence-penalty 1.5 -p hi" + gen, "--presence-penalty"},
        {"gguf-run", "-m MODEL --mirostat 2 -p hi" + gen, "--mirostat"},
        {"gguf-run", "-m MODEL --samplers 'top_k;temperature' -p hi" + gen, "--samplers"},
        {"gguf-run", "-m MODEL -i -p hi" + gen, "-i"},
        {"gguf-run", "-hf unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M -p hi", "-hf"},
        {"gguf-run", "-m MODEL --lora adapter.gguf -p hi", "--lora"},
        {"gguf-run", "-m MODEL -ts 3,1 -p hi", "-ts"},
        {"gguf-run", "-m MODEL -mg 1 -p hi", "-mg"},
        {"gguf-run", "-m MODEL -np 4 -p hi", "-np"},
        {"gguf-run", "-m MODEL -sm row -p hi", "-sm"},
        {"gguf-run", "-m MODEL -fa sometimes -p hi", "unexpected argument 'sometimes'"},
        {"gguf-run", "-m MODEL -sys hi -p hi", "-sys"},
        {"gguf-run", "-m MODEL --port 8080", "--port"},
        {"gguf-run", "-m MODEL --rope-scaling yarn -p hi", "--rope-scaling"},
        {"gguf-run", "-m MODEL --ngl 99 -p hi", "did you mean '-ngl'"},
        {"gguf-run", "-m MODEL -cnv --jinja --chat-template-file '" GGUF_SOURCE_DIR "/tests/chat/templates/Qwen-Qwen3-0.6B.jinja'" + gen, nullptr},
        {"gguf-run", "-m MODEL -cnv --chat-template vicuna", "--chat-template"},
        {"gguf-run", "bench -m MODEL -m MODEL -p 8,16 -n 2 -pg 8,2 -d 0,4 -t 1 -r 1 -ngl 99 -o csv", nullptr},
        {"gguf-run", "bench -m MODEL -p 8 -n 2 -r 1 -o yaml", "-o"},
        {"gguf-run", "bench -m MODEL -p 8 -n 2 -r 1 --progress", "--progress"},
    }, fixture("gguf/tiny-moe-bf16.gguf").string());
    std::filesystem::remove(prompt_file);
}

TEST(LlamaCliReplay, VersionAndVerbose) {
    for (const char* app : {"gguf-run", "gguf-quantize", "gguf-inspect", "gguf-convert"}) {
        const auto r = run_app(app, "--version");
        EXPECT_EQ(r.status, 0) << app << r.err;
        EXPECT_EQ(r.out.rfind(std::string(app) + " 0.", 0), 0u) << r.out;
        EXPECT_NE(r.out.find("commit "), std::string::npos) << r.out;
    }
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const auto v = run_app("gguf-run", "-m '" + fixture("gguf/tiny-dense-bf16.gguf").string() + "' -v -p hi -n 1 -t 1");
    EXPECT_EQ(v.status, 0) << v.err;
    EXPECT_NE(v.err.find("prompt: "), std::string::npos) << v.err;
    EXPECT_NE(v.err.find("sampler: "), std::string::npos) << v.err;
}

TEST(LlamaCliReplay, QuantizeInspectAndConvertLines) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    replay({
        {"gguf-quantize", "--dry-run MODEL Q4_K_M", nullptr},
        {"gguf-quantize", "--dry-run --allow-requantize MODEL 15", nullptr},
        {"gguf-quantize", "--dry-run --pure --token-embedding-type q8_0 --output-tensor-type q8_0 MODEL q4_k_m 2", nullptr},
        {"gguf-quantize", "--leave-output-tensor MODEL out.gguf Q4_K_M", "--leave-output-tensor"},
        {"gguf-quantize", "--prune-layers 1,2 MODEL out.gguf Q4_K_M", "--prune-layers"},
        {"gguf-quantize", "--include-weights attn MODEL out.gguf Q4_K_M", "--include-weights"},
        {"gguf-quantize", "--imatrx x.dat MODEL out.gguf Q4_K_M", "did you mean '--imatrix'"},
        {"gguf-inspect", "MODEL --tensors", nullptr},
        {"gguf-inspect", "--tensors MODEL", nullptr},
        {"gguf-inspect", "--tensors attn MODEL --json", nullptr},
        {"gguf-inspect", "--no-tensors MODEL", nullptr},
        {"gguf-inspect", "--markdown MODEL", "--markdown"},
        {"gguf-convert", "/nonexistent --outfile x.gguf --vocab-only", "--vocab-only"},
        {"gguf-convert", "/nonexistent --outfile x.gguf --split-max-size 50G", "--split-max-size"},
    }, fixture("gguf/tiny-dense-bf16.gguf").string());
}

}  // namespace
