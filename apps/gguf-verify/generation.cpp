#include "generation.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "gguf/output_file.h"

namespace verify {

namespace {

std::string unescape(const std::string& s, const std::string& where) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\') {
            out += s[i];
            continue;
        }
        if (++i == s.size()) throw std::runtime_error(where + ": a backslash ends the line");
        switch (s[i]) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case '\\': out += '\\'; break;
            default: throw std::runtime_error(where + ": unknown escape \\" + std::string(1, s[i]));
        }
    }
    return out;
}

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\\') out += "\\\\";
        else out += c;
    }
    return out;
}

// Shown in a problem line: escaped and shortened.
std::string shown(const std::string& s) {
    const std::string e = escape(s);
    return "\"" + (e.size() > 60 ? e.substr(0, 60) + "..." : e) + "\"";
}

}  // namespace

std::vector<GenerationCase> read_generation_cases(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open");
    std::vector<GenerationCase> cases;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        const std::string where = path + ":" + std::to_string(n);
        const size_t tab = line.find('\t');
        if (tab == std::string::npos) throw std::runtime_error(where + ": no tab between prompt and expected text");
        GenerationCase c;
        c.prompt = unescape(line.substr(0, tab), where);
        c.expected = unescape(line.substr(tab + 1), where);
        c.line = n;
        if (c.prompt.empty()) throw std::runtime_error(where + ": empty prompt");
        cases.push_back(std::move(c));
    }
    if (cases.empty()) throw std::runtime_error(path + ": no prompts");
    return cases;
}

void write_generation_cases(const std::string& path, const std::vector<GenerationCase>& cases) {
    std::ostringstream out;
    out << "# gguf-verify generation cases: PROMPT<TAB>EXPECTED (greedy), \\n \\t \\\\ escaped\n";
    for (const auto& c : cases) out << escape(c.prompt) << "\t" << escape(c.expected) << "\n";
    gguf::write_file(path, out.str());
}

std::string greedy_continuation(runtime::Context& ctx, const runtime::Tokenizer& tok, const std::string& prompt,
                                int max_tokens, size_t enough_chars) {
    const auto prompt_tokens = tok.encode(prompt, true, false);
    if (prompt_tokens.empty()) throw std::runtime_error("prompt \"" + prompt + "\" has no tokens");
    const int room = ctx.n_ctx() - static_cast<int>(prompt_tokens.size());
    if (room <= 0) throw std::runtime_error("prompt of " + std::to_string(prompt_tokens.size()) + " tokens fills the context");
    max_tokens = std::min(max_tokens, room);
    ctx.truncate(0);
    auto logits = ctx.decode(prompt_tokens);
    std::vector<int32_t> generated;
    std::string text;
    for (int i = 0; i < max_tokens; ++i) {
        const auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        if (next == tok.eos()) break;
        generated.push_back(next);
        text = tok.decode(generated, false);
        if (text.size() >= enough_chars) break;
        if (i + 1 < max_tokens) logits = ctx.decode({&next, 1});
    }
    return text;
}

CheckResult generation_check(runtime::Context& ctx, const runtime::Tokenizer& tok, const std::string& path,
                             const std::string& write_path, int n_tokens) {
    CheckResult r;
    r.name = "generation";
    auto cases = read_generation_cases(path);
    if (!write_path.empty()) {
        for (auto& c : cases) c.expected = greedy_continuation(ctx, tok, c.prompt, n_tokens, SIZE_MAX);
        write_generation_cases(write_path, cases);
        r.figure = "wrote the greedy continuations of " + std::to_string(cases.size()) + " prompts to " + write_path;
        r.status = Status::Skipped;
        return r;
    }
    size_t matched = 0;
    for (const auto& c : cases) {
        // enough tokens for the expected text however it tokenizes, and a little more
        const int budget = static_cast<int>(tok.encode(c.expected, false, false).size()) + 8;
        const std::string got = greedy_continuation(ctx, tok, c.prompt, budget, c.expected.size());
        if (got.compare(0, c.expected.size(), c.expected) == 0) {
            ++matched;
        } else {
            r.problems.push_back(path + ":" + std::to_string(c.line) + ": " + shown(c.prompt) + " continued as " +
                                 shown(got) + ", expected " + shown(c.expected));
        }
    }
    r.figure = std::to_string(matched) + " of " + std::to_string(cases.size()) + " greedy continuations as expected";
    r.metrics = {{"cases", static_cast<double>(cases.size())}, {"matched", static_cast<double>(matched)}};
    r.conclude();
    return r;
}

}  // namespace verify
