// The tensor-core attention's tiles against the shared memory of each device class: every head size and
// cache kind gets tiles that fit, the full ones where the part allows them.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "cuda/attention_tc_tiles.h"

namespace rc = runtime::cuda;

namespace {

// cudaDevAttrMaxSharedMemoryPerBlockOptin of each class
constexpr size_t kHopper = 227 * 1024;    // H100, H200
constexpr size_t kA100 = 163 * 1024;      // A100 (sm_80)
constexpr size_t kConsumer = 99 * 1024;   // RTX 30xx (sm_86), 40xx (sm_89), 50xx (sm_120)

int full_tile(int head_dim) { return head_dim <= 128 ? 64 : 32; }

}  // namespace

TEST(AttentionTcTiles, SharedBytesFollowTheLayout) {
    // Q hi + lo for 64 rows, then K and V of 64 positions in two stages; rows of 128 + 8 halves
    EXPECT_EQ(rc::attention_tc_shared_bytes(128, 64, 2, true), 2u * 136 * (128 + 2 * 2 * 64));
    EXPECT_EQ(rc::attention_tc_shared_bytes(128, 64, 2, true), 104448u);
    // other caches: one stage of K and V, each hi and lo
    EXPECT_EQ(rc::attention_tc_shared_bytes(256, 32, 1, false), 2u * 264 * (128 + 4 * 32));
}

TEST(AttentionTcTiles, FullTilesWhereTheyFit) {
    for (size_t limit : {kHopper, kA100}) {
        for (int d : {32, 64, 128, 256}) {
            for (bool f16 : {true, false}) {
                const rc::AttentionTcTiles t = rc::attention_tc_tiles(d, f16, limit);
                EXPECT_EQ(t.positions, full_tile(d)) << "head size " << d << " f16 " << f16 << " limit " << limit;
                EXPECT_EQ(t.stages, f16 ? 2 : 1);
                EXPECT_EQ(t.shared_bytes, rc::attention_tc_shared_bytes(d, t.positions, t.stages, f16));
                EXPECT_LE(t.shared_bytes, limit);
            }
        }
    }
}

TEST(AttentionTcTiles, ConsumerPartsGetHalfTilesAtLargeHeads) {
    // full tiles at head size 128 take 102 KiB, at 256 132 KiB: past a 99 KiB part's limit
    for (int d : {32, 64, 128, 256}) {
        for (bool f16 : {true, false}) {
            const rc::AttentionTcTiles t = rc::attention_tc_tiles(d, f16, kConsumer);
            EXPECT_EQ(t.positions, d <= 64 ? full_tile(d) : full_tile(d) / 2) << "head size " << d << " f16 " << f16;
            EXPECT_EQ(t.stages, f16 ? 2 : 1);
            EXPECT_LE(t.shared_bytes, kConsumer);
        }
    }
    // head size 256 fills the 99 KiB exactly
    EXPECT_EQ(rc::attention_tc_tiles(256, true, kConsumer).shared_bytes, kConsumer);
}

TEST(AttentionTcTiles, NothingFitsIsSaid) {
    const rc::AttentionTcTiles t = rc::attention_tc_tiles(256, false, 48 * 1024);
    EXPECT_EQ(t.positions, 0);
    EXPECT_EQ(t.shared_bytes, 0u);
}

TEST(AttentionTcTiles, TheLimitCapIsANumberOfBytes) {
    EXPECT_EQ(rc::shared_limit_cap(nullptr), SIZE_MAX);
    EXPECT_EQ(rc::shared_limit_cap(""), SIZE_MAX);
    EXPECT_EQ(rc::shared_limit_cap("101376"), 101376u);
    for (const char* bad : {"abc", "99K", "-5", "1e5", " 100"}) {
        try {
            rc::shared_limit_cap(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const runtime::Error& e) {
            EXPECT_EQ(std::string(e.what()), "GGUF_CUDA_SMEM_LIMIT: '" + std::string(bad) + "' is not a number of bytes");
        }
    }
}
