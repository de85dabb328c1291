// gguf-synth: writes a random-weight GGUF with the exact tensor names, shapes, types and metadata of a
// real model at one of llama.cpp's recipes, for speed and placement benchmarks without downloading a
// model. Fast enough to regenerate a 17 GB model in every benchmark run: blocks are random bytes with
// sane scales, made on all cores while the previous slab is being written.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <string>
#include <vector>

#include "gguf/writer.h"
#include "model_shapes.h"
#include "quant/recipe.h"
#include "random_blocks.h"

namespace {

constexpr const char* kUsage =
    "usage: gguf-synth OUT.gguf [--preset NAME] [--type RECIPE] [--layers N] [--vocab N] [--experts N] [--seed S] [--threads N]\n"
    "  --preset   qwen3-30b-a3b (default), gpt-oss-20b, gemma-4-26b-a4b or qwen3.5-35b-a3b\n"
    "  --type     a gguf-quantize recipe: Q4_K_M (default), Q8_0, MXFP4_MOE, ...\n"
    "  --layers   keep only the first N blocks (default: all)\n"
    "  --vocab    shrink the vocabulary to N tokens (tests; default: the model's)\n"
    "  --experts  shrink the expert count to N (tests; default: the model's)\n"
    "  --seed     random seed (default 7); the bytes do not depend on --threads\n";

struct Options {
    std::string out, preset = "qwen3-30b-a3b", type = "Q4_K_M";
    uint32_t layers = 0, vocab = 0, experts = 0;
    uint64_t seed = 7;
    int threads = 0;
};

[[noreturn]] void usage_error(const std::string& what) {
    std::fprintf(stderr, "error: %s\n%s", what.c_str(), kUsage);
    std::exit(2);
}

uint64_t parse_number(const std::string& opt, const char* text) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-') usage_error(opt + " takes a non-negative integer, not '" + text + "'");
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        }
        if (a.rfind("--", 0) == 0) {
            if (i + 1 >= argc) usage_error(a + " needs a value");
            const char* v = argv[++i];
            if (a == "--preset") {
                o.preset = v;
            } else if (a == "--type") {
                o.type = v;
            } else if (a == "--layers") {
                o.layers = static_cast<uint32_t>(parse_number(a, v));
                if (o.layers == 0) usage_error("--layers must be at least 1");
            } else if (a == "--vocab") {
                o.vocab = static_cast<uint32_t>(parse_number(a, v));
                if (o.vocab < 258) usage_error("--vocab must be at least 258 (256 bytes, a merge, an end token)");
            } else if (a == "--experts") {
                o.experts = static_cast<uint32_t>(parse_number(a, v));
                if (o.experts == 0) usage_error("--experts must be at least 1");
            } else if (a == "--seed") {
                o.seed = parse_number(a, v);
            } else if (a == "--threads") {
                o.threads = static_cast<int>(parse_number(a, v));
            } else {
                usage_error("unknown option " + a);
            }
        } else if (o.out.empty()) {
            o.out = a;
        } else {
            usage_error("one output file only");
        }
    }
    if (o.out.empty()) usage_error("no output file");
    return o;
}

uint64_t chunk_seed(uint64_t seed, size_t tensor, uint64_t chunk) {
    return seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(tensor) << 40) ^ chunk;
}

int run(const Options& o) {
    const auto t0 = std::chrono::steady_clock::now();
    synth::ModelSpec model = synth::make_model(o.preset, {o.layers, o.vocab, o.experts});
    const quant::Recipe* recipe = quant::find_recipe(o.type);
    if (!recipe) throw std::invalid_argument("unknown recipe '" + o.type + "' (gguf-quantize --help lists them)");

    // the recipe's choice for each tensor, as gguf-quantize would make it from a float model
    std::vector<gguf::TensorInfo> infos;
    for (const auto& t : model.tensors) infos.push_back({t.name, gguf::GgmlType::F32, t.dims, 0});
    const auto facts = quant::ModelFacts::from_metadata(model.metadata);
    const auto choices = quant::choose_types(*recipe, facts, {}, infos);
    model.metadata.set("general.file_type", gguf::Value::u32(static_cast<uint32_t>(recipe->file_type)));

    gguf::Writer w(o.out);
    w.metadata() = model.metadata;
    for (size_t i = 0; i < infos.size(); ++i) {
        if (!synth::can_fill(choices[i].type)) {
            throw std::invalid_argument("no random blocks for type " + std::string(gguf::type_name(choices[i].type)) +
                                        " (tensor " + infos[i].name + ")");
        }
        w.add_tensor(infos[i].name, choices[i].type, infos[i].dims);
    }

    // slabs of whole blocks: the threads fill one while the previous one is written
    constexpr uint64_t kChunk = 1 << 20, kSlabChunks = 64;
    std::vector<uint8_t> buf[2] = {std::vector<uint8_t>(kChunk * kSlabChunks + 4096),
                                   std::vector<uint8_t>(kChunk * kSlabChunks + 4096)};
    std::future<void> pending;
    int cur = 0;
    uint64_t total = 0;
    const int nth = o.threads > 0 ? o.threads : omp_get_max_threads();
    for (size_t ti = 0; ti < w.tensors().size(); ++ti) {
        const gguf::TensorInfo& info = w.tensors()[ti];
        const auto& tt = gguf::type_traits(info.type);
        const uint64_t n_blocks = info.n_elements() / tt.block_size;
        const uint64_t per_chunk = std::max<uint64_t>(1, kChunk / tt.type_size);
        const uint64_t n_chunks = (n_blocks + per_chunk - 1) / per_chunk;
        const bool gaussian = model.tensors[ti].fill == synth::Fill::Gaussian;
        const float constant = model.tensors[ti].fill == synth::Fill::Ones ? 1.0f : 0.0f;
        for (uint64_t c0 = 0; c0 < n_chunks; c0 += kSlabChunks) {
            const uint64_t c1 = std::min(n_chunks, c0 + kSlabChunks);
            uint8_t* slab = buf[cur].data();
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
            for (uint64_t c = c0; c < c1; ++c) {
                const uint64_t b0 = c * per_chunk, b1 = std::min(n_blocks, b0 + per_chunk);
                synth::fill_blocks(info.type, slab + (c - c0) * per_chunk * tt.type_size, b1 - b0,
                                   chunk_seed(o.seed, ti, c), gaussian, constant);
            }
            const uint64_t bytes = (std::min(n_blocks, c1 * per_chunk) - c0 * per_chunk) * tt.type_size;
            if (pending.valid()) pending.get();
            pending = std::async(std::launch::async, [&w, slab, bytes] { w.write_data({slab, bytes}); });
            total += bytes;
            cur ^= 1;
        }
    }
    if (pending.valid()) pending.get();
    w.finish();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %s: %s %s, %zu tensors, %.2f GiB of tensor data in %.1f s\n", o.out.c_str(), o.preset.c_str(),
                std::string(recipe->name).c_str(), infos.size(), static_cast<double>(total) / (1u << 30), s);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
