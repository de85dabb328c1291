// Model loading refuses what llama.cpp would refuse, naming the tensor or key; a well-formed model runs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/model.h"
#include "tiny_model.h"

namespace {

using testing_support::TinyModelSpec;

class ModelLoad : public ::testing::Test {
protected:
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("gguf_run_tiny_" + std::to_string(::getpid()) + ".gguf");
    void TearDown() override { std::filesystem::remove(path); }

    std::string error_of(const TinyModelSpec& spec) {
        testing_support::write_tiny_model(path, spec);
        try {
            runtime::Model::load(path.string());
        } catch (const runtime::Error& e) {
            return e.what();
        }
        return "";
    }
};

TEST_F(ModelLoad, WellFormedModelDecodes) {
    testing_support::write_tiny_model(path);
    const auto model = runtime::Model::load(path.string());
    EXPECT_EQ(model->n_vocab(), 8);
    EXPECT_EQ(model->hparams().n_layer, 1u);
    runtime::ContextParams p;
    p.n_threads = 1;
    runtime::Context ctx(*model, p);
    EXPECT_EQ(ctx.n_ctx(), 64);  // the training context when -c is 0
    const std::vector<int32_t> tokens{1, 2, 3};
    const auto logits = ctx.decode(tokens);
    EXPECT_EQ(logits.size(), 8u);
    for (float v : logits) EXPECT_TRUE(std::isfinite(v));
    EXPECT_THROW(ctx.decode(std::vector<int32_t>{8}), runtime::Error);   // outside the vocabulary
    EXPECT_THROW(ctx.decode(std::vector<int32_t>(62, 1)), runtime::Error);  // 3 + 62 > 64
}

TEST_F(ModelLoad, MissingTensorIsNamed) {
    const auto msg = error_of(testing_support::dropping("blk.0.attn_k.weight"));
    EXPECT_NE(msg.find("blk.0.attn_k.weight is missing"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
}

TEST_F(ModelLoad, WrongShapeIsNamed) {
    const auto msg = error_of(testing_support::reshaping("blk.0.ffn_up.weight"));
    EXPECT_NE(msg.find("blk.0.ffn_up.weight has shape [32, 16], expected [32, 32]"), std::string::npos) << msg;
}

TEST_F(ModelLoad, UnknownArchitectureIsNamed) {
    const auto msg = error_of(testing_support::with_arch("mamba"));
    EXPECT_NE(msg.find("unsupported architecture 'mamba'"), std::string::npos) << msg;
}

TEST_F(ModelLoad, QwenRequiresItsExtraTensors) {
    // qwen3 needs Q/K norms, qwen2 the q/k/v biases: the tiny llama file has neither
    EXPECT_NE(error_of(testing_support::with_arch("qwen3")).find("blk.0.attn_q_norm.weight is missing"), std::string::npos);
    EXPECT_NE(error_of(testing_support::with_arch("qwen2")).find("blk.0.attn_q.bias is missing"), std::string::npos);
}

TEST_F(ModelLoad, KvCacheTypes) {
    EXPECT_EQ(runtime::parse_kv_type("q8_0", "-ctk"), gguf::GgmlType::Q8_0);
    EXPECT_EQ(runtime::parse_kv_type("F16", "-ctk"), gguf::GgmlType::F16);
    EXPECT_THROW(runtime::parse_kv_type("q4_K", "-ctv"), runtime::Error);
    EXPECT_THROW(runtime::parse_kv_type("nope", "-ctv"), runtime::Error);
}

}  // namespace
