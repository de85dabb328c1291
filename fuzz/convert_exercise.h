// What convert-fuzz does with one input, shared with the unit test that replays fuzz/convert-corpus: the
// first byte picks one of libconvert's readers of untrusted checkpoint files:
// - JSON (config.json, tokenizer.json, a safetensors header) and the config lookups the converter makes;
// - a SentencePiece tokenizer.model (protobuf: varints and lengths from the file);
// - a whole safetensors file (written to a per-process scratch file: the reader maps a path), every
//   tensor's bytes then read.
// A convert::Error or gguf::Error is the expected answer to a bad file; anything else escaping (or a
// crash, a sanitizer report, a hang under the fuzzer) is a defect.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "convert/error.h"
#include "convert/hf_config.h"
#include "convert/json.h"
#include "convert/safetensors.h"
#include "convert/sentencepiece_model.h"
#include "gguf/error.h"

namespace convert_fuzz {

inline void exercise_json(std::string_view text) {
    convert::json::Value v = convert::json::parse(text, "fuzz.json");
    convert::HfConfig config(std::move(v), "config.json");
    (void)config.find_int({"num_hidden_layers", "n_layer"});
    (void)config.find_number({"rope_theta"});
    (void)config.find({"architectures"});
    (void)config.architecture();
    (void)config.require_int({"hidden_size"});
}

inline void exercise_sentencepiece(const uint8_t* data, size_t size) {
    const auto pieces = convert::parse_sentencepiece_model({data, size}, "tokenizer.model");
    size_t bytes = 0;
    for (const auto& p : pieces) bytes += p.piece.size();
    (void)bytes;
}

inline void exercise_safetensors(const uint8_t* data, size_t size) {
    static const std::string path =
        (std::filesystem::temp_directory_path() / ("convert-fuzz-" + std::to_string(getpid()) + ".safetensors")).string();
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return;
    if (size > 0) std::fwrite(data, 1, size, f);
    std::fclose(f);
    const auto file = convert::SafetensorsFile::open(path);
    uint64_t sum = 0;
    for (const auto& t : file.tensors()) {
        for (const uint8_t b : t.data) sum += b;
        (void)t.n_elements();
    }
    (void)sum;
}

// Returns normally for any input: a reader's own error is caught, anything else escapes.
inline void exercise(const uint8_t* data, size_t size) {
    if (size < 1) return;
    const uint8_t which = data[0] % 3;
    ++data;
    --size;
    try {
        switch (which) {
            case 0: exercise_json(std::string_view(reinterpret_cast<const char*>(data), size)); break;
            case 1: exercise_sentencepiece(data, size); break;
            default: exercise_safetensors(data, size); break;
        }
    } catch (const convert::Error&) {
    } catch (const gguf::Error&) {
    }
}

}  // namespace convert_fuzz
