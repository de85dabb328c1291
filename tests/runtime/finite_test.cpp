// Finite-ness as a contract: non-finite logits stop decode() with the block and tensor where NaN
// first appears, the failed tokens are not kept, and hyper-parameters that make every output
// NaN are refused when the model is read; check_model_layout gives writers the same checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gguf/file.h"
#include "quant/finite.h"
#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/hparams.h"
#include "runtime/model.h"
#include "runtime/perplexity.h"
#include "tiny_model.h"

namespace {

namespace fs = std::filesystem;

struct TinyFile {
    fs::path path = fs::temp_directory_path() / ("finite_tiny_" + std::to_string(::getpid()) + ".gguf");
    TinyFile() { testing_support::write_tiny_model(path); }
    ~TinyFile() { fs::remove(path); }
    // overwrites the float at `index` of an F32 tensor
    void poke(const std::string& tensor, size_t index, float v) {
        uint64_t at;
        {
            const gguf::File f = gguf::File::open(path.string());
            at = f.data_offset() + f.tensor(tensor).offset + index * 4;
        }
        std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
        io.seekp(static_cast<std::streamoff>(at));
        io.write(reinterpret_cast<const char*>(&v), 4);
    }
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(Finite, DecodeNamesTheBlockAndTensor) {
    TinyFile tiny;
    tiny.poke("blk.0.ffn_down.weight", 32 * 5 + 3, std::nanf(""));  // row 5, column 3
    auto model = runtime::Model::load(tiny.path.string());
    runtime::Context ctx(*model, {});
    const std::vector<int32_t> tokens{1, 2, 3};
    const std::string what = error_of([&] { ctx.decode(tokens); });
    EXPECT_NE(what.find("after blk.0 feed-forward at position 0: tensor blk.0.ffn_down.weight holds NaN at row 5, column 3"),
              std::string::npos) << what;
    EXPECT_EQ(ctx.n_past(), 0);  // the failed tokens are not kept
    // with every position's logits asked for, the same
    EXPECT_NE(error_of([&] { ctx.decode(tokens, true); }).find("blk.0.ffn_down.weight"), std::string::npos);
}

TEST(Finite, OverflowWithFiniteWeightsIsNamedAsSuch) {
    TinyFile tiny;
    for (size_t i = 0; i < 32 * 32; ++i) tiny.poke("blk.0.ffn_up.weight", i, 3e37f);
    for (size_t i = 0; i < 32 * 32; ++i) tiny.poke("blk.0.ffn_gate.weight", i, 3e37f);
    auto model = runtime::Model::load(tiny.path.string());
    runtime::Context ctx(*model, {});
    const std::string what = error_of([&] { ctx.decode(std::vector<int32_t>{1}); });
    EXPECT_NE(what.find("blk.0 feed-forward"), std::string::npos) << what;
    EXPECT_NE(what.find("the weights it read are finite"), std::string::npos) << what;
}

TEST(Finite, PerplexityIsANumberOrAnError) {
    TinyFile tiny;
    auto model = runtime::Model::load(tiny.path.string());
    runtime::Context ctx(*model, {});
    const std::vector<int32_t> tokens{1, 2, 3, 4, 5, 6, 7, 1};
    runtime::PerplexityParams p;
    p.n_ctx = 2;  // the second half of a 2-token chunk predicts nothing: 0 positions scored
    EXPECT_NE(error_of([&] { runtime::perplexity(ctx, tokens, p); }).find("no position was scored"), std::string::npos);
    p.n_ctx = 4;
    p.n_chunks = 0;
    EXPECT_NE(error_of([&] { runtime::perplexity(ctx, tokens, p); }).find("0 chunks"), std::string::npos);
    p.n_chunks = -1;
    const auto r = runtime::perplexity(ctx, tokens, p);
    EXPECT_TRUE(std::isfinite(r.ppl));
    EXPECT_EQ(r.n_chunks, 2);
}

TEST(Finite, NormVectorsAreCheckedAtLoad) {
    TinyFile tiny;
    tiny.poke("output_norm.weight", 9, INFINITY);
    EXPECT_NE(error_of([&] { runtime::Model::load(tiny.path.string()); }).find("output_norm.weight holds an infinity at index 9"),
              std::string::npos);
}

TEST(Finite, HyperParametersThatPoisonEveryOutput) {
    TinyFile tiny;
    const gguf::File f = gguf::File::open(tiny.path.string());
    auto with = [&](const std::string& key, gguf::Value v) {
        gguf::Metadata md = f.metadata();
        md.set(key, std::move(v));
        return error_of([&] { runtime::HParams::from_metadata(md); });
    };
    EXPECT_NE(with("llama.attention.layer_norm_rms_epsilon", gguf::Value::f32(0)).find("must be a finite number > 0"),
              std::string::npos);
    EXPECT_NE(with("llama.attention.layer_norm_rms_epsilon", gguf::Value::f32(NAN)).find("epsilon"), std::string::npos);
    EXPECT_NE(with("llama.rope.freq_base", gguf::Value::f32(-1)).find("rope.freq_base"), std::string::npos);
    EXPECT_NE(with("llama.rope.scaling.factor", gguf::Value::f32(-2)).find("rope.scaling.factor"), std::string::npos);
    EXPECT_NE(with("llama.rope.scaling.factor", gguf::Value::f32(INFINITY)).find("rope.scaling.factor"), std::string::npos);
    EXPECT_NE(with("llama.context_length", gguf::Value::u32(0)).find("context_length must be > 0"), std::string::npos);
}

TEST(Finite, LayoutCheckWithoutData) {
    TinyFile tiny;
    const gguf::File f = gguf::File::open(tiny.path.string());
    EXPECT_NO_THROW(runtime::check_model_layout(f.metadata(), f.tensors(), "x.gguf"));
    gguf::Metadata md = f.metadata();
    md.set("llama.block_count", gguf::Value::u32(2));
    EXPECT_NE(error_of([&] { runtime::check_model_layout(md, f.tensors(), "x.gguf"); })
                  .find("x.gguf: llama.block_count 2 disagrees with the tensors, which go up to block 0"),
              std::string::npos);
    auto tensors = f.tensors();
    tensors.erase(tensors.begin() + 3);
    EXPECT_NE(error_of([&] { runtime::check_model_layout(f.metadata(), tensors, "x.gguf"); }).find("is missing"),
              std::string::npos);
}

TEST(Finite, FindNonFiniteInQuantizedRows) {
    std::vector<uint8_t> q8(34 * 4, 0);  // 4 Q8_0 blocks: 2 rows of 64
    EXPECT_FALSE(quant::find_non_finite(gguf::GgmlType::Q8_0, q8, 64, 2));
    q8[34 * 3] = 0x00;
    q8[34 * 3 + 1] = 0x7e;  // the f16 scale of row 1's second block: NaN
    const auto bad = quant::find_non_finite(gguf::GgmlType::Q8_0, q8, 64, 2);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->describe(), "NaN at row 1, column 32");
}

}  // namespace
