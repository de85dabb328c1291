// gguf-verify end to end on the fixture models, each check failing for real: a flipped byte fails the
// manifest, a NaN in a Q4_K scale fails the scan, a tensor requantized to Q2_K inside a Q4_K_M fails the
// recipe check, Q2_K without an imatrix fails a KLD threshold that Q8_0 passes (from a compact baseline and
// from the base model on the fly), a changed greedy continuation fails the generation check, and hostile
// files give one clear error. Models are tiny-dense quantized here; 2 chunks of 256 tokens keep it fast.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixtures.h"
#include "gguf_builder.h"
#include "gguf/file.h"
#include "quant/recipe.h"
#include "run_command.h"

namespace {

namespace fs = std::filesystem;
using testing_support::fixture;
using testing_support::run_app;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

class VerifyCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (!fs::exists(fixture("gguf/tiny-dense-bf16.gguf"))) return;
        dir_ = new fs::path(fs::temp_directory_path() / ("verify-cli-" + std::to_string(::getpid())));
        fs::create_directories(*dir_);
        const gguf::File in = gguf::File::open(fixture("gguf/tiny-dense-bf16.gguf").string());
        auto quantize = [&](const char* recipe, const std::string& out, std::vector<quant::TensorTypeOverride> ov) {
            quant::PlanInputs inputs;
            inputs.recipe = quant::find_recipe(recipe);
            inputs.options.overrides = std::move(ov);
            quant::write_quantized(in, quant::make_plan(in, inputs), nullptr, (*dir_ / out).string());
        };
        quantize("Q8_0", "q8_0.gguf", {});
        quantize("Q2_K", "q2_k.gguf", {});
        quantize("Q4_K_M", "q4_k_m.gguf", {});
        // what someone editing a published file might do: one tensor requantized, the file type left as it was
        quantize("Q4_K_M", "q4_k_m-edited.gguf", {{"blk\\.2\\.ffn_up\\.weight", gguf::GgmlType::Q2_K}});
    }
    static void TearDownTestSuite() {
        if (dir_) fs::remove_all(*dir_);
        delete dir_;
        dir_ = nullptr;
    }
    void SetUp() override {
        REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
        REQUIRE_FIXTURE("text/dev_eval.txt");
    }
    static fs::path path(const std::string& name) { return *dir_ / name; }

    // A copy of `from` with `bytes` written at tensor `tensor`'s data offset + `at`.
    static fs::path patched(const std::string& from, const std::string& to, const std::string& tensor, uint64_t at,
                            const std::vector<uint8_t>& bytes) {
        fs::copy_file(path(from), path(to), fs::copy_options::overwrite_existing);
        uint64_t offset;
        {
            const gguf::File f = gguf::File::open(path(to).string());
            offset = f.data_offset() + f.tensor(tensor).offset + at;
        }
        std::fstream io(path(to), std::ios::in | std::ios::out | std::ios::binary);
        io.seekp(static_cast<std::streamoff>(offset));
        io.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        return path(to);
    }

    static fs::path* dir_;
};
fs::path* VerifyCli::dir_ = nullptr;

TEST_F(VerifyCli, SoundFilePassesTheDefaultChecks) {
    const auto r = run_app("gguf-verify", q(path("q4_k_m.gguf")) + " --json");
    EXPECT_EQ(r.status, 0) << r.err;
    for (const char* check : {"structure", "model", "scan", "recipe"}) {
        EXPECT_NE(r.out.find("\"name\": \"" + std::string(check) + "\",\n      \"status\": \"passed\""), std::string::npos)
            << check << "\n" << r.out;
    }
    EXPECT_NE(r.out.find("\"result\": \"passed\""), std::string::npos);
    EXPECT_NE(r.err.find("PASS  recipe      Q4_K_M: 44 of 44"), std::string::npos) << r.err;
    const auto skipped = run_app("gguf-verify", q(path("q4_k_m.gguf")) + " --skip scan,model");
    EXPECT_EQ(skipped.status, 0) << skipped.err;
    EXPECT_NE(skipped.err.find("skip  scan        not asked for"), std::string::npos) << skipped.err;
    EXPECT_NE(skipped.err.find("PASS  recipe"), std::string::npos) << skipped.err;
}

TEST_F(VerifyCli, FlippedByteFailsTheManifest) {
    const fs::path manifest = path("q4.manifest");
    auto r = run_app("gguf-verify", q(path("q4_k_m.gguf")) + " --checks manifest --write-manifest " + q(manifest));
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_app("gguf-verify", q(path("q4_k_m.gguf")) + " --checks manifest --manifest " + q(manifest));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("PASS  manifest"), std::string::npos) << r.err;

    const gguf::File f = gguf::File::open(path("q4_k_m.gguf").string());
    const auto data = f.tensor_data(f.tensor("blk.3.ffn_down.weight"));
    const auto flipped = patched("q4_k_m.gguf", "flipped.gguf", "blk.3.ffn_down.weight", 1000,
                                 {static_cast<uint8_t>(data[1000] ^ 0x10)});
    r = run_app("gguf-verify", q(flipped) + " --checks manifest --manifest " + q(manifest));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("FAIL  manifest"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("blk.3.ffn_down.weight: data changed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("; 1 changed"), std::string::npos) << r.err;
    // a metadata change is named too (another file's metadata: file type and sizes differ)
    r = run_app("gguf-verify", q(path("q8_0.gguf")) + " --checks manifest --manifest " + q(manifest));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("metadata changed"), std::string::npos) << r.err;
}

TEST_F(VerifyCli, NanInAQ4KScaleFailsTheScan) {
    const gguf::File f = gguf::File::open(path("q4_k_m.gguf").string());
    const auto& t = f.tensor("blk.1.attn_q.weight");
    ASSERT_EQ(t.type, gguf::GgmlType::Q4_K);
    // block 0 of row 5: d is the block's first field (quant::BlockQ4_K); 0x7e00 is an fp16 NaN
    const uint64_t at = 5 * gguf::row_size(t.type, static_cast<uint64_t>(t.dims[0]));
    const auto bad = patched("q4_k_m.gguf", "nan.gguf", "blk.1.attn_q.weight", at, {0x00, 0x7e});
    const auto r = run_app("gguf-verify", q(bad) + " --checks scan");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("blk.1.attn_q.weight: 1 block with a NaN/Inf scale, first in row 5"), std::string::npos) << r.err;
    // the dmin field (offset 2) of the next block, row 6 (rows of 256 are one block), as an infinity
    const auto inf = patched("q4_k_m.gguf", "inf.gguf", "blk.1.attn_q.weight", at + 144 + 2, {0x00, 0x7c});
    const auto r2 = run_app("gguf-verify", q(inf) + " --checks scan");
    EXPECT_NE(r2.err.find("blk.1.attn_q.weight: 1 block with a NaN/Inf scale, first in row 6"), std::string::npos) << r2.err;
}

TEST_F(VerifyCli, ScanFindsNanZeroAndHugeValuesInFloatTensors) {
    fs::copy_file(fixture("gguf/tiny-dense-bf16.gguf"), path("bf16.gguf"), fs::copy_options::overwrite_existing);
    const gguf::File f = gguf::File::open(path("bf16.gguf").string());
    const auto& t = f.tensor("blk.0.ffn_gate.weight");
    const uint64_t row = static_cast<uint64_t>(t.dims[0]) * 2;
    const auto nan = patched("bf16.gguf", "bf16-nan.gguf", "blk.0.ffn_gate.weight", 7 * row + 10, {0xc0, 0x7f});
    auto r = run_app("gguf-verify", q(nan) + " --checks scan");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("blk.0.ffn_gate.weight: 1 NaN/Inf values, first in row 7"), std::string::npos) << r.err;
    // 0x4f00 is 2^31 in bf16: far beyond --max-abs
    const auto huge = patched("bf16.gguf", "bf16-huge.gguf", "blk.0.ffn_gate.weight", 3 * row, {0x00, 0x4f});
    r = run_app("gguf-verify", q(huge) + " --checks scan");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("blk.0.ffn_gate.weight: |values| up to 2.15e+09 in row 3"), std::string::npos) << r.err;
    const auto zero = patched("bf16.gguf", "bf16-zero.gguf", "blk.0.ffn_gate.weight", 0,
                              std::vector<uint8_t>(t.n_bytes(), 0));
    r = run_app("gguf-verify", q(zero) + " --checks scan");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("blk.0.ffn_gate.weight: all zero"), std::string::npos) << r.err;
}

TEST_F(VerifyCli, TensorRequantizedToQ2KFailsTheRecipe) {
    const auto r = run_app("gguf-verify", q(path("q4_k_m-edited.gguf")) + " --checks recipe --json");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("blk.2.ffn_up.weight: q2_K, Q4_K_M gives q4_K"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("43 of 44"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("\"differ\": 1"), std::string::npos) << r.out;
    // --recipe names the recipe: Q4_K_L would have given the embedding and output q8_0
    const auto l = run_app("gguf-verify", q(path("q4_k_m.gguf")) + " --checks recipe --recipe Q4_K_L");
    EXPECT_EQ(l.status, 1);
    EXPECT_NE(l.err.find("token_embd.weight: q4_K, Q4_K_L gives q8_0"), std::string::npos) << l.err;
}

TEST_F(VerifyCli, Q2KFailsAKldThresholdThatQ80Passes) {
    const fs::path base = path("base.bin");
    auto r = run_app("gguf-verify", "baseline " + q(fixture("gguf/tiny-dense-bf16.gguf")) + " -f " +
                                        q(fixture("text/dev_eval.txt")) + " -o " + q(base) + " -c 256 --chunks 2 -t 1 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"positions\": 254"), std::string::npos) << r.out;  // 2 chunks x 127 scored
    const std::string gate = " --checks quality --max-kld 0.05 --max-kld-p99 0.5 --min-same-top 90 --max-ppl-ratio 1.05 -t 1";
    r = run_app("gguf-verify", q(path("q8_0.gguf")) + " --baseline " + q(base) + gate);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("PASS  quality"), std::string::npos) << r.err;
    r = run_app("gguf-verify", q(path("q2_k.gguf")) + " --baseline " + q(base) + gate + " --junit " + q(path("junit.xml")));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("mean KLD is at least"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(--max-kld)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(--min-same-top)"), std::string::npos) << r.err;
    std::ifstream junit(path("junit.xml"));
    std::stringstream ss;
    ss << junit.rdbuf();
    EXPECT_NE(ss.str().find("<testcase classname=\"gguf-verify\" name=\"quality\">\n    <failure"), std::string::npos)
        << ss.str();
    EXPECT_NE(ss.str().find("failures=\"1\""), std::string::npos) << ss.str();

    // the same gate with the base model evaluated on the fly
    const std::string on_the_fly = " --base " + q(fixture("gguf/tiny-dense-bf16.gguf")) + " -f " +
                                   q(fixture("text/dev_eval.txt")) + " -c 256 --chunks 2" + gate;
    EXPECT_EQ(run_app("gguf-verify", q(path("q8_0.gguf")) + on_the_fly).status, 0);
    r = run_app("gguf-verify", q(path("q2_k.gguf")) + on_the_fly);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("exceeds 0.05 (--max-kld)"), std::string::npos) << r.err;

    // a threshold between the compact baseline's bounds is not passed: pure top-8 leaves them far apart
    r = run_app("gguf-verify", "baseline " + q(fixture("gguf/tiny-dense-bf16.gguf")) + " -f " +
                                   q(fixture("text/dev_eval.txt")) + " -o " + q(path("top8.bin")) +
                                   " -c 256 --chunks 1 -t 1 --top-k 8 --max-rest 1");
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_app("gguf-verify", q(path("q8_0.gguf")) + " --checks quality -t 1 --max-kld 0.05 --baseline " + q(path("top8.bin")));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("the compact baseline cannot decide"), std::string::npos) << r.err;
}

TEST_F(VerifyCli, GenerationMatchesItsOwnContinuationsAndFailsOnAnother) {
    const fs::path prompts = path("prompts.tsv"), expected = path("expected.tsv");
    std::ofstream(prompts) << "# prompts\ndef fibonacci(n):\\n\t\nimport \t\n";
    auto r = run_app("gguf-verify", q(path("q8_0.gguf")) + " --checks generation --generate " + q(prompts) +
                                        " --write-generations " + q(expected) + " --gen-tokens 12 -t 1");
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_app("gguf-verify", q(path("q8_0.gguf")) + " --checks generation -t 1 --generate " + q(expected));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("2 of 2 greedy continuations as expected"), std::string::npos) << r.err;
    std::ofstream(path("wrong.tsv")) << "def fibonacci(n):\\n\tclass Wrong:\n";
    r = run_app("gguf-verify", q(path("q8_0.gguf")) + " --checks generation -t 1 --generate " + q(path("wrong.tsv")));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("wrong.tsv:1: \"def fibonacci(n):\\n\" continued as"), std::string::npos) << r.err;
}

TEST_F(VerifyCli, HostileFilesGiveOneClearError) {
    std::ofstream(path("empty.gguf")).close();
    std::ofstream(path("text.gguf")) << "not a gguf at all";
    fs::copy_file(path("q8_0.gguf"), path("truncated.gguf"), fs::copy_options::overwrite_existing);
    fs::resize_file(path("truncated.gguf"), fs::file_size(path("truncated.gguf")) / 2);
    for (const char* name : {"empty.gguf", "text.gguf", "truncated.gguf", "missing.gguf"}) {
        const auto r = run_app("gguf-verify", q(path(name)));
        EXPECT_EQ(r.status, 1) << name;
        EXPECT_NE(r.err.find("FAIL  structure   not a valid GGUF file\n          " + path(name).string() + ": "),
                  std::string::npos)
            << r.err;
        EXPECT_EQ(r.err.find("PASS"), std::string::npos) << r.err;
    }
    // valid to the reader, but tensors with a zero dimension: named by the structure check, and no check
    // divides by the missing rows
    testing_support::GgufBuilder b;
    b.header(2, 2).kv_str("general.architecture", "llama").kv_u32("general.file_type", 15);
    b.tensor("blk.0.attn_q.weight", {256, 0}, 12, 0).tensor("blk.0.ffn_up.weight", {0, 4}, 0, 0).pad().zeros(64);
    std::ofstream(path("zero-dim.gguf"), std::ios::binary)
        .write(reinterpret_cast<const char*>(b.bytes.data()), static_cast<std::streamsize>(b.bytes.size()));
    const auto z = run_app("gguf-verify", q(path("zero-dim.gguf")));
    EXPECT_EQ(z.status, 1) << z.err;
    EXPECT_NE(z.err.find("blk.0.attn_q.weight: no elements (shape [256, 0])"), std::string::npos) << z.err;
    EXPECT_NE(z.err.find("PASS  scan"), std::string::npos) << z.err;

    // a damaged manifest or baseline fails its check with the reason, the others still run
    std::ofstream(path("bad.manifest")) << "# gguf-verify manifest 1\nmetadata xyz\n";
    auto r = run_app("gguf-verify", q(path("q8_0.gguf")) + " --manifest " + q(path("bad.manifest")));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("bad.manifest:2: expected 16 lower-case hex digits"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("PASS  scan"), std::string::npos) << r.err;
    r = run_app("gguf-verify", q(path("q8_0.gguf")) + " --checks quality --baseline " + q(path("text.gguf")));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("not a compact baseline"), std::string::npos) << r.err;
}

// Outputs are checked before any work: never an input, an existing one replaced only with --force (its mode
// kept), the JUnit report replaced; nothing else is left in the directory.
TEST_F(VerifyCli, OutputsNeverReplaceInputsOrExistingFiles) {
    const fs::path model = path("q8_0.gguf");
    const auto size = fs::file_size(model);
    auto r = run_app("gguf-verify", q(model) + " --checks manifest --write-manifest " + q(model));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("error: "), std::string::npos) << r.err;
    EXPECT_EQ(fs::file_size(model), size);
    const fs::path text = path("text-copy.txt");  // a copy: the fixture must survive a failing check
    fs::copy_file(fixture("text/dev_eval.txt"), text, fs::copy_options::overwrite_existing);
    r = run_app("gguf-verify", "baseline " + q(model) + " -f " + q(text) + " -o " + q(text) + " --force -c 256 --chunks 1 -t 1");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(fs::file_size(text), fs::file_size(fixture("text/dev_eval.txt")));
    EXPECT_EQ(r.err.find("base PPL"), std::string::npos) << "the model ran before the output was refused\n" << r.err;

    const fs::path dir = path("outputs");
    fs::create_directories(dir);
    const fs::path manifest = dir / "m.manifest";
    std::ofstream(manifest) << "keep me\n";
    fs::permissions(manifest, fs::perms::owner_read | fs::perms::owner_write);
    r = run_app("gguf-verify", q(model) + " --checks manifest --write-manifest " + q(manifest));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
    std::ifstream kept(manifest);
    std::string line;
    std::getline(kept, line);
    EXPECT_EQ(line, "keep me");
    r = run_app("gguf-verify", q(model) + " --checks manifest --write-manifest " + q(manifest) + " --force --junit " +
                                   q(dir / "v.xml"));
    EXPECT_EQ(r.status, 0) << r.err;
    std::ifstream replaced(manifest);
    std::getline(replaced, line);
    EXPECT_EQ(line, "# gguf-verify manifest 1");
    EXPECT_EQ(fs::status(manifest).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
    // the report is rewritten without --force
    r = run_app("gguf-verify", q(model) + " --checks recipe --junit " + q(dir / "v.xml"));
    EXPECT_EQ(r.status, 0) << r.err;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"m.manifest", "v.xml"}));
}

TEST_F(VerifyCli, UsageErrorsExitTwo) {
    const std::string m = q(path("q8_0.gguf"));
    for (const std::string& args : {std::string(""), m + " --checks scan,bogus", m + " --max-kld 0.1",
                                    m + " --base x.gguf", m + " --no-such-flag", m + " --recipe Q9_K", m + " -ngl lots", std::string("baseline ") + m,
                                    m + " --max-kld nan --baseline x.bin", m + " --min-same-top nan --baseline x.bin",
                                    m + " --max-ppl-ratio -1 --baseline x.bin", m + " --min-same-top 101 --baseline x.bin",
                                    m + " --skip structure,model,scan,recipe,manifest,quality,generation",
                                    m + " extra.gguf", m + " -m other.gguf", m + " --max-kld abc", m + " --min-same-top 101",
                                    m + " --vram-budget 8G", m + " --fit maybe", m + " -fitt -5"}) {
        const auto r = run_app("gguf-verify", args);
        EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    }
    // the runtime's placement flags are accepted as gguf-run takes them
    auto r = run_app("gguf-verify", m + " -ngl 0 --cpu-moe -ot 'exps=CPU' -t 1 --checks model");
    EXPECT_EQ(r.status, 0) << r.err;
    // -m as in llama.cpp's tools, and main's memory options (--fit off plans nothing, --prefault reads the weights)
    r = run_app("gguf-verify", "-m " + m + " --fit off -fitt 512 --prefault -t 1 --checks model");
    EXPECT_EQ(r.status, 0) << r.err;
}

}  // namespace
