#include "safe_output.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gguf/error.h"
#include "runtime/error.h"

namespace runtime {

SafeOutput::SafeOutput(const std::string& path) : path_(path) {
    try {
        temp_ = std::make_unique<gguf::TempFile>(gguf::resolve_output_path(path));
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
    // a stdio stream on a duplicate of the temp file's descriptor: buffered writes, closed before commit
    const int fd = ::dup(temp_->fd());
    file_ = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
    if (!file_) {
        if (fd >= 0) ::close(fd);
        throw Error(path + ": cannot create: " + std::strerror(errno));
    }
}

SafeOutput::~SafeOutput() {
    if (file_) std::fclose(file_);  // temp_'s destructor then removes the uncommitted file
}

void SafeOutput::write(const void* data, size_t n) {
    if (ok_ && std::fwrite(data, 1, n, file_) != n) ok_ = false;
}

void SafeOutput::commit() {
    const bool flushed = std::fflush(file_) == 0;
    if (!ok_ || !flushed) throw Error(path_ + ": write failed: " + std::strerror(errno));
    std::fclose(file_);
    file_ = nullptr;
    try {
        temp_->commit();
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
}

}  // namespace runtime
