// The files of a reference-model test (gptoss, gemma4, qwen35): the committed reference in
// tests/models/NAME, and a scratch folder per test process (removed when it ends) for what the test
// makes, gguf-convert's output of the reference checkpoint first, made once per file name so that
// the tests of one run share each conversion.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "convert/converter.h"

namespace testing_support {

class ReferenceFiles {
public:
    // NAME-reference-PID under the system's temporary folder: parallel test processes never share one.
    explicit ReferenceFiles(const std::string& name)
        : dir_(std::filesystem::path(GGUF_SOURCE_DIR) / "tests" / "models" / name),
          scratch_(std::filesystem::temp_directory_path() / (name + "-reference-" + std::to_string(::getpid()))) {
        std::filesystem::create_directories(scratch_);
    }
    ~ReferenceFiles() { std::filesystem::remove_all(scratch_); }
    ReferenceFiles(const ReferenceFiles&) = delete;
    ReferenceFiles& operator=(const ReferenceFiles&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path file(const std::string& name) const { return dir_ / name; }
    std::filesystem::path scratch(const std::string& name) const { return scratch_ / name; }

    // scratch(name): gguf-convert's output for the checkpoint folder `checkpoint` of the reference,
    // converted unless it exists already.
    std::string converted(convert::OutType outtype, const std::string& name,
                          const std::string& checkpoint = "hf") const {
        const std::filesystem::path output = scratch(name);
        if (!std::filesystem::exists(output)) {
            convert::ConvertOptions opt;
            opt.input_dir = file(checkpoint).string();
            opt.output_path = output.string();
            opt.outtype = outtype;
            convert::convert_checkpoint(opt);
        }
        return output.string();
    }

private:
    std::filesystem::path dir_, scratch_;
};

}  // namespace testing_support
