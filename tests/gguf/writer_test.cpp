#include "gguf/writer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gguf/error.h"
#include "gguf/file.h"

using namespace gguf;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
    fs::path d = fs::temp_directory_path() / ("gguf-writer-test-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}

size_t files_in(const fs::path& dir) {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

TEST(Writer, WritesWhatTheReaderReads) {
    fs::path dir = temp_dir();
    fs::path out = dir / "all.gguf";
    std::vector<uint8_t> a(4 * 3 * 4), b(2 * 34);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(255 - i);
    {
        Writer w(out.string());
        Metadata& m = w.metadata();
        m.set("general.architecture", Value::string("llama"));
        m.set("general.alignment", Value::u32(64));
        m.set("t.u8", Value::u8(200));
        m.set("t.i16", Value::i16(-300));
        m.set("t.u64", Value::u64(1ull << 50));
        m.set("t.f64", Value::f64(0.25));
        m.set("t.bool", Value::boolean(true));
        Array inner{ValueType::I32, {Value::i32(1), Value::i32(-2)}};
        Array outer{ValueType::Array, {Value::array(inner), Value::array(inner)}};
        m.set("t.nested", Value::array(outer));
        w.add_tensor("a", GgmlType::F32, {4, 3});
        w.add_tensor("b", GgmlType::Q8_0, {32, 2});
        uint64_t expected = w.expected_file_size();
        w.write_data({a.data(), 10});  // in pieces
        w.write_data({a.data() + 10, a.size() - 10});
        w.write_data(b);
        w.finish();
        EXPECT_EQ(fs::file_size(out), expected);
    }
    File f = File::open(out.string());
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
    EXPECT_EQ(f.metadata().get_u32("t.u8"), 200u);
    EXPECT_EQ(f.metadata().get_i64("t.i16"), -300);
    EXPECT_EQ(f.metadata().get_u64("t.u64"), 1ull << 50);
    EXPECT_TRUE(f.metadata().get_bool("t.bool"));
    const Array& nested = f.metadata().get_array("t.nested");
    ASSERT_EQ(nested.items.size(), 2u);
    EXPECT_EQ(nested.items[1].as_array().items[1].as_i64(), -2);
    ASSERT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.tensor("b").offset, 64u);
    auto da = f.tensor_data(f.tensor("a"));
    auto db = f.tensor_data(f.tensor("b"));
    EXPECT_TRUE(std::equal(da.begin(), da.end(), a.begin()));
    EXPECT_TRUE(std::equal(db.begin(), db.end(), b.begin()));
    EXPECT_EQ(files_in(dir), 1u);  // no temp file left behind
    fs::remove_all(dir);
}

TEST(Writer, UnfinishedWriteLeavesNothing) {
    fs::path dir = temp_dir();
    fs::path out = dir / "partial.gguf";
    {
        std::ofstream(out) << "previous contents";
    }
    {
        Writer w(out.string());
        w.add_tensor("x", GgmlType::F32, {8});
        std::vector<uint8_t> half(16);
        w.write_data(half);
        EXPECT_THROW(w.finish(), Error);  // 16 of 32 bytes
    }
    std::ifstream in(out);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(s, "previous contents");
    EXPECT_EQ(files_in(dir), 1u);
    fs::remove_all(dir);
}

TEST(Writer, RejectsInvalidTensors) {
    Writer w("/nonexistent-dir/x.gguf");
    EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_0, {33}), Error);
    EXPECT_THROW(w.add_tensor(std::string(64, 'n'), GgmlType::F32, {1}), Error);
    w.add_tensor("dup", GgmlType::F32, {1});
    EXPECT_THROW(w.add_tensor("dup", GgmlType::F32, {1}), Error);
    EXPECT_THROW(w.add_tensor("5d", GgmlType::F32, {1, 1, 1, 1, 1}), Error);
    std::vector<uint8_t> data(4);
    EXPECT_THROW(w.write_data(data), Error);  // cannot create the temp file
}

TEST(Writer, TooMuchDataIsAnError) {
    fs::path dir = temp_dir();
    Writer w((dir / "over.gguf").string());
    w.add_tensor("x", GgmlType::F32, {1});
    std::vector<uint8_t> data(8);
    EXPECT_THROW(w.write_data(data), Error);
    fs::remove_all(dir);
}

TEST(Writer, SameFileDetectsLinks) {
    fs::path dir = temp_dir();
    fs::path a = dir / "a", b = dir / "b";
    std::ofstream(a) << "x";
    fs::create_symlink(a, b);
    EXPECT_TRUE(same_file(a.string(), b.string()));
    EXPECT_FALSE(same_file(a.string(), (dir / "missing").string()));
    fs::remove_all(dir);
}

namespace {

// Resident kibibytes of the mapping that holds `p`, from /proc/self/smaps.
uint64_t resident_kib_of(const void* p) {
    std::ifstream smaps("/proc/self/smaps");
    const auto addr = reinterpret_cast<uintptr_t>(p);
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
        uintptr_t lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
            inside = addr >= lo && addr < hi;
        } else if (inside && line.rfind("Rss:", 0) == 0) {
            return std::stoull(line.substr(4));
        }
    }
    return 0;
}

}  // namespace

// A tensor released after use leaves this process's resident set and reads back the same afterwards;
// a borrowed buffer (File::parse) is left as it is.
TEST(Mapping, ReleasedTensorPagesLeaveTheResidentSetAndReadBack) {
    fs::path dir = temp_dir();
    fs::path out = dir / "release.gguf";
    std::vector<float> values(2 << 20);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 1000) * 0.5f;
    {
        Writer w(out.string());
        w.metadata().set("general.architecture", Value::string("llama"));
        w.add_tensor("big", GgmlType::F32, {1024, 2048});
        w.write_data({reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float)});
        w.finish();
    }
    const File f = File::open(out.string());
    const TensorInfo& t = f.tensor("big");
    const auto data = f.tensor_data(t);
    const auto read_all = [&] {
        uint64_t sum = 0;
        for (size_t i = 0; i < data.size(); i += 4096) sum += data[i];
        return sum;
    };
    const uint64_t before = read_all();
    EXPECT_GE(resident_kib_of(data.data()), 7u * 1024);  // 8 MiB of tensor read
    f.release_tensor_data(t);
    EXPECT_LT(resident_kib_of(data.data()), 64u);  // the header's page or two at most
    EXPECT_EQ(read_all(), before);
    EXPECT_EQ(std::memcmp(data.data(), values.data(), data.size()), 0);

    std::ifstream in(out, std::ios::binary);
    std::vector<uint8_t> copy((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const File parsed = File::parse(copy);
    parsed.release_tensor_data(parsed.tensor("big"));
    EXPECT_EQ(std::memcmp(parsed.tensor_data(parsed.tensor("big")).data(), values.data(), data.size()), 0);
    fs::remove_all(dir);
}
