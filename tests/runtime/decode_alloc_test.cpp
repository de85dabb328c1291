// No allocation in the per-token hot path: once a context exists (and has run once, so that lazily
// built tables are in place), decoding a token must not call operator new. The test binary replaces
// the global allocation functions to count the calls made while a flag is set.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "fixtures.h"
#include "runtime/context.h"
#include "runtime/model.h"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using testing_support::fixture;

long allocations_while_decoding(const std::string& model_path, int n_threads) {
    const auto model = runtime::Model::load(model_path);
    runtime::ContextParams params;
    params.n_ctx = 64;
    params.n_threads = n_threads;
    runtime::Context ctx(*model, params);
    const int32_t prompt[] = {1, 15, 27, 300, 42};
    ctx.decode(prompt);  // a batch, then one token: every path has run once
    const int32_t first = 7;
    ctx.decode({&first, 1});
    allocations = 0;
    counting = true;
    for (int32_t t = 0; t < 16; ++t) ctx.decode({&t, 1});
    counting = false;
    return allocations.load();
}

TEST(DecodeAllocations, NoneAfterTheFirstTokenQuantized) {
    // the project's own default model: always present, so this runs without ../shared too
    const std::string model = GGUF_SOURCE_DIR "/testdata/tiny-dense-q8_0.gguf";
    for (int threads : {1, 2}) EXPECT_EQ(allocations_while_decoding(model, threads), 0) << threads << " threads";
}

TEST(DecodeAllocations, NoneAfterTheFirstTokenFloatAndMoe) {
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    for (const char* model : {"gguf/tiny-dense-bf16.gguf", "gguf/tiny-moe-bf16.gguf"}) {
        for (int threads : {1, 2}) {
            EXPECT_EQ(allocations_while_decoding(fixture(model).string(), threads), 0)
                << model << ", " << threads << " threads";
        }
    }
}

}  // namespace
