// Bringing a memory-mapped model's weights into RAM before the first token needs them, and keeping
// them there. Faulting pages in lazily reads the file 128 KB at a time in the order the first tokens
// touch it; reading it with many threads at once is an order of magnitude faster on storage that
// rewards parallel requests (a 1.9 GB file, cold, on the 2-core VM's disk: 1.5 s with 8 readers,
// 14.5 s read sequentially).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace runtime {

// Reads every page of the ranges (one byte per 4 KiB) on n_threads threads, after telling the kernel
// they will be needed. Returns the bytes covered.
uint64_t prefault(const std::vector<std::span<const uint8_t>>& ranges, int n_threads);

// mlock()s the ranges; returns an empty string or why it failed (RLIMIT_MEMLOCK, most often).
std::string lock_in_memory(const std::vector<std::span<const uint8_t>>& ranges);

}  // namespace runtime
