// libFuzzer target for the GGUF reader: any input must parse or throw gguf::Error, nothing else.
// When it parses, every accessor a tool would use must stay inside the buffer.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/error.h"
#include "gguf/file.h"
#include "gguf/summary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        gguf::File f = gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
        uint64_t sum = 0;
        for (const auto& t : f.tensors()) {
            auto bytes = f.tensor_data(t);
            if (!bytes.empty()) sum += bytes.front() + bytes.back();  // touches both ends under ASan
        }
        for (const auto& [key, v] : f.metadata().entries()) sum += v.to_display(4).size() + key.size();
        sum += gguf::summarize(f).parameters;
        volatile uint64_t sink = sum;
        (void)sink;
    } catch (const gguf::Error&) {
    }
    return 0;
}
