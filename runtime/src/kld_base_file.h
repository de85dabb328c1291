// The base distributions that `gguf-run perplexity --kl-divergence` compares with, in either of two
// layouts: gguf-run's own (written by save_kld_base) or llama-perplexity's --kl-divergence-base file,
// so that gguf-run's logits can be measured against llama.cpp's on the same model file.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/perplexity.h"

namespace runtime {

// gguf-run's layout: this header, the evaluated tokens (int32, BOS already in place), then per scored
// position the max logit (f32), the log-sum-exp of logits - max (f32) and every logit - max (f16).
inline constexpr char kKldMagic[8] = {'G', 'R', 'U', 'N', 'K', 'L', 'D', '1'};
struct KldHeader {
    char magic[8];
    uint32_t n_vocab, n_ctx, n_chunks, first;
};

// llama-perplexity's layout (tools/perplexity there): "_logits_", int32 n_ctx, n_vocab and n_chunk, the
// tokens of the text as tokenized (each chunk's first one replaced by BOS only at evaluation, where
// the vocabulary asks for it), then per scored position 2 * ((n_vocab + 1) / 2) + 4 uint16 words:
// two f32 (scale, min) and the log-probabilities as min + scale * q, q in [0, 65535], over the 16
// nats below the largest (anything lower reads as the minimum).
inline constexpr char kLlamaKldMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

class KldBaseFile {
public:
    // Opens and checks `path` for a model of n_vocab tokens; `chunking` says whether each chunk
    // starts with BOS (llama.cpp's files keep the tokens without it). Throws runtime::Error naming
    // the file when it is neither layout, of another vocabulary, damaged or truncated.
    KldBaseFile(const std::string& path, int n_vocab, const PerplexityParams& chunking);

    int n_ctx() const { return static_cast<int>(n_ctx_); }
    int n_chunks() const { return static_cast<int>(n_chunks_); }
    const std::vector<int32_t>& tokens() const { return tokens_; }  // as they are to be evaluated

    // The log-probabilities of the next scored position (n_vocab of them).
    void next(std::vector<double>& log_p);

    // Log-probabilities at or below this are not known well enough to enter a KL divergence: in
    // llama.cpp's files everything more than 16 nats below the top reads as that floor, and
    // llama-perplexity itself leaves out what is at or below -16 (so does gguf-run, for its figure
    // to be llama.cpp's); gguf-run's own files keep every entry.
    double log_p_floor() const;

private:
    std::string path_;
    std::ifstream in_;
    bool llama_ = false;
    uint32_t n_vocab_ = 0, n_ctx_ = 0, n_chunks_ = 0;
    std::vector<int32_t> tokens_;
    std::vector<uint16_t> row_;
};

}  // namespace runtime
