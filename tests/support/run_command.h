// Runs a built app as a child process and captures its exit status, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace testing_support {

struct CommandResult {
    int status = -1;  // exit code, or -1 if it did not exit normally (a crash)
    std::string out;
    std::string err;
};

// `args` is appended to the binary path as is (the caller quotes); the shell does redirection.
inline CommandResult run_binary(const std::filesystem::path& bin, const std::string& args) {
    namespace fs = std::filesystem;
    const fs::path err_file = fs::temp_directory_path() / ("app-stderr-" + std::to_string(::getpid()));
    const std::string cmd = "'" + bin.string() + "' " + args + " 2>'" + err_file.string() + "'";
    CommandResult r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream e(err_file);
    r.err.assign(std::istreambuf_iterator<char>(e), {});
    fs::remove(err_file);
    return r;
}

// An app of apps/ in the build tree.
inline CommandResult run_app(const std::string& app, const std::string& args) {
    return run_binary(std::filesystem::path(GGUF_BUILD_DIR) / "apps" / app / app, args);
}

}  // namespace testing_support
