// Planning a quantized file (types, sizes, imatrix matching, header) and streaming it out.

#include <algorithm>
#include <cstdint>

#include "gguf/error.h"
#include "gguf/writer.h"
#include "quant/finite.h"
#include "quant/imatrix.h"
#include "quant/quant.h"
#include "quant/recipe.h"

namespace quant {

namespace {

// llama.cpp's GGML_QNT_VERSION: the block layouts of this generation of quantized types.
constexpr uint32_t kQuantizationVersion = 2;
// llama-quantize copies imatrix strings into 128-byte fields; keep its truncation so the
// headers match.
constexpr size_t kMaxImatrixString = 127;
// Rows converted to f32 and quantized per step: bounds the working set (16 MiB of f32) no matter
// how large a tensor is, while leaving every thread plenty of rows.
constexpr int64_t kSlabElements = int64_t{1} << 22;

int64_t matrices_of(const std::vector<int64_t>& dims) {
    int64_t n = 1;
    for (size_t i = 2; i < dims.size(); ++i) n *= dims[i];
    return n;
}

bool is_float_source(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

std::string type_str(GgmlType t) { return std::string(gguf::type_name(t)); }

// "3 tensors (blk.0.ffn_up.weight, ...)", naming the first few.
std::string count_of(const std::vector<std::string>& names, const char* one, const char* many) {
    std::string s = std::to_string(names.size()) + " " + (names.size() == 1 ? one : many) + " (";
    for (size_t i = 0; i < names.size() && i < 3; ++i) s += (i ? ", " : "") + names[i];
    return s + (names.size() > 3 ? ", ...)" : ")");
}

// Token embeddings are looked up, never multiplied, and llama-imatrix skips the output head by
// default: neither ever has importance data, so its absence is no news.
bool imatrix_never_has(std::string_view name) {
    return name == "token_embd.weight" || name == "per_layer_token_embd.weight" || name == "output.weight";
}

gguf::Metadata output_metadata(const gguf::Metadata& in, const Recipe& recipe, const Imatrix* imatrix) {
    gguf::Metadata md = in;
    // One output file: split bookkeeping from a (single-shard) input would be wrong in it.
    for (const char* key : {"split.no", "split.count", "split.tensors.count"}) md.erase(key);
    // Erase then set moves the keys to the end, where llama-quantize puts them.
    auto put = [&](const std::string& key, gguf::Value v) {
        md.erase(key);
        md.set(key, std::move(v));
    };
    put("general.quantization_version", gguf::Value::u32(kQuantizationVersion));
    put("general.file_type", gguf::Value::u32(static_cast<uint32_t>(recipe.file_type)));
    if (imatrix) {
        put("quantize.imatrix.file", gguf::Value::string(imatrix->path().substr(0, kMaxImatrixString)));
        if (!imatrix->datasets().empty()) {
            const std::string& dataset = imatrix->datasets().front();
            put("quantize.imatrix.dataset", gguf::Value::string(dataset.substr(0, kMaxImatrixString)));
        }
        put("quantize.imatrix.entries_count", gguf::Value::u32(static_cast<uint32_t>(imatrix->entries().size())));
        if (imatrix->chunk_count() > 0) {
            put("quantize.imatrix.chunks_count", gguf::Value::u32(imatrix->chunk_count()));
        }
    }
    return md;
}

// A tensor's dimensions as llama-quantize writes them: trailing dimensions of 1 dropped (ggml counts a
// tensor's dimensions up to its last one above 1), at least one kept. llama.cpp's converter writes
// qwen35moe's ffn_gate_inp_shexp as [n_embd, 1] and llama-quantize's output has [n_embd]; the data is
// the same either way.
std::vector<int64_t> written_dims(std::vector<int64_t> dims) {
    while (dims.size() > 1 && dims.back() == 1) dims.pop_back();
    return dims;
}

// Declares the plan's tensors on a writer; the same declarations give the planned size and the file.
void declare(gguf::Writer& w, const QuantPlan& plan) {
    w.metadata() = plan.metadata;
    for (const auto& t : plan.tensors) w.add_tensor(t.name, t.to.type, written_dims(t.dims));
}

// Every tensor written is checked for NaN/Inf; `first_row` places rows of a slab within the tensor.
void check_finite(const std::string& path, const std::string& name, GgmlType type, std::span<const uint8_t> bytes,
                  int64_t n_per_row, uint64_t n_rows, uint64_t first_row) {
    if (auto bad = find_non_finite(type, bytes, n_per_row, n_rows)) {
        bad->row += first_row;
        throw Error(path + ": tensor '" + name + "' as " + type_str(type) + ": " + bad->describe() +
                    "; refusing to write a model that computes NaN/Inf");
    }
}

}  // namespace

uint64_t TensorPlan::n_elements() const {
    uint64_t n = 1;
    for (int64_t d : dims) n *= static_cast<uint64_t>(d);
    return n;
}

uint64_t QuantPlan::from_bytes() const {
    uint64_t n = 0;
    for (const auto& t : tensors) n += t.from_bytes;
    return n;
}

uint64_t QuantPlan::to_bytes() const {
    uint64_t n = 0;
    for (const auto& t : tensors) n += t.to_bytes;
    return n;
}

uint64_t QuantPlan::n_elements() const {
    uint64_t n = 0;
    for (const auto& t : tensors) n += t.n_elements();
    return n;
}

size_t QuantPlan::n_fallbacks() const {
    return static_cast<size_t>(std::count_if(tensors.begin(), tensors.end(),
                                             [](const TensorPlan& t) { return t.to.fallback_from.has_value(); }));
}

namespace {

// gguf::File::open reads every shard of a split model; a file parsed alone is only part of one
void refuse_split_input(const gguf::File& input) {
    if (const gguf::Value* n = input.metadata().find("split.count");
        n && n->is_integer() && n->as_u64() > input.n_shards()) {
        throw Error(input.path() + ": input is one shard of " + std::to_string(n->as_u64()) +
                    "; open it through its first file so that every shard is read");
    }
}

// What make_plan reports once for all tensors rather than per tensor.
struct PlanNotes {
    size_t imatrix_used = 0;
    std::vector<std::string> no_entry;      // quantized without an imatrix entry
    std::vector<std::string> need_imatrix;  // (dry run) a type that cannot be written without one
};

TensorPlan tensor_plan(const gguf::TensorInfo& t, const TypeChoice& choice, std::vector<std::string>& warnings) {
    TensorPlan p;
    p.name = t.name;
    p.dims = t.dims;
    p.from = t.type;
    p.to = choice;
    p.from_bytes = t.n_bytes();
    p.to_bytes = t.dims.empty() ? p.from_bytes : gguf::row_size(p.to.type, t.dims[0]) * t.n_rows();
    if (p.to.fallback_from) {
        warnings.push_back(t.name + ": rows of " + std::to_string(t.dims[0]) + " do not fit " +
                           type_str(*p.to.fallback_from) + " blocks; using " + type_str(p.to.type));
    }
    return p;
}

// The imatrix entry for a tensor being quantized: used when its size fits; a wrong size on a tensor
// that should have an entry means an imatrix of another model, which is an error.
ImatrixUse match_imatrix(const Imatrix& im, const gguf::TensorInfo& t, PlanNotes& notes,
                         std::vector<std::string>& warnings) {
    const ImatrixEntry* e = im.find(t.name);
    const uint64_t want = static_cast<uint64_t>(t.dims[0]) * static_cast<uint64_t>(matrices_of(t.dims));
    if (e && e->values.size() == want) {
        ++notes.imatrix_used;
        return ImatrixUse::Used;
    }
    if (e && !imatrix_never_has(t.name)) {
        throw Error(im.path() + ": imatrix entry '" + t.name + "' has " + std::to_string(e->values.size()) +
                    " values but the tensor needs " + std::to_string(want) +
                    " (row length x experts); is the imatrix for another model?");
    }
    if (e) {
        warnings.push_back(t.name + ": ignoring imatrix entry of the wrong size");
    } else if (!imatrix_never_has(t.name)) {
        notes.no_entry.push_back(t.name);
    }
    return ImatrixUse::Missing;
}

// A tensor without elements is no model's weight, and every row computation of the plan and the
// writer would divide by its zero row length: refuse it before planning.
void refuse_empty_tensors(const gguf::File& input) {
    for (const gguf::TensorInfo& t : input.tensors()) {
        if (t.has_zero_dim()) {
            throw Error(input.path() + ": tensor '" + t.name + "' has shape " + t.shape_string() +
                        ": a zero dimension (no weights to quantize)");
        }
    }
}

// The plan-wide warnings, and the check that the imatrix belongs to this model at all.
// Imatrix entries naming no tensor of the model are an error unless `allow_foreign` (then a warning).
void summarize(const PlanNotes& notes, const gguf::File& input, const Imatrix* im, bool allow_foreign,
               std::vector<std::string>& warnings) {
    if (!notes.no_entry.empty()) {
        warnings.push_back(count_of(notes.no_entry, "tensor", "tensors") +
                           " without an imatrix entry: quantized without importance weights");
    }
    if (!notes.need_imatrix.empty()) {
        warnings.push_back(count_of(notes.need_imatrix, "tensor", "tensors") +
                           " whose type needs importance data: writing this plan needs --imatrix");
    }
    if (!im) return;
    if (notes.imatrix_used == 0) {
        throw Error(im->path() + ": no imatrix entry matches a tensor being quantized; is it for another model?");
    }
    std::vector<std::string> foreign;
    for (const auto& [name, entry] : im->entries()) {
        if (!input.find_tensor(name)) foreign.push_back(name);
    }
    if (!foreign.empty()) {
        const std::string what = count_of(foreign, "imatrix entry", "imatrix entries") + " naming no tensor of this model";
        if (!allow_foreign) {
            throw Error(im->path() + ": " + what + "; is it for another model? (--allow-foreign-imatrix to use it anyway)");
        }
        warnings.push_back(what);
    }
}

}  // namespace

QuantPlan make_plan(const gguf::File& input, const PlanInputs& inputs) {
    if (!inputs.recipe) throw Error("no recipe given");
    refuse_split_input(input);
    refuse_empty_tensors(input);

    QuantPlan plan;
    plan.recipe = inputs.recipe;
    plan.model = ModelFacts::from_metadata(input.metadata());
    RecipeOptions options = inputs.options;
    options.have_imatrix = inputs.imatrix != nullptr;

    std::vector<gguf::TensorInfo> ordered;
    for (size_t i : quantization_order(input.tensors())) ordered.push_back(input.tensors()[i]);
    const std::vector<TypeChoice> choices = choose_types(*inputs.recipe, plan.model, options, ordered);

    PlanNotes notes;
    size_t requantized = 0;
    for (size_t i = 0; i < ordered.size(); ++i) {
        const gguf::TensorInfo& t = ordered[i];
        TensorPlan p = tensor_plan(t, choices[i], plan.warnings);
        if (p.converts()) {
            if (!is_float_source(t.type)) {
                if (!inputs.allow_requantize) {
                    throw Error(input.path() + ": tensor '" + t.name + "' is " + type_str(t.type) +
                                "; only f32, f16 and bf16 tensors are quantized (requantizing loses accuracy; "
                                "--allow-requantize does it anyway)");
                }
                ++requantized;
            }
            if (inputs.imatrix) p.imatrix = match_imatrix(*inputs.imatrix, t, notes, plan.warnings);
            if (p.to.requires_imatrix && p.imatrix != ImatrixUse::Used) {
                if (!inputs.dry_run) {
                    throw Error("tensor '" + t.name + "' as " + type_str(p.to.type) +
                                " needs importance data; pass --imatrix with an entry for it");
                }
                notes.need_imatrix.push_back(t.name);
            }
        }
        plan.tensors.push_back(std::move(p));
    }
    summarize(notes, input, inputs.imatrix, inputs.allow_foreign_imatrix, plan.warnings);

    if (requantized > 0) {
        plan.warnings.push_back("requantizing " + std::to_string(requantized) +
                                " already quantized tensor(s): their rounding errors add up, so the result is worse "
                                "than the same recipe made from the f32/f16/bf16 model");
    }
    if (inputs.recipe->file_type == FileType::MOSTLY_MXFP4_MOE) {
        bool has_experts = false;
        for (const auto& t : input.tensors()) has_experts = has_experts || t.name.find("_exps") != std::string::npos;
        if (!has_experts) {
            plan.warnings.push_back("MXFP4_MOE puts MXFP4 on expert tensors and this model has none: every tensor "
                                    "gets the recipe's other type (8.5 bpw, Q8_0's size); Q8_0 or a K-quant fits a "
                                    "dense model");
        }
    }

    plan.metadata = output_metadata(input.metadata(), *inputs.recipe, inputs.imatrix);
    gguf::Writer sizer("(plan)");
    try {
        declare(sizer, plan);
        plan.file_bytes = sizer.expected_file_size();
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
    return plan;
}

void write_quantized(const gguf::File& input, const QuantPlan& plan, const Imatrix* imatrix,
                     const std::string& out_path, const ProgressFn& progress, gguf::OutputPolicy policy) {
    policy.inputs.push_back(input.path());
    if (imatrix) policy.inputs.push_back(imatrix->path());
    try {
        gguf::check_output_path(out_path, policy);
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
    // Fail before writing anything when a format is missing, not halfway through the file.
    for (const auto& t : plan.tensors) {
        if (!t.converts()) continue;
        if (!can_dequantize(t.from)) throw Error("cannot read " + type_str(t.from) + " tensor '" + t.name + "'");
        if (!can_quantize(t.to.type)) {
            throw Error("quantizing to " + type_str(t.to.type) + " is not available in this build (tensor '" + t.name +
                        "')");
        }
        if (t.imatrix == ImatrixUse::Used && (!imatrix || !imatrix->find(t.name))) {
            throw Error("the plan uses imatrix data for '" + t.name + "' but no matching imatrix was given");
        }
    }

    try {
        gguf::Writer w(out_path, 3, policy);
        declare(w, plan);
        std::vector<float> f32;
        std::vector<uint8_t> packed;
        for (size_t ti = 0; ti < plan.tensors.size(); ++ti) {
            const TensorPlan& t = plan.tensors[ti];
            const gguf::TensorInfo* src_info = input.find_tensor(t.name);
            if (!src_info) throw Error(input.path() + ": tensor '" + t.name + "' is not in the input");
            const std::span<const uint8_t> src = input.tensor_data(*src_info);
            if (!t.converts()) {
                // Copied tensors (norms, routers, tensors already quantized) are checked like converted
                // ones: a NaN in an F32 norm is as fatal to the model as one in a matrix.
                check_finite(input.path(), t.name, t.from, src, t.dims.empty() ? 1 : t.dims[0],
                             t.dims.empty() ? 1 : t.n_elements() / static_cast<uint64_t>(t.dims[0]), 0);
                w.write_data(src);
            } else {
                const int64_t n_per_row = t.dims[0];
                const int64_t rows = t.dims.size() > 1 ? t.dims[1] : 1;
                const int64_t n_mat = matrices_of(t.dims);
                const size_t in_row = gguf::row_size(t.from, static_cast<uint64_t>(n_per_row));
                const size_t out_row = gguf::row_size(t.to.type, static_cast<uint64_t>(n_per_row));
                const int64_t slab = std::clamp<int64_t>(kSlabElements / n_per_row, 1, rows);
                f32.resize(static_cast<size_t>(slab * n_per_row));
                packed.resize(static_cast<size_t>(slab) * out_row);
                const ImatrixEntry* entry = t.imatrix == ImatrixUse::Used ? imatrix->find(t.name) : nullptr;
                for (int64_t m = 0; m < n_mat; ++m) {
                    // Each expert of a stacked tensor has its own importance vector.
                    const float* weights = entry ? entry->values.data() + m * n_per_row : nullptr;
                    for (int64_t r0 = 0; r0 < rows; r0 += slab) {
                        const int64_t n = std::min(slab, rows - r0);
                        const uint8_t* in_rows = src.data() + static_cast<size_t>(m * rows + r0) * in_row;
#pragma omp parallel for schedule(static)
                        for (int64_t r = 0; r < n; ++r) {
                            dequantize_row(t.from, in_rows + static_cast<size_t>(r) * in_row,
                                           f32.data() + r * n_per_row, n_per_row);
                        }
                        try {
                            quantize_rows(t.to.type, f32.data(), packed.data(), n, n_per_row, weights);
                        } catch (const Error& e) {
                            throw Error(input.path() + ": tensor '" + t.name + "' (rows from " +
                                        std::to_string(m * rows + r0) + "): " + e.what());
                        }
                        // Finite input can still give non-finite blocks (a scale past f16's range).
                        const std::span<const uint8_t> out(packed.data(), static_cast<size_t>(n) * out_row);
                        check_finite(input.path(), t.name, t.to.type, out, n_per_row, static_cast<uint64_t>(n),
                                     static_cast<uint64_t>(m * rows + r0));
                        w.write_data(out);
                    }
                }
            }
            input.release_tensor_data(*src_info);
            if (progress) progress(ti, plan);
        }
        w.finish();
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
}

}  // namespace quant
