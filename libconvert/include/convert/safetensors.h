// Reading safetensors files: a memory-mapped file whose JSON header is validated in full (dtypes,
// shapes, byte ranges inside the file, no overlaps) before any tensor is handed out.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/file.h"

namespace convert {

// The element types a checkpoint's weights may have; anything else is rejected when opening. U8 is
// only converted as the blocks and scales of MXFP4 experts (gpt-oss); elsewhere it is refused.
enum class Dtype { F32, F16, BF16, U8 };

uint32_t dtype_size(Dtype d);

struct SafeTensor {
    std::string name;
    Dtype dtype = Dtype::F32;
    std::vector<int64_t> shape;        // PyTorch order: shape[0] is the outermost dimension
    std::span<const uint8_t> data;     // inside the file's mapping
    const std::string* file = nullptr; // path of the file holding it, for messages

    uint64_t n_elements() const;
};

class SafetensorsFile {
public:
    // Maps and validates; any defect throws convert::Error "PATH: WHAT".
    static SafetensorsFile open(const std::string& path);

    SafetensorsFile(SafetensorsFile&&) noexcept = default;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;

    const std::string& path() const { return *path_; }
    // In header order, which is the order a checkpoint's tensors are converted in.
    const std::vector<SafeTensor>& tensors() const { return tensors_; }
    const SafeTensor* find(std::string_view name) const;

private:
    SafetensorsFile() = default;
    // Heap-held so SafeTensor::file stays valid when the object moves.
    std::unique_ptr<std::string> path_;
    std::shared_ptr<const gguf::Mapping> map_;
    std::vector<SafeTensor> tensors_;
};

}  // namespace convert
