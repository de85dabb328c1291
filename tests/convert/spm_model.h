// Writing SentencePiece tokenizer.model files in tests: the protobuf wire encoding of ModelProto's
// pieces (text, score, type), plus an unrelated field a real model has (trainer_spec).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "convert/sentencepiece_model.h"

namespace hf_test {

inline std::string varint(uint64_t v) {
    std::string s;
    while (v >= 0x80) {
        s += static_cast<char>(0x80 | (v & 0x7f));
        v >>= 7;
    }
    return s + static_cast<char>(v);
}

inline std::string length_delimited(uint32_t field, const std::string& payload) {
    return varint(field << 3 | 2) + varint(payload.size()) + payload;
}

inline std::string spm_piece(const convert::SentencePiece& p) {
    std::string m = length_delimited(1, p.piece);
    uint32_t bits;
    std::memcpy(&bits, &p.score, 4);
    m += varint(2 << 3 | 5) + std::string(reinterpret_cast<const char*>(&bits), 4);
    if (p.type != convert::PieceType::Normal) m += varint(3 << 3 | 0) + varint(static_cast<uint64_t>(p.type));
    return m;
}

inline std::string spm_model(const std::vector<convert::SentencePiece>& pieces) {
    std::string m;
    for (const auto& p : pieces) m += length_delimited(1, spm_piece(p));
    // trainer_spec { model_type: BPE (3), vocab_size: n }: present in real files, not needed here.
    m += length_delimited(2, varint(3 << 3 | 0) + varint(4) + varint(53 << 3 | 0) + varint(pieces.size()));
    return m;
}

}  // namespace hf_test
