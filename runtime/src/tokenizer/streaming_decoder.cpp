#include "runtime/tokenizer.h"
#include "unicode.h"

namespace runtime {

namespace {

constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

}  // namespace

std::string StreamingDecoder::push(int32_t id) {
    const TokenType type = tokenizer_.token_type(id);
    if (!render_special_ && (type == TokenType::Control || type == TokenType::Unknown)) return {};
    pending_ += tokenizer_.token_to_piece(id);

    std::string out;
    size_t pos = 0;
    while (pos < pending_.size()) {
        const unicode::Utf8Scan scan = unicode::scan_utf8(std::string_view(pending_).substr(pos));
        out.append(pending_, pos, scan.valid);
        pos += scan.valid;
        // A character cut off by the end of the piece may still be completed by the next token.
        if (scan.bad == 0 || scan.truncated) break;
        out += kReplacementUtf8;
        pos += scan.bad;
    }
    pending_.erase(0, pos);
    return out;
}

std::string StreamingDecoder::flush() {
    if (pending_.empty()) return {};
    pending_.clear();
    return std::string(kReplacementUtf8);
}

}  // namespace runtime
