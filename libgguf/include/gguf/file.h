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
    uint64_t offset = 0;        // relative to the start of the data section

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

private:
    Mapping(const uint8_t* data, size_t size, bool owned) : data_(data), size_(size), owned_(owned) {}
    const uint8_t* data_;
    size_t size_;
    bool owned_;
};

class File {
public:
    // Maps and validates a file. Any defect throws gguf::Error "PATH: WHAT at offset N".
    static File open(const std::string& path);
    // Validates bytes the caller keeps alive (fuzzing, tests); `name` is used in errors.
    static File parse(std::span<const uint8_t> bytes, const std::string& name = "<memory>");

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t file_size() const { return map_->bytes().size(); }
    uint64_t data_offset() const { return data_offset_; }  // absolute offset of the data section

    const Metadata& metadata() const { return metadata_; }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;
    const TensorInfo& tensor(std::string_view name) const;  // missing throws

    // Zero-copy view of a tensor's bytes inside the mapping.
    std::span<const uint8_t> tensor_data(const TensorInfo& t) const;

private:
    std::string path_;
    std::shared_ptr<const Mapping> map_;
    uint32_t version_ = 0;
    uint32_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    Metadata metadata_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;

    friend class Parser;
};

}  // namespace gguf
