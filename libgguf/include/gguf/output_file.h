// Safe replacement of output files: the checks an output path gets before any work starts, and a
// temp file that becomes the output only when complete and leaves nothing behind otherwise.
//
// On Linux the temp file is created unnamed (O_TMPFILE) in the output's directory and linked in
// at the end, so even SIGKILL leaves nothing; where the filesystem cannot do that it is a named
// file beside the output that is removed on failure, on destruction and on SIGINT/SIGTERM.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gguf {

struct OutputPolicy {
    // Replace an existing output (the apps' --force); otherwise an existing file is an error.
    bool replace_existing = true;
    // Files the output must never be, even with replace_existing: the inputs of the job.
    std::vector<std::string> inputs;
    // The flag that allows replacing, named in the error ("--force").
    std::string force_flag = "--force";
};

// Throws gguf::Error naming `path` when it cannot be a new output: its directory is missing or not
// writable, it is a directory, it is (or links to) one of the inputs, or it exists and the policy
// does not allow replacing it. Call it before the work starts.
void check_output_path(const std::string& path, const OutputPolicy& policy);

// The file a write to `path` should replace: `path` itself, or for a symlink the file it points to
// (so the link survives and keeps pointing at the new file, as `cp` does).
std::string resolve_output_path(const std::string& path);

// A temp file in the output's directory, committed by rename onto the output. Destroying it
// uncommitted removes it. Not copyable.
class TempFile {
public:
    explicit TempFile(const std::string& target);
    ~TempFile();
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    int fd() const { return fd_; }
    bool unnamed() const { return name_.empty(); }  // O_TMPFILE: nothing on disk until commit
    const std::string& target() const { return target_; }
    // A name for messages: the temp file's name or "<target> (unnamed temp file)".
    std::string display_name() const;

    // fsyncs, gives the file the mode of the file it replaces (or the umask's default), and puts it
    // in place atomically. The fd stays open for the caller to close.
    void commit();

private:
    void discard() noexcept;
    std::string target_;
    std::string name_;  // empty while unnamed
    int fd_ = -1;
    int slot_ = -1;     // in the signal handler's table while named
    bool committed_ = false;
};

// Writes a whole small file (a manifest, a report) through a TempFile; throws gguf::Error naming `path`.
void write_file(const std::string& path, std::string_view bytes);

// Installs SIGINT/SIGTERM handlers (once, only where the disposition is the default) that remove
// every live named temp file and then die of the same signal. TempFile calls it itself.
void install_temp_cleanup_handlers();

}  // namespace gguf
