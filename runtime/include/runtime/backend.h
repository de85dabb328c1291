// A compute backend: one device's weight storage and its implementation of the transformer blocks.
// The forward pass hands each block to the backend of the device its weights were placed on; the
// residual stream crosses between blocks in host memory.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/device.h"
#include "runtime/hparams.h"
#include "runtime/weights.h"

namespace runtime {

class KvCache;

// The sizes a context is created with; backends size their scratch from it once.
struct ContextShape {
    int n_ctx = 0;    // KV-cache positions
    int n_batch = 0;  // most tokens one forward call processes
    int n_threads = 1;
};

// One forward call's tokens: n_tokens consecutive positions from pos0, with their RoPE angles
// (n_tokens x n_rot/2 cos and sin values).
struct BatchInfo {
    int n_tokens = 0;
    int pos0 = 0;
    const float* rope_cos = nullptr;
    const float* rope_sin = nullptr;
};

class Workspace {
public:
    virtual ~Workspace() = default;
    virtual uint64_t bytes() const = 0;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;

    // Makes a tensor's bytes (a view of the mapped file) readable by this backend's kernels and returns
    // where they now are. The CPU backend reads the mapping in place.
    virtual const uint8_t* place_weights(std::span<const uint8_t> bytes) = 0;

    // Everything a context's forward calls need on this device besides weights and KV cache, sized once
    // so that decoding a token allocates nothing.
    virtual std::unique_ptr<Workspace> make_workspace(const HParams& hp, const ContextShape& shape) const = 0;

    // x: the residual stream, n_tokens rows of n_embd floats, updated in place (x += block(x)).
    virtual void attention(const HParams& hp, const LayerWeights& w, KvCache& kv, int il, float* x,
                           const BatchInfo& batch, Workspace& ws) const = 0;
    virtual void feed_forward(const HParams& hp, const LayerWeights& w, float* x, const BatchInfo& batch,
                              Workspace& ws) const = 0;
    // Final norm and output projection of `n_rows` rows of x into n_vocab logits each.
    virtual void output(const HParams& hp, const ModelWeights& w, const float* x, int n_rows, float* logits,
                        Workspace& ws) const = 0;
};

// The backends this build has, CPU first. A CPU-only build returns just the CPU backend.
std::vector<std::unique_ptr<Backend>> create_backends();
// The GPU devices this build can place weights on (none for a CPU-only build).
std::vector<Device> available_gpus();

}  // namespace runtime
