// Hand-assembles GGUF bytes field by field, so tests can produce files no writer would.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace testing_support {

class GgufBuilder {
public:
    GgufBuilder& u8(uint8_t v) { return raw(&v, 1); }
    GgufBuilder& u32(uint32_t v) { return raw(&v, 4); }
    GgufBuilder& u64(uint64_t v) { return raw(&v, 8); }
    GgufBuilder& i64(int64_t v) { return raw(&v, 8); }
    GgufBuilder& str(const std::string& s) {
        u64(s.size());
        return raw(s.data(), s.size());
    }
    GgufBuilder& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
    }
    GgufBuilder& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
    GgufBuilder& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
    // One tensor info; dims in ggml order.
    GgufBuilder& tensor(const std::string& name, std::vector<int64_t> dims, uint32_t type, uint64_t offset) {
        str(name).u32(static_cast<uint32_t>(dims.size()));
        for (int64_t d : dims) i64(d);
        return u32(type).u64(offset);
    }
    GgufBuilder& pad(size_t alignment = 32) {
        while (bytes.size() % alignment) bytes.push_back(0);
        return *this;
    }
    GgufBuilder& zeros(size_t n) {
        bytes.insert(bytes.end(), n, 0);
        return *this;
    }
    GgufBuilder& raw(const void* p, size_t n) {
        const auto* c = static_cast<const uint8_t*>(p);
        bytes.insert(bytes.end(), c, c + n);
        return *this;
    }
    std::vector<uint8_t> bytes;
};

}  // namespace testing_support
