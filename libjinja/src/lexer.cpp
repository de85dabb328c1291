// Jinja2's lexer rules as transformers sets them up: trim_blocks drops the newline after a block or
// comment tag, lstrip_blocks drops the spaces and tabs before one when they start a line, "-" strips
// all whitespace on its side, "+" keeps it; "\r\n" reads as "\n" and one final newline is dropped
// (keep_trailing_newline off).
#include <cctype>
#include <string>

#include "jinja/template.h"
#include "syntax.h"

namespace jinja::detail {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string normalize_newlines(std::string_view source) {
    std::string s;
    s.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
        if (source[i] == '\r') {
            s += '\n';
            if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
        } else {
            s += source[i];
        }
    }
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

class Lexer {
public:
    explicit Lexer(std::string_view source) : src_(normalize_newlines(source)) {}

    std::vector<Token> run() {
        bool line_starting = true;  // the text to come starts a line (template start, or a trimmed newline)
        while (pos_ < src_.size()) {
            size_t open = find_open(pos_);
            std::string text = src_.substr(pos_, open - pos_);
            if (open == src_.size()) {
                add_text(text);
                break;
            }
            const char kind = src_[open + 1];  // '{', '%' or '#'
            const char sign = open + 2 < src_.size() ? src_[open + 2] : '\0';
            if (sign == '-') {
                while (!text.empty() && is_space(text.back())) text.pop_back();
            } else if (sign != '+' && kind != '{') {
                const size_t line_start = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
                if (line_start > 0 || line_starting) {
                    bool blank = true;
                    for (size_t i = line_start; i < text.size(); ++i) blank = blank && is_space(text[i]);
                    if (blank) text.resize(line_start);
                }
            }
            add_text(text);
            count_lines(pos_, open);
            pos_ = open + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
            if (kind == '#') {
                const size_t close = src_.find("#}", pos_);
                if (close == std::string::npos) throw Error("line " + std::to_string(line_) + ": unclosed comment");
                count_lines(pos_, close);
                line_starting = finish_tag(close, src_[close - 1], true);
                continue;
            }
            if (kind == '%' && raw_block()) {
                line_starting = false;
                continue;
            }
            tokens_.push_back({kind == '{' ? Token::Type::VarBegin : Token::Type::BlockBegin, "", line_});
            line_starting = lex_tag(kind == '{' ? '}' : '%');
        }
        tokens_.push_back({Token::Type::End, "", line_});
        return std::move(tokens_);
    }

private:
    size_t find_open(size_t from) const {
        for (size_t i = from; i + 1 < src_.size(); ++i) {
            if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
        }
        return src_.size();
    }

    void count_lines(size_t from, size_t to) {
        for (size_t i = from; i < to && i < src_.size(); ++i) line_ += src_[i] == '\n';
    }

    void add_text(const std::string& text) {
        if (!text.empty()) tokens_.push_back({Token::Type::Text, text, line_});
    }

    // After a tag's closer at `close` ("%}", "}}" or "#}"): "-" before it strips all following
    // whitespace; trim_blocks drops one newline after block and comment tags unless "+" is there.
    // Returns whether the consumed text ends with a newline (the next text starts a line).
    bool finish_tag(size_t close, char before, bool block_or_comment) {
        pos_ = close + 2;
        if (before == '-') {
            const size_t start = pos_;
            while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
            count_lines(start, pos_);
            return pos_ > start && src_[pos_ - 1] == '\n';
        }
        if (block_or_comment && before != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
            ++pos_;
            ++line_;
            return true;
        }
        return false;
    }

    // {% raw %}...{% endraw %}: the text between is kept as it is.
    bool raw_block() {
        size_t p = pos_;
        while (p < src_.size() && is_space(src_[p])) ++p;
        if (src_.compare(p, 3, "raw") != 0) return false;
        p += 3;
        while (p < src_.size() && is_space(src_[p])) ++p;
        if (src_.compare(p, 2, "%}") != 0 && src_.compare(p, 3, "-%}") != 0) return false;
        const size_t body = src_.find("%}", p) + 2;
        size_t end = src_.find("endraw", body);
        if (end == std::string::npos) throw Error("line " + std::to_string(line_) + ": unclosed raw block");
        size_t tag = src_.rfind("{%", end);
        std::string text = src_.substr(body, tag - body);
        if (src_.compare(tag, 3, "{%-") == 0) {
            while (!text.empty() && is_space(text.back())) text.pop_back();
        }
        add_text(text);
        const size_t close = src_.find("%}", end);
        if (close == std::string::npos) throw Error("line " + std::to_string(line_) + ": unclosed raw block");
        count_lines(pos_, close);
        finish_tag(close, src_[close - 1], true);
        return true;
    }

    // The tokens of one tag up to its closer ("}}" or "%}" outside brackets).
    bool lex_tag(char closer) {
        int depth = 0;
        while (true) {
            while (pos_ < src_.size() && is_space(src_[pos_])) {
                line_ += src_[pos_] == '\n';
                ++pos_;
            }
            if (pos_ >= src_.size()) throw Error("line " + std::to_string(line_) + ": unclosed tag");
            const char c = src_[pos_];
            const auto closes_at = [&](size_t at) {
                return depth == 0 && at + 1 < src_.size() && src_[at] == closer && src_[at + 1] == '}';
            };
            if ((c == '-' || c == '+') && closes_at(pos_ + 1)) {
                tokens_.push_back({closer == '}' ? Token::Type::VarEnd : Token::Type::BlockEnd, "", line_});
                return finish_tag(pos_ + 1, c, closer == '%');
            }
            if (closes_at(pos_)) {
                tokens_.push_back({closer == '}' ? Token::Type::VarEnd : Token::Type::BlockEnd, "", line_});
                return finish_tag(pos_, ' ', closer == '%');
            }
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                const size_t start = pos_;
                while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
                tokens_.push_back({Token::Type::Name, src_.substr(start, pos_ - start), line_});
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                lex_number();
            } else if (c == '\'' || c == '"') {
                lex_string(c);
            } else {
                static const char* const ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                                  ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"};
                bool found = false;
                for (const char* op : ops) {
                    if (src_.compare(pos_, std::char_traits<char>::length(op), op) == 0) {
                        if (*op == '(' || *op == '[' || *op == '{') ++depth;
                        if ((*op == ')' || *op == ']' || *op == '}') && depth > 0) --depth;
                        tokens_.push_back({Token::Type::Op, op, line_});
                        pos_ += std::char_traits<char>::length(op);
                        found = true;
                        break;
                    }
                }
                if (!found) throw Error("line " + std::to_string(line_) + ": unexpected character '" + std::string(1, c) + "'");
            }
        }
    }

    void lex_number() {
        const size_t start = pos_;
        while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
        bool is_float = false;
        if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
            is_float = true;
            ++pos_;
            while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
        }
        if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
            size_t p = pos_ + 1;
            if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
            if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
                is_float = true;
                pos_ = p;
                while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
            }
        }
        std::string text = src_.substr(start, pos_ - start);
        std::erase(text, '_');
        tokens_.push_back({is_float ? Token::Type::Float : Token::Type::Int, text, line_});
    }

    void lex_string(char quote) {
        ++pos_;
        std::string value;
        while (true) {
            if (pos_ >= src_.size()) throw Error("line " + std::to_string(line_) + ": unterminated string");
            const char c = src_[pos_++];
            if (c == quote) break;
            if (c == '\n') ++line_;
            if (c != '\\' || pos_ >= src_.size()) {
                value += c;
                continue;
            }
            const char e = src_[pos_++];
            switch (e) {
                case 'n': value += '\n'; break;
                case 't': value += '\t'; break;
                case 'r': value += '\r'; break;
                case '\\': value += '\\'; break;
                case '\'': value += '\''; break;
                case '"': value += '"'; break;
                case 'b': value += '\b'; break;
                case 'f': value += '\f'; break;
                case 'x':
                case 'u':
                case 'U': append_code_point(value, e == 'x' ? 2 : e == 'u' ? 4 : 8); break;
                case '\n': ++line_; break;  // a line continuation
                default:  // Python keeps unknown escapes as written
                    value += '\\';
                    value += e;
            }
        }
        tokens_.push_back({Token::Type::String, value, line_});
    }

    // \xHH, \uHHHH, \UHHHHHHHH in a string literal (Python's unicode-escape), as UTF-8.
    void append_code_point(std::string& out, int digits) {
        if (pos_ + static_cast<size_t>(digits) > src_.size()) throw Error("line " + std::to_string(line_) + ": bad escape");
        const unsigned long cp = std::stoul(src_.substr(pos_, static_cast<size_t>(digits)), nullptr, 16);
        pos_ += static_cast<size_t>(digits);
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::string src_;
    size_t pos_ = 0;
    int line_ = 1;
    std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace jinja::detail
