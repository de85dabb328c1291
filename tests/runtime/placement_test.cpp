// Placement rules with llama.cpp's semantics: -ngl counts from the output layer, overrides are
// regex searches where the first match wins, --cpu-moe / --n-cpu-moe keep experts on the CPU.
#include <gtest/gtest.h>

#include "runtime/error.h"
#include "runtime/placement.h"

namespace {

using runtime::Device;
using runtime::PlacementOptions;
using runtime::PlacementPlan;

// A 4-block MoE model's tensors.
std::vector<runtime::TensorDesc> moe_tensors() {
    std::vector<runtime::TensorDesc> t{{"token_embd.weight", 100}, {"output_norm.weight", 1}, {"output.weight", 100}};
    for (int il = 0; il < 4; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        for (const char* name : {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "ffn_gate_inp.weight",
                                 "ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"}) {
            t.push_back({p + name, 10});
        }
    }
    return t;
}

const std::vector<Device> kOneGpu{Device::cuda(0)};

TEST(Placement, NglCountsFromTheOutputLayer) {
    PlacementOptions o;
    o.n_gpu_layers = 1;  // only the output layer
    auto plan = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu);
    EXPECT_EQ(plan.device_of("output.weight"), Device::cuda(0));
    EXPECT_EQ(plan.device_of("output_norm.weight"), Device::cuda(0));
    EXPECT_EQ(plan.device_of("blk.3.attn_q.weight"), Device::cpu());

    o.n_gpu_layers = 3;  // output + blocks 2, 3
    plan = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu);
    EXPECT_EQ(plan.device_of("blk.1.attn_q.weight"), Device::cpu());
    EXPECT_EQ(plan.device_of("blk.2.attn_q.weight"), Device::cuda(0));
    EXPECT_EQ(plan.device_of("blk.3.ffn_up_exps.weight"), Device::cuda(0));

    o.n_gpu_layers = 4;  // = n_layer still leaves block 0 on the CPU
    plan = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu);
    EXPECT_EQ(plan.device_of("blk.0.attn_q.weight"), Device::cpu());
    EXPECT_EQ(plan.device_of("blk.1.attn_q.weight"), Device::cuda(0));

    o.n_gpu_layers = -1;  // all
    plan = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu);
    EXPECT_EQ(plan.device_of("blk.0.attn_q.weight"), Device::cuda(0));
    // the input layer always stays on the CPU
    EXPECT_EQ(plan.device_of("token_embd.weight"), Device::cpu());
}

TEST(Placement, FirstMatchingOverrideWins) {
    PlacementOptions o;
    o.n_gpu_layers = 99;
    o.overrides = runtime::parse_override_rules("blk\\.1\\.ffn_.*=CUDA0,exps=CPU");
    const auto plan = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu);
    EXPECT_EQ(plan.device_of("blk.1.ffn_up_exps.weight"), Device::cuda(0));  // rule 1 before rule 2
    EXPECT_EQ(plan.device_of("blk.2.ffn_up_exps.weight"), Device::cpu());
    EXPECT_EQ(plan.device_of("blk.2.ffn_gate_inp.weight"), Device::cuda(0));  // matched by neither
    EXPECT_EQ(plan.at("blk.2.ffn_down_exps.weight").rule, 1);
    EXPECT_EQ(plan.at("blk.2.attn_q.weight").rule, -1);
    const auto bytes = plan.weight_bytes();
    EXPECT_EQ(bytes.at(Device::cpu()), 100u + 3 * 3 * 10);  // embedding + experts of blocks 0, 2, 3
}

TEST(Placement, CpuMoeRules) {
    PlacementOptions o;
    o.n_gpu_layers = -1;
    o.overrides = runtime::n_cpu_moe_rules(2);
    ASSERT_EQ(o.overrides.size(), 1u);  // one rule for blocks 0 and 1
    auto plan = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu);
    EXPECT_EQ(plan.device_of("blk.0.ffn_gate_exps.weight"), Device::cpu());
    EXPECT_EQ(plan.device_of("blk.1.ffn_down_exps.weight"), Device::cpu());
    EXPECT_EQ(plan.device_of("blk.1.ffn_gate_inp.weight"), Device::cuda(0));  // the router is not an expert
    EXPECT_EQ(plan.device_of("blk.2.ffn_up_exps.weight"), Device::cuda(0));

    o.overrides = runtime::cpu_moe_rules();
    plan = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu);
    for (int il = 0; il < 4; ++il) {
        EXPECT_EQ(plan.device_of("blk." + std::to_string(il) + ".ffn_up_exps.weight"), Device::cpu());
    }
    EXPECT_EQ(plan.device_of("blk.3.attn_q.weight"), Device::cuda(0));
    EXPECT_THROW(runtime::n_cpu_moe_rules(-1), runtime::Error);
    EXPECT_TRUE(runtime::n_cpu_moe_rules(0).empty());
    // block 1's rule must not take block 10, 11, ...: the block number ends at its dot
    o.overrides = runtime::n_cpu_moe_rules(2);
    auto many = moe_tensors();
    many.push_back({"blk.10.ffn_up_exps.weight", 10});
    plan = PlacementPlan::build(many, 11, o, kOneGpu);
    EXPECT_EQ(plan.device_of("blk.10.ffn_up_exps.weight"), Device::cuda(0));
}

// --n-cpu-moe keeps its layer limit as a number: a huge N costs nothing to build. A limit past the
// model's blocks means every block, as in llama.cpp, and the plan says so in a short warning.
TEST(Placement, NCpuMoeIsClampedToTheModel) {
    const auto rules = runtime::n_cpu_moe_rules(2147483647);
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_LT(rules[0].pattern.size(), 100u);
    PlacementOptions o;
    o.overrides = rules;
    o.n_gpu_layers = -1;
    for (int n : {2147483647, 5, 4}) {
        o.overrides = runtime::n_cpu_moe_rules(n);
        const auto plan = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu);
        for (int il = 0; il < 4; ++il) {
            EXPECT_EQ(plan.device_of("blk." + std::to_string(il) + ".ffn_up_exps.weight"), Device::cpu()) << n;
        }
        EXPECT_EQ(plan.device_of("blk.3.attn_q.weight"), Device::cuda(0));
        EXPECT_EQ(plan.rules().at(0).below_layer, 4);
        if (n == 4) {
            EXPECT_TRUE(plan.warnings().empty());  // every block, exactly: nothing to say
            continue;
        }
        ASSERT_EQ(plan.warnings().size(), 1u) << n;
        const std::string& w = plan.warnings()[0];
        EXPECT_NE(w.find("--n-cpu-moe " + std::to_string(n) + ": the model has 4 blocks; the experts of all 4 stay on the CPU"),
                  std::string::npos) << w;
        EXPECT_LT(w.size(), 200u);
    }
}

TEST(Placement, CpuOnlyBuild) {
    // -ngl is ignored with a warning, as llama.cpp does without a GPU ...
    PlacementOptions o;
    o.n_gpu_layers = 99;
    auto plan = PlacementPlan::build(moe_tensors(), 4, o, {});
    EXPECT_EQ(plan.device_of("output.weight"), Device::cpu());
    ASSERT_EQ(plan.warnings().size(), 1u);
    EXPECT_NE(plan.warnings()[0].find("-ngl 99: no GPU offload (" + runtime::no_gpu_reason() + ")"), std::string::npos)
        << plan.warnings()[0];
    EXPECT_NE(plan.warnings()[0].find("running on the CPU"), std::string::npos) << plan.warnings()[0];
    EXPECT_EQ(plan.n_gpu_layers(), 0);
    // ... but a rule naming a CUDA device is an error that names it
    o.overrides = runtime::parse_override_rules("exps=CUDA0");
    try {
        PlacementPlan::build(moe_tensors(), 4, o, {});
        FAIL() << "expected runtime::Error";
    } catch (const runtime::Error& e) {
        EXPECT_NE(std::string(e.what()).find("CUDA0"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(runtime::no_gpu_reason()), std::string::npos) << e.what();
    }
    // and a CPU-only override is fine
    o.overrides = runtime::parse_override_rules("exps=CPU");
    EXPECT_NO_THROW(PlacementPlan::build(moe_tensors(), 4, o, {}));
}

TEST(Placement, RuleSyntax) {
    const auto rules = runtime::parse_override_rules("a=cpu,b=cuda:1,c=CUDA2");
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[1].device, Device::cuda(1));
    EXPECT_EQ(rules[2].device, Device::cuda(2));
    EXPECT_EQ(Device::parse("CUDA12").name(), "CUDA12");
    for (const char* bad : {"", "noequals", "=CPU", "x=", "x=GPU0", "x=CUDA", "([=CPU", "a=CPU,,b=CPU"}) {
        EXPECT_THROW(runtime::parse_override_rules(bad), runtime::Error) << bad;
    }
}

TEST(Placement, DescribeNamesRulesAndDevices) {
    PlacementOptions o;
    o.n_gpu_layers = -1;
    o.overrides = runtime::cpu_moe_rules();
    const auto text = PlacementPlan::build(moe_tensors(), 4, o, kOneGpu).describe();
    EXPECT_NE(text.find("--cpu-moe"), std::string::npos) << text;
    EXPECT_NE(text.find("12 tensors"), std::string::npos) << text;  // 4 layers x 3 expert tensors
    EXPECT_NE(text.find("CUDA0"), std::string::npos) << text;
}

}  // namespace
