// A file the runtime writes (KL-divergence base, compact baseline) through gguf's temp file: put in place
// only when complete, so that a failed, interrupted or killed run leaves neither a half file nor a temp file.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "gguf/output_file.h"

namespace runtime {

class SafeOutput {
public:
    // Throws runtime::Error when the temp file cannot be created.
    explicit SafeOutput(const std::string& path);
    ~SafeOutput();
    SafeOutput(const SafeOutput&) = delete;
    SafeOutput& operator=(const SafeOutput&) = delete;

    // Buffered; a failure is reported by commit().
    void write(const void* data, size_t n);
    // Flushes and puts the file in place; throws runtime::Error naming the path when anything failed.
    void commit();

private:
    std::string path_;
    std::unique_ptr<gguf::TempFile> temp_;
    std::FILE* file_ = nullptr;
    bool ok_ = true;
};

}  // namespace runtime
