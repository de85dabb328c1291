#include "runtime/type_search.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "gguf/checksum.h"
#include "quant/allocation.h"
#include "quant/imatrix_data.h"
#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/imatrix_collector.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace runtime {

namespace {

namespace fs = std::filesystem;

std::string exact(const std::string& name) {
    std::string r = "^";
    for (char c : name) {
        if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) r += '\\';
        r += c;
    }
    return r + "$";
}

template <class T>
void mix(std::string& key, const T& v) {
    key.append(reinterpret_cast<const char*>(&v), sizeof v);
}

}  // namespace

std::string calibration_cache_key(const gguf::File& source, const quant::Imatrix* imatrix,
                                  const std::vector<int32_t>& tokens, const std::vector<std::string>& names,
                                  const SensitivityParams& params) {
    std::string key = "gguf-sensitivity 1";
    mix(key, gguf::metadata_xxh3(source.metadata()));
    for (uint64_t h : gguf::xxh64_tensors(source)) mix(key, h);
    for (const auto& t : source.tensors()) key += t.name + '\n';
    if (imatrix) {
        for (const auto& [name, e] : imatrix->entries()) {
            key += name + '\n';
            mix(key, gguf::xxh3_64({reinterpret_cast<const uint8_t*>(e.values.data()), e.values.size() * sizeof(float)}));
        }
    }
    mix(key, gguf::xxh3_64({reinterpret_cast<const uint8_t*>(tokens.data()), tokens.size() * sizeof(int32_t)}));
    for (const auto& n : names) key += n + '\n';
    for (auto t : params.candidates) mix(key, t);
    mix(key, params.probe);
    mix(key, params.n_ctx);
    mix(key, params.n_chunks);
    return gguf::hex64(gguf::xxh3_64({reinterpret_cast<const uint8_t*>(key.data()), key.size()}));
}

quant::Imatrix calibration_imatrix(const std::string& source_path, const std::vector<int32_t>& tokens, int n_ctx,
                                   int n_threads, const std::string& cache_dir, bool* hit) {
    *hit = false;
    std::string file;
    if (!cache_dir.empty()) {
        const gguf::File src = gguf::File::open(source_path);
        std::string key = "gguf-imatrix 1";
        mix(key, gguf::metadata_xxh3(src.metadata()));
        for (uint64_t h : gguf::xxh64_tensors(src)) mix(key, h);
        mix(key, gguf::xxh3_64({reinterpret_cast<const uint8_t*>(tokens.data()), tokens.size() * sizeof(int32_t)}));
        mix(key, n_ctx);
        file = (fs::path(cache_dir) / ("imatrix-" + gguf::hex64(gguf::xxh3_64({reinterpret_cast<const uint8_t*>(key.data()), key.size()})) + ".gguf")).string();
        if (fs::exists(file)) {
            try {
                quant::Imatrix im = quant::Imatrix::load(file);
                *hit = true;
                return im;
            } catch (const quant::Error&) {
                // a damaged entry is collected again and replaced
            }
        }
    }
    const auto model = Model::load(source_path);
    ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_threads = n_threads;
    Context ctx(*model, cp);
    PerplexityParams p;
    p.n_ctx = n_ctx;
    const auto tok = Tokenizer::from_metadata(model->metadata());
    p.add_bos = tok->add_bos();
    p.bos = tok->bos();
    ImatrixCollector collector({.process_output = true});
    collect_imatrix(ctx, tokens, p, collector);
    collector.data().datasets.push_back("calibration tokens");
    if (!file.empty()) {
        fs::create_directories(cache_dir);
        collector.data().write_gguf(file);
    }
    return quant::Imatrix::from_data(collector.data(), file.empty() ? "calibration imatrix" : file);
}

TypeSearchResult search_types(const std::string& source_path, const quant::PlanInputs& inputs,
                              const std::vector<int32_t>& tokens, const TypeSearchParams& params) {
    if (params.file_bytes.has_value() == params.max_kld.has_value()) {
        throw Error("type search: give either a size or a KL divergence target");
    }
    const gguf::File src = gguf::File::open(source_path);
    const quant::QuantPlan base = quant::make_plan(src, inputs);
    // the tensors to choose for: those the recipe quantizes, less those the user's patterns fix
    std::vector<std::string> names;
    std::vector<uint64_t> elements;
    uint64_t fixed_bytes = base.file_bytes;
    for (const auto& t : base.tensors) {
        if (t.to.source != quant::ChoiceSource::Recipe && t.to.source != quant::ChoiceSource::Option) continue;
        names.push_back(t.name);
        elements.push_back(t.n_elements());
        fixed_bytes -= t.to_bytes;
    }
    if (names.empty()) throw Error(source_path + ": the recipe quantizes no tensor to choose a type for");
    if (params.file_bytes) {
        // refused before anything is measured: the least every tensor's smallest fitting candidate allows
        uint64_t least = fixed_bytes;
        for (size_t i = 0; i < names.size(); ++i) {
            const gguf::TensorInfo& t = src.tensor(names[i]);
            uint64_t best = UINT64_MAX;
            for (gguf::GgmlType ty : params.sensitivity.candidates) {
                if (t.dims[0] % gguf::type_traits(ty).block_size != 0) continue;
                best = std::min(best, gguf::row_size(ty, static_cast<uint64_t>(t.dims[0])) * (elements[i] / t.dims[0]));
            }
            if (best == UINT64_MAX) throw Error(source_path + ": no candidate type fits the rows of " + names[i]);
            least += best;
        }
        if (*params.file_bytes < least) {
            throw Error("a file of " + std::to_string(*params.file_bytes) + " bytes is below the smallest choice of the candidate types (" +
                        std::to_string(least) + " bytes)");
        }
    }

    TypeSearchResult result;
    SensitivityParams sp = params.sensitivity;
    std::vector<TensorSensitivity> sens;
    const std::string key = calibration_cache_key(src, inputs.imatrix, tokens, names, sp);
    if (!params.cache_dir.empty()) {
        result.cache_file = (fs::path(params.cache_dir) / ("sensitivity-" + key + ".txt")).string();
        std::ifstream in(result.cache_file);
        if (in) {
            std::stringstream ss;
            ss << in.rdbuf();
            try {
                sens = parse_sensitivities(ss.str());
                result.cache_hit = sens.size() == names.size();
            } catch (const Error&) {
                sens.clear();  // a damaged entry is measured again and replaced
            }
        }
    }
    if (!result.cache_hit) {
        const fs::path work = fs::temp_directory_path() / ("gguf-sensitivity-" + std::to_string(::getpid()));
        sp.work_dir = work.string();
        try {
            sens = measure_sensitivity(source_path, names, inputs.imatrix, tokens, sp);
        } catch (...) {
            fs::remove_all(work);
            throw;
        }
        fs::remove_all(work);
        if (!result.cache_file.empty()) {
            fs::create_directories(params.cache_dir);
            // written beside and renamed: a concurrent run never reads half an entry
            const std::string tmp = result.cache_file + "." + std::to_string(::getpid());
            std::ofstream(tmp) << serialize_sensitivities(sens);
            fs::rename(tmp, result.cache_file);
        }
    }

    std::vector<quant::TensorOptions> options;
    for (size_t i = 0; i < names.size(); ++i) {
        const TensorSensitivity& s = sens[i];
        if (s.name != names[i]) throw Error(result.cache_file + ": the cached sensitivities do not match the model");
        const gguf::TensorInfo& t = src.tensor(s.name);
        quant::TensorOptions o{s.name, {}};
        for (const auto& [type, err] : s.errors) {
            const uint64_t bytes = gguf::row_size(type, static_cast<uint64_t>(t.dims[0])) * (elements[i] / t.dims[0]);
            o.options.push_back({type, bytes, *s.predicted_kld(type)});
        }
        options.push_back(std::move(o));
    }
    quant::Allocation a;
    if (params.file_bytes) {
        if (*params.file_bytes <= fixed_bytes) {
            throw Error("a file of " + std::to_string(*params.file_bytes) + " bytes cannot hold even the tensors kept as they are (" +
                        std::to_string(fixed_bytes) + " bytes)");
        }
        a = quant::allocate_under_budget(options, *params.file_bytes - fixed_bytes);
    } else {
        a = quant::allocate_under_cost(options, *params.max_kld);
    }
    for (size_t i = 0; i < names.size(); ++i) {
        const quant::TypeOption& o = options[i].options[a.choice[i]];
        result.overrides.push_back({exact(names[i]), o.type});
        result.predicted_kld[names[i]] = o.cost;
    }
    result.predicted_total = a.cost;
    return result;
}

}  // namespace runtime
