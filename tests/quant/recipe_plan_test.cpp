// Planning and writing quantized files from small synthetic models: layout and metadata of the
// output, imatrix matching (per expert), and the errors that must stop a quantization.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "gguf/writer.h"
#include "quant/float16.h"
#include "quant/imatrix.h"
#include "quant/recipe.h"

namespace {

namespace fs = std::filesystem;
using T = gguf::GgmlType;

struct Spec {
    std::string name;
    std::vector<int64_t> dims;
    T type = T::F32;
};

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "recipe-plan-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data());
    }
    ~TempDir() { fs::remove_all(path_); }
    fs::path operator/(const std::string& name) const { return path_ / name; }
    size_t n_files() const { return static_cast<size_t>(std::distance(fs::directory_iterator(path_), {})); }

private:
    fs::path path_;
};

// f32 tensors hold a smooth pattern (or a NaN where asked); other types hold zero bytes.
fs::path write_model(const fs::path& path, const std::vector<Spec>& specs,
                     const std::vector<std::pair<std::string, gguf::Value>>& extra = {}, bool nan = false) {
    gguf::Writer w(path.string());
    w.metadata().set("general.architecture", gguf::Value::string("llama"));
    w.metadata().set("llama.block_count", gguf::Value::u32(2));
    w.metadata().set("general.file_type", gguf::Value::u32(0));
    for (const auto& [k, v] : extra) w.metadata().set(k, v);
    for (const auto& s : specs) w.add_tensor(s.name, s.type, s.dims);
    for (const auto& t : w.tensors()) {
        std::vector<uint8_t> bytes(t.n_bytes());
        if (t.type == T::F32) {
            std::vector<float> v(t.n_elements());
            for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.01f * static_cast<float>(i)) * 0.1f;
            if (nan) v[v.size() / 2] = std::numeric_limits<float>::quiet_NaN();
            std::memcpy(bytes.data(), v.data(), bytes.size());
        }
        w.write_data(bytes);
    }
    w.finish();
    return path;
}

const std::vector<Spec> kModel = {
    {"token_embd.weight", {64, 32}},
    {"blk.1.attn_q.weight", {64, 64}},
    {"blk.0.attn_q.weight", {64, 64}},
    {"blk.0.attn_norm.weight", {64}},
    {"blk.0.ffn_up_exps.weight", {64, 32, 4}},
    {"output.weight", {64, 32}},
};

quant::PlanInputs inputs(const char* recipe, const quant::Imatrix* im = nullptr) {
    quant::PlanInputs in;
    in.recipe = quant::find_recipe(recipe);
    in.imatrix = im;
    return in;
}

fs::path write_imatrix(const fs::path& path, const std::vector<std::pair<std::string, std::vector<int64_t>>>& entries) {
    gguf::Writer w(path.string());
    w.metadata().set("imatrix.datasets", gguf::Value::string_array({"data.txt"}));
    w.metadata().set("imatrix.chunk_count", gguf::Value::u32(3));
    w.metadata().set("imatrix.chunk_size", gguf::Value::u32(64));
    for (const auto& [name, dims] : entries) {
        w.add_tensor(name + ".in_sum2", T::F32, dims);
        w.add_tensor(name + ".counts", T::F32, {1, dims.size() > 1 ? dims[1] : 1});
    }
    for (const auto& t : w.tensors()) {
        std::vector<float> v(t.n_elements(), 1.0f);
        w.write_data({reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)});
    }
    w.finish();
    return path;
}

TEST(RecipePlan, F16FileHasLlamaCppLayoutMetadataAndExactData) {
    TempDir dir;
    const gguf::File in = gguf::File::open(
        write_model(dir / "in.gguf", kModel, {{"split.count", gguf::Value::u16(1)}}).string());
    const quant::QuantPlan plan = quant::make_plan(in, inputs("F16"));
    std::vector<size_t> progress;
    quant::write_quantized(in, plan, nullptr, (dir / "out.gguf").string(),
                           [&](size_t i, const quant::QuantPlan&) { progress.push_back(i); });
    EXPECT_EQ(progress, (std::vector<size_t>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(dir.n_files(), 2u);  // no temp file left

    const gguf::File out = gguf::File::open((dir / "out.gguf").string());
    EXPECT_EQ(out.file_size(), plan.file_bytes);
    std::vector<std::string> names;
    for (const auto& t : out.tensors()) names.push_back(t.name);
    EXPECT_EQ(names, (std::vector<std::string>{"output.weight", "token_embd.weight", "blk.0.attn_norm.weight",
                                               "blk.0.attn_q.weight", "blk.0.ffn_up_exps.weight",
                                               "blk.1.attn_q.weight"}));
    EXPECT_EQ(out.tensor("blk.0.attn_norm.weight").type, T::F32);
    EXPECT_EQ(out.tensor("blk.0.ffn_up_exps.weight").type, T::F16);
    EXPECT_EQ(out.metadata().get_u32("general.file_type"), 1u);
    EXPECT_EQ(out.metadata().get_u32("general.quantization_version"), 2u);
    EXPECT_FALSE(out.metadata().contains("split.count"));
    EXPECT_EQ(out.metadata().get_string("general.architecture"), "llama");
    // The two keys go last, where llama-quantize puts them.
    const auto& e = out.metadata().entries();
    EXPECT_EQ(e[e.size() - 2].first, "general.quantization_version");
    EXPECT_EQ(e.back().first, "general.file_type");

    // f32 -> f16 is exact rounding of every element, including across expert matrices.
    const auto& src = in.tensor("blk.0.ffn_up_exps.weight");
    const float* a = reinterpret_cast<const float*>(in.tensor_data(src).data());
    const uint16_t* b = reinterpret_cast<const uint16_t*>(out.tensor_data(out.tensor(src.name)).data());
    for (uint64_t i = 0; i < src.n_elements(); ++i) ASSERT_EQ(b[i], quant::f32_to_f16(a[i])) << i;
}

// llama-quantize writes a tensor's dimensions as ggml counts them: trailing 1s dropped (qwen35moe's
// ffn_gate_inp_shexp comes from llama.cpp's converter as [n_embd, 1] and leaves llama-quantize as [n_embd]).
TEST(RecipePlan, TrailingDimensionsOfOneAreDroppedAsLlamaQuantizeDoes) {
    TempDir dir;
    std::vector<Spec> model = kModel;
    model.push_back({"blk.0.ffn_gate_inp_shexp.weight", {64, 1}});
    model.push_back({"blk.1.ffn_up_exps.weight", {64, 32, 1}});
    const gguf::File in = gguf::File::open(write_model(dir / "in.gguf", model).string());
    const quant::QuantPlan plan = quant::make_plan(in, inputs("Q8_0"));
    quant::write_quantized(in, plan, nullptr, (dir / "out.gguf").string());
    const gguf::File out = gguf::File::open((dir / "out.gguf").string());
    EXPECT_EQ(out.file_size(), plan.file_bytes);
    EXPECT_EQ(out.tensor("blk.0.ffn_gate_inp_shexp.weight").dims, (std::vector<int64_t>{64}));
    EXPECT_EQ(out.tensor("blk.1.ffn_up_exps.weight").dims, (std::vector<int64_t>{64, 32}));
    EXPECT_EQ(out.tensor("blk.0.ffn_up_exps.weight").dims, (std::vector<int64_t>{64, 32, 4}));
    EXPECT_EQ(out.tensor("blk.0.attn_norm.weight").dims, (std::vector<int64_t>{64}));
}

TEST(RecipePlan, ImatrixEntriesMatchPerExpertOrFail) {
    TempDir dir;
    const gguf::File in = gguf::File::open(write_model(dir / "in.gguf", kModel).string());
    // attn_q: 64 columns; the expert tensor: 64 columns x 4 experts.
    quant::Imatrix good = quant::Imatrix::load(
        write_imatrix(dir / "good.gguf", {{"blk.0.attn_q.weight", {64}}, {"blk.0.ffn_up_exps.weight", {64, 4}},
                                          {"blk.7.ffn_down.weight", {64}}})
            .string());
    // an entry naming no tensor means another model's imatrix: an error unless allowed
    try {
        quant::make_plan(in, inputs("Q8_0", &good));
        ADD_FAILURE() << "expected quant::Error for the foreign entry";
    } catch (const quant::Error& e) {
        EXPECT_NE(std::string(e.what()).find("1 imatrix entry (blk.7.ffn_down.weight) naming no tensor"),
                  std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--allow-foreign-imatrix"), std::string::npos) << e.what();
    }
    quant::PlanInputs allowed = inputs("Q8_0", &good);
    allowed.allow_foreign_imatrix = true;
    quant::QuantPlan plan = quant::make_plan(in, allowed);
    auto find = [&](const std::string& n) {
        return *std::find_if(plan.tensors.begin(), plan.tensors.end(), [&](auto& t) { return t.name == n; });
    };
    EXPECT_EQ(find("blk.0.attn_q.weight").imatrix, quant::ImatrixUse::Used);
    EXPECT_EQ(find("blk.0.ffn_up_exps.weight").imatrix, quant::ImatrixUse::Used);
    EXPECT_EQ(find("blk.1.attn_q.weight").imatrix, quant::ImatrixUse::Missing);
    EXPECT_EQ(find("blk.0.attn_norm.weight").imatrix, quant::ImatrixUse::NotApplicable);
    ASSERT_EQ(plan.warnings.size(), 2u);
    EXPECT_NE(plan.warnings[0].find("1 tensor (blk.1.attn_q.weight) without an imatrix entry"), std::string::npos);
    EXPECT_NE(plan.warnings[1].find("1 imatrix entry (blk.7.ffn_down.weight) naming no tensor"), std::string::npos);
    EXPECT_EQ(plan.metadata.get_string("quantize.imatrix.file"), good.path());
    EXPECT_EQ(plan.metadata.get_string("quantize.imatrix.dataset"), "data.txt");
    EXPECT_EQ(plan.metadata.get_u32("quantize.imatrix.entries_count"), 3u);
    EXPECT_EQ(plan.metadata.get_u32("quantize.imatrix.chunks_count"), 3u);

    // One vector for a 4-expert tensor is a mismatch: an error naming the entry.
    quant::Imatrix flat = quant::Imatrix::load(
        write_imatrix(dir / "flat.gguf", {{"blk.0.attn_q.weight", {64}}, {"blk.0.ffn_up_exps.weight", {64}}}).string());
    try {
        quant::make_plan(in, inputs("Q8_0", &flat));
        FAIL() << "expected an error";
    } catch (const quant::Error& e) {
        EXPECT_NE(std::string(e.what()).find("imatrix entry 'blk.0.ffn_up_exps.weight' has 64 values but the tensor "
                                             "needs 256"),
                  std::string::npos)
            << e.what();
    }
    // An imatrix that fits nothing is for another model.
    quant::Imatrix other = quant::Imatrix::load(write_imatrix(dir / "other.gguf", {{"blk.9.x.weight", {8}}}).string());
    EXPECT_THROW(quant::make_plan(in, inputs("Q8_0", &other)), quant::Error);
}

TEST(RecipePlan, InputsThatCannotBeQuantizedAreRefused) {
    TempDir dir;
    // Shard 1 of 2: the other half of the tensors is elsewhere.
    // one shard read alone (File::open would read all shards or refuse)
    const gguf::File split = gguf::File::open_single(
        write_model(dir / "split.gguf", kModel, {{"split.count", gguf::Value::u16(2)}}).string());
    EXPECT_THROW(quant::make_plan(split, inputs("Q8_0")), quant::Error);

    // Already quantized tensors are copied when the type stays, refused when it would change.
    std::vector<Spec> specs = kModel;
    specs[1].type = T::Q8_0;
    const gguf::File quantized = gguf::File::open(write_model(dir / "q.gguf", specs).string());
    EXPECT_NO_THROW(quant::make_plan(quantized, inputs("Q8_0")));
    EXPECT_THROW(quant::make_plan(quantized, inputs("F16")), quant::Error);

    // Types that need an imatrix: an error when writing, a warning in a dry run.
    const gguf::File in = gguf::File::open(write_model(dir / "in.gguf", {{"blk.0.ffn_up.weight", {256, 8}}}).string());
    EXPECT_THROW(quant::make_plan(in, inputs("IQ2_XXS")), quant::Error);
    quant::PlanInputs dry = inputs("IQ2_XXS");
    dry.dry_run = true;
    EXPECT_EQ(quant::make_plan(in, dry).warnings.size(), 1u);
}

TEST(RecipePlan, WriteFailuresLeaveNoFile) {
    TempDir dir;
    const fs::path in_path = write_model(dir / "in.gguf", kModel, {}, /*nan=*/true);
    const gguf::File in = gguf::File::open(in_path.string());
    const quant::QuantPlan plan = quant::make_plan(in, inputs("F16"));
    EXPECT_THROW(quant::write_quantized(in, plan, nullptr, in_path.string()), quant::Error);
    try {
        quant::write_quantized(in, plan, nullptr, (dir / "out.gguf").string());
        FAIL() << "a NaN weight must stop the quantization";
    } catch (const quant::Error& e) {
        // output.weight comes first in the file, so its NaN is the one met.
        EXPECT_NE(std::string(e.what()).find("tensor 'output.weight'"), std::string::npos) << e.what();
    }
    EXPECT_EQ(dir.n_files(), 1u);
}

// llama-quantize takes file-type numbers; each names the plain recipe, never Q4_K_L or an alias.
TEST(RecipePlan, FileTypeNumbersNameTheirRecipe) {
    EXPECT_EQ(quant::recipe_for_file_type(15)->name, "Q4_K_M");
    EXPECT_EQ(quant::recipe_for_file_type(7)->name, "Q8_0");
    EXPECT_EQ(quant::recipe_for_file_type(38)->name, "MXFP4_MOE");
    EXPECT_EQ(quant::recipe_for_file_type(32)->name, "BF16");
    EXPECT_EQ(quant::recipe_for_file_type(4), nullptr);  // retired by llama.cpp
    EXPECT_EQ(quant::recipe_for_file_type(99), nullptr);
    for (const auto& r : quant::recipes()) {
        EXPECT_NE(quant::recipe_for_file_type(static_cast<uint32_t>(r.file_type)), nullptr) << r.name;
    }
}

}  // namespace
