// The tiny Gemma 4 reference in tests/models/gemma4 (make_gemma4_reference_local.py): hf/ is a random
// checkpoint with Gemma 4 26B-A4B's text config shrunk (5 sliding + 1 full layer, full layers with their
// own head size and KV heads and V = K, proportional RoPE, 16 experts top-8 beside a dense MLP, router
// and per-expert scales, layer scalars, final softcapping, sliding window 8), hf-assistant/ a tiny
// gemma4-assistant draft for it; refs.safetensors holds the expected outputs of a float64 numpy port of
// transformers' forward passes (gemma4_numpy.py; transformers itself runs on the GPU machine through
// make_gemma4_reference.py, whose outputs are refs-transformers.*). gguf-convert's files run with those
// logits: whole rows (40 tokens, five sliding windows), a prompt then one token at a time, an f16
// cache and a bf16 file; and the draft's step against the target's cache.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "convert/converter.h"
#include "convert/json.h"
#include "gguf/file.h"
#include "llama_cpp_conversions.h"
#include "logits_compare.h"
#include "reference_outputs.h"
#include "runtime/activation_collector.h"
#include "runtime/context.h"
#include "runtime/error.h"
#include "runtime/gemma4_draft.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace {

namespace fs = std::filesystem;

const testing_support::ReferenceFiles& ref() {
    static const testing_support::ReferenceFiles files("gemma4");
    return files;
}

// refs.safetensors, read by tensor name.
class Refs {
public:
    explicit Refs(const std::string& file) {
        const std::string path = ref().file(file).string();
        std::ifstream in(path, std::ios::binary);
        uint64_t n = 0;
        in.read(reinterpret_cast<char*>(&n), 8);
        std::string header(n, '\0');
        in.read(header.data(), static_cast<std::streamsize>(n));
        header_ = convert::json::parse(header, path);
        data_.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::vector<int64_t> shape(const std::string& name) const {
        std::vector<int64_t> s;
        for (const auto& d : header_[name]["shape"].items()) s.push_back(d.as_int());
        return s;
    }
    template <class T>
    std::vector<T> get(const std::string& name) const {
        const auto& off = header_[name]["data_offsets"];
        const int64_t b = off.at(0).as_int(), e = off.at(1).as_int();
        std::vector<T> v(static_cast<size_t>(e - b) / sizeof(T));
        std::memcpy(v.data(), data_.data() + b, static_cast<size_t>(e - b));
        return v;
    }

private:
    convert::json::Value header_;
    std::string data_;
};

// the numpy port's expected outputs (refs.safetensors) and transformers' own logits
// (refs-transformers.safetensors, made on the GPU machine from the same checkpoint)
const Refs& refs() {
    static Refs r("refs.safetensors");
    return r;
}
const Refs& transformers_refs() {
    static Refs r("refs-transformers.safetensors");
    return r;
}

using testing_support::Agreement;
using testing_support::accumulate;
using testing_support::report;

// measured 0.018 on this model
constexpr double kF16CacheBound = 0.05;

// Every reference row from position 0: whole (step 0) or a 9-token prompt then `step` tokens at a time.
Agreement run_rows(const std::string& model_path, gguf::GgmlType cache, int step,
                   const std::string& expected = "logits", const Refs& r = refs()) {
    const auto model = runtime::Model::load(model_path);
    const auto shape = r.shape("logits");
    const int64_t n_seq = shape[0], n_tok = shape[1], V = shape[2];
    const auto tokens = r.get<int32_t>("tokens");
    const auto logits = r.get<float>(expected);
    runtime::ContextParams params;
    params.n_ctx = static_cast<int>(n_tok);
    params.n_batch = static_cast<int>(n_tok);
    params.type_k = params.type_v = cache;
    // one token at a time on one thread: on a loaded machine, two threads' barriers cost more than the work
    params.n_threads = step == 1 ? 1 : 2;
    runtime::Context ctx(*model, params);
    EXPECT_EQ(ctx.n_vocab(), V);
    Agreement a;
    for (int64_t s = 0; s < n_seq; ++s) {
        ctx.truncate(0);
        const int32_t* row = tokens.data() + s * n_tok;
        const float* want = logits.data() + s * n_tok * V;
        if (step == 0) {
            const auto got = ctx.decode({row, static_cast<size_t>(n_tok)}, true);
            for (int64_t t = 0; t < n_tok; ++t) accumulate(a, got.data() + t * V, want + t * V, V);
            continue;
        }
        const int prompt = 9;
        const auto got = ctx.decode({row, static_cast<size_t>(prompt)}, true);
        for (int t = 0; t < prompt; ++t) accumulate(a, got.data() + t * V, want + t * V, V);
        for (int64_t t = prompt; t < n_tok; t += step) {
            const int m = static_cast<int>(std::min<int64_t>(step, n_tok - t));
            const auto g = ctx.decode({row + t, static_cast<size_t>(m)}, true);
            for (int j = 0; j < m; ++j) accumulate(a, g.data() + j * V, want + (t + j) * V, V);
        }
    }
    return a;
}

TEST(Gemma4Reference, ConvertedFileHasLlamaCppLayout) {
    const gguf::File f = gguf::File::open(ref().converted(convert::OutType::F32, "gemma4-f32.gguf"));
    const gguf::Metadata& md = f.metadata();
    EXPECT_EQ(md.get_string("general.architecture"), "gemma4");
    EXPECT_EQ(md.get_string("tokenizer.ggml.model"), "gemma4");
    EXPECT_FALSE(md.contains("tokenizer.ggml.pre"));  // llama.cpp's gemma4 vocab writes none
    const auto& pattern = md.get_array("gemma4.attention.sliding_window_pattern").items;
    ASSERT_EQ(pattern.size(), 6u);
    for (size_t i = 0; i < 6; ++i) EXPECT_EQ(pattern[i].as_bool(), i < 5);
    EXPECT_EQ(md.get_int_array("gemma4.attention.head_count_kv"), (std::vector<int64_t>{2, 2, 2, 2, 2, 1}));
    EXPECT_EQ(md.find("gemma4.attention.key_length")->as_u64(), 32u);      // the full layers'
    EXPECT_EQ(md.find("gemma4.attention.key_length_swa")->as_u64(), 16u);  // the sliding layers'
    EXPECT_EQ(md.find("gemma4.attention.sliding_window")->as_u64(), 8u);
    EXPECT_FLOAT_EQ(static_cast<float>(md.find("gemma4.final_logit_softcapping")->as_f64()), 30.0f);
    // the first tensor: rope_freqs, 1 for the proportional quarter of the full head's pairs, 1e30 after
    ASSERT_FALSE(f.tensors().empty());
    const auto& rf = f.tensors().front();
    ASSERT_EQ(rf.name, "rope_freqs.weight");
    ASSERT_EQ(rf.dims, (std::vector<int64_t>{16}));
    const auto* v = reinterpret_cast<const float*>(f.tensor_data(rf).data());
    for (int i = 0; i < 16; ++i) EXPECT_EQ(v[i], i < 4 ? 1.0f : 1e30f) << i;
    // the full layer has no attn_v (V is K's projection); the experts stay fused, their scales apart
    EXPECT_NE(f.find_tensor("blk.0.attn_v.weight"), nullptr);
    EXPECT_EQ(f.find_tensor("blk.5.attn_v.weight"), nullptr);
    const gguf::TensorInfo* gu = f.find_tensor("blk.0.ffn_gate_up_exps.weight");
    ASSERT_NE(gu, nullptr);
    EXPECT_EQ(gu->dims, (std::vector<int64_t>{64, 64, 16}));
    for (const char* name : {"blk.0.ffn_gate_inp.scale", "blk.0.ffn_down_exps.scale", "blk.0.layer_output_scale.weight",
                             "blk.0.pre_ffw_norm_2.weight", "blk.0.post_ffw_norm_1.weight", "blk.0.post_ffw_norm_2.weight",
                             "blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight"}) {
        const gguf::TensorInfo* t = f.find_tensor(name);
        ASSERT_NE(t, nullptr) << name;
        EXPECT_EQ(t->type, gguf::GgmlType::F32) << name;
    }
    EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied
}

TEST(Gemma4Reference, LogitsMatchWholeRowsF32Cache) {
    const Agreement a = run_rows(ref().converted(convert::OutType::F32, "gemma4-f32.gguf"), gguf::GgmlType::F32, 0);
    report(a, "gemma4 f32 rows");
    EXPECT_EQ(a.positions, 80);
    EXPECT_LE(a.max_abs_diff, 1e-3);
    EXPECT_EQ(a.same_argmax, a.positions);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double d = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
    return d;
}

TEST(Gemma4Reference, LogitsMatchTransformers) {
    // transformers' Gemma4ForCausalLM itself (eager attention), the same checkpoint and rows: its f32
    // run and its float64 run (logits64, stored as f32), which differ by 2.2e-5 between themselves
    const std::string f32 = ref().converted(convert::OutType::F32, "gemma4-f32.gguf");
    for (const char* expected : {"logits", "logits64"}) {
        const Agreement a = run_rows(f32, gguf::GgmlType::F32, 0, expected, transformers_refs());
        report(a, std::string("gemma4 f32 rows vs transformers' ") + expected);
        EXPECT_EQ(a.positions, 80);
        EXPECT_LE(a.max_abs_diff, 1e-3) << expected;
        EXPECT_EQ(a.same_argmax, a.positions) << expected;
    }
}

// How far the numpy port the other tests use is from transformers: refs-transformers.json records the
// port against transformers' float64 run (1.2e-5; the GPU machine ran the port on the same rows and
// stored its logits as `numpy`). Recomputed here from the committed files, and bounded at 1e-4, a
// tenth of the runtime's bound, so that the port's own error cannot hide a runtime error.
TEST(Gemma4Reference, NumpyPortMatchesTransformers) {
    const auto report_json = convert::json::parse_file((ref().dir() / "refs-transformers.json").string());
    const double recorded = report_json["numpy_port_vs_transformers64_max_abs_diff"].as_double();
    const auto port = refs().get<float>("logits");
    EXPECT_EQ(max_abs_diff(port, transformers_refs().get<float>("numpy")), 0.0);  // the same port, the same rows
    const double d64 = max_abs_diff(port, transformers_refs().get<float>("logits64"));
    const double d32 = max_abs_diff(port, transformers_refs().get<float>("logits"));
    std::printf("numpy port vs transformers: float64 run %.3g (recorded %.3g), f32 run %.3g\n", d64, recorded, d32);
    EXPECT_NEAR(d64, recorded, 1e-7);
    EXPECT_LE(d64, 1e-4);
    EXPECT_LE(d32, 1e-4);
    // the draft's cases: the port's step (refs.safetensors) against Gemma4AssistantForCausalLM's
    EXPECT_EQ(refs().get<int32_t>("assistant_cases"), transformers_refs().get<int32_t>("assistant_cases"));
    for (const char* name : {"assistant_logits", "assistant_state"}) {
        const double d = max_abs_diff(refs().get<float>(name), transformers_refs().get<float>(name));
        std::printf("numpy port vs transformers, %s: %.3g\n", name, d);
        EXPECT_LE(d, 1e-4) << name;
    }
}

TEST(Gemma4Reference, LogitsMatchStepwiseAcrossTheWindow) {
    for (int step : {1, 3}) {
        const Agreement a =
            run_rows(ref().converted(convert::OutType::F32, "gemma4-f32.gguf"), gguf::GgmlType::F32, step);
        report(a, "gemma4 f32 prompt + steps of " + std::to_string(step));
        EXPECT_LE(a.max_abs_diff, 1e-3) << step;
        EXPECT_EQ(a.same_argmax, a.positions) << step;
    }
}

TEST(Gemma4Reference, Bf16FileMatchesBf16RoundedWeights) {
    // the reference run with the weights a bf16 conversion rounds rounded the same way
    const Agreement a = run_rows(ref().converted(convert::OutType::BF16, "gemma4-bf16.gguf"), gguf::GgmlType::F32, 0,
                                 "logits_bf16");
    report(a, "gemma4 bf16 file vs bf16-rounded reference");
    EXPECT_LE(a.max_abs_diff, 1e-3);
    EXPECT_EQ(a.same_argmax, a.positions);
}

TEST(Gemma4Reference, F16Cache) {
    // the cache's f16 rounding alone
    const Agreement a = run_rows(ref().converted(convert::OutType::F32, "gemma4-f32.gguf"), gguf::GgmlType::F16, 0);
    report(a, "gemma4 f32 file, f16 cache");
    EXPECT_LE(a.max_abs_diff, kF16CacheBound);
    EXPECT_EQ(a.same_argmax, a.positions);
}

// The draft's step against the target's cache, for the cases in `r`: the numpy port's
// (refs.safetensors) or transformers' own (refs-transformers.safetensors).
void check_assistant_step(const Refs& r, const std::string& what) {
    const std::string target_path = ref().converted(convert::OutType::F32, "gemma4-f32.gguf");
    const std::string draft_path = ref().converted(convert::OutType::F32, "gemma4-assistant-f32.gguf", "hf-assistant");
    const auto target = runtime::Model::load(target_path);
    const auto draft = runtime::Model::load(draft_path);
    EXPECT_EQ(draft->hparams().arch, runtime::Arch::Gemma4Assistant);
    EXPECT_EQ(draft->hparams().gemma4.n_embd_backbone, target->hparams().n_embd);
    runtime::ContextParams params;
    params.n_ctx = 64;
    params.type_k = params.type_v = gguf::GgmlType::F32;
    params.n_threads = 2;
    runtime::Context ctx(*target, params);
    runtime::Gemma4Draft step(draft->hparams(), draft->weights(), target->hparams(), target->weights(), 2);

    const auto cases = r.get<int32_t>("assistant_cases");
    const auto want_logits = r.get<float>("assistant_logits");
    const auto want_state = r.get<float>("assistant_state");
    const auto tokens = r.get<int32_t>("tokens");
    const int64_t V = ctx.n_vocab(), B = target->hparams().n_embd;
    const size_t n_cases = cases.size() / 3;
    ASSERT_EQ(n_cases, 3u);
    Agreement a;
    double state_diff = 0;
    for (size_t c = 0; c < n_cases; ++c) {
        const int n = cases[3 * c], token = cases[3 * c + 1], pos = cases[3 * c + 2];
        ctx.truncate(0);
        ctx.decode({tokens.data(), static_cast<size_t>(n)});
        ASSERT_EQ(ctx.hidden().size(), static_cast<size_t>(B));
        std::vector<float> logits(static_cast<size_t>(V)), state(static_cast<size_t>(B));
        step.step(token, ctx.hidden().data(), pos, ctx.kv_cache(), n, logits.data(), state.data());
        accumulate(a, logits.data(), want_logits.data() + c * V, V);
        for (int64_t i = 0; i < B; ++i) state_diff = std::max(state_diff, std::fabs(double(state[i]) - want_state[c * B + i]));
    }
    report(a, "gemma4-assistant step vs " + what);
    std::printf("gemma4-assistant projected state vs %s: max |diff| %.3g\n", what.c_str(), state_diff);
    EXPECT_LE(a.max_abs_diff, 1e-3) << what;
    EXPECT_EQ(a.same_argmax, a.positions) << what;
    EXPECT_LE(state_diff, 1e-3) << what;
}

// Cases at prefix lengths 5, 12 and 39: the last two have more cached positions than the window (8),
// so they check which of them the draft's sliding layer reads (n_swa + 1: with n_swa, 0.12 off).
TEST(Gemma4Reference, AssistantDraftStep) { check_assistant_step(refs(), "the numpy port"); }

TEST(Gemma4Reference, AssistantDraftStepMatchesTransformers) {
    check_assistant_step(transformers_refs(), "transformers");
}

TEST(Gemma4Reference, TokenizerMatchesHuggingFace) {
    // refs.json's cases: Hugging Face tokenizers on hf/tokenizer.json (BOS added, specials recognised)
    const gguf::File f = gguf::File::open(ref().converted(convert::OutType::F32, "gemma4-f32.gguf"));
    const auto tok = runtime::Tokenizer::from_metadata(f.metadata());
    const auto report_json = convert::json::parse_file(ref().file("refs.json").string());
    std::vector<convert::json::Value> cases = report_json["tokenizer_cases"].items();
    ASSERT_GE(cases.size(), 8u);
    // and the cases transformers' AutoTokenizer encoded on the GPU machine
    const auto hf_json = convert::json::parse_file(ref().file("refs-transformers.json").string());
    for (const auto& c : hf_json["tokenizer_cases"].items()) cases.push_back(c);
    ASSERT_GE(cases.size(), 13u);
    for (const auto& c : cases) {
        const std::string text = c["text"].as_string();
        std::vector<int32_t> want;
        for (const auto& id : c["ids"].items()) want.push_back(static_cast<int32_t>(id.as_int()));
        EXPECT_EQ(tok->encode(text, true, true), want) << text;
        // and back: the text itself (BOS and the specials rendered)
        EXPECT_EQ(tok->decode(std::vector<int32_t>(want.begin() + 1, want.end()), true), text) << text;
    }
}

TEST(Gemma4Reference, ImatrixCollectionIsRefused) {
    // its forward pass reports no activations: an empty imatrix must not come out of it silently
    const auto model = runtime::Model::load(ref().converted(convert::OutType::F32, "gemma4-f32.gguf"));
    runtime::ContextParams params;
    params.n_ctx = 16;
    runtime::Context ctx(*model, params);
    struct Nothing : runtime::ActivationCollector {
        void matmul_input(const runtime::Weight&, const runtime::Tensor&) override {}
        void expert_input(const runtime::Weight&, const runtime::Routing&, const float*, int64_t, bool) override {}
    } collector;
    EXPECT_THROW(ctx.set_collector(&collector), runtime::Error);
    ctx.set_collector(nullptr);
}

// gguf-convert writes what llama.cpp's converter writes for the tiny gemma4 and its assistant
TEST(Gemma4Reference, ConvertedFilesEqualLlamaCpps) {
    for (const auto& [checkpoint, outtype, name] :
         {std::tuple{"hf", convert::OutType::F32, "gemma4-f32.gguf"}, std::tuple{"hf", convert::OutType::BF16, "gemma4-bf16.gguf"},
          std::tuple{"hf-assistant", convert::OutType::F32, "gemma4-assistant-f32.gguf"}}) {
        const std::string file = std::string("tiny-") + name;
        testing_support::expect_llama_cpp_bytes(ref().converted(outtype, name, checkpoint), file, ref().file(file));
    }
}

// gguf-quantize writes what llama-quantize writes from the same bf16 file, for every K-quant and legacy
// recipe (IQ4_XS aside: llama_cpp_conversions.txt says why)
TEST(Gemma4Reference, QuantizedFilesEqualLlamaQuantizes) {
    const std::string bf16 = ref().converted(convert::OutType::BF16, "gemma4-bf16.gguf");
    for (const char* recipe : {"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K"}) {
        const std::string name = std::string("tiny-gemma4-") + recipe + ".gguf";
        testing_support::expect_llama_quantize_bytes(bf16, recipe, name, ref().scratch(name));
    }
}

TEST(Gemma4Reference, AssistantCannotRunAlone) {
    const auto draft =
        runtime::Model::load(ref().converted(convert::OutType::F32, "gemma4-assistant-f32.gguf", "hf-assistant"));
    runtime::ContextParams params;
    params.n_ctx = 16;
    EXPECT_THROW(runtime::Context(*draft, params), runtime::Error);
    const auto target = runtime::Model::load(ref().converted(convert::OutType::F32, "gemma4-f32.gguf"));
    // a draft made for another target width is refused
    EXPECT_THROW(runtime::Gemma4Draft(target->hparams(), target->weights(), target->hparams(), target->weights(), 1),
                 runtime::Error);
}

}  // namespace
