// gguf-quantize end to end: usage and input errors, dry runs and JSON plans, overrides, and real
// quantized files checked against what llama.cpp wrote for the same recipe.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "fixtures.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "quant/imatrix.h"
#include "quant/recipe.h"
#include "recipe_reference.h"
#include "run_command.h"

namespace {

namespace fs = std::filesystem;
using testing_support::fixture;
using testing_support::run_app;

const char* kDense = "gguf/tiny-dense-bf16.gguf";

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// A fresh directory per test, removed afterwards; tests assert it holds only what they expect.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "quantize-test-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data());
    }
    ~TempDir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }

private:
    fs::path path_;
};

size_t line_count(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

void expect_one_line_error(const testing_support::CommandResult& r, int status, const std::string& contains) {
    EXPECT_EQ(r.status, status) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(contains), std::string::npos) << r.err;
}

// name -> target type from --json output ("name" comes before "to" in each tensor object).
std::map<std::string, std::string> json_types(const std::string& json) {
    std::map<std::string, std::string> out;
    const std::string name_key = "\"name\": \"", to_key = "\"to\": \"";
    for (size_t p = json.find(name_key); p != std::string::npos; p = json.find(name_key, p + 1)) {
        const size_t n0 = p + name_key.size();
        const std::string name = json.substr(n0, json.find('"', n0) - n0);
        const size_t t0 = json.find(to_key, n0) + to_key.size();
        out[name] = json.substr(t0, json.find('"', t0) - t0);
    }
    return out;
}

// A two-layer llama-style model with rows that fit no 256-block type: token_embd rows of 96
// (a multiple of 32) and attn_q rows of 100 (not even that).
fs::path write_odd_model(const fs::path& dir) {
    const fs::path path = dir / "odd.gguf";
    gguf::Writer w(path.string());
    w.metadata().set("general.architecture", gguf::Value::string("llama"));
    w.metadata().set("llama.block_count", gguf::Value::u32(1));
    const std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {
        {"token_embd.weight", {96, 16}}, {"blk.0.attn_q.weight", {100, 8}}, {"blk.0.attn_norm.weight", {96}}};
    for (const auto& [name, dims] : tensors) w.add_tensor(name, gguf::GgmlType::F32, dims);
    for (const auto& t : w.tensors()) {
        std::vector<float> data(t.n_elements());
        for (size_t i = 0; i < data.size(); ++i) data[i] = std::sin(0.37f * static_cast<float>(i));
        w.write_data({reinterpret_cast<const uint8_t*>(data.data()), data.size() * sizeof(float)});
    }
    w.finish();
    return path;
}

TEST(QuantizeCli, UsageErrorsExitTwo) {
    expect_one_line_error(run_app("gguf-quantize", ""), 2, "expected IN.gguf [OUT.gguf] RECIPE");
    expect_one_line_error(run_app("gguf-quantize", "in.gguf out.gguf"), 2, "expected");
    expect_one_line_error(run_app("gguf-quantize", "--bogus in.gguf out.gguf Q8_0"), 2, "--bogus");
    expect_one_line_error(run_app("gguf-quantize", "--tensor-type attn_q in.gguf out.gguf Q8_0"), 2, "REGEX=TYPE");
    expect_one_line_error(run_app("gguf-quantize", "in.gguf out.gguf Q8_0 0"), 2, "THREADS");
    expect_one_line_error(run_app("gguf-quantize", "--imatrix"), 2, "imatrix");
    const auto help = run_app("gguf-quantize", "--help");
    EXPECT_EQ(help.status, 0);
    for (const char* s : {"--imatrix", "--tensor-type", "--dry-run", "Q4_K_L", "MXFP4_MOE", "IQ4_XS", "BF16"}) {
        EXPECT_NE(help.out.find(s), std::string::npos) << s;
    }
}

TEST(QuantizeCli, BadInputIsAOneLineErrorAndLeavesNoFile) {
    REQUIRE_FIXTURE(kDense);
    TempDir dir;
    const std::string in = q(fixture(kDense)), out = q(dir.path() / "out.gguf");
    expect_one_line_error(run_app("gguf-quantize", in + " " + out + " Q9_K"), 1, "unknown recipe 'Q9_K'");
    expect_one_line_error(run_app("gguf-quantize", "--tensor-type 'attn_(=q8_0' " + in + " " + out + " Q4_K_M"), 1,
                          "bad --tensor-type pattern 'attn_('");
    expect_one_line_error(run_app("gguf-quantize", "--tensor-type attn_q=q9_9 " + in + " " + out + " Q4_K_M"), 1,
                          "unknown tensor type 'q9_9'");
    expect_one_line_error(run_app("gguf-quantize", "--output-tensor-type q8_K " + in + " " + out + " Q4_K_M"), 1,
                          "q8_K cannot store weights");
    expect_one_line_error(run_app("gguf-quantize", "/nonexistent/x.gguf " + out + " Q8_0"), 1,
                          "/nonexistent/x.gguf: cannot open");
    expect_one_line_error(run_app("gguf-quantize", "--imatrix /nonexistent/i.gguf " + in + " " + out + " Q8_0"), 1,
                          "/nonexistent/i.gguf");
    // An imatrix must be an importance matrix, not some other GGUF.
    expect_one_line_error(run_app("gguf-quantize", "--imatrix " + in + " " + in + " " + out + " Q8_0"), 1,
                          "not an importance matrix");

    const fs::path truncated = dir.path() / "truncated.gguf";
    fs::copy_file(fixture(kDense), truncated);
    fs::resize_file(truncated, 4096);
    expect_one_line_error(run_app("gguf-quantize", q(truncated) + " " + out + " Q8_0"), 1, truncated.string());
    fs::remove(truncated);
    EXPECT_TRUE(dir.listing().empty()) << "an output or temp file was left behind";
}

// llama-quantize's forms: IN RECIPE with the output named after the input, numeric file types,
// --allow-requantize with its warning, and the time and throughput of the run.
TEST(QuantizeCli, LlamaQuantizeFormsAndRequantize) {
    REQUIRE_FIXTURE(kDense);
    TempDir dir;
    const fs::path model = dir.path() / "Tiny-BF16.gguf";
    fs::copy_file(fixture(kDense), model);
    const auto r = run_app("gguf-quantize", q(model) + " 2 1");  // 2: Q4_0, one thread
    ASSERT_EQ(r.status, 0) << r.err;
    const fs::path made = dir.path() / "Tiny-Q4_0.gguf";
    ASSERT_TRUE(fs::exists(made)) << r.out;
    EXPECT_EQ(gguf::File::open(made.string()).metadata().get_u32("general.file_type"), 2u);
    EXPECT_NE(r.out.find("time: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("M weights/s"), std::string::npos) << r.out;

    const fs::path re = dir.path() / "re.gguf";
    expect_one_line_error(run_app("gguf-quantize", q(made) + " " + q(re) + " q8_0"), 1, "--allow-requantize");
    const auto ok = run_app("gguf-quantize", "--allow-requantize --json " + q(made) + " " + q(re) + " 7");
    ASSERT_EQ(ok.status, 0) << ok.err;
    EXPECT_NE(ok.err.find("warning: requantizing"), std::string::npos) << ok.err;
    EXPECT_NE(ok.out.find("\"recipe\": \"Q8_0\""), std::string::npos) << ok.out;
    EXPECT_NE(ok.out.find("\"seconds\": "), std::string::npos) << ok.out;
    EXPECT_EQ(gguf::File::open(re.string()).metadata().get_u32("general.file_type"), 7u);

    // a number llama.cpp gives no recipe, and a recipe without sense for the model
    expect_one_line_error(run_app("gguf-quantize", q(model) + " " + q(re) + " 99"), 1, "unknown recipe '99'");
    const auto mx = run_app("gguf-quantize", "--dry-run " + q(model) + " MXFP4_MOE");
    EXPECT_EQ(mx.status, 0) << mx.err;
    EXPECT_NE(mx.err.find("this model has none"), std::string::npos) << mx.err;
    EXPECT_EQ(dir.listing(), (std::vector<std::string>{"Tiny-BF16.gguf", "Tiny-Q4_0.gguf", "re.gguf"}));
}

TEST(QuantizeCli, RefusesToOverwriteItsInput) {
    REQUIRE_FIXTURE(kDense);
    TempDir dir;
    const fs::path model = dir.path() / "model.gguf";
    fs::copy_file(fixture(kDense), model);
    const fs::path link = dir.path() / "link.gguf";
    fs::create_symlink(model, link);
    expect_one_line_error(run_app("gguf-quantize", q(model) + " " + q(link) + " F16"), 1,
                          "refusing to overwrite an input");
    EXPECT_EQ(fs::file_size(model), fs::file_size(fixture(kDense)));
    EXPECT_EQ(dir.listing(), (std::vector<std::string>{"link.gguf", "model.gguf"}));
}

TEST(QuantizeCli, RowsThatFitNoBlockFallBackOrFail) {
    TempDir dir;
    const fs::path model = write_odd_model(dir.path());
    const fs::path out = dir.path() / "out.gguf";
    // Q8_0 has no smaller-block fallback: a row of 100 cannot be stored, as in llama.cpp.
    expect_one_line_error(run_app("gguf-quantize", q(model) + " " + q(out) + " Q8_0"), 1,
                          "tensor 'blk.0.attn_q.weight': type q8_0 needs rows that are a multiple of 32 but its rows "
                          "have 100 elements");
    expect_one_line_error(run_app("gguf-quantize", "--token-embedding-type q4_K " + q(model) + " " + q(out) + " F16"), 1,
                          "token_embd.weight");
    // K-quants fall back to a 32-block type, or to f16 when not even 32 divides the row.
    const auto r = run_app("gguf-quantize", "--dry-run --json " + q(model) + " Q4_K_M");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto types = json_types(r.out);
    // No output.weight: the embedding doubles as the output head, whose rows of 96 fit no
    // 256-block type, so it takes Q8_0 as llama.cpp's output rule says.
    EXPECT_EQ(types.at("token_embd.weight"), "q8_0");
    EXPECT_EQ(types.at("blk.0.attn_q.weight"), "f16");
    EXPECT_EQ(types.at("blk.0.attn_norm.weight"), "f32");
    EXPECT_NE(r.out.find("\"fallback_from\": \"q4_K\""), std::string::npos);
    EXPECT_TRUE(fs::exists(model));
    EXPECT_FALSE(fs::exists(out));
}

TEST(QuantizeCli, DryRunPrintsThePlanAndWritesNothing) {
    REQUIRE_FIXTURE(kDense);
    TempDir dir;
    const fs::path out = dir.path() / "out.gguf";
    const auto r = run_app("gguf-quantize", "--dry-run " + q(fixture(kDense)) + " " + q(out) + " Q4_K_M");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(dir.listing().empty());
    // One line per tensor: old -> new type, sizes and bits per weight, then the totals.
    EXPECT_EQ(line_count(r.out), 57u + 2u) << r.out;
    EXPECT_NE(r.out.find("blk.5.ffn_down.weight"), std::string::npos);
    EXPECT_NE(r.out.find("bf16 -> q6_K"), std::string::npos);
    EXPECT_NE(r.out.find("bpw"), std::string::npos);
    EXPECT_NE(r.out.find("file 4366784 bytes"), std::string::npos) << r.out;
}

TEST(QuantizeCli, OverridesPureAndTypeOptions) {
    REQUIRE_FIXTURE(kDense);
    const std::string in = q(fixture(kDense));
    auto r = run_app("gguf-quantize", "--dry-run --json --tensor-type 'attn_v=q8_0' --tensor-type 'attn_.*=q5_K' "
                                      "--output-tensor-type f16 --token-embedding-type q8_0 " + in + " Q4_K_M");
    ASSERT_EQ(r.status, 0) << r.err;
    auto types = json_types(r.out);
    EXPECT_EQ(types.at("blk.0.attn_v.weight"), "q8_0");  // the first matching pattern wins
    EXPECT_EQ(types.at("blk.2.attn_v.weight"), "q8_0");
    EXPECT_EQ(types.at("blk.0.attn_q.weight"), "q5_K");
    EXPECT_EQ(types.at("blk.2.ffn_down.weight"), "q6_K");  // no pattern: the recipe's rules
    EXPECT_EQ(types.at("output.weight"), "f16");
    EXPECT_EQ(types.at("token_embd.weight"), "q8_0");
    EXPECT_EQ(types.at("output_norm.weight"), "f32");

    r = run_app("gguf-quantize", "--dry-run --json --pure " + in + " Q4_K_M");
    ASSERT_EQ(r.status, 0) << r.err;
    types = json_types(r.out);
    for (const auto& [name, type] : types) {
        EXPECT_EQ(type, name.find("norm") != std::string::npos ? "f32" : "q4_K") << name;
    }
}

// ---- Real files, checked against llama.cpp's types and sizes ----

struct E2eCase {
    const char* model;
    const char* recipe;
    bool imatrix;
};

// ctest lists cases by name; gtest would otherwise print the struct's bytes
void PrintTo(const E2eCase& c, std::ostream* os) {
    *os << c.model << " " << c.recipe << (c.imatrix ? " with imatrix" : "");
}

class QuantizeEndToEnd : public ::testing::TestWithParam<E2eCase> {};

TEST_P(QuantizeEndToEnd, WritesWhatLlamaCppWrites) {
    const E2eCase& c = GetParam();
    const std::string input = std::string("gguf/tiny-") + c.model + "-bf16.gguf";
    const std::string imatrix_file = std::string("llama-cpp/imatrix-") + c.model + ".gguf";
    REQUIRE_FIXTURE(input);
    REQUIRE_FIXTURE(imatrix_file);
    const gguf::File in = gguf::File::open(fixture(input).string());
    std::optional<quant::Imatrix> im;
    if (c.imatrix) im = quant::Imatrix::load(fixture(imatrix_file).string());
    quant::PlanInputs inputs;
    inputs.recipe = quant::find_recipe(c.recipe);
    inputs.imatrix = im ? &*im : nullptr;
    const quant::QuantPlan plan = quant::make_plan(in, inputs);
    for (const auto& t : plan.tensors) {
        if (t.converts() && !quant::can_quantize(t.to.type)) {
            GTEST_SKIP() << "libquant cannot quantize " << gguf::type_name(t.to.type) << " yet";
        }
    }

    TempDir dir;
    const fs::path out = dir.path() / "out.gguf";
    const std::string im_arg = c.imatrix ? "--imatrix " + q(fixture(imatrix_file)) + " " : "";
    const auto r = run_app("gguf-quantize", im_arg + q(fixture(input)) + " " + q(out) + " " + c.recipe + " 2");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(dir.listing(), std::vector<std::string>{"out.gguf"});  // no temp file left
    EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;

    const gguf::File got = gguf::File::open(out.string());
    // Types and order as llama-quantize chose them.
    const auto expected = testing_support::read_types_file(testing_support::llama_cpp_types_file(c.model, c.recipe,
                                                                                                c.imatrix));
    ASSERT_EQ(got.tensors().size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(got.tensors()[i].name, expected[i].first);
        EXPECT_EQ(gguf::type_name(got.tensors()[i].type), expected[i].second) << expected[i].first;
    }
    // Size: llama.cpp's within 0.5% (the header may hold a different imatrix path).
    EXPECT_EQ(got.file_size(), plan.file_bytes);
    const auto ref = testing_support::llama_cpp_file_bytes(c.model, c.recipe, c.imatrix);
    ASSERT_TRUE(ref.has_value());
    EXPECT_NEAR(static_cast<double>(got.file_size()), static_cast<double>(*ref), *ref * 0.005);

    // Metadata: the input's, plus the quantization keys llama.cpp writes.
    const gguf::Metadata& md = got.metadata();
    EXPECT_EQ(md.get_u32("general.file_type"), static_cast<uint32_t>(inputs.recipe->file_type));
    EXPECT_EQ(md.get_u32("general.quantization_version"), 2u);
    for (const auto& [key, value] : in.metadata().entries()) {
        if (key == "general.file_type") continue;
        ASSERT_NE(md.find(key), nullptr) << key;
        EXPECT_TRUE(*md.find(key) == value) << key;
    }
    if (c.imatrix) {
        EXPECT_EQ(md.get_string("quantize.imatrix.file"), fixture(imatrix_file).string());
        EXPECT_EQ(md.get_string("quantize.imatrix.dataset"), im->datasets().front());
        EXPECT_EQ(md.get_u32("quantize.imatrix.entries_count"), im->entries().size());
        EXPECT_EQ(md.get_u32("quantize.imatrix.chunks_count"), 325u);
    } else {
        EXPECT_FALSE(md.contains("quantize.imatrix.file"));
    }

    // Data: kept tensors byte for byte; quantized ones decode close to the original weights.
    for (const auto& t : got.tensors()) {
        const gguf::TensorInfo& src = in.tensor(t.name);
        const auto src_bytes = in.tensor_data(src), got_bytes = got.tensor_data(t);
        if (src.type == t.type) {
            EXPECT_TRUE(std::equal(src_bytes.begin(), src_bytes.end(), got_bytes.begin(), got_bytes.end())) << t.name;
            continue;
        }
        // Every row of the last matrix: catches rows or experts written in the wrong place.
        const int64_t n = t.dims[0];
        const uint64_t rows = t.n_rows(), first = rows - static_cast<uint64_t>(t.dims[1]);
        const size_t src_row = gguf::row_size(src.type, n), got_row = gguf::row_size(t.type, n);
        std::vector<float> a(n), b(n);
        double err = 0, norm = 0;
        for (uint64_t row = first; row < rows; ++row) {
            quant::dequantize_row(src.type, src_bytes.data() + row * src_row, a.data(), n);
            quant::dequantize_row(t.type, got_bytes.data() + row * got_row, b.data(), n);
            for (int64_t i = 0; i < n; ++i) {
                err += (a[i] - b[i]) * (a[i] - b[i]);
                norm += a[i] * a[i];
            }
        }
        // 4-bit formats keep the relative RMS error near 0.1; garbage is near 1 or above.
        EXPECT_LT(std::sqrt(err / norm), 0.2) << t.name << " as " << gguf::type_name(t.type);
    }
}

std::string e2e_name(const ::testing::TestParamInfo<E2eCase>& info) {
    return std::string(info.param.model) + "_" + info.param.recipe + (info.param.imatrix ? "_imatrix" : "");
}

INSTANTIATE_TEST_SUITE_P(Recipes, QuantizeEndToEnd,
                         ::testing::Values(E2eCase{"dense", "Q8_0", true}, E2eCase{"dense", "Q4_K_M", false},
                                           E2eCase{"dense", "Q4_K_L", true}, E2eCase{"moe", "MXFP4_MOE", false},
                                           E2eCase{"moe", "Q4_K_M", true}),
                         e2e_name);

}  // namespace
