// What a forward pass can report about the inputs of its matrix products, for statistics such as an
// importance matrix. An executor calls it only when one is set (Context::set_collector), so normal
// inference pays nothing; calls come from the thread that runs the forward pass, after each product.
#pragma once

#include "runtime/backend.h"
#include "runtime/weights.h"

namespace runtime {

class ActivationCollector {
public:
    virtual ~ActivationCollector() = default;
    // The rows `x` (host memory) that were multiplied by `w`'s matrix 0.
    virtual void matmul_input(const Weight& w, const Tensor& x) = 0;
    // The inputs of a stacked expert tensor: slot s = t * r.k + j is token t's j-th expert r.ids[s].
    // With per_slot the slot's input row is rows + s * ld (the down projection's hidden rows);
    // otherwise every slot of token t reads row rows + t * ld (gate and up read the token's row).
    virtual void expert_input(const Weight& w, const Routing& r, const float* rows, int64_t ld, bool per_slot) = 0;
};

}  // namespace runtime
