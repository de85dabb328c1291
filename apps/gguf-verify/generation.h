// The generation check: greedy continuations of prompts compared with the text expected of them, a
// regression gate for a model's behaviour. The cases are a text file, one per line:
//
//   PROMPT<TAB>EXPECTED CONTINUATION
//
// with \n, \t and \\ escaped; empty lines and lines starting with # are ignored.
#pragma once

#include <string>
#include <vector>

#include "check.h"
#include "runtime/context.h"
#include "runtime/tokenizer.h"

namespace verify {

struct GenerationCase {
    std::string prompt, expected;
    int line = 0;
};

// Malformed lines throw std::runtime_error naming the file and line.
std::vector<GenerationCase> read_generation_cases(const std::string& path);
void write_generation_cases(const std::string& path, const std::vector<GenerationCase>& cases);

// Greedy decoding from the prompt until `max_tokens`, the end-of-sequence token, or `enough_chars` of text.
std::string greedy_continuation(runtime::Context& ctx, const runtime::Tokenizer& tok, const std::string& prompt,
                                int max_tokens, size_t enough_chars);

// Each case passes when the continuation starts with its expected text. With `write_path`, the cases'
// continuations of `n_tokens` tokens are written there instead and the check reports what it wrote.
CheckResult generation_check(runtime::Context& ctx, const runtime::Tokenizer& tok, const std::string& path,
                             const std::string& write_path, int n_tokens);

}  // namespace verify
