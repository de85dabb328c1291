#include "gguf/checksum.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

namespace gguf {

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed) { return XXH64(bytes.data(), bytes.size(), seed); }

std::vector<uint64_t> xxh64_tensors(const File& file, const std::function<bool(const TensorInfo&)>& want,
                                    unsigned n_threads) {
    const auto& tensors = file.tensors();
    std::vector<uint64_t> out(tensors.size());
    std::vector<size_t> order;
    for (size_t i = 0; i < tensors.size(); ++i)
        if (!want || want(tensors[i])) order.push_back(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return tensors[a].n_bytes() > tensors[b].n_bytes(); });
    if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
    n_threads = static_cast<unsigned>(std::min<size_t>(n_threads, std::max<size_t>(order.size(), 1)));
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t k; (k = next.fetch_add(1)) < order.size();) {
            out[order[k]] = xxh64(file.tensor_data(tensors[order[k]]));
        }
    };
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < n_threads; ++i) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    return out;
}

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace gguf
