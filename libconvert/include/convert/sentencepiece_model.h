// The part of a SentencePiece tokenizer.model (a serialized sentencepiece.ModelProto) conversion
// needs: each piece's text, score and type. Parsed directly from the protobuf wire format.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace convert {

// sentencepiece.ModelProto.SentencePiece.Type.
enum class PieceType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct SentencePiece {
    std::string piece;
    float score = 0.0f;
    PieceType type = PieceType::Normal;
};

// Pieces in id order. Malformed input (truncated fields, bad varints, unknown wire types, a
// piece without text, an undefined type) throws convert::Error naming `source` and the offset.
std::vector<SentencePiece> parse_sentencepiece_model(std::span<const uint8_t> bytes, const std::string& source);
std::vector<SentencePiece> read_sentencepiece_model(const std::string& path);

}  // namespace convert
