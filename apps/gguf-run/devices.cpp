// gguf-run devices: the compute devices this build can use and what they offer — the CPU's SIMD level
// and threads, each CUDA device's memory, and with --bandwidth how fast weights reach it.
#include <omp.h>

#include <cstdio>
#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/json_writer.h"
#include "modes.h"
#include "options.h"
#include "quant/quant.h"
#include "runtime/gpu_info.h"
#include "runtime/placement.h"

namespace gguf_run {

int run_devices(const std::vector<std::string>& args) {
    bool json = false, bandwidth = false;
    appcommon::OptionSet opts("gguf-run", "Usage: gguf-run devices [--bandwidth] [--json]");
    opts.flag({"--bandwidth"}, "measure host<->device copy and device read bandwidth", &bandwidth);
    opts.flag({"--json"}, "machine-readable output", &json);
    if (opts.parse(args) == appcommon::OptionSet::Outcome::Exit) return 0;
    if (!opts.positional().empty()) throw appcommon::UsageError{"unexpected argument '" + opts.positional().front() + "'"};

    std::string why;
    const std::vector<runtime::GpuInfo> gpus = runtime::query_gpus(&why);
    std::vector<runtime::GpuBandwidth> bws;
    if (bandwidth) {
        for (const auto& g : gpus) bws.push_back(runtime::measure_gpu_bandwidth(g.device.index));
    }

    if (json) {
        appcommon::JsonWriter j(std::cout);
        j.begin_object();
        j.key("cpu").begin_object().field("threads", omp_get_max_threads()).field("simd", quant::simd_level());
        j.end_object();
        j.field("cuda_build", runtime::built_with_cuda()).field("cuda_libraries", runtime::cuda_library_versions());
        j.key("gpus").begin_array();
        for (size_t i = 0; i < gpus.size(); ++i) {
            const auto& g = gpus[i];
            j.begin_object()
                .field("device", g.device.name())
                .field("name", g.name)
                .field("compute_capability", std::to_string(g.compute_major) + "." + std::to_string(g.compute_minor))
                .field("multiprocessors", g.multiprocessors)
                .field("total_bytes", g.total_bytes)
                .field("free_bytes", g.free_bytes);
            if (i < bws.size()) {
                j.field("host_to_device_gbs", bws[i].host_to_device_gbs)
                    .field("device_to_host_gbs", bws[i].device_to_host_gbs)
                    .field("device_read_gbs", bws[i].device_read_gbs);
            }
            j.end_object();
        }
        j.end_array();
        if (gpus.empty()) j.field("no_gpu_reason", why);
        j.end_object();
        std::cout << "\n";
        return 0;
    }

    std::printf("CPU: %d threads, %s kernels\n", omp_get_max_threads(), quant::simd_level());
    if (runtime::built_with_cuda()) std::printf("CUDA build: %s\n", runtime::cuda_library_versions().c_str());
    if (gpus.empty()) std::printf("no GPU: %s\n", why.c_str());
    for (size_t i = 0; i < gpus.size(); ++i) {
        const auto& g = gpus[i];
        std::printf("%s: %s, compute %d.%d, %d SMs, %s free of %s\n", g.device.name().c_str(), g.name.c_str(),
                    g.compute_major, g.compute_minor, g.multiprocessors, runtime::format_bytes(g.free_bytes).c_str(),
                    runtime::format_bytes(g.total_bytes).c_str());
        if (i < bws.size()) {
            std::printf("  host->device %.1f GB/s, device->host %.1f GB/s, device read %.0f GB/s\n",
                        bws[i].host_to_device_gbs, bws[i].device_to_host_gbs, bws[i].device_read_gbs);
        }
    }
    return 0;
}

}  // namespace gguf_run
