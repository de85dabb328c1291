// SIGINT and SIGTERM (and, for the unnamed temp file, SIGKILL) in the middle of gguf-quantize, or of
// gguf-verify writing a compact baseline, leave neither a temp file nor an output: the
// temp file is unnamed (O_TMPFILE) where the filesystem allows, and a named one (forced here with
// GGUF_NAMED_TEMP=1, the path filesystems without O_TMPFILE take) is removed by the signal handler.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>
#include <thread>

#include "gguf/output_file.h"
#include "hostile_corpus.h"

namespace {

namespace fs = std::filesystem;

using Clock = std::chrono::steady_clock;

// Whether `pid` holds a file open in `dir` (an unnamed temp file shows as "DIR/#123 (deleted)").
bool writes_into(pid_t pid, const fs::path& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        std::error_code ec2;
        const auto target = fs::read_symlink(e.path(), ec2).string();
        if (!ec2 && target.rfind(dir.string() + "/", 0) == 0 && target.find(".gguf") == std::string::npos) return true;
        if (!ec2 && target.find(".tmp") != std::string::npos) return true;
    }
    return false;
}

bool has_named_temp(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp") != std::string::npos) return true;
    return false;
}

enum class Writer { Quantize, Baseline };

class SignalCleanup : public ::testing::TestWithParam<std::tuple<Writer, int, bool>> {
protected:
    static void SetUpTestSuite() {
        dir_ = new hostile::TempDir("signal-model");
        // 6 blocks of 512 x 1536: 30 MiB of f32, a second or more of Q4_K_M quantizing on one thread
        hostile::write_big_f32_model(dir_->path / "big.gguf", 512, 1536, 6);
        // text for a baseline of many chunks: a second or more of evaluation on one thread
        std::ofstream text(dir_->path / "text.txt");
        for (int i = 0; i < 400; ++i) text << "def f" << i << "(x):\n    return x * " << i << " + len(str(x))\n\n";
    }
    // The command line, the output in `out` last.
    static std::vector<std::string> command(Writer w, const fs::path& out) {
        if (w == Writer::Quantize) {
            return {std::string(GGUF_BUILD_DIR) + "/apps/gguf-quantize/gguf-quantize", (dir_->path / "big.gguf").string(),
                    (out / "out.gguf").string(), "Q4_K_M", "1"};
        }
        return {std::string(GGUF_BUILD_DIR) + "/apps/gguf-verify/gguf-verify", "baseline", hostile::default_model().string(),
                "-f", (dir_->path / "text.txt").string(), "-c", "64", "-t", "1", "-o", (out / "base.bin").string()};
    }
    static void TearDownTestSuite() { delete dir_; }
    static hostile::TempDir* dir_;
};
hostile::TempDir* SignalCleanup::dir_ = nullptr;

TEST_P(SignalCleanup, LeavesNothingBehind) {
    const auto [writer, sig, named] = GetParam();
    hostile::TempDir out("signal-out-" + std::to_string(static_cast<int>(writer)) + "-" + std::to_string(sig) +
                         (named ? "-named" : "-unnamed"));
    std::vector<std::string> args = command(writer, out.path);
    const std::string target = args.back();
    if (sig == SIGKILL && !gguf::TempFile(target).unnamed()) {
        GTEST_SKIP() << "this filesystem has no O_TMPFILE: a SIGKILL leaves the named temp file";
    }

    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // the default dispositions, as from a shell in the foreground
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        if (named) ::setenv("GGUF_NAMED_TEMP", "1", 1);
        else ::unsetenv("GGUF_NAMED_TEMP");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    // signal only once the temp file is being written
    bool writing = false;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    int status = 0;
    bool exited = false;
    while (Clock::now() < deadline) {
        if (named ? has_named_temp(out.path) : writes_into(pid, out.path)) {
            writing = true;
            break;
        }
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!exited) {
        ::kill(pid, sig);
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    }
    ASSERT_TRUE(writing) << args[0] << " ended before its temp file was seen (status " << status << ")";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "status " << status;
    EXPECT_EQ(out.listing(), std::vector<std::string>{}) << "left behind in " << out.path;
}

std::string writer_name(Writer w) { return w == Writer::Quantize ? "quantize" : "baseline"; }

// SIGKILL cannot be caught: only the unnamed temp file leaves nothing then, and that is what it is for.
INSTANTIATE_TEST_SUITE_P(Kill, SignalCleanup,
                         ::testing::Combine(::testing::Values(Writer::Quantize, Writer::Baseline), ::testing::Values(SIGKILL),
                                            ::testing::Values(false)),
                         [](const auto& info) { return writer_name(std::get<0>(info.param)) + "_SIGKILL_unnamed"; });

INSTANTIATE_TEST_SUITE_P(Signals, SignalCleanup,
                         ::testing::Combine(::testing::Values(Writer::Quantize, Writer::Baseline),
                                            ::testing::Values(SIGINT, SIGTERM), ::testing::Bool()),
                         [](const auto& info) {
                             return writer_name(std::get<0>(info.param)) + "_" +
                                    (std::get<1>(info.param) == SIGINT ? "SIGINT" : "SIGTERM") +
                                    (std::get<2>(info.param) ? "_named" : "_unnamed");
                         });

}  // namespace
