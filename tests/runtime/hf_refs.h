// Reads the HF transformers oracle of a fixture model (refs.safetensors: `tokens` int32 [2,128] and
// `logits` f32 [2,128,V]). A safetensors file is an 8-byte little-endian header length, a JSON header
// naming each tensor's dtype, shape and byte range, then the data.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "convert/json.h"

namespace testing_support {

struct HfRefs {
    int64_t n_seq = 0, n_tok = 0, n_vocab = 0;
    std::vector<int32_t> tokens;  // n_seq x n_tok
    std::vector<float> logits;    // n_seq x n_tok x n_vocab

    const int32_t* seq_tokens(int64_t s) const { return tokens.data() + s * n_tok; }
    const float* row_logits(int64_t s, int64_t t) const { return logits.data() + (s * n_tok + t) * n_vocab; }

    static HfRefs load(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw std::runtime_error("cannot open " + path);
        uint64_t header_len = 0;
        in.read(reinterpret_cast<char*>(&header_len), 8);
        std::string header(header_len, '\0');
        in.read(header.data(), static_cast<std::streamsize>(header_len));
        const auto doc = convert::json::parse(header, path);
        const auto data_start = static_cast<std::streamoff>(8 + header_len);

        auto read_tensor = [&](const char* name, const char* dtype, void* dst, size_t bytes,
                               std::vector<int64_t>& shape) {
            const auto& t = doc[name];
            if (t["dtype"].as_string() != dtype) throw std::runtime_error(std::string(name) + ": unexpected dtype");
            shape.clear();
            for (const auto& d : t["shape"].items()) shape.push_back(d.as_int());
            const auto& off = t["data_offsets"];
            const int64_t begin = off.at(0).as_int(), end = off.at(1).as_int();
            if (static_cast<size_t>(end - begin) != bytes) throw std::runtime_error(std::string(name) + ": size");
            in.seekg(data_start + begin);
            in.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes));
        };

        HfRefs r;
        std::vector<int64_t> shape;
        const auto& tok_shape = doc["tokens"]["shape"];
        r.n_seq = tok_shape.at(0).as_int();
        r.n_tok = tok_shape.at(1).as_int();
        r.tokens.resize(static_cast<size_t>(r.n_seq * r.n_tok));
        read_tensor("tokens", "I32", r.tokens.data(), r.tokens.size() * 4, shape);
        r.n_vocab = doc["logits"]["shape"].at(2).as_int();
        r.logits.resize(static_cast<size_t>(r.n_seq * r.n_tok * r.n_vocab));
        read_tensor("logits", "F32", r.logits.data(), r.logits.size() * 4, shape);
        if (!in) throw std::runtime_error(path + ": truncated");
        return r;
    }
};

}  // namespace testing_support
