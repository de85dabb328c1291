#include "kld_base_file.h"

#include <cstring>
#include <filesystem>
#include <limits>

#include "quant/float16.h"
#include "runtime/error.h"

namespace runtime {

namespace {

// Scored positions per chunk: n_ctx / 2 ... n_ctx - 2 (the last position predicts nothing in the chunk).
uint64_t scored_per_chunk(uint32_t n_ctx) { return n_ctx - 1 - n_ctx / 2; }

}  // namespace

KldBaseFile::KldBaseFile(const std::string& path, int n_vocab, const PerplexityParams& chunking)
    : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw Error(path + ": cannot open");
    std::error_code ec;
    const uintmax_t file_bytes = std::filesystem::file_size(path, ec);
    if (ec) throw Error(path + ": cannot open: " + ec.message());
    char magic[8] = {};
    in_.read(magic, sizeof magic);
    unsigned __int128 row_bytes = 0, header_bytes = 0;
    if (in_ && std::memcmp(magic, kKldMagic, sizeof magic) == 0) {
        KldHeader h{};
        std::memcpy(h.magic, magic, sizeof magic);
        in_.read(reinterpret_cast<char*>(&h) + sizeof magic, sizeof h - sizeof magic);
        if (!in_) throw Error(path + ": truncated");
        if (h.n_ctx < 2 || h.n_chunks == 0 || h.first != h.n_ctx / 2) throw Error(path + ": damaged header");
        n_vocab_ = h.n_vocab;
        n_ctx_ = h.n_ctx;
        n_chunks_ = h.n_chunks;
        header_bytes = sizeof h;
        row_bytes = 8 + 2 * static_cast<unsigned __int128>(n_vocab_);
    } else if (in_ && std::memcmp(magic, kLlamaKldMagic, sizeof magic) == 0) {
        int32_t fields[3] = {};  // n_ctx, n_vocab, n_chunk
        in_.read(reinterpret_cast<char*>(fields), sizeof fields);
        if (!in_) throw Error(path + ": truncated");
        if (fields[0] < 2 || fields[1] < 1 || fields[2] < 1) throw Error(path + ": damaged header");
        llama_ = true;
        n_ctx_ = static_cast<uint32_t>(fields[0]);
        n_vocab_ = static_cast<uint32_t>(fields[1]);
        n_chunks_ = static_cast<uint32_t>(fields[2]);
        header_bytes = sizeof magic + sizeof fields;
        row_bytes = 2 * (2 * ((static_cast<unsigned __int128>(n_vocab_) + 1) / 2) + 4);
    } else {
        throw Error(path + ": not a KL-divergence base file (made by gguf-run perplexity --kl-divergence-base"
                           " or llama-perplexity --kl-divergence-base)");
    }
    if (n_vocab_ != static_cast<uint32_t>(n_vocab)) {
        throw Error(path + ": saved for a vocabulary of " + std::to_string(n_vocab_) + " tokens, this model has " +
                    std::to_string(n_vocab));
    }
    // the whole file's size from its header, before anything is allocated from it
    const unsigned __int128 n_tokens = static_cast<unsigned __int128>(n_ctx_) * n_chunks_;
    const unsigned __int128 expected =
        header_bytes + 4 * n_tokens + static_cast<unsigned __int128>(n_chunks_) * scored_per_chunk(n_ctx_) * row_bytes;
    if (expected > file_bytes) throw Error(path + ": truncated");

    tokens_.resize(static_cast<size_t>(n_tokens));
    in_.read(reinterpret_cast<char*>(tokens_.data()), static_cast<std::streamsize>(tokens_.size() * 4));
    if (!in_) throw Error(path + ": truncated");
    for (const int32_t t : tokens_) {
        if (t < 0 || static_cast<uint32_t>(t) >= n_vocab_) throw Error(path + ": damaged: a token outside the vocabulary");
    }
    if (llama_ && chunking.add_bos) {
        for (uint32_t c = 0; c < n_chunks_; ++c) tokens_[static_cast<size_t>(c) * n_ctx_] = chunking.bos;
    }
    row_.resize(static_cast<size_t>((row_bytes - 8) / 2));
}

double KldBaseFile::log_p_floor() const { return llama_ ? -16.0 : -std::numeric_limits<double>::infinity(); }

void KldBaseFile::next(std::vector<double>& log_p) {
    float head[2] = {};  // gguf-run: max logit, log-sum-exp; llama.cpp: scale, min
    in_.read(reinterpret_cast<char*>(head), sizeof head);
    in_.read(reinterpret_cast<char*>(row_.data()), static_cast<std::streamsize>(row_.size() * 2));
    if (!in_) throw Error(path_ + ": truncated");
    log_p.resize(n_vocab_);
    if (llama_) {
        for (uint32_t i = 0; i < n_vocab_; ++i) log_p[i] = static_cast<double>(head[0]) * row_[i] + head[1];
    } else {
        for (uint32_t i = 0; i < n_vocab_; ++i) log_p[i] = static_cast<double>(quant::f16_to_f32(row_[i])) - head[1];
    }
}

}  // namespace runtime
