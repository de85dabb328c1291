// GPU queries on any machine: without a GPU (or in a CPU-only build) the list is empty with a reason,
// never an exception. gpu_info_device_test.cpp checks the devices themselves.
#include <gtest/gtest.h>

#include "runtime/error.h"
#include "runtime/gpu_info.h"

namespace {

TEST(GpuInfo, NoGpuIsAReasonNotAFailure) {
    std::string why;
    const auto gpus = runtime::query_gpus(&why);
    if (gpus.empty()) {
        EXPECT_FALSE(why.empty());
    }
    for (const auto& g : gpus) {
        EXPECT_FALSE(g.device.is_cpu());
        EXPECT_LE(g.free_bytes, g.total_bytes);
    }
    if (!runtime::built_with_cuda()) {
        EXPECT_TRUE(runtime::cuda_library_versions().empty());
        EXPECT_THROW(runtime::measure_gpu_bandwidth(0), runtime::Error);
    } else {
        EXPECT_NE(runtime::cuda_library_versions().find("cuBLAS"), std::string::npos);
    }
}

}  // namespace
