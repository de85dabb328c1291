// --fit: the placement that fills one GPU up to a memory budget. Everything that fits goes to the GPU;
// when the whole model does not, the routed experts move to the CPU a layer at a time, the last layers
// first (in a batch, later layers use fewer distinct experts, so the CPU is asked for less there when
// prompts are long); when even a model without experts does not fit, whole layers move to the CPU from
// the first one, as -ngl would. The result is a set of ordinary placement rules, printed with the
// reasons, so a user can pass them by hand next time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "runtime/hparams.h"
#include "runtime/placement.h"

namespace runtime {

// What --fit plans for: the context that will run (its KV cache and scratch count against the budget).
struct FitOptions {
    uint64_t budget = 0;              // 0: the GPU's free memory; else --vram-budget
    uint64_t margin = 1024ull << 20;  // --fit-target
    int n_ctx = 4096;
    int n_batch = 512;
    int n_outputs = 512;  // logits rows a step returns (ContextParams::n_outputs), on the GPU with the output layer
    gguf::GgmlType type_k = gguf::GgmlType::F16;
    gguf::GgmlType type_v = gguf::GgmlType::F16;
};

// The CUDA context, the loaded kernels and cuBLAS workspaces of a process using one GPU, counted by --fit
// besides what the plan allocates. Measured on the H200 (session 9, device call 3; weights, KV cache and
// scratch each one allocation): with 800 MiB here, plans exceeded the peaks nvidia-smi showed by 208 MiB
// at --vram-budget 16G and 191 MiB at 8G; 624 leaves them 15-32 MiB above.
inline constexpr uint64_t kCudaContextBytes = 624ull << 20;

// Scratch a GPU executor allocates for a context of this shape (an upper bound), logits rows excepted.
uint64_t gpu_scratch_bytes(const HParams& hp, int n_batch, int n_ctx);
// The KV cache of one layer.
uint64_t kv_layer_bytes(const HParams& hp, int n_ctx, gguf::GgmlType type_k, gguf::GgmlType type_v);

struct FitRequest {
    uint64_t budget = 0;            // bytes the process may hold on the GPU (free memory, or --vram-budget)
    uint64_t margin = 1024ull << 20;  // left unused, as llama.cpp's --fit-target (MiB)
    uint64_t overhead = 0;          // the CUDA context and library workspaces
    uint64_t kv_bytes_per_layer = 0;  // the KV cache of one layer at the planned context
    uint64_t scratch = 0;           // the GPU executor's scratch at the planned batch size
    uint64_t output_scratch = 0;    // logits rows, needed where the output layer is on the GPU
    // Whether the GPU executor keeps the slot that streams host-resident experts in for prompts, the
    // size of the largest such layer's experts (false plans without streaming).
    bool expert_slot = false;
};

struct FitResult {
    PlacementOptions options;  // -ngl and the rules that realise the choice
    uint64_t gpu_bytes = 0;    // what the choice puts on the GPU, all counted
    int n_cpu_expert_layers = 0;
    std::string explanation;   // a few lines: budget, what was moved and why
};

// Chooses the placement of `tensors` (n_layer blocks) on `gpu` under the request. `user` holds rules the
// user gave too; they come first and are honoured (what they place is counted where they put it).
// Throws runtime::Error when not even the output layer fits.
FitResult fit_placement(const std::vector<TensorDesc>& tensors, int n_layer, const FitRequest& request, Device gpu,
                        const std::vector<PlacementRule>& user = {});

}  // namespace runtime
