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
    const auto grammar_file = std::filesystem::temp_directory_path() / ("replay_grammar_" + std::to_string(::getpid()) + ".gbnf");
    const auto imatrix_out = std::filesystem::temp_directory_path() / ("replay_imatrix_" + std::to_string(::getpid()) + ".gguf");
    const std::string imatrix = "imatrix -m MODEL -f '" + fixture("text/dev_eval.txt").string() + "' -o '" +
                                imatrix_out.string() + "' -c 128 --chunks 1 -t 1";
    std::ofstream(grammar_file) << "# a bulleted list\nroot ::= (\"* \" line \"\\n\"){1,3}\nline ::= [^\\n]+\n";
    replay({
        // the MoE offload line the seeds run, with a system prompt and the model's template (--n-cpu-moe 20
        // on the fixture's 4 blocks: clamped with a warning, see below)
        {"gguf-run", "-m MODEL -ngl 99 --n-cpu-moe 20 -fa on -ctk q8_0 -ctv q8_0 -c 32768 -ub 512 -sys 'You are terse.' --jinja -cnv" + gen, nullptr},
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
        // llama-imatrix's README: its save cadence and --no-ppl have nothing to change here (a note each)
        {"gguf-run", imatrix + " --output-frequency 10 --save-frequency 0 --no-ppl -ngl 99", nullptr},
        {"gguf-run", imatrix + " --chunk 3", "--chunk"},
        {"gguf-run", imatrix + " --show-statistics", "--show-statistics"},
        // grammars and JSON schemas (llama.cpp's README and grammars/README.md)
        {"gguf-run", "-m MODEL --grammar 'root ::= \"a\"' -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL --json-schema '{}' -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL -j '{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\"}, "
                     "\"age\": {\"type\": \"integer\"}}, \"required\": [\"name\"]}' -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL --grammar-file '" + grammar_file.string() + "' -p 'Some prompt'" + gen, nullptr},
        {"gguf-run", "-m MODEL --grammar 'root ::= item+' -p hi" + gen, "--grammar"},
        {"gguf-run", "-m MODEL -j '{\"type\": \"string\", \"pattern\": \"^a+$\"}' -p hi" + gen, "-j"},
        {"gguf-run", "-m MODEL --grammar 'root ::= \"a\"' --json-schema '{}' -p hi" + gen, "--grammar"},
        // the samplers of llama.cpp's docs, with their spellings
        {"gguf-run", "-m MODEL --mirostat 2 --mirostat-lr 0.05 --mirostat-ent 3.0 -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL --dry-multiplier 0.8 --dry-base 1.75 --dry-allowed-length 2 --dry-penalty-last-n 128 "
                     "--dry-sequence-breaker '\\n' --dry-sequence-breaker none -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL --xtc-probability 0.5 --xtc-threshold 0.1 --top-nsigma 1.5 --typical 0.9 -p hi -n 4 -t 1", nullptr},
        {"gguf-run", "-m MODEL -l 15+1 --logit-bias 2-inf --logit-bias 3-0.5 -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL --samplers 'penalties;dry;top_k;typ_p;min_p;xtc;temperature' -p hi -n 4 -t 1", nullptr},
        {"gguf-run", "-m MODEL --sampling-seq edkypmxt --dynatemp-range 0.5 --dynatemp-exp 1.2 -p hi -n 4 -t 1", nullptr},
        {"gguf-run", "-m MODEL --samplers 'top_k;bogus' -p hi" + gen, "--samplers"},
        {"gguf-run", "-m MODEL --mirostat 3 -p hi" + gen, "--mirostat"},
        {"gguf-run", "-m MODEL --logit-bias 15043 -p hi" + gen, "--logit-bias"},
        {"gguf-run", "-m MODEL --dry-penalty-last-n -1 -p hi" + gen, "--dry-penalty-last-n"},
        {"gguf-run", "-m MODEL --presence-penalty 1.5 --frequency-penalty 0.5 -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL --presence-penalty nan -p hi" + gen, "--presence-penalty"},
        {"gguf-run", "-m MODEL --mirostat 2 -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL --samplers 'top_k;temperature' -p hi" + gen, nullptr},
        // llama.cpp's docs: -n -2 (until the context is filled), --color's on|off|auto, -rea off in chat
        {"gguf-run", "-m MODEL -ngl 100 -c 16384 -t 1 -n -2 -cnv", nullptr},
        {"gguf-run", "-m MODEL -p hi -co on" + gen, nullptr},
        {"gguf-run", "-m MODEL -p hi --color -n 4 --temp 0 -t 1", nullptr},
        {"gguf-run", "-m MODEL -p hi --perf --verbose-prompt" + gen, nullptr},
        {"gguf-run", "-m MODEL -cnv -rea off -st -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL -rea off -p hi" + gen, "-rea"},
        {"gguf-run", "-m MODEL -n -3 -p hi", "-n"},
        {"gguf-run", "-m MODEL -C 0xF --prio 2 -p hi" + gen, "-C"},
        {"gguf-run", "-m MODEL --cpu-strict 1 -p hi" + gen, "--cpu-strict"},
        {"gguf-run", "-m MODEL --log-file run.log -p hi" + gen, "--log-file"},
        {"gguf-run", "-m MODEL -lv 3 -p hi" + gen, "-lv"},
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
    std::filesystem::remove(grammar_file);
    std::filesystem::remove(imatrix_out);
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
    // -v shows the chain in the order given and the grammar a JSON schema became
    const auto chain = run_app("gguf-run", "-m '" + fixture("gguf/tiny-dense-bf16.gguf").string() +
                                               "' -v -p hi -n 1 -t 1 --samplers 'min_p;temp' -j '{\"type\": \"boolean\"}'");
    EXPECT_EQ(chain.status, 0) << chain.err;
    EXPECT_NE(chain.err.find("chain min_p;temperature"), std::string::npos) << chain.err;
    EXPECT_NE(chain.err.find("root ::= boolean"), std::string::npos) << chain.err;
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

// More lines of the kinds users paste from model cards and llama.cpp's READMEs (llama-cli,
// llama-server, llama-bench, llama-perplexity, llama-quantize), with the long spellings too.
TEST(LlamaCliReplay, ModelCardAndToolReadmeLines) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const std::string gen = " -n 4 --temp 0 -t 1";
    const auto dir = std::filesystem::temp_directory_path() / ("replay_more_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string text = "'" + fixture("text/dev_eval.txt").string() + "'";
    const std::string kld = "'" + (dir / "base.kld").string() + "'";
    const std::string out = "'" + (dir / "out.gguf").string() + "'";
    const auto grammar = dir / "arithmetic.gbnf", schema = dir / "schema.json";
    std::ofstream(grammar) << "root ::= equation+\nequation ::= expression \" = \" number \"\\n\"\n"
                              "expression ::= operand (\" \"? [-+*/] \" \"? operand)*\n"
                              "operand ::= number | name | \"(\" expression \")\"\n"
                              "number ::= [0-9]{1,6}\nname ::= [a-z_] [a-z0-9_]{0,15}\n";
    std::ofstream(schema) << R"({"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3})";
    replay({
        // Qwen3's recommended sampling, spelled long, with the KV cache and flash-attention spellings
        {"gguf-run", "-m MODEL --jinja --temp 0.6 --top-k 20 --top-p 0.95 --min-p 0 --presence-penalty 0 "
                     "--cache-type-k q8_0 --cache-type-v q8_0 --flash-attn on --n-gpu-layers 99 -cnv -sys 'Be brief.'" + gen, nullptr},
        {"gguf-run", "-m MODEL --ctx-size 2048 --threads 1 --batch-size 256 --ubatch-size 256 --n-predict 4 --seed 3 "
                     "--prompt 'def f():' --temp 0 --repeat-penalty 1.0 --no-mmap --mlock", nullptr},
        {"gguf-run", "-m MODEL -ngl 999 -ctk q4_0 -ctv q4_0 -c 1024 -p 'x' --top-nsigma -1 --typical 1 --mirostat 0" + gen, nullptr},
        {"gguf-run", "-m MODEL --override-tensor 'blk\\.[0-1]\\.ffn_.*_exps\\.=CPU' -ngl 99 -p 'x'" + gen, nullptr},
        // llama-bench and llama-perplexity, as their READMEs write them
        {"gguf-run", "bench -m MODEL -p 32 -n 4 -ngl 99 -fa 1 -ctk q8_0 -ctv q8_0 -b 32 -r 1 -t 1 -o md", nullptr},
        {"gguf-run", "bench -m MODEL -pg 16,4 -d 0,16 -r 1 -t 1 -o jsonl --progress", "--progress"},
        {"gguf-run", "perplexity -m MODEL -f " + text + " -c 128 --chunks 2 -b 128 -ngl 99 -fa on -t 1 --kl-divergence-base " + kld, nullptr},
        {"gguf-run", "perplexity -m MODEL --kl-divergence-base " + kld + " --kl-divergence -t 1", nullptr},
        {"gguf-run", "perplexity -m MODEL -f " + text + " -c 128 --hellaswag -t 1", "--hellaswag"},
        // what is refused names the flag
        {"gguf-run", "-m MODEL --dry-multiplier 0.8 -p x" + gen, nullptr},
        {"gguf-run", "-m MODEL --reasoning-budget 0 -cnv" + gen, "--reasoning-budget"},
        {"gguf-run", "-m MODEL -cnv --jinja --chat-template-kwargs '{\"enable_thinking\": false}' -st -p hi" + gen, nullptr},
        {"gguf-run", "-m MODEL -nkvo -p x" + gen, "-nkvo"},
        {"gguf-run", "-m MODEL --grammar-file '" + grammar.string() + "' -p x" + gen, nullptr},
        {"gguf-run", "-m MODEL --json-schema-file '" + schema.string() + "' -p x" + gen, nullptr},
        {"gguf-run", "-m MODEL -jf '" + schema.string() + "' --grammar-file '" + grammar.string() + "' -p x" + gen, "--grammar-file"},
        {"gguf-run", "-m MODEL -ctk q5_1 -p x" + gen, "-ctk"},
        // llama-quantize
        {"gguf-quantize", "MODEL " + out + " Q8_0 1", nullptr},
        {"gguf-quantize", "--allow-requantize " + out + " '" + (dir / "q4.gguf").string() + "' Q4_K_M 1", nullptr},
        {"gguf-quantize", "--keep-split MODEL " + out + " Q8_0", "--keep-split"},
    }, fixture("gguf/tiny-moe-bf16.gguf").string());
    // an existing output is not replaced without --force (a file error: exit 1)
    const auto again = run_app("gguf-quantize", "'" + fixture("gguf/tiny-moe-bf16.gguf").string() + "' " + out + " Q4_K_M 1");
    EXPECT_EQ(again.status, 1) << again.err;
    EXPECT_NE(again.err.find("exists; pass --force to replace it"), std::string::npos) << again.err;

    // more MoE layers on the CPU than the model has blocks: clamped as llama.cpp does, and said so
    const auto many = run_app("gguf-run", "-m '" + fixture("gguf/tiny-moe-bf16.gguf").string() + "' --n-cpu-moe 20 -p x" + gen);
    EXPECT_EQ(many.status, 0) << many.err;
    EXPECT_NE(many.err.find("warning: --n-cpu-moe 20: the model has 4 blocks"), std::string::npos) << many.err;
    std::filesystem::remove_all(dir);
}

}  // namespace
