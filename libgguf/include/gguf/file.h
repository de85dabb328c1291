// Reading GGUF files: a validated, memory-mapped view of header, metadata, tensor infos and data.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/metadata.h"
#include "gguf/types.h"

namespace gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
inline constexpr std::string_view kAlignmentKey = "general.alignment";

struct TensorInfo {
    std::string name;
    GgmlType type = GgmlType::F32;
    std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
    uint64_t offset = 0;        // relative to the start of its file's data section
    uint32_t shard = 0;         // which file of a split model holds it (File::shard_path)

    uint64_t n_elements() const;
    uint64_t n_bytes() const;
    // The product of the dimensions after the first: no division, so a zero-length row is no hazard.
    uint64_t n_rows() const;
    bool has_zero_dim() const;
    std::string shape_string() const;  // "[256, 4096]"
};

// A read-only mapping of a whole file (or a caller-owned buffer for in-memory parsing).
class Mapping {
public:
    static std::shared_ptr<const Mapping> map_file(const std::string& path);
    static std::shared_ptr<const Mapping> borrow(std::span<const uint8_t> bytes);
    ~Mapping();
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    std::span<const uint8_t> bytes() const { return {data_, size_}; }
    // Drops the pages of `part` (inside bytes()) from this process's memory: asked out of the page cache
    // where no one else maps them (MADV_PAGEOUT), then unmapped from this process (MADV_DONTNEED), which
    // on a read-only file mapping loses nothing: a later read maps them again. Borrowed buffers are left
    // alone.
    void release(std::span<const uint8_t> part) const;

private:
    Mapping(const uint8_t* data, size_t size, bool owned) : data_(data), size_(size), owned_(owned) {}
    const uint8_t* data_;
    size_t size_;
    bool owned_;
};

class File {
public:
    // Maps and validates a file. Any defect throws gguf::Error "PATH: WHAT at offset N".
    // The first file of a split model (llama.cpp's gguf-split: split.count > 1, named
    // NAME-00001-of-0000N.gguf) opens the whole model: every shard is mapped and validated and the
    // tensors of all appear as one list, with the first file's metadata. Any other shard throws,
    // naming the first file, so a shard is never taken for a whole model.
    static File open(const std::string& path);
    // One file as it is, shards included (gguf-split --merge reads shards one by one through open()).
    static File open_single(const std::string& path);
    // Validates bytes the caller keeps alive (fuzzing, tests); `name` is used in errors.
    static File parse(std::span<const uint8_t> bytes, const std::string& name = "<memory>");

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t file_size() const;  // all shards together
    uint64_t data_offset() const { return data_offset_; }  // absolute offset of the (first file's) data section
    // Where a tensor's bytes start in the file that holds it.
    uint64_t absolute_offset(const TensorInfo& t) const;

    // 1 for a single file; the shard count of a split model opened through its first file.
    size_t n_shards() const { return 1 + more_shards_.size(); }
    const std::string& shard_path(size_t i) const { return i == 0 ? path_ : more_shards_.at(i - 1).path; }

    const Metadata& metadata() const { return metadata_; }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;
    const TensorInfo& tensor(std::string_view name) const;  // missing throws

    // Zero-copy view of a tensor's bytes inside the mapping.
    std::span<const uint8_t> tensor_data(const TensorInfo& t) const;
    // Done with a tensor's bytes: its pages leave this process's memory (Mapping::release), so that
    // streaming a model larger than RAM keeps the resident set at what is being worked on.
    void release_tensor_data(const TensorInfo& t) const;

private:
    // Shards 1.. of a split model; shard 0 is this file itself.
    struct Shard {
        std::string path;
        std::shared_ptr<const Mapping> map;
        uint64_t data_offset = 0;
    };
    void open_other_shards();  // split.cpp

    std::string path_;
    std::shared_ptr<const Mapping> map_;
    std::vector<Shard> more_shards_;
    uint32_t version_ = 0;
    uint32_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    Metadata metadata_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;

    friend class Parser;
};

}  // namespace gguf
