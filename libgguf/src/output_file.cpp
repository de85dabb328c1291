#include "gguf/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>

#include "gguf/error.h"
#include "gguf/writer.h"

namespace fs = std::filesystem;

namespace gguf {

namespace {

// ---- temp files a signal must remove -------------------------------------------------------
// A fixed table the handler can walk without allocating or locking (only unlink, which is
// async-signal-safe). Named temp files exist only on filesystems without O_TMPFILE, and for the
// instant between linking an unnamed file and renaming it over an existing output.
constexpr size_t kSlots = 16;
constexpr size_t kMaxPath = 4096;
char g_paths[kSlots][kMaxPath];
std::atomic<bool> g_used[kSlots];
std::mutex g_claim;  // claiming a slot (never taken in the handler)

int register_temp(const std::string& path) {
    if (path.size() >= kMaxPath) return -1;
    std::lock_guard lock(g_claim);
    for (size_t i = 0; i < kSlots; ++i) {
        if (g_used[i].load()) continue;
        std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
        g_used[i].store(true);
        return static_cast<int>(i);
    }
    return -1;  // more live temp files than slots: still removed on every path but a signal
}

void unregister_temp(int slot) {
    if (slot >= 0) g_used[slot].store(false);
}

extern "C" void remove_temps_and_die(int sig) {
    for (size_t i = 0; i < kSlots; ++i) {
        if (g_used[i].load()) ::unlink(g_paths[i]);
    }
    std::signal(sig, SIG_DFL);
    std::raise(sig);  // the exit status still says which signal ended the process
}

std::string errno_text() { return std::strerror(errno); }

std::string parent_dir(const std::string& path) {
    const fs::path p = fs::path(path).parent_path();
    return p.empty() ? std::string(".") : p.string();
}

std::string random_suffix() {
    std::random_device rd;
    return std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000);
}

bool proc_fd_available() { return ::access("/proc/self/fd", X_OK) == 0; }

// GGUF_NAMED_TEMP=1 forces the named temp file: the path filesystems without O_TMPFILE take,
// which tests must be able to exercise anywhere.
bool named_temp_forced() {
    const char* v = std::getenv("GGUF_NAMED_TEMP");
    return v && *v && std::string(v) != "0";
}

}  // namespace

void install_temp_cleanup_handlers() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int sig : {SIGINT, SIGTERM}) {
            struct sigaction old {};
            if (::sigaction(sig, nullptr, &old) != 0) continue;
            // a program (or a shell running it in the background) that set its own disposition keeps it
            if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
            struct sigaction sa {};
            sa.sa_handler = remove_temps_and_die;
            sigemptyset(&sa.sa_mask);
            ::sigaction(sig, &sa, nullptr);
        }
    });
}

std::string resolve_output_path(const std::string& path) {
    fs::path p(path);
    for (int depth = 0; depth < 40; ++depth) {
        std::error_code ec;
        if (!fs::is_symlink(fs::symlink_status(p, ec))) return p.string();
        const fs::path target = fs::read_symlink(p, ec);
        if (ec) throw Error(path + ": cannot read the symbolic link: " + ec.message());
        p = target.is_absolute() ? target : p.parent_path() / target;
    }
    throw Error(path + ": too many levels of symbolic links");
}

void check_output_path(const std::string& path, const OutputPolicy& policy) {
    if (path.empty()) throw Error("the output file name is empty");
    const std::string real = resolve_output_path(path);
    std::error_code ec;
    const fs::file_status st = fs::status(real, ec);
    if (fs::is_directory(st)) throw Error(path + ": is a directory, expected a file name");
    const std::string dir = parent_dir(real);
    if (!fs::is_directory(dir, ec)) throw Error(path + ": directory " + dir + " does not exist");
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        throw Error(path + ": cannot create files in " + dir + ": " + errno_text());
    }
    for (const std::string& in : policy.inputs) {
        if (same_file(in, path)) {
            throw Error(path + ": is an input of this job (" + in + "); refusing to overwrite an input");
        }
    }
    if (fs::exists(st)) {
        if (!fs::is_regular_file(st)) throw Error(path + ": exists and is not a regular file; refusing to replace it");
        if (!policy.replace_existing) {
            throw Error(path + ": exists; pass " + policy.force_flag + " to replace it");
        }
    }
}

TempFile::TempFile(const std::string& target) : target_(target) {
    install_temp_cleanup_handlers();
    const std::string dir = parent_dir(target_);
#ifdef O_TMPFILE
    if (!named_temp_forced() && proc_fd_available()) {
        fd_ = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
        if (fd_ >= 0) return;
        // EOPNOTSUPP / EISDIR / EINVAL: the filesystem cannot; a named file follows
    }
#endif
    name_ = target_ + ".tmp" + random_suffix();
    // registered before it exists: a signal between creating and registering it left it behind (seen
    // once in 810 test runs: SignalCleanup baseline_SIGTERM_named); unlinking a name not yet created is
    // harmless
    slot_ = register_temp(name_);
    fd_ = ::open(name_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
    if (fd_ < 0) {
        const std::string why = errno_text();
        unregister_temp(slot_);
        throw Error(name_ + ": cannot create: " + why);
    }
}

TempFile::~TempFile() {
    if (!committed_) discard();
    if (fd_ >= 0) ::close(fd_);
}

std::string TempFile::display_name() const { return unnamed() ? target_ + " (unnamed temp file)" : name_; }

void TempFile::discard() noexcept {
    if (!name_.empty()) {
        ::unlink(name_.c_str());
        unregister_temp(slot_);
        slot_ = -1;
    }
}

void TempFile::commit() {
    if (committed_) return;
    if (::fsync(fd_) != 0) throw Error(display_name() + ": sync failed: " + errno_text());
    struct stat old {};
    const bool replacing = ::stat(target_.c_str(), &old) == 0;
    // the replacement keeps the permissions the user gave the file it replaces
    if (replacing && ::fchmod(fd_, old.st_mode & 07777) != 0) {
        throw Error(display_name() + ": cannot set the mode of the file it replaces: " + errno_text());
    }
    if (unnamed()) {
        const std::string fd_path = "/proc/self/fd/" + std::to_string(fd_);
        if (!replacing && ::linkat(AT_FDCWD, fd_path.c_str(), AT_FDCWD, target_.c_str(), AT_SYMLINK_FOLLOW) == 0) {
            committed_ = true;
        } else if (!replacing && errno != EEXIST) {
            throw Error(target_ + ": cannot link the finished file into place: " + errno_text());
        } else {
            // linkat never replaces: link under a temp name (named only for this instant) and rename
            name_ = target_ + ".tmp" + random_suffix();
            slot_ = register_temp(name_);
            if (::linkat(AT_FDCWD, fd_path.c_str(), AT_FDCWD, name_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
                const std::string why = errno_text();
                unregister_temp(slot_);
                name_.clear();
                throw Error(target_ + ": cannot link the finished file into place: " + why);
            }
        }
    }
    if (!committed_) {
        if (std::rename(name_.c_str(), target_.c_str()) != 0) {
            throw Error(target_ + ": cannot rename the temp file into place: " + errno_text());
        }
        unregister_temp(slot_);
        slot_ = -1;
        committed_ = true;
    }
    // the new directory entry survives a crash too
    const int dfd = ::open(parent_dir(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void write_file(const std::string& path, std::string_view bytes) {
    TempFile temp(resolve_output_path(path));
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(temp.fd(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error(path + ": write failed: " + errno_text());
        done += static_cast<size_t>(n);
    }
    temp.commit();  // the destructor closes the descriptor
}

}  // namespace gguf
