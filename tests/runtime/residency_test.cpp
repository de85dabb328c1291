// prefault and lock_in_memory on plain and file-mapped memory: every byte covered, nothing changed,
// and a refused mlock reported as a reason rather than an exception.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <numeric>
#include <vector>

#include "residency.h"

namespace {

TEST(Residency, PrefaultCoversEveryRangeAndLeavesDataAlone) {
    std::vector<uint8_t> a(3 * 4096 + 123), b(1 << 20);
    std::iota(a.begin(), a.end(), uint8_t{0});
    std::iota(b.begin(), b.end(), uint8_t{7});
    const auto a0 = a, b0 = b;
    // unaligned starts and an empty range
    const std::vector<std::span<const uint8_t>> ranges{{a.data() + 5, a.size() - 5}, {b.data(), b.size()}, {}};
    EXPECT_EQ(runtime::prefault(ranges, 3), a.size() - 5 + b.size());
    EXPECT_EQ(a, a0);
    EXPECT_EQ(b, b0);
}

TEST(Residency, PrefaultsAMappedFile) {
    const auto path = std::filesystem::temp_directory_path() / ("residency_" + std::to_string(::getpid()));
    std::vector<uint8_t> data(5 << 20);
    std::iota(data.begin(), data.end(), uint8_t{1});
    {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        ASSERT_TRUE(f);
        ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
        std::fclose(f);
    }
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    void* p = ::mmap(nullptr, data.size(), PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_NE(p, MAP_FAILED);
    const auto* bytes = static_cast<const uint8_t*>(p);
    EXPECT_EQ(runtime::prefault({{bytes + 100, data.size() - 100}}, 4), data.size() - 100);
    EXPECT_EQ(std::vector<uint8_t>(bytes, bytes + data.size()), data);
    const std::string why = runtime::lock_in_memory({{bytes, data.size()}});
    // root or a generous RLIMIT_MEMLOCK locks it; otherwise the reason comes back as text
    if (!why.empty()) std::printf("mlock refused here: %s\n", why.c_str());
    ::munlock(p, data.size());
    ::munmap(p, data.size());
    ::close(fd);
    std::filesystem::remove(path);
}

}  // namespace
