// gguf-run from the outside: exit statuses (0 ok, 1 bad input, 2 usage), one-line errors, and each
// mode end to end on the tiny fixture models.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "quant/imatrix.h"
#include "quant/imatrix_data.h"
#include "run_command.h"
#include "tiny_model.h"

namespace {

using testing_support::fixture;
using testing_support::run_app;

std::string dense() { return "-m '" + fixture("gguf/tiny-dense-bf16.gguf").string() + "' -t 1"; }
std::string moe() { return "-m '" + fixture("gguf/tiny-moe-bf16.gguf").string() + "' -t 1"; }

void expect_error(const testing_support::CommandResult& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.err;
    // one "error: ..." line, after whatever start-up report came before the failure
    const size_t at = r.err.rfind("error: ", 0) == 0 ? 0 : r.err.find("\nerror: ");
    ASSERT_NE(at, std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle, at), std::string::npos) << r.err;
}

TEST(RunCli, UsageErrorsExit2) {
    EXPECT_EQ(run_app("gguf-run", "").status, 2);
    expect_error(run_app("gguf-run", "--bogus-flag"), 2, "bogus");
    expect_error(run_app("gguf-run", "frobnicate -m x"), 2, "unknown mode");
    expect_error(run_app("gguf-run", "-p hello"), 2, "no model");
    expect_error(run_app("gguf-run", "-m x.gguf -ngl lots -p hi"), 2, "-ngl");
    expect_error(run_app("gguf-run", "perplexity -m x.gguf --kl-divergence"), 2, "--kl-divergence-base");
    expect_error(run_app("gguf-run", "bench -m x.gguf -r 0"), 2, "-r");
    expect_error(run_app("gguf-run", "bench -p 8"), 2, "no model");
}

TEST(RunCli, HelpListsPlacementOptions) {
    const auto r = run_app("gguf-run", "--help");
    EXPECT_EQ(r.status, 0);
    for (const char* opt : {"--n-gpu-layers", "--n-cpu-moe", "--cpu-moe", "--override-tensor", "--cache-type-k", "bench"}) {
        EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
    }
}

TEST(RunCli, BadInputExits1) {
    expect_error(run_app("gguf-run", "-m /nonexistent/model.gguf -p hi"), 1, "/nonexistent/model.gguf");
    const auto dir = std::filesystem::temp_directory_path();
    const auto missing = dir / ("gguf_run_cli_missing_" + std::to_string(::getpid()) + ".gguf");
    testing_support::write_tiny_model(missing, testing_support::dropping("blk.0.ffn_down.weight"));
    expect_error(run_app("gguf-run", "-m '" + missing.string() + "' -p hi"), 1, "blk.0.ffn_down.weight is missing");
    testing_support::write_tiny_model(missing, testing_support::reshaping("blk.0.attn_q.weight"));
    expect_error(run_app("gguf-run", "-m '" + missing.string() + "' -p hi"), 1, "blk.0.attn_q.weight has shape");
    std::filesystem::remove(missing);
}

TEST(RunCli, BadInputOnARealModelExits1) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    expect_error(run_app("gguf-run", dense() + " -c 8 -p 'def a_rather_long_function_name(first, second):' -n 4"), 1,
                 "the context holds 8");
    expect_error(run_app("gguf-run", dense() + " -ctk q5_K -p hi"), 2, "-ctk: KV cache type 'q5_K' is not one of");  // usage: before loading
    const std::string model = "-m '" + fixture("gguf/tiny-dense-bf16.gguf").string() + "'";
    expect_error(run_app("gguf-run", model + " -t 100000 -p hi"), 2, "-t must be between 1 and 512");
    expect_error(run_app("gguf-run", model + " -c 2000000000 -p hi"), 1, "of memory; use a smaller -c");
    expect_error(run_app("gguf-run", dense() + " -ot 'exps=CUDA0' -p hi"), 1, "CUDA0 is not available (");
    expect_error(run_app("gguf-run", dense() + " -ot '([=CPU' -p hi"), 1, "invalid regular expression");
    expect_error(run_app("gguf-run", "perplexity " + dense() + " -f /nonexistent.txt"), 1, "/nonexistent.txt");
}

TEST(RunCli, GreedyGenerationIsDeterministic) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const std::string cmd = dense() + " -p 'def add(a, b):' -n 12 --temp 0 --ignore-eos --json";
    const auto a = run_app("gguf-run", cmd), b = run_app("gguf-run", cmd);
    ASSERT_EQ(a.status, 0) << a.err;
    const auto text = [](const std::string& json) { return json.substr(0, json.find("\"prompt_tokens\"")); };
    EXPECT_EQ(text(a.out), text(b.out));
    EXPECT_NE(a.out.find("\"generated_tokens\": 12"), std::string::npos) << a.out;
    // the plan and memory breakdown are printed at start
    EXPECT_NE(a.err.find("placement: -ngl 0"), std::string::npos) << a.err;
    EXPECT_NE(a.err.find("kv cache"), std::string::npos) << a.err;
}

TEST(RunCli, PrefaultAndMlockGiveTheSameText) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const std::string cmd = moe() + " -p 'def add(a, b):' -n 8 --temp 0 --ignore-eos --json";
    const auto a = run_app("gguf-run", cmd), b = run_app("gguf-run", cmd + " --prefault --mlock");
    ASSERT_EQ(a.status, 0) << a.err;
    ASSERT_EQ(b.status, 0) << b.err;
    const auto text = [](const std::string& json) { return json.substr(0, json.find("\"prompt_tokens\"")); };
    EXPECT_EQ(text(a.out), text(b.out));
}

TEST(RunCli, PlacementFlagsOnACpuBuild) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const auto r = run_app("gguf-run", moe() + " -ngl 99 --n-cpu-moe 2 -ot 'attn_q=CPU' -p 'x = ' -n 2 --temp 0");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("-ngl 99: no GPU offload ("), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("); running on the CPU"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--n-cpu-moe"), std::string::npos) << r.err;
    // the regex finds attn_q and attn_q_norm in each of the 4 blocks
    EXPECT_NE(r.err.find("-ot attn_q=CPU: 8 tensors"), std::string::npos) << r.err;
}

TEST(RunCli, FitFlags) {
    expect_error(run_app("gguf-run", "-m x.gguf --fit maybe -p hi"), 2, "--fit expects on or off");
    expect_error(run_app("gguf-run", "-m x.gguf --vram-budget 8G -p hi"), 2, "add --fit");
    expect_error(run_app("gguf-run", "-m x.gguf --fit --vram-budget 8Q -p hi"), 2, "--vram-budget");
    expect_error(run_app("gguf-run", "-m x.gguf --fit --fit-target -5 -p hi"), 2, "--fit-target");
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const auto r = run_app("gguf-run", moe() + " --fit --vram-budget 8G -p 'x = ' -n 2 --temp 0");
    if (r.status == 0) {
        // a machine with a GPU: the whole tiny model fits
        EXPECT_NE(r.err.find("fit: the whole model fits"), std::string::npos) << r.err;
    } else {
        expect_error(r, 1, "--fit: no GPU is available");
    }
    expect_error(run_app("gguf-run", moe() + " --fit -ngl 2 -p hi"), 1, "");
}

TEST(RunCli, ChatReadsStdin) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const auto r = run_app("gguf-run", "chat " + moe() + " -n 6 --temp 0 --ignore-eos < /dev/null");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("chat template: chatml"), std::string::npos) << r.err;
    const auto input = std::filesystem::temp_directory_path() / ("gguf_run_chat_" + std::to_string(::getpid()));
    std::ofstream(input) << "hello\nagain\n";
    const auto two = run_app("gguf-run", "chat " + moe() + " -n 6 --temp 0 --ignore-eos < '" + input.string() + "'");
    std::filesystem::remove(input);
    EXPECT_EQ(two.status, 0) << two.err;
    EXPECT_NE(two.err.find("generation: 12 tokens"), std::string::npos) << two.err;
}

// Slash commands go to gguf-run, not the model; --json gives one object per reply.
TEST(RunCli, ChatSlashCommandsAndJson) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const auto input = std::filesystem::temp_directory_path() / ("gguf_run_chat_cmd_" + std::to_string(::getpid()));
    std::ofstream(input) << "hello\n/bogus\n/reset\n//slash\n/exit\nnever sent\n";
    const auto r = run_app("gguf-run", "chat " + moe() + " -n 3 --temp 0 --ignore-eos --json < '" + input.string() + "'");
    std::filesystem::remove(input);
    ASSERT_EQ(r.status, 0) << r.err;
    size_t replies = 0;
    for (size_t at = r.out.find("{\"role\":\"assistant\""); at != std::string::npos;
         at = r.out.find("{\"role\":\"assistant\"", at + 1)) {
        ++replies;
    }
    EXPECT_EQ(replies, 2u) << r.out;  // "hello" and "/slash"; "never sent" comes after /exit
    EXPECT_NE(r.out.find("\"generated_tokens\":3"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("unknown command /bogus"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("[conversation cleared]"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("generation: 6 tokens"), std::string::npos) << r.err;
}

TEST(RunCli, DevicesListsTheCpuAndExplainsMissingGpus) {
    const auto r = run_app("gguf-run", "devices --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"simd\""), std::string::npos) << r.out;
    // either GPUs are listed, or the reason there are none is given
    EXPECT_TRUE(r.out.find("\"device\": \"CUDA0\"") != std::string::npos ||
                r.out.find("\"no_gpu_reason\"") != std::string::npos)
        << r.out;
    EXPECT_EQ(run_app("gguf-run", "devices --bogus").status, 2);
}

TEST(RunCli, BenchJson) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const auto r = run_app("gguf-run", "bench " + dense() + " -p 32 -n 8 -r 1 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"test\": \"pp32\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"test\": \"tg8\""), std::string::npos) << r.out;
    // the backend column says where the weights are: all on the CPU here
    EXPECT_NE(r.out.find("\"backend\": \"CPU\""), std::string::npos) << r.out;
}

// llama-bench's lists: every combination of -p, -n, -pg and -d per model and thread count, in each
// output format.
TEST(RunCli, BenchListsAndFormats) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    const std::string m = "-m '" + fixture("gguf/tiny-dense-bf16.gguf").string() + "'";
    const auto md = run_app("gguf-run", "bench " + m + " " + m + " -p 8,16 -n 2 -pg 8,2 -d 0,4 -t 1 -r 1");
    ASSERT_EQ(md.status, 0) << md.err;
    size_t rows = 0;
    for (size_t at = md.out.find("| llama bf16"); at != std::string::npos; at = md.out.find("| llama bf16", at + 1)) ++rows;
    EXPECT_EQ(rows, 16u) << md.out;  // 2 models x 2 depths x (2 pp + 1 tg + 1 pp+tg)
    for (const char* test : {" pp8 ", " pp16 ", " tg2 ", " pp8+tg2 ", " pp16 @ d4 ", " pp8+tg2 @ d4 "}) {
        EXPECT_NE(md.out.find(test), std::string::npos) << test << "\n" << md.out;
    }
    EXPECT_NE(md.out.find("| CPU "), std::string::npos) << md.out;  // the devices holding weights, from the plan

    const auto jsonl = run_app("gguf-run", "bench " + m + " -p 8 -n 0 -t 1 -r 2 -o jsonl");
    ASSERT_EQ(jsonl.status, 0) << jsonl.err;
    EXPECT_EQ(jsonl.out.rfind("{\"model\":", 0), 0u) << jsonl.out;
    EXPECT_NE(jsonl.out.find("\"samples_ts\":["), std::string::npos) << jsonl.out;
    const auto csv = run_app("gguf-run", "bench " + m + " -p 8 -n 0 -t 1 -r 1 -o csv");
    ASSERT_EQ(csv.status, 0) << csv.err;
    EXPECT_EQ(csv.out.rfind("model,model_type,size_bytes", 0), 0u) << csv.out;
    EXPECT_NE(csv.out.find(",8,0,0,\"pp8\",1,"), std::string::npos) << csv.out;
    expect_error(run_app("gguf-run", "bench " + m + " -pg 8"), 2, "-pg");
    expect_error(run_app("gguf-run", "bench " + m + " -p 0 -n 0"), 2, "nothing to measure");
    expect_error(run_app("gguf-run", "bench " + m + " -t 1,x"), 2, "-t");
}

TEST(RunCli, PerplexityAndKlDivergence) {
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    const auto base = std::filesystem::temp_directory_path() / ("gguf_run_cli_kld_" + std::to_string(::getpid()));
    const std::string text = "-f '" + fixture("text/dev_eval.txt").string() + "' -c 256 --chunks 2";
    const auto p = run_app("gguf-run", "perplexity " + moe() + " " + text + " --kl-divergence-base '" + base.string() + "'");
    ASSERT_EQ(p.status, 0) << p.err;
    EXPECT_NE(p.out.find("Final estimate: PPL = "), std::string::npos) << p.out;
    const auto k = run_app("gguf-run", "perplexity " + moe() + " -c 256 -ctk q8_0 -ctv q8_0 --kl-divergence-base '" +
                                           base.string() + "' --kl-divergence --json");
    ASSERT_EQ(k.status, 0) << k.err;
    EXPECT_NE(k.out.find("\"mean_kld\""), std::string::npos) << k.out;
    EXPECT_NE(k.out.find("\"positions\": 254"), std::string::npos) << k.out;
    std::filesystem::remove(base);
}

}  // namespace

namespace {

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

TEST(RunCli, ImatrixWritesBothFormatsAndCombinesFiles) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    REQUIRE_FIXTURE("text/calibration.txt");
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("run-cli-imatrix-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string text = quoted(fixture("text/calibration.txt"));
    const auto a = run_app("gguf-run", "imatrix " + dense() + " -f " + text + " -c 64 --chunks 2 -o " + quoted(dir / "a.gguf"));
    ASSERT_EQ(a.status, 0) << a.err;
    EXPECT_NE(a.out.find("42 entries, 2 chunks of 64 tokens"), std::string::npos) << a.out;
    const quant::ImatrixData da = quant::ImatrixData::load((dir / "a.gguf").string());
    EXPECT_EQ(da.entries.size(), 42u);  // 6 layers x 7 matrices, no output head
    EXPECT_EQ(da.chunk_count, 2u);
    EXPECT_EQ(da.chunk_size, 64u);
    EXPECT_EQ(da.entries.at("blk.3.ffn_down.weight").counts, (std::vector<int64_t>{128}));
    EXPECT_EQ(da.entries.at("blk.3.ffn_down.weight").sums.size(), 768u);
    ASSERT_EQ(da.datasets.size(), 1u);
    EXPECT_EQ(da.datasets[0], fixture("text/calibration.txt").string());

    // legacy .dat by its suffix; the quantizer reads the same means from both
    const auto b = run_app("gguf-run", "imatrix " + dense() + " -f " + text + " -c 64 --chunks 2 -o " + quoted(dir / "b.dat"));
    ASSERT_EQ(b.status, 0) << b.err;
    const quant::Imatrix ia = quant::Imatrix::load((dir / "a.gguf").string());
    const quant::Imatrix ib = quant::Imatrix::load((dir / "b.dat").string());
    EXPECT_TRUE(ib.is_legacy());
    const auto& va = ia.find("blk.3.ffn_down.weight")->values;
    const auto& vb = ib.find("blk.3.ffn_down.weight")->values;
    ASSERT_EQ(va.size(), vb.size());
    for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], 1e-6f * va[i]) << i;

    // combining (no model needed): sums and counts add, and so do the chunks
    const auto c = run_app("gguf-run", "imatrix --in-file " + quoted(dir / "a.gguf") + " --in-file " + quoted(dir / "b.dat") +
                                           " -c 64 -o " + quoted(dir / "c.gguf"));
    ASSERT_EQ(c.status, 0) << c.err;
    const quant::ImatrixData dc = quant::ImatrixData::load((dir / "c.gguf").string());
    EXPECT_EQ(dc.chunk_count, 4u);
    EXPECT_EQ(dc.entries.at("blk.3.ffn_down.weight").counts, (std::vector<int64_t>{256}));
    EXPECT_NEAR(dc.entries.at("blk.3.ffn_down.weight").sums[5], 2 * da.entries.at("blk.3.ffn_down.weight").sums[5],
                1e-5 * da.entries.at("blk.3.ffn_down.weight").sums[5]);

    expect_error(run_app("gguf-run", "imatrix " + dense()), 2, "no text given");
    expect_error(run_app("gguf-run", "imatrix --in-file x.gguf --output-format bin"), 2, "--output-format");
    expect_error(run_app("gguf-run", "imatrix --in-file " + quoted(dir / "a.gguf") + " -o " + quoted(dir / "a.gguf")), 1,
                 "a.gguf");
    expect_error(run_app("gguf-run", "imatrix --in-file " + text + " -o " + quoted(dir / "d.gguf")), 1, "calibration.txt");
    EXPECT_FALSE(fs::exists(dir / "d.gguf"));
    fs::remove_all(dir);
}

}  // namespace
