// The architectures without an HF oracle of their own (qwen2, qwen3, mixtral) checked through exact
// equivalences with the HF-validated fixtures, and against an independent reference forward pass
// written here (double arithmetic, no runtime code) where an equivalence cannot reach (biases,
// distinct experts).
//   qwen2   = tiny-dense with Q/K rows back in HF order (NEOX RoPE) and zero q/k/v biases
//   mixtral = tiny-dense (`llama`) with every expert a copy of the dense FFN: normalised top-k
//             weights sum to 1, so the MoE is the dense FFN whatever the router says
//   qwen3   = tiny-moe's first expert as a dense FFN == tiny-moe with all 16 experts that expert
// and the llama variants the HF fixture lacks (Llama 3 rope_freqs, linear RoPE scaling, F16 Llama 2).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "convert/tensor_data.h"
#include "fixtures.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "hf_refs.h"
#include "logits_compare.h"
#include "quant/quant.h"

namespace {

namespace fs = std::filesystem;
using gguf::GgmlType;
using testing_support::Agreement;
using testing_support::fixture;
using testing_support::HfRefs;

// A GGUF held in memory, to be edited and written back.
struct Tensor {
    std::string name;
    GgmlType type = GgmlType::F32;
    std::vector<int64_t> dims;
    std::vector<uint8_t> bytes;
};

// All elements as f32, rows dequantized one at a time.
std::vector<float> to_f32(const Tensor& t) {
    const int64_t n_per_row = t.dims[0];
    const size_t row_bytes = gguf::row_size(t.type, static_cast<uint64_t>(n_per_row));
    const size_t rows = t.bytes.size() / row_bytes;
    std::vector<float> out(rows * static_cast<size_t>(n_per_row));
    for (size_t r = 0; r < rows; ++r) {
        quant::dequantize_row(t.type, t.bytes.data() + r * row_bytes, out.data() + r * n_per_row, n_per_row);
    }
    return out;
}

struct Draft {
    gguf::Metadata meta;
    std::vector<Tensor> tensors;

    static Draft load(const std::string& path) {
        const gguf::File f = gguf::File::open(path);
        Draft d;
        d.meta = f.metadata();
        for (const auto& t : f.tensors()) {
            const auto data = f.tensor_data(t);
            d.tensors.push_back({t.name, t.type, t.dims, {data.begin(), data.end()}});
        }
        return d;
    }

    const Tensor* find(const std::string& name) const {
        for (const auto& t : tensors) {
            if (t.name == name) return &t;
        }
        return nullptr;
    }
    Tensor& at(const std::string& name) {
        for (auto& t : tensors) {
            if (t.name == name) return t;
        }
        throw std::runtime_error("no tensor " + name);
    }
    void erase(const std::string& name) {
        std::erase_if(tensors, [&](const Tensor& t) { return t.name == name; });
    }
    void put(Tensor t) {
        erase(t.name);
        tensors.push_back(std::move(t));
    }
    void put_f32(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v) {
        Tensor t{name, GgmlType::F32, std::move(dims), std::vector<uint8_t>(v.size() * 4)};
        std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
        put(std::move(t));
    }

    std::vector<float> f32(const std::string& name) const {
        const Tensor* t = find(name);
        if (!t) throw std::runtime_error("no tensor " + name);
        return to_f32(*t);
    }

    std::string arch() const { return meta.get_string("general.architecture"); }
    uint32_t u32(const std::string& key) const { return meta.get_u32(arch() + "." + key); }

    // general.architecture and every ARCH.* key move to the new name.
    void rename_arch(const std::string& to) {
        const std::string prefix = arch() + ".";
        gguf::Metadata renamed;
        for (const auto& [key, value] : meta.entries()) {
            renamed.set(key.starts_with(prefix) ? to + "." + key.substr(prefix.size()) : key, value);
        }
        renamed.set("general.architecture", gguf::Value::string(to));
        meta = std::move(renamed);
    }

    void write(const fs::path& path) const {
        gguf::Writer w(path.string());
        w.metadata() = meta;
        for (const auto& t : tensors) w.add_tensor(t.name, t.type, t.dims);
        for (const auto& t : tensors) w.write_data(t.bytes);
        w.finish();
    }
};

std::string blk(int il, const std::string& name) { return "blk." + std::to_string(il) + "." + name; }

// A tensor of `n` copies of `t` stacked along a new outer dimension (the experts of a 3-D tensor).
Tensor stacked(const std::string& name, const Tensor& t, int64_t n) {
    Tensor s{name, t.type, t.dims, {}};
    s.dims.push_back(n);
    for (int64_t i = 0; i < n; ++i) s.bytes.insert(s.bytes.end(), t.bytes.begin(), t.bytes.end());
    return s;
}

// Expert e of a stacked [n_in, n_out, E] tensor, as a 2-D tensor.
Tensor expert_of(const Tensor& t, int64_t e) {
    const size_t bytes = t.bytes.size() / static_cast<size_t>(t.dims[2]);
    Tensor out{t.name, t.type, {t.dims[0], t.dims[1]}, {}};
    out.bytes.assign(t.bytes.begin() + static_cast<std::ptrdiff_t>(e * bytes),
                     t.bytes.begin() + static_cast<std::ptrdiff_t>((e + 1) * bytes));
    return out;
}

std::vector<float> gaussian(size_t n, float stddev, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, stddev);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// Puts the rows of a `llama` file's attn_q / attn_k back in HF order: the inverse of the converter's
// permute, which interleaves each head's two rotary halves for adjacent-pair RoPE.
void unpermute_rows(Tensor& t, int64_t heads) {
    const int64_t rows = t.dims[1];
    const size_t row_bytes = t.bytes.size() / static_cast<size_t>(rows);
    std::vector<uint8_t> out(t.bytes.size());
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t hf_row = convert::permuted_source_row(r, rows, heads);
        std::memcpy(out.data() + hf_row * row_bytes, t.bytes.data() + r * row_bytes, row_bytes);
    }
    t.bytes = std::move(out);
}

// tiny-dense as qwen2: HF's Q/K layout (qwen2 rotates halves, NEOX style), q/k/v biases given or zero.
Draft qwen2_from_dense(float bias_stddev = 0.0f) {
    Draft d = Draft::load(fixture("gguf/tiny-dense-bf16.gguf").string());
    const int64_t n_head = d.u32("attention.head_count"), n_head_kv = d.u32("attention.head_count_kv");
    const int n_layer = static_cast<int>(d.u32("block_count"));
    d.rename_arch("qwen2");
    // llama-only keys (llama.cpp's converter writes them for the llama layout only)
    d.meta.erase("qwen2.vocab_size");
    d.meta.erase("qwen2.rope.dimension_count");
    for (int il = 0; il < n_layer; ++il) {
        unpermute_rows(d.at(blk(il, "attn_q.weight")), n_head);
        unpermute_rows(d.at(blk(il, "attn_k.weight")), n_head_kv);
        for (const char* p : {"attn_q", "attn_k", "attn_v"}) {
            const int64_t n = d.at(blk(il, std::string(p) + ".weight")).dims[1];
            const auto b = bias_stddev == 0.0f ? std::vector<float>(static_cast<size_t>(n), 0.0f)
                                               : gaussian(static_cast<size_t>(n), bias_stddev, 100 * il + p[5]);
            d.put_f32(blk(il, std::string(p) + ".bias"), {n}, b);
        }
    }
    return d;
}

// tiny-dense as mixtral (`llama` with experts): n_expert copies of the dense FFN (expert e's down
// projection scaled by down_scales[e] when given) and a random router.
Draft mixtral_from_dense(int64_t n_expert, int64_t n_used, const std::vector<float>& down_scales = {}) {
    Draft d = Draft::load(fixture("gguf/tiny-dense-bf16.gguf").string());
    const int n_layer = static_cast<int>(d.u32("block_count"));
    const int64_t n_embd = d.u32("embedding_length");
    d.meta.set("llama.expert_count", gguf::Value::u32(static_cast<uint32_t>(n_expert)));
    d.meta.set("llama.expert_used_count", gguf::Value::u32(static_cast<uint32_t>(n_used)));
    for (int il = 0; il < n_layer; ++il) {
        const Tensor gate = d.at(blk(il, "ffn_gate.weight")), up = d.at(blk(il, "ffn_up.weight"));
        const Tensor down = d.at(blk(il, "ffn_down.weight"));
        for (const char* p : {"ffn_gate", "ffn_up", "ffn_down"}) d.erase(blk(il, std::string(p) + ".weight"));
        d.put_f32(blk(il, "ffn_gate_inp.weight"), {n_embd, n_expert},
                  gaussian(static_cast<size_t>(n_embd * n_expert), 0.5f, 7 + il));
        d.put(stacked(blk(il, "ffn_gate_exps.weight"), gate, n_expert));
        d.put(stacked(blk(il, "ffn_up_exps.weight"), up, n_expert));
        if (down_scales.empty()) {
            d.put(stacked(blk(il, "ffn_down_exps.weight"), down, n_expert));
        } else {
            // distinct experts: expert e's output is the dense FFN's times down_scales[e]
            const std::vector<float> w = to_f32(down);
            std::vector<float> all;
            for (int64_t e = 0; e < n_expert; ++e) {
                for (float x : w) all.push_back(x * down_scales[static_cast<size_t>(e)]);
            }
            d.put_f32(blk(il, "ffn_down_exps.weight"), {down.dims[0], down.dims[1], n_expert}, all);
        }
    }
    return d;
}

// ---- the reference forward pass ----------------------------------------------------------------

// Straight from the definitions (RMSNorm, RoPE, causal GQA attention, SwiGLU, softmax-top-k-renormalise
// routing) in double precision. Its only knowledge of the file is llama.cpp's naming: `llama` rotates
// adjacent pairs, the other architectures the two halves of a head.
class Reference {
public:
    explicit Reference(const Draft& d) : d_(d) {
        const std::string a = d.arch();
        n_embd_ = d.u32("embedding_length");
        n_layer_ = d.u32("block_count");
        n_head_ = d.u32("attention.head_count");
        n_head_kv_ = d.u32("attention.head_count_kv");
        head_dim_ = d.meta.get_u32_or(a + ".attention.key_length", n_embd_ / n_head_);
        n_expert_used_ = d.meta.get_u32_or(a + ".expert_used_count", 0);
        eps_ = d.meta.get_f32(a + ".attention.layer_norm_rms_epsilon");
        freq_base_ = d.meta.get_f32_or(a + ".rope.freq_base", 10000.0f);
        neox_ = a != "llama";
        // linear RoPE scaling divides positions by the factor; Llama 3's rope_freqs divide each pair's angle
        freq_scale_ = 1.0 / d.meta.get_f32_or(a + ".rope.scaling.factor", 1.0f);
        if (d.find("rope_freqs.weight")) rope_factors_ = d.f32("rope_freqs.weight");
    }

    // Logits of tokens decoded from position 0, n x n_vocab.
    std::vector<float> logits(const int32_t* tokens, int n) {
        const int D = n_embd_, hd = head_dim_;
        const std::vector<float>& embd = w("token_embd.weight");
        std::vector<std::vector<double>> x(n);
        for (int t = 0; t < n; ++t) x[t].assign(embd.begin() + int64_t(tokens[t]) * D, embd.begin() + int64_t(tokens[t] + 1) * D);
        for (int il = 0; il < n_layer_; ++il) {
            std::vector<std::vector<double>> q(n), k(n), v(n);
            for (int t = 0; t < n; ++t) {
                const auto xn = rms_norm(x[t], w(blk(il, "attn_norm.weight")));
                q[t] = linear(blk(il, "attn_q"), xn);
                k[t] = linear(blk(il, "attn_k"), xn);
                v[t] = linear(blk(il, "attn_v"), xn);
                for (int h = 0; h < n_head_; ++h) rotate(q[t], il, "attn_q_norm.weight", h * hd, t);
                for (int h = 0; h < n_head_kv_; ++h) rotate(k[t], il, "attn_k_norm.weight", h * hd, t);
            }
            const int group = n_head_ / n_head_kv_;
            for (int t = 0; t < n; ++t) {
                std::vector<double> out(static_cast<size_t>(n_head_ * hd), 0.0);
                for (int h = 0; h < n_head_; ++h) {
                    const int g = h / group;
                    std::vector<double> s(t + 1);
                    for (int p = 0; p <= t; ++p) {
                        double dot = 0;
                        for (int i = 0; i < hd; ++i) dot += q[t][h * hd + i] * k[p][g * hd + i];
                        s[p] = dot / std::sqrt(double(hd));
                    }
                    softmax(s);
                    for (int p = 0; p <= t; ++p) {
                        for (int i = 0; i < hd; ++i) out[h * hd + i] += s[p] * v[p][g * hd + i];
                    }
                }
                add(x[t], linear(blk(il, "attn_output"), out));
            }
            for (int t = 0; t < n; ++t) {
                const auto xn = rms_norm(x[t], w(blk(il, "ffn_norm.weight")));
                add(x[t], d_.find(blk(il, "ffn_gate_inp.weight")) ? moe(il, xn) : swiglu(il, "", 0, xn));
            }
        }
        const std::string out_name = d_.find("output.weight") ? "output.weight" : "token_embd.weight";
        std::vector<float> result;
        for (int t = 0; t < n; ++t) {
            const auto logits = matvec(w(out_name), 0, rms_norm(x[t], w("output_norm.weight")));
            result.insert(result.end(), logits.begin(), logits.end());
        }
        return result;
    }

private:
    const std::vector<float>& w(const std::string& name) {
        auto it = cache_.find(name);
        if (it == cache_.end()) it = cache_.emplace(name, d_.f32(name)).first;
        return it->second;
    }

    // y = W x for the matrix at element `offset` of W (an expert of a stacked tensor), rows of x.size().
    static std::vector<double> matvec(const std::vector<float>& W, size_t offset, const std::vector<double>& x,
                                      size_t n_out = 0) {
        const size_t n_in = x.size();
        if (n_out == 0) n_out = (W.size() - offset) / n_in;
        std::vector<double> y(n_out, 0.0);
        for (size_t o = 0; o < n_out; ++o) {
            const float* row = W.data() + offset + o * n_in;
            for (size_t i = 0; i < n_in; ++i) y[o] += double(row[i]) * x[i];
        }
        return y;
    }

    // PREFIX.weight x (+ PREFIX.bias when the file has one)
    std::vector<double> linear(const std::string& prefix, const std::vector<double>& x) {
        auto y = matvec(w(prefix + ".weight"), 0, x);
        if (d_.find(prefix + ".bias")) {
            const auto& b = w(prefix + ".bias");
            for (size_t i = 0; i < y.size(); ++i) y[i] += b[i];
        }
        return y;
    }

    std::vector<double> rms_norm(const std::vector<double>& x, const std::vector<float>& g) const {
        double ss = 0;
        for (double v : x) ss += v * v;
        const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps_);
        std::vector<double> y(x.size());
        for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
        return y;
    }

    // One head at `at`: the Q/K RMSNorm when the file has it, then RoPE for position `pos`.
    void rotate(std::vector<double>& vec, int il, const char* norm, int at, int pos) {
        const int hd = head_dim_, half = hd / 2;
        if (d_.find(blk(il, norm))) {
            const std::vector<double> head(vec.begin() + at, vec.begin() + at + hd);
            const auto normed = rms_norm(head, w(blk(il, norm)));
            std::copy(normed.begin(), normed.end(), vec.begin() + at);
        }
        for (int i = 0; i < half; ++i) {
            double theta = pos * freq_scale_ * std::pow(double(freq_base_), -2.0 * i / hd);
            if (!rope_factors_.empty()) theta /= rope_factors_[i];
            const int a = neox_ ? at + i : at + 2 * i, b = neox_ ? at + i + half : at + 2 * i + 1;
            const double x0 = vec[a], x1 = vec[b];
            vec[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
            vec[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
        }
    }

    static void softmax(std::vector<double>& s) {
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double& v : s) sum += v = std::exp(v - mx);
        for (double& v : s) v /= sum;
    }

    static void add(std::vector<double>& x, const std::vector<double>& y) {
        for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    }

    // down(silu(gate x) * up x) of the dense FFN (suffix "") or of expert e (suffix "_exps").
    std::vector<double> swiglu(int il, const std::string& suffix, int e, const std::vector<double>& x) {
        const auto& G = w(blk(il, "ffn_gate" + suffix + ".weight"));
        const auto& U = w(blk(il, "ffn_up" + suffix + ".weight"));
        const auto& Dn = w(blk(il, "ffn_down" + suffix + ".weight"));
        const size_t n_ff = d_.find(blk(il, "ffn_gate" + suffix + ".weight"))->dims[1];
        const size_t n_embd = x.size();
        auto g = matvec(G, e * n_ff * n_embd, x, n_ff);
        const auto u = matvec(U, e * n_ff * n_embd, x, n_ff);
        for (size_t i = 0; i < n_ff; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
        return matvec(Dn, e * n_ff * n_embd, g, n_embd);
    }

    // Softmax over all experts, the top k, their weights renormalised to sum 1.
    std::vector<double> moe(int il, const std::vector<double>& x) {
        auto p = matvec(w(blk(il, "ffn_gate_inp.weight")), 0, x);
        softmax(p);
        std::vector<int> order(p.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
        double sum = 0;
        for (int j = 0; j < n_expert_used_; ++j) sum += p[order[j]];
        std::vector<double> y(x.size(), 0.0);
        for (int j = 0; j < n_expert_used_; ++j) {
            const auto out = swiglu(il, "_exps", order[j], x);
            for (size_t i = 0; i < y.size(); ++i) y[i] += p[order[j]] / sum * out[i];
        }
        return y;
    }

    const Draft& d_;
    std::map<std::string, std::vector<float>> cache_;
    int n_embd_, n_layer_, n_head_, n_head_kv_, head_dim_, n_expert_used_;
    double eps_, freq_scale_;
    std::vector<float> rope_factors_;
    float freq_base_;
    bool neox_;
};

// The reference over the first n tokens of each oracle sequence, laid out as run_sequences does.
std::vector<float> reference_sequences(const Draft& d, const HfRefs& refs, int n) {
    Reference ref(d);
    std::vector<float> out;
    for (int64_t s = 0; s < refs.n_seq; ++s) {
        const auto l = ref.logits(refs.seq_tokens(s), n);
        out.insert(out.end(), l.begin(), l.end());
    }
    return out;
}

// ---- the tests -----------------------------------------------------------------------------------

constexpr int kRefTokens = 24;  // positions per sequence the reference pass covers (it is slow)

class Architecture : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
        REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
        dir_ = fs::temp_directory_path() / ("arch-test-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        dense_refs_ = HfRefs::load(fixture("hf/tiny-dense/refs.safetensors").string());
        moe_refs_ = HfRefs::load(fixture("hf/tiny-moe/refs.safetensors").string());
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // Writes the draft and runs it over the oracle's sequences (n_tok tokens each).
    std::vector<float> run(const Draft& d, const std::string& name, const HfRefs& refs, int64_t n_tok) {
        const fs::path path = dir_ / (name + ".gguf");
        d.write(path);
        return testing_support::run_sequences(path.string(), refs, n_tok);
    }

    static void report(const char* what, const Agreement& a) {
        std::printf("%s: max |diff| %.3g, same argmax %d/%d\n", what, a.max_abs_diff, a.same_argmax, a.positions);
    }

    fs::path dir_;
    HfRefs dense_refs_, moe_refs_;
};

// The reference pass itself reproduces HF on both fixtures: what makes it an oracle for the rest.
TEST_F(Architecture, ReferencePassReproducesHf) {
    for (const auto& [file, refs] : {std::pair{"gguf/tiny-dense-bf16.gguf", &dense_refs_},
                                     std::pair{"gguf/tiny-moe-bf16.gguf", &moe_refs_}}) {
        const Draft d = Draft::load(fixture(file).string());
        const auto a = testing_support::agreement_with_hf(reference_sequences(d, *refs, kRefTokens), *refs, kRefTokens);
        report(file, a);
        EXPECT_LE(a.max_abs_diff, 1e-4) << file;
        EXPECT_EQ(a.same_argmax, a.positions) << file;
    }
}

// Llama 3's per-pair frequency factors (rope_freqs.weight) and linear position scaling, each applied
// to tiny-dense: the runtime agrees with the reference and both move far from the unscaled model.
TEST_F(Architecture, LlamaRopeFactorsAndLinearScalingMatchTheReference) {
    Draft factors = Draft::load(fixture("gguf/tiny-dense-bf16.gguf").string());
    std::vector<float> f(16);
    for (size_t i = 0; i < f.size(); ++i) f[i] = std::pow(8.0f, static_cast<float>(i) / 15.0f);  // 1 .. 8
    factors.put_f32("rope_freqs.weight", {16}, f);
    Draft linear = Draft::load(fixture("gguf/tiny-dense-bf16.gguf").string());
    linear.meta.set("llama.rope.scaling.type", gguf::Value::string("linear"));
    linear.meta.set("llama.rope.scaling.factor", gguf::Value::f32(4.0f));
    for (const auto& [name, d] : {std::pair{"llama with rope_freqs", &factors}, std::pair{"llama with linear rope scaling x4", &linear}}) {
        const auto ours = run(*d, name, dense_refs_, kRefTokens);
        const auto a = testing_support::agreement(ours, reference_sequences(*d, dense_refs_, kRefTokens), 4096);
        report((std::string(name) + " vs reference").c_str(), a);
        EXPECT_LE(a.max_abs_diff, 1e-4) << name;
        EXPECT_EQ(a.same_argmax, a.positions) << name;
        EXPECT_GT(testing_support::agreement_with_hf(ours, dense_refs_, kRefTokens).max_abs_diff, 0.1) << name;
    }
}

// Llama 2 with F16 weights, a 2-dim rotary pair per head of 4 (the SentencePiece fixture, random weights).
TEST_F(Architecture, Llama2F16MatchesTheReference) {
    REQUIRE_FIXTURE("gguf/llama-2-tiny-random.gguf");
    const Draft d = Draft::load(fixture("gguf/llama-2-tiny-random.gguf").string());
    const auto ours = run(d, "llama2", dense_refs_, kRefTokens);
    const auto a = testing_support::agreement(ours, reference_sequences(d, dense_refs_, kRefTokens), 32000);
    report("llama-2-tiny-random (f16) vs reference", a);
    // its random logits are small: hold the difference to 1e-5 of their range (float rounding is ~1e-7)
    double range = 0;
    for (float x : ours) range = std::max(range, std::fabs(double(x)));
    std::printf("llama-2-tiny-random: max |logit| %.3g\n", range);
    EXPECT_LE(a.max_abs_diff, 1e-5 * range);
    EXPECT_EQ(a.same_argmax, a.positions);
}

TEST_F(Architecture, Qwen2WithZeroBiasesReproducesHf) {
    const auto a = testing_support::agreement_with_hf(run(qwen2_from_dense(), "qwen2", dense_refs_, 128), dense_refs_, 128);
    report("qwen2 (tiny-dense unpermuted, zero biases) vs HF", a);
    testing_support::expect_matches_hf(a);
}

TEST_F(Architecture, Qwen2BiasesMatchTheReference) {
    const Draft biased = qwen2_from_dense(0.5f);
    const auto ours = run(biased, "qwen2-bias", dense_refs_, kRefTokens);
    const auto a = testing_support::agreement(ours, reference_sequences(biased, dense_refs_, kRefTokens), 4096);
    report("qwen2 with random q/k/v biases vs reference", a);
    EXPECT_LE(a.max_abs_diff, 1e-4);
    EXPECT_EQ(a.same_argmax, a.positions);
    // the biases are not negligible: without them the logits move far more than the tolerance
    const auto unbiased = testing_support::agreement_with_hf(ours, dense_refs_, kRefTokens);
    report("qwen2 with random q/k/v biases vs HF (unbiased)", unbiased);
    EXPECT_GT(unbiased.max_abs_diff, 0.1);
}

TEST_F(Architecture, MixtralOfDenseCopiesReproducesHf) {
    const auto ours = run(mixtral_from_dense(8, 2), "mixtral", dense_refs_, 128);
    const auto a = testing_support::agreement_with_hf(ours, dense_refs_, 128);
    report("mixtral (8 copies of tiny-dense's FFN, top-2) vs HF", a);
    testing_support::expect_matches_hf(a);
    // and against the dense model run the same way: only the rounding of the weighted sum differs
    const auto dense = testing_support::run_sequences(fixture("gguf/tiny-dense-bf16.gguf").string(), dense_refs_, 128);
    const auto b = testing_support::agreement(ours, dense, 4096);
    report("mixtral (copies) vs tiny-dense in this runtime", b);
    EXPECT_LE(b.max_abs_diff, 1e-4);
    EXPECT_EQ(b.same_argmax, b.positions);
}

// llama.cpp sizes a `llama` file's experts by feed_forward_length and never reads
// expert_feed_forward_length for it (only qwen3moe and the like do): a stray key changes nothing.
TEST_F(Architecture, MixtralExpertWidthIsTheFeedForwardLength) {
    Draft d = mixtral_from_dense(4, 2);
    d.meta.set("llama.expert_feed_forward_length", gguf::Value::u32(123));
    const fs::path path = dir_ / "mixtral-stray-key.gguf";
    d.write(path);
    const auto model = runtime::Model::load(path.string());
    EXPECT_EQ(model->hparams().n_ff_exp, 768u);
    EXPECT_TRUE(model->hparams().is_moe());
}

TEST_F(Architecture, MixtralRoutesToDistinctExpertsAsTheReference) {
    // expert e = the dense FFN scaled by 0.25 (e + 1): the router's choice and weights change the output
    const Draft d = mixtral_from_dense(8, 2, {0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f});
    const auto ours = run(d, "mixtral-distinct", dense_refs_, kRefTokens);
    const auto a = testing_support::agreement(ours, reference_sequences(d, dense_refs_, kRefTokens), 4096);
    report("mixtral (distinct experts, top-2) vs reference", a);
    EXPECT_LE(a.max_abs_diff, 1e-4);
    EXPECT_EQ(a.same_argmax, a.positions);
    const auto dense = testing_support::agreement_with_hf(ours, dense_refs_, kRefTokens);
    report("mixtral (distinct experts) vs HF of the dense model", dense);
    EXPECT_GT(dense.max_abs_diff, 0.1);
}

// tiny-moe with all 16 experts of each layer replaced by expert 0 (still qwen3moe), and the qwen3
// (dense) model whose FFN is that expert.
std::pair<Draft, Draft> qwen3_from_moe() {
    Draft moe = Draft::load(fixture("gguf/tiny-moe-bf16.gguf").string());
    const int n_layer = static_cast<int>(moe.u32("block_count"));
    const int64_t n_expert = moe.u32("expert_count");
    const uint32_t n_ff_exp = moe.u32("expert_feed_forward_length");
    Draft dense = moe;
    for (int il = 0; il < n_layer; ++il) {
        for (const char* p : {"ffn_gate", "ffn_up", "ffn_down"}) {
            const Tensor first = expert_of(moe.at(blk(il, std::string(p) + "_exps.weight")), 0);
            moe.put(stacked(blk(il, std::string(p) + "_exps.weight"), first, n_expert));
            Tensor t = first;
            t.name = blk(il, std::string(p) + ".weight");
            dense.put(t);
            dense.erase(blk(il, std::string(p) + "_exps.weight"));
        }
        dense.erase(blk(il, "ffn_gate_inp.weight"));
    }
    dense.rename_arch("qwen3");
    for (const char* key : {"expert_count", "expert_used_count", "expert_feed_forward_length"}) {
        dense.meta.erase("qwen3." + std::string(key));
    }
    dense.meta.set("qwen3.feed_forward_length", gguf::Value::u32(n_ff_exp));
    return {std::move(moe), std::move(dense)};
}

// The model with `extra` more query heads per KV head, which attend but whose attn_output columns
// are zero: the same function, with n_head x head_dim (512) != n_embd (256) as in real Qwen3 models.
Draft with_silent_heads(Draft d, int64_t extra) {
    const std::string a = d.arch();
    const int n_layer = static_cast<int>(d.u32("block_count"));
    const int64_t n_head = d.u32("attention.head_count"), n_head_kv = d.u32("attention.head_count_kv");
    const int64_t hd = d.meta.get_u32(a + ".attention.key_length"), n_embd = d.u32("embedding_length");
    const int64_t group = n_head / n_head_kv, wide_group = group + extra, wide = n_head_kv * wide_group;
    d.meta.set(a + ".attention.head_count", gguf::Value::u32(static_cast<uint32_t>(wide)));
    for (int il = 0; il < n_layer; ++il) {
        const auto q = d.f32(blk(il, "attn_q.weight")), o = d.f32(blk(il, "attn_output.weight"));
        std::vector<float> wq(static_cast<size_t>(wide * hd * n_embd)), wo(static_cast<size_t>(n_embd * wide * hd), 0.0f);
        for (int64_t h = 0; h < wide; ++h) {
            const int64_t g = h / wide_group, j = h % wide_group;
            const int64_t src = g * group + std::min(j, group - 1);  // a silent head queries like a real one
            std::copy_n(q.begin() + src * hd * n_embd, hd * n_embd, wq.begin() + h * hd * n_embd);
            if (j >= group) continue;
            for (int64_t r = 0; r < n_embd; ++r) {
                std::copy_n(o.begin() + r * n_head * hd + src * hd, hd, wo.begin() + r * wide * hd + h * hd);
            }
        }
        d.put_f32(blk(il, "attn_q.weight"), {n_embd, wide * hd}, wq);
        d.put_f32(blk(il, "attn_output.weight"), {wide * hd, n_embd}, wo);
    }
    return d;
}

TEST_F(Architecture, Qwen3DenseEqualsQwen3MoeOfOneExpert) {
    const auto [moe, dense] = qwen3_from_moe();
    const auto moe_logits = run(moe, "qwen3moe-one-expert", moe_refs_, 128);
    const auto dense_logits = run(dense, "qwen3", moe_refs_, 128);
    const auto a = testing_support::agreement(dense_logits, moe_logits, 4096);
    report("qwen3 (expert 0 as dense FFN) vs qwen3moe (16 copies of expert 0)", a);
    EXPECT_LE(a.max_abs_diff, 1e-4);
    EXPECT_EQ(a.same_argmax, a.positions);

    std::vector<float> first(dense_logits.begin(), dense_logits.begin() + kRefTokens * 4096);
    first.insert(first.end(), dense_logits.begin() + 128 * 4096, dense_logits.begin() + (128 + kRefTokens) * 4096);
    const auto r = testing_support::agreement(first, reference_sequences(dense, moe_refs_, kRefTokens), 4096);
    report("qwen3 vs reference", r);
    EXPECT_LE(r.max_abs_diff, 1e-4);
    EXPECT_EQ(r.same_argmax, r.positions);
}

TEST_F(Architecture, Qwen3AttentionWiderThanTheEmbedding) {
    const Draft dense = qwen3_from_moe().second;
    const Draft wide = with_silent_heads(dense, 2);
    ASSERT_EQ(wide.u32("attention.head_count"), 16u);
    const auto a = testing_support::agreement(run(wide, "qwen3-wide", moe_refs_, 128), run(dense, "qwen3", moe_refs_, 128), 4096);
    report("qwen3 with 16 query heads (8 silent) vs 8 heads", a);
    EXPECT_LE(a.max_abs_diff, 1e-4);
    EXPECT_EQ(a.same_argmax, a.positions);
}

// Tied output (no output.weight: token_embd is the output projection), as in the small Qwen2/Qwen3.
TEST_F(Architecture, TiedOutputMatchesTheReference) {
    Draft d = qwen2_from_dense();
    d.at("token_embd.weight").bytes = d.at("output.weight").bytes;
    d.erase("output.weight");
    const auto ours = run(d, "qwen2-tied", dense_refs_, kRefTokens);
    const auto a = testing_support::agreement(ours, reference_sequences(d, dense_refs_, kRefTokens), 4096);
    report("qwen2 with tied output vs reference", a);
    EXPECT_LE(a.max_abs_diff, 1e-4);
    EXPECT_EQ(a.same_argmax, a.positions);
}

}  // namespace
