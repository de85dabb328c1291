// Every app over the hostile corpus and over bad flags: each run ends with exit 0 (a file the
// checks cannot tell from a valid one), 1 (bad input) or 2 (bad usage) and one "error: ..." line
// naming the defect; never a signal, a hang, a result of nan, or an output left behind.
#include <gtest/gtest.h>

#include <algorithm>

#include "hostile_corpus.h"
#include "run_command.h"

namespace {

namespace fs = std::filesystem;

using testing_support::CommandResult;
using testing_support::run_app;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// exactly one error line, containing `needle`, and the status asked for
void expect_error(const CommandResult& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.err;
    size_t errors = 0, at = 0;
    std::string line;
    for (size_t pos = 0; pos < r.err.size();) {
        const size_t nl = r.err.find('\n', pos);
        const std::string l = r.err.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (l.rfind("error: ", 0) == 0) {
            ++errors;
            line = l;
            at = pos;
        }
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
    EXPECT_EQ(errors, 1u) << r.err;
    EXPECT_NE(line.find(needle), std::string::npos) << "expected '" << needle << "' in: " << line;
    EXPECT_LT(line.size(), 400u) << line;
    (void)at;
    EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
}

// a usage error is reported before the model is read: no start-up report precedes it
void expect_usage_error(const CommandResult& r, const std::string& needle) {
    expect_error(r, 2, needle);
    EXPECT_EQ(r.err.find("model:"), std::string::npos) << r.err;
}

class Hostile : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new hostile::TempDir("corpus");
        corpus_ = new hostile::Corpus(dir_->path);
    }
    static void TearDownTestSuite() {
        delete corpus_;
        delete dir_;
    }
    static const hostile::Corpus& c() { return *corpus_; }
    static fs::path out(const std::string& name) { return dir_->path / name; }
    static std::string run_args(const fs::path& model) { return "-m " + q(model) + " -t 1 -p 'def f(x):' -n 4 --temp 0"; }

    static hostile::TempDir* dir_;
    static hostile::Corpus* corpus_;
};
hostile::TempDir* Hostile::dir_ = nullptr;
hostile::Corpus* Hostile::corpus_ = nullptr;

TEST_F(Hostile, NanScaleIsNamedByEveryTool) {
    // generation stops at the first non-finite logits and names the block and the tensor
    expect_error(run_app("gguf-run", run_args(c().nan_scale)), 1,
                 "first appears after blk.2 feed-forward at position 0: tensor blk.2.ffn_down.weight holds NaN at row 0");
    // perplexity never prints nan
    const fs::path text = out("text.txt");
    std::ofstream(text) << std::string(4000, 'x');
    expect_error(run_app("gguf-run", "perplexity -m " + q(c().nan_scale) + " -t 1 -c 64 --chunks 1 -f " + q(text)), 1,
                 "blk.2.ffn_down.weight holds NaN");
    // the KL-divergence base file may never be the model it is computed from
    const fs::path copy = out("model-copy.gguf");
    fs::copy_file(hostile::default_model(), copy);
    expect_error(run_app("gguf-run", "perplexity -m " + q(copy) + " -t 1 -c 64 --chunks 1 -f " + q(text) +
                                         " --kl-divergence-base " + q(copy)),
                 1, "is an input of this job");
    EXPECT_EQ(fs::file_size(copy), fs::file_size(hostile::default_model()));
    fs::remove(copy);
    // quantize checks the tensors it copies, not only those it converts
    expect_error(run_app("gguf-quantize", q(c().nan_scale) + " " + q(out("q.gguf")) + " Q8_0 1"), 1,
                 "tensor 'blk.2.ffn_down.weight' as q8_0: NaN at row 0");
    EXPECT_FALSE(fs::exists(out("q.gguf")));
}

TEST_F(Hostile, InfScaleIsNamed) {
    expect_error(run_app("gguf-run", run_args(c().inf_weight)), 1, "blk.3.ffn_down.weight holds -inf at row 0, column 96");
    expect_error(run_app("gguf-quantize", q(c().inf_weight) + " " + q(out("q.gguf")) + " Q8_0 1"), 1,
                 "tensor 'blk.3.ffn_down.weight' as q8_0: -inf at row 0, column 96");
}

TEST_F(Hostile, NanNormFailsAtLoad) {
    expect_error(run_app("gguf-run", run_args(c().nan_norm)), 1, "tensor blk.1.attn_norm.weight holds NaN at index 7");
    expect_error(run_app("gguf-quantize", q(c().nan_norm) + " " + q(out("q.gguf")) + " Q8_0 1"), 1,
                 "tensor 'blk.1.attn_norm.weight' as f32: NaN at row 0, column 7");
    EXPECT_FALSE(fs::exists(out("q.gguf")));
}

TEST_F(Hostile, LyingHyperParameters) {
    expect_error(run_app("gguf-run", run_args(c().block_count_low)), 1,
                 "llama.block_count 3 disagrees with the tensors, which go up to block 5");
    expect_error(run_app("gguf-run", run_args(c().block_count_high)), 1, "llama.block_count 1000000 disagrees");
    expect_error(run_app("gguf-run", run_args(c().eps_negative)), 1, "layer_norm_rms_epsilon = -1");
    expect_error(run_app("gguf-run", run_args(c().rope_inf)), 1, "llama.rope.freq_base = inf");
}

TEST_F(Hostile, ZeroDimensions) {
    expect_error(run_app("gguf-quantize", q(c().zero_dim) + " " + q(out("q.gguf")) + " Q4_K_M"), 1,
                 "tensor 'blk.0.ffn_up.weight' has shape [0, 32]: a zero dimension");
    expect_error(run_app("gguf-quantize", "--dry-run " + q(c().zero_dim) + " Q4_K_M"), 1, "a zero dimension");
    EXPECT_EQ(run_app("gguf-inspect", q(c().zero_dim)).status, 0);  // valid GGUF: nothing to refuse
    EXPECT_EQ(run_app("gguf-run", run_args(c().zero_dim)).status, 1);
    EXPECT_FALSE(fs::exists(out("q.gguf")));
}

TEST_F(Hostile, BrokenFilesAreOneLineErrors) {
    for (const fs::path& f : {c().huge_dims, c().truncated}) {
        SCOPED_TRACE(f.string());
        expect_error(run_app("gguf-inspect", q(f)), 1, f.string());
        expect_error(run_app("gguf-quantize", q(f) + " " + q(out("q.gguf")) + " Q4_K_M"), 1, f.string());
        expect_error(run_app("gguf-run", run_args(f)), 1, f.string());
        EXPECT_FALSE(fs::exists(out("q.gguf")));
    }
}

TEST_F(Hostile, JsonStaysValidUtf8) {
    const auto r = run_app("gguf-inspect", q(c().bad_utf8_name) + " --tensors . --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.find('\xff'), std::string::npos);
    EXPECT_NE(r.out.find("w\xEF\xBF\xBD\xEF\xBF\xBD.weight"), std::string::npos) << r.out;  // two U+FFFD
}

TEST_F(Hostile, BadFlagsFailBeforeLoading) {
    const std::string m = "-m " + q(hostile::default_model()) + " -p hi ";
    expect_usage_error(run_app("gguf-run", m + "--temp nan"), "--temp: expected a number, got 'nan'");
    expect_usage_error(run_app("gguf-run", m + "--temp inf"), "--temp: expected a number, got 'inf'");
    expect_usage_error(run_app("gguf-run", m + "--top-p nan"), "top-p");
    expect_usage_error(run_app("gguf-run", m + "--repeat-penalty nan"), "--repeat-penalty: expected a number");
    expect_usage_error(run_app("gguf-run", m + "-n -7"), "-n");
    expect_usage_error(run_app("gguf-run", m + "-t 100000"), "-t must be between 1 and 512");
    expect_usage_error(run_app("gguf-run", m + "-t -3"), "-t must be between 1 and 512");
    expect_usage_error(run_app("gguf-run", m + "-c -5"), "-c: -5 is out of range");
    expect_usage_error(run_app("gguf-run", "bench -m " + q(hostile::default_model()) + " -c 64 -p 128 -n 0 -r 1"),
                       "(-c 64) is smaller than the 128 tokens of the longest test");
    const fs::path empty = out("empty.txt");
    std::ofstream{empty};
    const std::string p = "perplexity -m " + q(hostile::default_model()) + " -f " + q(empty) + " ";
    expect_usage_error(run_app("gguf-run", p + "--chunks 0"), "--chunks");
    expect_usage_error(run_app("gguf-run", p + "-c 2"), "-c must be at least 4");
    const auto kld = run_app("gguf-run", "perplexity -m " + q(hostile::default_model()) +
                                             " --kl-divergence --kl-divergence-base /nonexistent.kld");
    expect_error(kld, 1, "/nonexistent.kld: cannot open");
    EXPECT_EQ(kld.err.find("model:"), std::string::npos) << kld.err;
    // a text too short for one chunk is found before the model and its context are allocated
    const auto r = run_app("gguf-run", p + "-c 512");
    expect_error(r, 1, "0 bytes of text cannot fill one chunk of 512 tokens");
    EXPECT_EQ(r.err.find("model:"), std::string::npos) << r.err;

    const std::string in = q(hostile::default_model()) + " " + q(out("q.gguf")) + " Q8_0 ";
    expect_usage_error(run_app("gguf-quantize", in + "99999"), "THREADS must be between 1 and 512");
    expect_usage_error(run_app("gguf-quantize", in + "0"), "THREADS must be between 1 and 512");
    expect_usage_error(run_app("gguf-quantize", in + "123456789012"), "THREADS must be between 1 and 512");
    EXPECT_FALSE(fs::exists(out("q.gguf")));
}

TEST_F(Hostile, PlacementAndContextLimits) {
    const std::string m = "-m " + q(hostile::default_model()) + " -t 1 -p hi -n 1 --temp 0 ";
    // the layer limit is a number, clamped to the model with a warning (llama.cpp takes any N): no
    // regex of two billion alternatives
    const auto r = run_app("gguf-run", m + "--n-cpu-moe 2147483647");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("warning: --n-cpu-moe 2147483647: the model has 6 blocks; the experts of all 6 stay on the CPU"),
              std::string::npos) << r.err;
    EXPECT_LT(r.err.size(), 4000u);
    const auto seven = run_app("gguf-run", m + "--n-cpu-moe 7");
    EXPECT_EQ(seven.status, 0) << seven.err;
    EXPECT_NE(seven.err.find("the model has 6 blocks"), std::string::npos) << seven.err;
    const auto six = run_app("gguf-run", m + "--n-cpu-moe 6");
    EXPECT_EQ(six.status, 0) << six.err;
    EXPECT_EQ(six.err.find("the model has 6 blocks"), std::string::npos) << six.err;
    // a context the machine cannot hold fails before allocating; one past training warns
    expect_error(run_app("gguf-run", m + "-c 2000000000"), 1, "of memory; use a smaller -c");
    const auto warn = run_app("gguf-run", m + "-c 2048");
    EXPECT_EQ(warn.status, 0) << warn.err;
    EXPECT_NE(warn.err.find("warning: the context of 2048 tokens exceeds the 1024 the model was trained on"),
              std::string::npos) << warn.err;
    // -ngl on a machine without a GPU says why (the build's or the driver's reason), and runs on the CPU
    const auto ngl = run_app("gguf-run", m + "-ngl 99");
    EXPECT_EQ(ngl.status, 0) << ngl.err;
    if (ngl.err.find("CUDA0:") == std::string::npos) {
        EXPECT_NE(ngl.err.find("-ngl 99: no GPU offload ("), std::string::npos) << ngl.err;
        EXPECT_NE(ngl.err.find("); running on the CPU"), std::string::npos) << ngl.err;
        EXPECT_EQ(ngl.err.find("this build has no CUDA backend"), std::string::npos) << ngl.err;
    }
}

TEST_F(Hostile, ExistingOutputsNeedForce) {
    const fs::path target = out("existing.gguf");
    std::ofstream(target) << "precious";
    ::chmod(target.c_str(), 0600);
    const std::string args = q(hostile::default_model()) + " " + q(target) + " Q8_0 1";
    expect_error(run_app("gguf-quantize", args), 1, "exists; pass --force to replace it");
    EXPECT_EQ(fs::file_size(target), 8u);
    // --force replaces it and keeps its mode
    ASSERT_EQ(run_app("gguf-quantize", "--force " + args).status, 0);
    EXPECT_GT(fs::file_size(target), 1000000u);
    struct stat st {};
    ASSERT_EQ(::stat(target.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // a symlink output stays a symlink, now to the new file
    const fs::path real = out("real.gguf"), link = out("link.gguf");
    std::ofstream(real) << "old";
    fs::create_symlink(real, link);
    ASSERT_EQ(run_app("gguf-quantize", "--force " + q(hostile::default_model()) + " " + q(link) + " Q8_0 1").status, 0);
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_GT(fs::file_size(real), 1000000u);
    // a directory output fails at once, before any tensor is quantized
    const auto dir = run_app("gguf-quantize", q(hostile::default_model()) + " " + q(dir_->path) + " Q8_0 1");
    expect_error(dir, 1, "is a directory, expected a file name");
    expect_error(run_app("gguf-quantize", q(hostile::default_model()) + " /nonexistent-dir/x.gguf Q8_0 1"), 1,
                 "directory /nonexistent-dir does not exist");
    // nothing but the outputs asked for is left in the directory
    for (const auto& e : fs::directory_iterator(dir_->path)) {
        EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
    }
    fs::remove(target);
    fs::remove(real);
    fs::remove(link);
}

// Finite weights can still quantize to non-finite blocks: a Q8_0 scale past f16's 65504.
TEST_F(Hostile, QuantizeChecksWhatItConverts) {
    const fs::path big = out("huge-values.gguf");
    hostile::write_big_f32_model(big, 256, 512, 2, 1e30f);
    expect_error(run_app("gguf-quantize", q(big) + " " + q(out("q.gguf")) + " Q8_0 1"), 1, "as q8_0: ");
    EXPECT_FALSE(fs::exists(out("q.gguf")));
    fs::remove(big);
}

TEST_F(Hostile, ForeignImatrixIsAnError) {
    // an imatrix whose entries name tensors this model lacks (a 12-layer model's, say)
    const fs::path im = out("foreign-imatrix.gguf");
    {
        gguf::Writer w(im.string());
        w.metadata().set("general.type", gguf::Value::string("imatrix"));
        w.metadata().set("imatrix.datasets", gguf::Value::string_array({"calibration.txt"}));
        w.metadata().set("imatrix.chunk_count", gguf::Value::u32(1));
        w.metadata().set("imatrix.chunk_size", gguf::Value::u32(512));
        std::vector<std::string> names{"blk.0.attn_q.weight", "blk.11.attn_q.weight"};
        for (const auto& n : names) {
            w.add_tensor(n + ".in_sum2", gguf::GgmlType::F32, {256, 1});
            w.add_tensor(n + ".counts", gguf::GgmlType::F32, {1, 1});
        }
        std::vector<float> sums(256, 1.0f), count{1.0f};
        for (size_t i = 0; i < names.size(); ++i) {
            w.write_data({reinterpret_cast<const uint8_t*>(sums.data()), sums.size() * 4});
            w.write_data({reinterpret_cast<const uint8_t*>(count.data()), 4});
        }
        w.finish();
    }
    // requantizing is refused anyway, so plan only (the imatrix check happens while planning)
    const fs::path f32 = out("f32.gguf");
    hostile::write_big_f32_model(f32, 256, 512, 6);
    const std::string args = "--dry-run --imatrix " + q(im) + " " + q(f32) + " Q4_K_M";
    expect_error(run_app("gguf-quantize", args), 1, "1 imatrix entry (blk.11.attn_q.weight) naming no tensor");
    const auto forced = run_app("gguf-quantize", "--allow-foreign-imatrix " + args);
    EXPECT_EQ(forced.status, 0) << forced.err;
    EXPECT_NE(forced.err.find("warning: 1 imatrix entry"), std::string::npos) << forced.err;
    fs::remove(f32);
}

}  // namespace
