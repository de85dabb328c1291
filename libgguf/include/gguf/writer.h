// Writing GGUF files by streaming: header and metadata first, then tensor data in declaration
// order, into a temp file beside the target that is renamed over it only when complete.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "gguf/metadata.h"
#include "gguf/output_file.h"

namespace gguf {

// True when both paths name the same existing file (hard links and symlinks included).
bool same_file(const std::string& a, const std::string& b);

class Writer {
public:
    // Nothing touches `path` until finish(); the temp file (gguf/output_file.h) leaves nothing
    // behind if the writer is destroyed unfinished, or the process is interrupted. `policy` is
    // checked again when the header is written; callers check it with check_output_path() before
    // their work starts. A symlink `path` keeps pointing at the new file.
    explicit Writer(std::string path, uint32_t version = 3, OutputPolicy policy = {});
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    Metadata& metadata() { return metadata_; }
    // Declares the next tensor; its data offset follows from the ones declared before it.
    void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims);
    const std::vector<TensorInfo>& tensors() const { return tensors_; }

    // Bytes of the current tensor, in one call or several; moves on to the next tensor when the
    // current one is complete. The header is written on the first call.
    void write_data(std::span<const uint8_t> bytes);
    // Checks every tensor was written in full, flushes, syncs and renames onto the target.
    void finish();

    // Total size the finished file will have (valid once all tensors are declared).
    uint64_t expected_file_size();

private:
    void write_header();
    void put(const void* p, size_t n);
    void put_string(const std::string& s);
    void put_value(const Value& v);
    void pad_to(uint64_t alignment);
    uint32_t alignment() const;

    std::string path_;
    OutputPolicy policy_;
    std::unique_ptr<TempFile> temp_;
    uint32_t version_;
    Metadata metadata_;
    std::vector<TensorInfo> tensors_;
    std::FILE* out_ = nullptr;
    uint64_t written_ = 0;  // bytes written to the file so far
    bool header_done_ = false;
    bool finished_ = false;
    size_t cur_tensor_ = 0;
    uint64_t cur_written_ = 0;  // bytes of the current tensor written so far
    std::vector<char> buffer_;
};

}  // namespace gguf
