// GGUF_CUDA_PREFILL's and GGUF_CUDA_FUSE's parsers (no device needed): defaults, each setting, and bad input as an Error.
#include <gtest/gtest.h>

#include "cuda/prefill_choice.h"
#include "runtime/error.h"

namespace {

namespace rc = runtime::cuda;

TEST(CudaPrefillChoice, DefaultsWhenUnset) {
    for (const char* spec : {static_cast<const char*>(nullptr), "", ","}) {
        const rc::PrefillChoice c = rc::parse_prefill_choice(spec);
        // tensor-core attention and no dense f16 path: what measured correct and fastest at scale
        // (prefill_choice.h)
        EXPECT_FALSE(c.f32_attention);
        EXPECT_EQ(c.dense_rows, rc::kDenseOff);
        EXPECT_EQ(c.tile, rc::MmaTile::Slots64Short);
        EXPECT_EQ(c.down_tile, rc::MmaTile::Rows128Paired);
        EXPECT_FALSE(c.dense_experts);
    }
}

TEST(CudaPrefillChoice, EachSetting) {
    const rc::PrefillChoice c = rc::parse_prefill_choice("attn=f32,dense=100000,tile=32");
    EXPECT_TRUE(c.f32_attention);
    EXPECT_EQ(c.dense_rows, 100000);
    EXPECT_EQ(c.tile, rc::MmaTile::Slots32);
    EXPECT_EQ(rc::parse_prefill_choice("tile=64s").tile, rc::MmaTile::Slots64Short);
    EXPECT_EQ(rc::parse_prefill_choice("tile=128").tile, rc::MmaTile::Rows128);
    EXPECT_EQ(rc::parse_prefill_choice("tile=128p").tile, rc::MmaTile::Rows128Paired);
    EXPECT_EQ(rc::parse_prefill_choice("tile=32,tile=64").tile, rc::MmaTile::Slots64);  // the last one wins
    const rc::PrefillChoice d = rc::parse_prefill_choice("down=64s");
    EXPECT_EQ(d.down_tile, rc::MmaTile::Slots64Short);
    EXPECT_EQ(d.tile, rc::MmaTile::Slots64Short);  // the gate/up and dense tile keeps its default
    EXPECT_EQ(rc::parse_prefill_choice("tile=32").down_tile, rc::MmaTile::Rows128Paired);
    EXPECT_FALSE(rc::parse_prefill_choice("attn=f32,attn=tc").f32_attention);
    EXPECT_FALSE(rc::parse_prefill_choice("attn=tc").f32_attention);
    EXPECT_EQ(rc::parse_prefill_choice("dense=64").dense_rows, 64);
    EXPECT_EQ(rc::parse_prefill_choice("dense=64,dense=off").dense_rows, rc::kDenseOff);
    EXPECT_TRUE(rc::parse_prefill_choice("moe=auto").dense_experts);
    EXPECT_FALSE(rc::parse_prefill_choice("moe=auto,moe=int8").dense_experts);
}

TEST(CudaPrefillChoice, BadSettingsAreErrors) {
    for (const char* spec : {"attn", "attn=f16", "dense=", "dense=0", "dense=12x", "dense=-3", "dense=of", "tile=16", "tile=64p", "down=", "down=256", "moe=f16", "speed=max"}) {
        EXPECT_THROW(rc::parse_prefill_choice(spec), runtime::Error) << spec;
    }
}

TEST(CudaPrefillChoice, FusionSwitch) {
    for (const char* spec : {static_cast<const char*>(nullptr), "", "1"}) {
        const rc::FusionChoice f = rc::parse_fusion_choice(spec);
        EXPECT_TRUE(f.on);
    }
    EXPECT_FALSE(rc::parse_fusion_choice("0").on);
    for (const char* bad : {"yes", "2", "all", " 1"}) {
        try {
            rc::parse_fusion_choice(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const runtime::Error& e) {
            EXPECT_NE(std::string(e.what()).find("GGUF_CUDA_FUSE"), std::string::npos) << e.what();
        }
    }
}

}  // namespace

