#include "residency.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace runtime {

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kChunk = size_t{4} << 20;  // a unit of work: big enough to be a long sequential read

// The page-aligned span that holds r.
std::span<const uint8_t> page_span(std::span<const uint8_t> r) {
    const auto begin = reinterpret_cast<uintptr_t>(r.data()) / kPage * kPage;
    const auto end = reinterpret_cast<uintptr_t>(r.data() + r.size());
    return {reinterpret_cast<const uint8_t*>(begin), end - begin};
}

}  // namespace

uint64_t prefault(const std::vector<std::span<const uint8_t>>& ranges, int n_threads) {
    struct Piece {
        const uint8_t* p;
        size_t n;
    };
    std::vector<Piece> pieces;
    uint64_t total = 0;
    for (const auto& r0 : ranges) {
        if (r0.empty()) continue;
        const auto r = page_span(r0);
        ::madvise(const_cast<uint8_t*>(r.data()), r.size(), MADV_WILLNEED);
        for (size_t off = 0; off < r.size(); off += kChunk) pieces.push_back({r.data() + off, std::min(kChunk, r.size() - off)});
        total += r0.size();
    }
    const int64_t n = static_cast<int64_t>(pieces.size());
    uint64_t sink = 0;
    // dynamic: pieces already in the page cache take microseconds, the others milliseconds
#pragma omp parallel for num_threads(std::max(1, n_threads)) schedule(dynamic, 1) reduction(+ : sink)
    for (int64_t i = 0; i < n; ++i) {
        const volatile uint8_t* p = pieces[static_cast<size_t>(i)].p;
        for (size_t off = 0; off < pieces[static_cast<size_t>(i)].n; off += kPage) sink += p[off];
    }
    (void)sink;
    return total;
}

std::string lock_in_memory(const std::vector<std::span<const uint8_t>>& ranges) {
    for (const auto& r0 : ranges) {
        if (r0.empty()) continue;
        const auto r = page_span(r0);
        if (::mlock(r.data(), r.size()) != 0) return std::strerror(errno);
    }
    return {};
}

}  // namespace runtime
