#include "convert/outtype.h"

#include "convert/error.h"

namespace convert {

std::optional<OutType> parse_outtype(std::string_view s) {
    if (s == "auto") return OutType::Auto;
    if (s == "f32") return OutType::F32;
    if (s == "f16") return OutType::F16;
    if (s == "bf16") return OutType::BF16;
    if (s == "q8_0") return OutType::Q8_0;
    return std::nullopt;
}

std::string_view outtype_name(OutType t) {
    switch (t) {
        case OutType::Auto: return "auto";
        case OutType::F32: return "f32";
        case OutType::F16: return "f16";
        case OutType::BF16: return "bf16";
        case OutType::Q8_0: return "q8_0";
    }
    return "?";
}

gguf::GgmlType outtype_tensor_type(OutType t) {
    switch (t) {
        case OutType::F32: return gguf::GgmlType::F32;
        case OutType::F16: return gguf::GgmlType::F16;
        case OutType::BF16: return gguf::GgmlType::BF16;
        case OutType::Q8_0: return gguf::GgmlType::Q8_0;
        case OutType::Auto: break;
    }
    throw Error("outtype auto must be resolved before choosing tensor types");
}

uint32_t outtype_file_type(OutType t) {
    switch (t) {
        case OutType::F32: return 0;
        case OutType::F16: return 1;
        case OutType::Q8_0: return 7;
        case OutType::BF16: return 32;
        case OutType::Auto: break;
    }
    throw Error("outtype auto must be resolved before choosing the file type");
}

}  // namespace convert
