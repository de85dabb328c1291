#include "convert/safetensors.h"

#include <algorithm>

#include "convert/error.h"
#include "convert/json.h"
#include "gguf/error.h"

namespace convert {

namespace {

// The format's own cap on the header; it also bounds what a hostile length field can make us read.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

bool parse_dtype(std::string_view s, Dtype& out) {
    if (s == "F32") out = Dtype::F32;
    else if (s == "F16") out = Dtype::F16;
    else if (s == "BF16") out = Dtype::BF16;
    else if (s == "U8") out = Dtype::U8;  // raw bytes: gpt-oss's MXFP4 expert blocks and scales
    else return false;
    return true;
}

}  // namespace

uint32_t dtype_size(Dtype d) {
    switch (d) {
        case Dtype::F32: return 4;
        case Dtype::F16:
        case Dtype::BF16: return 2;
        case Dtype::U8: return 1;
    }
    return 0;
}

uint64_t SafeTensor::n_elements() const {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    return n;
}

const SafeTensor* SafetensorsFile::find(std::string_view name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile f;
    f.path_ = std::make_unique<std::string>(path);
    try {
        f.map_ = gguf::Mapping::map_file(path);
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
    const std::span<const uint8_t> bytes = f.map_->bytes();
    const auto fail = [&](const std::string& what) -> Error { return Error(path + ": " + what); };

    if (bytes.size() < 8) throw fail("truncated: " + std::to_string(bytes.size()) + " bytes, too short for a header");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes[static_cast<size_t>(i)];
    if (header_len > kMaxHeaderBytes) throw fail("header length " + std::to_string(header_len) + " is implausible");
    if (header_len > bytes.size() - 8)
        throw fail("truncated: header of " + std::to_string(header_len) + " bytes but the file has " +
                   std::to_string(bytes.size()) + " bytes");
    const uint64_t data_start = 8 + header_len;
    const uint64_t data_size = bytes.size() - data_start;

    json::Value header;
    try {
        header = json::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()) + 8, header_len),
                             path + " (header)");
    } catch (const Error& e) {
        throw Error(std::string("invalid safetensors header JSON: ") + e.what());
    }
    if (!header.is_object()) throw fail("header is not a JSON object");

    struct Range {
        uint64_t begin, end;
        size_t index;
    };
    std::vector<Range> ranges;
    for (const auto& m : header.entries()) {
        if (m.key == "__metadata__") {
            if (!m.value.is_object()) throw fail("__metadata__ is not an object");
            continue;
        }
        const auto bad = [&](const std::string& what) { return fail("tensor '" + m.key + "': " + what); };
        if (!m.value.is_object()) throw bad("entry is not an object");
        const json::Value* dtype = m.value.find("dtype");
        const json::Value* shape = m.value.find("shape");
        const json::Value* offsets = m.value.find("data_offsets");
        if (!dtype || !dtype->is_string()) throw bad("missing or non-string dtype");
        if (!shape || !shape->is_array()) throw bad("missing or non-array shape");
        if (!offsets || !offsets->is_array() || offsets->size() != 2) throw bad("data_offsets must be [begin, end]");

        SafeTensor t;
        t.name = m.key;
        t.file = f.path_.get();
        if (!parse_dtype(dtype->as_string(), t.dtype))
            throw bad("unsupported dtype " + dtype->as_string() + " (supported: F32, F16, BF16, U8)");
        // Each dimension below 2^40 keeps the element count's product far from overflowing
        // before it is compared with the real byte range.
        uint64_t n = 1;
        bool overflow = false;
        for (const auto& d : shape->items()) {
            if (!d.is_integer() || d.as_int() < 0) throw bad("shape holds a value that is not a non-negative integer");
            const uint64_t v = static_cast<uint64_t>(d.as_int());
            if (v != 0 && n > UINT64_MAX / 8 / v) overflow = true;
            n *= v;
            t.shape.push_back(d.as_int());
        }
        if (overflow) throw bad("shape is too large");
        for (const auto& o : offsets->items())
            if (!o.is_integer() || o.as_int() < 0) throw bad("data_offsets must be non-negative integers");
        const uint64_t begin = static_cast<uint64_t>(offsets->at(0).as_int());
        const uint64_t end = static_cast<uint64_t>(offsets->at(1).as_int());
        if (begin > end) throw bad("data_offsets begin " + std::to_string(begin) + " is after end " + std::to_string(end));
        if (end > data_size)
            throw bad("byte range [" + std::to_string(begin) + ", " + std::to_string(end) +
                      ") runs past the data section of " + std::to_string(data_size) + " bytes (truncated file?)");
        const uint64_t want = n * dtype_size(t.dtype);
        if (end - begin != want)
            throw bad("shape and dtype need " + std::to_string(want) + " bytes but data_offsets span " +
                      std::to_string(end - begin));
        t.data = bytes.subspan(static_cast<size_t>(data_start + begin), static_cast<size_t>(end - begin));
        ranges.push_back({begin, end, f.tensors_.size()});
        f.tensors_.push_back(std::move(t));
    }

    // Overlapping tensors mean a corrupt or crafted file; the format forbids them.
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < ranges.size(); ++i)
        if (ranges[i].begin < ranges[i - 1].end && ranges[i].begin != ranges[i].end)
            throw fail("tensors '" + f.tensors_[ranges[i - 1].index].name + "' and '" +
                       f.tensors_[ranges[i].index].name + "' overlap");
    return f;
}

}  // namespace convert
