// Safe outputs: the checks before work starts, unnamed and named temp files, replacing with the
// old file's mode, symlinks kept, and parallel tensor checksums equal to the sequential ones.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gguf/checksum.h"
#include "gguf/error.h"
#include "gguf/file.h"
#include "gguf/output_file.h"
#include "gguf/writer.h"

namespace {

namespace fs = std::filesystem;

struct Dir {
    fs::path path = fs::temp_directory_path() / ("gguf-output-test-" + std::to_string(::getpid()));
    Dir() {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~Dir() { fs::remove_all(path); }
    size_t entries() const { return static_cast<size_t>(std::distance(fs::directory_iterator(path), {})); }
};

void write_small(const fs::path& p, gguf::OutputPolicy policy = {}) {
    gguf::Writer w(p.string(), 3, std::move(policy));
    w.metadata().set("general.architecture", gguf::Value::string("llama"));
    w.add_tensor("a", gguf::GgmlType::F32, {8});
    w.add_tensor("b", gguf::GgmlType::F32, {4, 2});
    std::vector<float> v(16, 1.5f);
    w.write_data({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
    w.finish();
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const gguf::Error& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(OutputFile, ChecksBeforeWork) {
    Dir d;
    const fs::path out = d.path / "out.gguf";
    gguf::OutputPolicy keep;
    keep.replace_existing = false;
    EXPECT_NO_THROW(gguf::check_output_path(out.string(), keep));
    EXPECT_NE(error_of([&] { gguf::check_output_path(d.path.string(), keep); }).find("is a directory"), std::string::npos);
    EXPECT_NE(error_of([&] { gguf::check_output_path((d.path / "no/such/x.gguf").string(), keep); }).find("does not exist"),
              std::string::npos);
    std::ofstream(out) << "x";
    EXPECT_NE(error_of([&] { gguf::check_output_path(out.string(), keep); }).find("exists; pass --force"), std::string::npos);
    gguf::OutputPolicy force;
    force.inputs = {out.string()};
    EXPECT_NE(error_of([&] { gguf::check_output_path(out.string(), force); }).find("is an input of this job"),
              std::string::npos);
    EXPECT_NE(error_of([&] { gguf::check_output_path("/dev/null", {}); }).find("not a regular file"), std::string::npos);
    if (::geteuid() != 0) {  // root writes anywhere
        ::chmod(d.path.c_str(), 0500);
        EXPECT_NE(error_of([&] { gguf::check_output_path((d.path / "y.gguf").string(), {}); }).find("cannot create files"),
                  std::string::npos);
        ::chmod(d.path.c_str(), 0700);
    }
}

TEST(OutputFile, ReplacingKeepsModeAndSymlinks) {
    Dir d;
    const fs::path out = d.path / "out.gguf", link = d.path / "link.gguf";
    std::ofstream(out) << "old";
    ::chmod(out.c_str(), 0640);
    fs::create_symlink(out.filename(), link);  // relative, as users make them
    write_small(link);
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_EQ(gguf::File::open(out.string()).tensors().size(), 2u);
    struct stat st {};
    ASSERT_EQ(::stat(out.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    EXPECT_EQ(d.entries(), 2u);
}

TEST(OutputFile, NamedTempFilesAreCommittedOrRemoved) {
    Dir d;
    ::setenv("GGUF_NAMED_TEMP", "1", 1);
    const fs::path out = d.path / "named.gguf";
    {
        gguf::TempFile t(out.string());
        EXPECT_FALSE(t.unnamed());
        EXPECT_EQ(d.entries(), 1u);  // the named temp file
    }
    EXPECT_EQ(d.entries(), 0u);  // destroyed uncommitted: gone
    write_small(out);
    EXPECT_EQ(gguf::File::open(out.string()).tensors().size(), 2u);
    EXPECT_EQ(d.entries(), 1u);
    {
        gguf::Writer w(out.string());
        w.add_tensor("a", gguf::GgmlType::F32, {8});
        std::vector<float> v(4, 0.0f);
        w.write_data({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});  // half a tensor, then abandoned
    }
    EXPECT_EQ(d.entries(), 1u);
    EXPECT_EQ(gguf::File::open(out.string()).tensors().size(), 2u);  // the old file is untouched
    ::unsetenv("GGUF_NAMED_TEMP");
}

TEST(OutputFile, UnnamedTempFilesLeaveNoName) {
    Dir d;
    ::unsetenv("GGUF_NAMED_TEMP");
    gguf::TempFile t((d.path / "x.gguf").string());
    if (!t.unnamed()) GTEST_SKIP() << "this filesystem has no O_TMPFILE; the named path is tested above";
    EXPECT_EQ(d.entries(), 0u);
    ASSERT_EQ(::write(t.fd(), "GGUF", 4), 4);
    t.commit();
    EXPECT_EQ(fs::file_size(d.path / "x.gguf"), 4u);
}

TEST(Checksums, ParallelEqualsSequential) {
    Dir d;
    const fs::path out = d.path / "sums.gguf";
    {
        gguf::Writer w(out.string());
        for (int i = 0; i < 9; ++i) w.add_tensor("t" + std::to_string(i), gguf::GgmlType::F32, {32 * (i + 1)});
        for (int i = 0; i < 9; ++i) {
            std::vector<float> v(static_cast<size_t>(32 * (i + 1)), static_cast<float>(i));
            w.write_data({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
        }
        w.finish();
    }
    const gguf::File f = gguf::File::open(out.string());
    for (unsigned threads : {1u, 3u, 0u}) {
        const auto sums = gguf::xxh64_tensors(f, {}, threads);
        for (size_t i = 0; i < f.tensors().size(); ++i) EXPECT_EQ(sums[i], gguf::xxh64(f.tensor_data(f.tensors()[i])));
    }
    const auto some = gguf::xxh64_tensors(f, [](const gguf::TensorInfo& t) { return t.name == "t4"; });
    EXPECT_EQ(some[4], gguf::xxh64(f.tensor_data(f.tensors()[4])));
    EXPECT_EQ(some[3], 0u);
}

TEST(TensorInfo, RowsOfZeroLengthRowsDoNotDivide) {
    gguf::TensorInfo t;
    t.dims = {0, 32};
    EXPECT_EQ(t.n_rows(), 32u);
    EXPECT_TRUE(t.has_zero_dim());
    t.dims = {};
    EXPECT_EQ(t.n_rows(), 1u);
    EXPECT_FALSE(t.has_zero_dim());
}

}  // namespace
