// GPU queries on a machine with a GPU (label gpu): every device reports its memory and bandwidths.
#include <gtest/gtest.h>

#include "runtime/error.h"
#include "runtime/gpu_info.h"

namespace {

TEST(GpuInfoOnDevice, EveryDeviceReportsMemoryAndBandwidth) {
    std::string why;
    const auto gpus = runtime::query_gpus(&why);
    if (gpus.empty()) GTEST_SKIP() << why;
    for (const auto& g : gpus) {
        SCOPED_TRACE(g.device.name() + " " + g.name);
        EXPECT_FALSE(g.name.empty());
        EXPECT_GE(g.compute_major, 5);
        EXPECT_GT(g.multiprocessors, 0);
        EXPECT_GT(g.total_bytes, 1ull << 30);
        EXPECT_GT(g.free_bytes, 0u);
        EXPECT_LE(g.free_bytes, g.total_bytes);
        const runtime::GpuBandwidth bw = runtime::measure_gpu_bandwidth(g.device.index, 64ull << 20);
        // the slowest link of any supported card (PCIe 3 x4) still moves more than 1 GB/s, and a device
        // reads its own memory faster than the bus delivers
        EXPECT_GT(bw.host_to_device_gbs, 1.0);
        EXPECT_GT(bw.device_to_host_gbs, 1.0);
        EXPECT_GT(bw.device_read_gbs, bw.host_to_device_gbs);
    }
}

TEST(GpuInfoOnDevice, AbsurdAllocationIsAnError) {
    const auto gpus = runtime::query_gpus();
    if (gpus.empty()) GTEST_SKIP() << "no GPU";
    EXPECT_THROW(runtime::measure_gpu_bandwidth(0, gpus[0].total_bytes * 4), runtime::Error);
}

}  // namespace
