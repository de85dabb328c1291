#include "gguf/checksum.h"

#include <xxhash.h>

#include <cstdio>
#include <memory>

#include "gguf/metadata.h"

namespace gguf {

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed) { return XXH64(bytes.data(), bytes.size(), seed); }

uint64_t xxh3_64(std::span<const uint8_t> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

namespace {

struct StateDeleter {
    void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

void feed(XXH3_state_t* st, const void* p, size_t n) { XXH3_64bits_update(st, p, n); }

void feed_string(XXH3_state_t* st, const std::string& s) {
    const uint64_t n = s.size();
    feed(st, &n, 8);
    feed(st, s.data(), s.size());
}

void feed_value(XXH3_state_t* st, const Value& v) {
    switch (v.type()) {
        case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
        case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64: {
            // the value's low bytes as the file stores them (little-endian two's complement)
            const uint64_t u = v.type() == ValueType::U8 || v.type() == ValueType::U16 || v.type() == ValueType::U32 ||
                                       v.type() == ValueType::U64
                                   ? v.as_u64()
                                   : static_cast<uint64_t>(v.as_i64());
            feed(st, &u, scalar_size(v.type()));
            break;
        }
        case ValueType::F32: {
            const float f = static_cast<float>(v.as_f64());
            feed(st, &f, 4);
            break;
        }
        case ValueType::F64: {
            const double d = v.as_f64();
            feed(st, &d, 8);
            break;
        }
        case ValueType::Bool: {
            const uint8_t b = v.as_bool() ? 1 : 0;
            feed(st, &b, 1);
            break;
        }
        case ValueType::String: feed_string(st, v.as_string()); break;
        case ValueType::Array: {
            const Array& a = v.as_array();
            const auto et = static_cast<uint32_t>(a.elem_type);
            const uint64_t n = a.items.size();
            feed(st, &et, 4);
            feed(st, &n, 8);
            for (const Value& item : a.items) feed_value(st, item);
            break;
        }
    }
}

}  // namespace

uint64_t metadata_xxh3(const Metadata& metadata) {
    std::unique_ptr<XXH3_state_t, StateDeleter> st(XXH3_createState());
    XXH3_64bits_reset(st.get());
    for (const auto& [key, value] : metadata.entries()) {
        feed_string(st.get(), key);
        const auto t = static_cast<uint32_t>(value.type());
        feed(st.get(), &t, 4);
        feed_value(st.get(), value);
    }
    return XXH3_64bits_digest(st.get());
}

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace gguf
