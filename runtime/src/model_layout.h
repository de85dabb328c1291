// The tensors of a model bound by llama.cpp's names and checked (model_layout.cpp).
#pragma once

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gguf/file.h"
#include "gguf/text.h"
#include "quant/finite.h"
#include "quant/quant.h"
#include "runtime/error.h"
#include "runtime/hparams.h"
#include "runtime/weights.h"

namespace runtime {

// Whether the CPU can multiply with weights of this type (float, or a block type with a dot product).
bool can_matmul(gguf::GgmlType type);

// Looks tensors up by llama.cpp's names, checks their shapes against the hyper-parameters and
// remembers which ones the model uses, for the placement plan. Without a file (a layout check of
// tensors still to be written) it checks names, shapes and types only.
class Binder {
public:
    explicit Binder(const gguf::File& file) : file_(&file), tensors_(file.tensors()), path_(file.path()) {}
    Binder(const std::vector<gguf::TensorInfo>& tensors, std::string path) : tensors_(tensors), path_(std::move(path)) {}

    Weight matrix(const std::string& name, std::vector<int64_t> dims, bool required = true) {
        const gguf::TensorInfo* t = find(name, dims, required);
        if (!t) return {};
        if (!can_matmul(t->type)) {
            fail("tensor " + name + " has type " + std::string(gguf::type_name(t->type)) +
                 ", which this build cannot multiply with");
        }
        Weight w;
        w.name = name;
        w.type = t->type;
        w.n_in = dims[0];
        w.n_out = dims.size() > 1 ? dims[1] : 1;  // a 1-D tensor is one row
        w.n_mat = dims.size() > 2 ? dims[2] : 1;
        w.row_bytes = gguf::row_size(t->type, static_cast<uint64_t>(w.n_in));
        bound_.push_back({t, name});
        return w;
    }

    Vector vector(const std::string& name, int64_t n, bool required = true) {
        return vector(name, std::vector<int64_t>{n}, required);
    }
    // A small tensor of any shape read whole into f32 (per-expert biases: {width, n_expert}).
    Vector vector(const std::string& name, const std::vector<int64_t>& dims, bool required = true) {
        const gguf::TensorInfo* t = find(name, dims, required);
        if (!t) return {};
        int64_t n = 1;
        for (int64_t d : dims) n *= d;
        if (!quant::can_dequantize(t->type)) {
            fail("tensor " + name + " has type " + std::string(gguf::type_name(t->type)) + ", which cannot be read");
        }
        Vector out;
        out.name = name;
        out.values.resize(static_cast<size_t>(n));
        if (file_) {
            quant::dequantize_row(t->type, file_->tensor_data(*t).data(), out.values.data(), n);
            // these vectors are read on every token: a NaN here is a NaN in every output
            if (auto bad = quant::find_non_finite(out.values)) {
                fail("tensor " + name + " holds " + (std::isnan(bad->value) ? "NaN" : "an infinity") + " at index " +
                     std::to_string(bad->column));
            }
        }
        bound_.push_back({t, name});
        return out;
    }

    bool has(const std::string& name) const { return find_tensor(name) != nullptr; }
    const gguf::TensorInfo* find_tensor(const std::string& name) const {
        if (file_) return file_->find_tensor(name);
        for (const auto& t : tensors_)
            if (t.name == name) return &t;
        return nullptr;
    }
    const std::vector<gguf::TensorInfo>& tensors() const { return tensors_; }

    const std::vector<std::pair<const gguf::TensorInfo*, std::string>>& bound() const { return bound_; }

    [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what); }

private:
    const gguf::TensorInfo* find(const std::string& name, const std::vector<int64_t>& dims, bool required) {
        const gguf::TensorInfo* t = find_tensor(name);
        if (!t) {
            if (required) fail("tensor " + name + " is missing");
            return nullptr;
        }
        if (t->dims != dims) {
            fail("tensor " + name + " has shape " + gguf::shape_text(t->dims) + ", expected " + gguf::shape_text(dims));
        }
        return t;
    }

    const gguf::File* file_ = nullptr;
    const std::vector<gguf::TensorInfo>& tensors_;
    std::string path_;
    std::vector<std::pair<const gguf::TensorInfo*, std::string>> bound_;
};

// Binds every tensor the architecture reads, checking names, shapes and types. Returns whether the
// output projection is tied to the token embedding.
bool bind_weights(const HParams& hp, const gguf::Metadata& metadata, Binder& b, ModelWeights& weights);

}  // namespace runtime
