// Qwen3.5-MoE's tensor plan (qwen35_plan.cpp), called by plan_tensors.
#pragma once

#include "convert/tensor_plan.h"

namespace convert {

// Every tensor of a Qwen3_5Moe checkpoint under llama.cpp's names and transforms: the value heads
// of the linear-attention weights reordered from grouped to tiled, -exp(A_log), the squeezed
// convolution, 1 + w for the RMSNorms (not the gated one), fused experts split into gate and up.
// The vision tower and the MTP block are left out (warnings say so).
void plan_qwen35(const Architecture& arch, const Checkpoint& checkpoint, OutType outtype, TensorPlan& plan);

}  // namespace convert
