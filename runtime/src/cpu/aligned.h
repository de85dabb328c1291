// Scratch vectors that start on a cache line. Threads write disjoint row ranges of the executor's
// buffers; with row lengths and split points at multiples of 16 floats, a buffer that starts on a
// 64-byte boundary gives no two threads a line to share (std::vector<float> starts on 16 bytes).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace runtime::cpu {

template <typename T>
struct CacheLineAllocator {
    using value_type = T;
    static constexpr std::align_val_t kAlign{64};

    CacheLineAllocator() = default;
    template <typename U>
    CacheLineAllocator(const CacheLineAllocator<U>&) {}

    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
    void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
    template <typename U>
    bool operator==(const CacheLineAllocator<U>&) const {
        return true;
    }
};

template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace runtime::cpu
