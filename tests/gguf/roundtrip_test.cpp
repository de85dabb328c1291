// Reading each reference GGUF and writing it back gives the identical bytes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "gguf/file.h"
#include "gguf/writer.h"

using namespace gguf;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

void expect_round_trip(const std::string& fixture) {
    fs::path src = testing_support::fixture(fixture);
    File f = File::open(src.string());
    fs::path out = fs::temp_directory_path() / ("roundtrip-" + std::to_string(::getpid()) + ".gguf");
    {
        Writer w(out.string(), f.version());
        for (const auto& [k, v] : f.metadata().entries()) w.metadata().set(k, v);
        for (const auto& t : f.tensors()) w.add_tensor(t.name, t.type, t.dims);
        for (const auto& t : f.tensors()) w.write_data(f.tensor_data(t));
        w.finish();
    }
    std::vector<uint8_t> a = read_all(src), b = read_all(out);
    fs::remove(out);
    ASSERT_EQ(a.size(), b.size()) << fixture;
    size_t first_diff = std::mismatch(a.begin(), a.end(), b.begin()).first - a.begin();
    EXPECT_EQ(first_diff, a.size()) << fixture << " differs first at byte " << first_diff;
}

}  // namespace

class RoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTrip, ByteIdentical) {
    REQUIRE_FIXTURE(GetParam());
    expect_round_trip(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RoundTrip,
                         ::testing::Values("gguf/tiny-dense-bf16.gguf", "gguf/tiny-moe-bf16.gguf",
                                           "gguf/llama-2-tiny-random.gguf", "quant/quant-vectors.gguf",
                                           "llama-cpp/imatrix-dense.gguf", "llama-cpp/imatrix-moe.gguf"),
                         [](const auto& info) {
                             std::string n = fs::path(info.param).stem().string();
                             for (char& c : n) if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n;
                         });
