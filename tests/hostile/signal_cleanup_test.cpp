// SIGINT and SIGTERM (and, for the unnamed temp file, SIGKILL) in the middle of gguf-quantize leave
// neither a temp file nor an output: the
// temp file is unnamed (O_TMPFILE) where the filesystem allows, and a named one (forced here with
// GGUF_NAMED_TEMP=1, the path filesystems without O_TMPFILE take) is removed by the signal handler.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

class SignalCleanup : public ::testing::TestWithParam<std::tuple<int, bool>> {
protected:
    static void SetUpTestSuite() {
        dir_ = new hostile::TempDir("signal-model");
        // 6 blocks of 512 x 1536: 30 MiB of f32, a second or more of Q4_K_M quantizing on one thread
        hostile::write_big_f32_model(dir_->path / "big.gguf", 512, 1536, 6);
    }
    static void TearDownTestSuite() { delete dir_; }
    static hostile::TempDir* dir_;
};
hostile::TempDir* SignalCleanup::dir_ = nullptr;

TEST_P(SignalCleanup, LeavesNothingBehind) {
    const auto [sig, named] = GetParam();
    hostile::TempDir out("signal-out-" + std::to_string(sig) + (named ? "-named" : "-unnamed"));
    const std::string bin = std::string(GGUF_BUILD_DIR) + "/apps/gguf-quantize/gguf-quantize";
    const std::string in = (dir_->path / "big.gguf").string(), target = (out / "out.gguf").string();
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
        ::execl(bin.c_str(), bin.c_str(), in.c_str(), target.c_str(), "Q4_K_M", "1", static_cast<char*>(nullptr));
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
    ASSERT_TRUE(writing) << "the quantize ended before its temp file was seen (status " << status << ")";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "status " << status;
    EXPECT_EQ(out.listing(), std::vector<std::string>{}) << "left behind in " << out.path;
}

// SIGKILL cannot be caught: only the unnamed temp file leaves nothing then, and that is what it is for.
INSTANTIATE_TEST_SUITE_P(Kill, SignalCleanup, ::testing::Values(std::make_tuple(SIGKILL, false)),
                         [](const auto&) { return std::string("SIGKILL_unnamed"); });

INSTANTIATE_TEST_SUITE_P(Signals, SignalCleanup,
                         ::testing::Combine(::testing::Values(SIGINT, SIGTERM), ::testing::Bool()),
                         [](const auto& info) {
                             return std::string(std::get<0>(info.param) == SIGINT ? "SIGINT" : "SIGTERM") +
                                    (std::get<1>(info.param) ? "_named" : "_unnamed");
                         });

}  // namespace
