#include "convert/sentencepiece_model.h"

#include <cstring>

#include "convert/error.h"
#include "gguf/error.h"
#include "gguf/file.h"

namespace convert {

namespace {

// Protobuf wire types (the two group types are deprecated and never used by sentencepiece).
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class WireReader {
public:
    WireReader(std::span<const uint8_t> bytes, const std::string& source, size_t base)
        : bytes_(bytes), source_(source), base_(base) {}

    bool done() const { return pos_ >= bytes_.size(); }

    [[noreturn]] void fail(const std::string& what) const {
        throw Error(source_ + ": " + what + " at offset " + std::to_string(base_ + pos_));
    }

    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (done()) fail("truncated varint");
            const uint8_t b = bytes_[pos_++];
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        fail("varint longer than 10 bytes");
    }

    // Reads a field key; returns false at the end of the message.
    bool key(uint32_t& field, uint32_t& wire) {
        if (done()) return false;
        const size_t at = pos_;
        const uint64_t k = varint();
        field = static_cast<uint32_t>(k >> 3);
        wire = static_cast<uint32_t>(k & 7);
        if (field == 0) {
            pos_ = at;
            fail("field number 0");
        }
        return true;
    }

    // A length-delimited payload and the absolute offset it starts at.
    std::span<const uint8_t> bytes(size_t& start) {
        const uint64_t n = varint();
        if (n > bytes_.size() - pos_) fail("length-delimited field of " + std::to_string(n) + " bytes runs past the end");
        start = base_ + pos_;
        std::span<const uint8_t> out = bytes_.subspan(pos_, static_cast<size_t>(n));
        pos_ += static_cast<size_t>(n);
        return out;
    }

    uint32_t fixed32() {
        if (bytes_.size() - pos_ < 4) fail("truncated fixed32 field");
        uint32_t v;
        std::memcpy(&v, bytes_.data() + pos_, 4);
        pos_ += 4;
        return v;
    }

    void skip(uint32_t wire) {
        size_t ignored;
        switch (wire) {
            case kVarint: varint(); return;
            case kFixed64:
                if (bytes_.size() - pos_ < 8) fail("truncated fixed64 field");
                pos_ += 8;
                return;
            case kLengthDelimited: bytes(ignored); return;
            case kFixed32: fixed32(); return;
            default: fail("unsupported protobuf wire type " + std::to_string(wire));
        }
    }

private:
    std::span<const uint8_t> bytes_;
    const std::string& source_;
    size_t base_;
    size_t pos_ = 0;
};

SentencePiece parse_piece(std::span<const uint8_t> bytes, const std::string& source, size_t base, size_t index) {
    WireReader r(bytes, source, base);
    SentencePiece p;
    bool has_piece = false;
    uint32_t field, wire;
    while (r.key(field, wire)) {
        if (field == 1 && wire == kLengthDelimited) {  // piece
            size_t start;
            auto s = r.bytes(start);
            p.piece.assign(reinterpret_cast<const char*>(s.data()), s.size());
            has_piece = true;
        } else if (field == 2 && wire == kFixed32) {  // score
            const uint32_t bits = r.fixed32();
            std::memcpy(&p.score, &bits, 4);
        } else if (field == 3 && wire == kVarint) {  // type
            const uint64_t t = r.varint();
            if (t < 1 || t > 6) r.fail("piece " + std::to_string(index) + " has undefined type " + std::to_string(t));
            p.type = static_cast<PieceType>(t);
        } else if (field <= 3) {
            r.fail("piece " + std::to_string(index) + " field " + std::to_string(field) + " has wire type " +
                   std::to_string(wire));
        } else {
            r.skip(wire);
        }
    }
    if (!has_piece) throw Error(source + ": piece " + std::to_string(index) + " has no text at offset " + std::to_string(base));
    return p;
}

}  // namespace

std::vector<SentencePiece> parse_sentencepiece_model(std::span<const uint8_t> bytes, const std::string& source) {
    WireReader r(bytes, source, 0);
    std::vector<SentencePiece> pieces;
    uint32_t field, wire;
    while (r.key(field, wire)) {
        if (field == 1) {  // repeated SentencePiece pieces
            if (wire != kLengthDelimited) r.fail("pieces field has wire type " + std::to_string(wire));
            size_t start;
            auto sub = r.bytes(start);
            pieces.push_back(parse_piece(sub, source, start, pieces.size()));
        } else {  // trainer_spec, normalizer_spec, ...: not needed for the vocabulary
            r.skip(wire);
        }
    }
    if (pieces.empty()) throw Error(source + ": no pieces (not a SentencePiece model?)");
    return pieces;
}

std::vector<SentencePiece> read_sentencepiece_model(const std::string& path) {
    std::shared_ptr<const gguf::Mapping> map;
    try {
        map = gguf::Mapping::map_file(path);
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
    return parse_sentencepiece_model(map->bytes(), path);
}

}  // namespace convert
