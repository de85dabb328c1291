// --fit: the placement under a GPU memory budget, counted with KV cache, scratch and overhead.
#include <gtest/gtest.h>

#include "runtime/error.h"
#include "runtime/fit.h"
#include "runtime/hparams.h"

namespace {

using runtime::Device;
using runtime::FitRequest;

// A 4-block MoE model: per block 30 bytes of attention and router, 300 of experts; 100 each for the
// embedding and the output layer.
std::vector<runtime::TensorDesc> moe_tensors(uint64_t expert_bytes = 100) {
    std::vector<runtime::TensorDesc> t{{"token_embd.weight", 100}, {"output_norm.weight", 0}, {"output.weight", 100}};
    for (int il = 0; il < 4; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        for (const char* name : {"attn_q.weight", "attn_k.weight", "ffn_gate_inp.weight"}) t.push_back({p + name, 10});
        for (const char* name : {"ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"}) {
            t.push_back({p + name, expert_bytes});
        }
    }
    return t;
}

FitRequest request(uint64_t budget) {
    FitRequest r;
    r.budget = budget;
    r.margin = 50;
    r.overhead = 20;
    r.kv_bytes_per_layer = 5;
    r.scratch = 10;
    r.output_scratch = 15;
    return r;
}

const Device kGpu = Device::cuda(0);

// all weights on the GPU: output 100 + 4 x (30 + 300) + KV 4 x 5 + scratch 10 + logits 15 + overhead 20
constexpr uint64_t kWhole = 100 + 4 * 330 + 20 + 10 + 15 + 20;

TEST(Fit, WholeModelWhenItFits) {
    const auto fit = runtime::fit_placement(moe_tensors(), 4, request(kWhole + 50), kGpu);
    EXPECT_EQ(fit.options.n_gpu_layers, -1);
    EXPECT_TRUE(fit.options.overrides.empty());
    EXPECT_EQ(fit.gpu_bytes, kWhole);
    EXPECT_EQ(fit.n_cpu_expert_layers, 0);
}

TEST(Fit, ExpertsOfTheLastLayersMoveFirst) {
    // one byte short of the whole model: one layer's experts (300 bytes) go to the CPU
    auto fit = runtime::fit_placement(moe_tensors(), 4, request(kWhole + 49), kGpu);
    EXPECT_EQ(fit.n_cpu_expert_layers, 1);
    EXPECT_EQ(fit.gpu_bytes, kWhole - 300);
    const auto plan = runtime::PlacementPlan::build(moe_tensors(), 4, fit.options, {kGpu});
    EXPECT_EQ(plan.device_of("blk.3.ffn_up_exps.weight"), Device::cpu());
    EXPECT_EQ(plan.device_of("blk.2.ffn_up_exps.weight"), kGpu);
    EXPECT_EQ(plan.device_of("blk.3.ffn_gate_inp.weight"), kGpu);  // the router stays
    EXPECT_LE(fit.gpu_bytes + 50, kWhole + 49);

    // room for one layer's experts only
    fit = runtime::fit_placement(moe_tensors(), 4, request(kWhole - 900 + 50), kGpu);
    EXPECT_EQ(fit.n_cpu_expert_layers, 3);
    EXPECT_NE(fit.explanation.find("last 3 of 4 layers"), std::string::npos) << fit.explanation;
}

TEST(Fit, WholeLayersWhenNoExpertsFit) {
    // every expert on the CPU needs 100 + 4 x 30 + 20 + 10 + 15 + 20 = 285; give 250 usable
    const auto fit = runtime::fit_placement(moe_tensors(), 4, request(300), kGpu);
    EXPECT_GT(fit.options.n_gpu_layers, 0);
    EXPECT_LE(fit.options.n_gpu_layers, 4);
    EXPECT_LE(fit.gpu_bytes, 250u);
    const auto plan = runtime::PlacementPlan::build(moe_tensors(), 4, fit.options, {kGpu});
    EXPECT_EQ(plan.device_of("output.weight"), kGpu);
    EXPECT_EQ(plan.device_of("blk.0.attn_q.weight"), Device::cpu());
    EXPECT_EQ(plan.device_of("blk.3.ffn_up_exps.weight"), Device::cpu());
}

TEST(Fit, NothingFitsIsAnError) {
    try {
        runtime::fit_placement(moe_tensors(), 4, request(100), kGpu);
        FAIL() << "expected an error";
    } catch (const runtime::Error& e) {
        EXPECT_NE(std::string(e.what()).find("not even the output layer fits"), std::string::npos) << e.what();
    }
}

TEST(Fit, UserRulesComeFirst) {
    // the user keeps block 0's experts on the CPU: fit counts that and needs no rule of its own
    const auto user = runtime::expert_layer_rules({0}, Device::cpu(), "-ot");
    const auto fit = runtime::fit_placement(moe_tensors(), 4, request(kWhole - 300 + 50), kGpu, user);
    EXPECT_EQ(fit.n_cpu_expert_layers, 0);
    ASSERT_EQ(fit.options.overrides.size(), 1u);
    EXPECT_EQ(fit.options.overrides[0].origin, "-ot");
}

// With streaming, a slot of the largest CPU-resident layer's experts is counted once any layer's experts
// leave the GPU: with 4 blocks of 3 x 1024 bytes of experts, one byte short of the whole model, moving
// one layer's experts saves nothing (the slot takes a layer's worth), two save one layer's worth; without
// the slot one layer is enough.
TEST(Fit, StreamingSlotIsCounted) {
    constexpr uint64_t kLayerExperts = 3 * 1024, kWholeBig = kWhole + 4 * (kLayerExperts - 300);
    FitRequest r = request(kWholeBig + 49);
    EXPECT_EQ(runtime::fit_placement(moe_tensors(1024), 4, r, kGpu).n_cpu_expert_layers, 1);
    r.expert_slot = true;
    const auto fit = runtime::fit_placement(moe_tensors(1024), 4, r, kGpu);
    EXPECT_EQ(fit.n_cpu_expert_layers, 2);
    EXPECT_EQ(fit.gpu_bytes, kWholeBig - 2 * kLayerExperts + kLayerExperts);
    for (uint64_t budget = 300; budget <= kWholeBig + 100; budget += 37) {
        r.budget = budget;
        try {
            EXPECT_LE(runtime::fit_placement(moe_tensors(1024), 4, r, kGpu).gpu_bytes + 50, budget) << budget;
        } catch (const runtime::Error&) {
            EXPECT_LT(budget, 100u + 10 + 15 + 20 + 50) << budget;  // the output layer alone
        }
    }
}

TEST(Fit, NoBudgetIsOvershot) {
    for (uint64_t budget = 300; budget <= kWhole + 100; budget += 7) {
        const auto fit = runtime::fit_placement(moe_tensors(), 4, request(budget), kGpu);
        EXPECT_LE(fit.gpu_bytes + 50, budget) << budget;
    }
}

// The executor's attention scratch grows with the context only for decode-size batches (at most 16
// tokens split the positions; prompts run one block per query tile): a 512-token batch at 4096 positions
// counts what 16 tokens take, 128 splits of (head_dim_v + 2) floats per head, not 512 tokens' worth.
TEST(Fit, AttentionScratchCountsDecodeSizeBatchesOnly) {
    runtime::HParams hp;
    hp.n_embd = 2048;
    hp.n_head = 32;
    hp.n_head_kv = 4;
    hp.head_dim_k = hp.head_dim_v = 128;
    hp.n_layer = 48;
    const uint64_t per_split = 16ull * 32 * (128 + 2) * sizeof(float);
    EXPECT_EQ(runtime::gpu_scratch_bytes(hp, 512, 4096) - runtime::gpu_scratch_bytes(hp, 512, 32), 127 * per_split);
    EXPECT_EQ(runtime::gpu_scratch_bytes(hp, 16, 4096) - runtime::gpu_scratch_bytes(hp, 16, 32), 127 * per_split);
    EXPECT_EQ(runtime::gpu_scratch_bytes(hp, 512, 1 << 20) - runtime::gpu_scratch_bytes(hp, 512, 4096), 0u);  // at most 128
}

}  // namespace

