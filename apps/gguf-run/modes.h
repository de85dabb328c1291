// The gguf-run modes; each takes the arguments after the mode name and returns the exit status.
#pragma once

#include <string>
#include <vector>

namespace gguf_run {

int run_generate(const std::vector<std::string>& args);
int run_chat(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_perplexity(const std::vector<std::string>& args);
int run_imatrix(const std::vector<std::string>& args);
int run_devices(const std::vector<std::string>& args);

}  // namespace gguf_run
