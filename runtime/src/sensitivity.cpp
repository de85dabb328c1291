#include "runtime/sensitivity.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "quant/allocation.h"
#include "quant/quant.h"
#include "quant/recipe.h"
#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/model.h"
#include "runtime/perplexity.h"
#include "runtime/tokenizer.h"

namespace runtime {

namespace {

namespace fs = std::filesystem;

std::string exact_name_regex(const std::string& name) {
    std::string r = "^";
    for (char c : name) {
        if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) r += '\\';
        r += c;
    }
    return r + "$";
}

ContextParams eval_context(int n_ctx, int n_threads) {
    ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_threads = n_threads;
    return cp;
}

// The tensor's rows as f32, matrix after matrix.
std::vector<float> rows_f32(const gguf::File& f, const gguf::TensorInfo& t) {
    const auto bytes = f.tensor_data(t);
    const auto n = static_cast<int64_t>(t.n_elements());
    const int64_t n_per_row = t.dims[0];
    const uint64_t row_bytes = gguf::row_size(t.type, static_cast<uint64_t>(n_per_row));
    std::vector<float> out(static_cast<size_t>(n));
    for (int64_t r = 0; r < n / n_per_row; ++r) {
        quant::dequantize_row(t.type, bytes.data() + static_cast<uint64_t>(r) * row_bytes, out.data() + r * n_per_row,
                              n_per_row);
    }
    return out;
}

// E_T(t) summed over the tensor's matrices, each with its own importance vector.
double tensor_error(gguf::GgmlType type, const std::vector<float>& rows, const gguf::TensorInfo& t,
                    const quant::ImatrixEntry* im) {
    const int64_t n_per_row = t.dims[0];
    const int64_t n_rows_per_mat = t.dims.size() > 1 ? t.dims[1] : 1;
    const int64_t n_mat = static_cast<int64_t>(t.n_elements()) / (n_per_row * n_rows_per_mat);
    const bool fits = im && im->values.size() == static_cast<size_t>(n_per_row * n_mat);
    double e = 0;
    for (int64_t m = 0; m < n_mat; ++m) {
        e += quant::weighted_quantization_error(type, rows.data() + m * n_per_row * n_rows_per_mat, n_rows_per_mat,
                                                n_per_row, fits ? im->values.data() + m * n_per_row : nullptr);
    }
    return e;
}

}  // namespace

std::optional<double> TensorSensitivity::predicted_kld(gguf::GgmlType t) const {
    for (const auto& [type, err] : errors) {
        if (type != t) continue;
        if (probe_error <= 0) return 0.0;
        // a probe below the measurement's noise still ranks the tensor as (almost) free
        return std::max(probe_kld, 0.0) * err / probe_error;
    }
    return std::nullopt;
}

double mean_kld_against(const std::string& model_path, const std::string& kld_base, int n_ctx, int n_threads) {
    const auto model = Model::load(model_path);
    Context ctx(*model, eval_context(n_ctx, n_threads));
    return compare_kld_base(ctx, kld_base).mean_kld;
}

std::vector<TensorSensitivity> measure_sensitivity(const std::string& source_path, const std::vector<std::string>& names,
                                                   const quant::Imatrix* imatrix, const std::vector<int32_t>& tokens,
                                                   const SensitivityParams& params) {
    if (params.work_dir.empty()) throw Error("sensitivity: no work directory");
    fs::create_directories(params.work_dir);
    const std::string base = (fs::path(params.work_dir) / "base.kld").string();
    const std::string probe_file = (fs::path(params.work_dir) / "probe.gguf").string();
    {
        const auto model = Model::load(source_path);
        Context ctx(*model, eval_context(params.n_ctx, params.n_threads));
        PerplexityParams p;
        p.n_ctx = params.n_ctx;
        p.n_chunks = params.n_chunks;
        const auto tok = Tokenizer::from_metadata(model->metadata());
        p.add_bos = tok->add_bos();
        p.bos = tok->bos();
        save_kld_base(ctx, tokens, p, base);
    }
    // the base distributions are stored rounded (f16): the source itself measures this much
    const double floor = mean_kld_against(source_path, base, params.n_ctx, params.n_threads);

    const gguf::File src = gguf::File::open(source_path);
    quant::PlanInputs inputs;
    inputs.recipe = quant::find_recipe("Q8_0");
    // every other tensor keeps its source type: only the probed one changes
    std::vector<quant::TensorTypeOverride> keep;
    for (const auto& name : names) {
        const gguf::TensorInfo& t = src.tensor(name);
        if (t.type != gguf::GgmlType::F32 && t.type != gguf::GgmlType::F16 && t.type != gguf::GgmlType::BF16) {
            throw Error(source_path + ": tensor '" + name + "' is already quantized (" +
                        std::string(gguf::type_name(t.type)) + "); measure from the F16/BF16 model");
        }
        keep.push_back({exact_name_regex(name), t.type});
    }

    std::vector<TensorSensitivity> out;
    for (size_t i = 0; i < names.size(); ++i) {
        const std::string& name = names[i];
        if (params.progress) params.progress(i, names.size(), name);
        const gguf::TensorInfo& t = src.tensor(name);
        TensorSensitivity s;
        s.name = name;
        const int64_t n_per_row = t.dims[0];
        auto fits = [&](gguf::GgmlType ty) { return n_per_row % gguf::type_traits(ty).block_size == 0; };
        s.probe = fits(params.probe) ? params.probe : gguf::GgmlType::Q4_0;
        if (!fits(s.probe)) throw Error(source_path + ": tensor '" + name + "' has rows no block type fits");

        inputs.options.overrides = {{exact_name_regex(name), s.probe}};
        inputs.options.overrides.insert(inputs.options.overrides.end(), keep.begin(), keep.end());
        // the probed tensor is quantized as gguf-quantize would: with its imatrix entry where it has one
        const quant::Imatrix* im_used = imatrix && imatrix->find(name) ? imatrix : nullptr;
        inputs.options.have_imatrix = im_used != nullptr;
        inputs.imatrix = im_used;
        inputs.allow_foreign_imatrix = true;
        quant::write_quantized(src, quant::make_plan(src, inputs), im_used, probe_file);
        s.probe_kld = mean_kld_against(probe_file, base, params.n_ctx, params.n_threads) - floor;
        fs::remove(probe_file);

        const std::vector<float> rows = rows_f32(src, t);
        const quant::ImatrixEntry* im = imatrix ? imatrix->find(name) : nullptr;
        s.probe_error = tensor_error(s.probe, rows, t, im);
        for (gguf::GgmlType ty : params.candidates) {
            if (fits(ty)) s.errors.emplace_back(ty, ty == s.probe ? s.probe_error : tensor_error(ty, rows, t, im));
        }
        out.push_back(std::move(s));
    }
    if (params.progress) params.progress(names.size(), names.size(), "");
    fs::remove(base);
    return out;
}

std::string serialize_sensitivities(const std::vector<TensorSensitivity>& list) {
    std::ostringstream os;
    os.precision(17);
    os << "gguf-sensitivity 1\n";
    for (const auto& s : list) {
        os << s.name << ' ' << gguf::type_name(s.probe) << ' ' << s.probe_kld << ' ' << s.probe_error << ' '
           << s.errors.size();
        for (const auto& [t, e] : s.errors) os << ' ' << gguf::type_name(t) << ' ' << e;
        os << '\n';
    }
    return os.str();
}

std::vector<TensorSensitivity> parse_sensitivities(const std::string& text) {
    std::istringstream is(text);
    std::string magic, version;
    if (!(is >> magic >> version) || magic != "gguf-sensitivity" || version != "1") {
        throw Error("not a sensitivity file");
    }
    auto type_of = [](const std::string& n) {
        const auto t = gguf::type_from_name(n);
        if (!t) throw Error("sensitivity file: unknown type '" + n + "'");
        return *t;
    };
    std::vector<TensorSensitivity> out;
    std::string name;
    while (is >> name) {
        TensorSensitivity s;
        s.name = name;
        std::string probe;
        size_t n = 0;
        if (!(is >> probe >> s.probe_kld >> s.probe_error >> n) || n > 64) throw Error("sensitivity file: bad line for " + name);
        s.probe = type_of(probe);
        for (size_t i = 0; i < n; ++i) {
            std::string t;
            double e = 0;
            if (!(is >> t >> e)) throw Error("sensitivity file: bad line for " + name);
            s.errors.emplace_back(type_of(t), e);
        }
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace runtime
