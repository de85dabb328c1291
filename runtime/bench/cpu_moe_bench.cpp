// The CPU experts step at one token, alone: Qwen3-30B-A3B's routed experts (8 active, gate and up
// 768 x 2048, down 2048 x 768) over enough layers that every call streams its weights from DRAM, next to
// dense matmuls that read the same bytes per layer, so that the two rates can be compared on one
// machine at one thread count (docs/benchmarks.md: at 16 threads on the GPU machine's host the
// experts step streamed at a third of what the dense matmuls and the dot kernels alone reach; the
// model's tiny activations made every block-scale product subnormal, which this bench's random ones
// do not: runtime/src/cpu/denormals.h).
//
//   cpu-moe-bench [--threads N] [--layers L] [--type q4_K] [--down-type q6_K] [--tokens T] [--mmap DIR]
//                 [--seconds S]
//
// --mmap DIR puts the weights in a file there, mapped read-only and shared, as gguf-run maps a model
// (4 KiB pages, faulted in on first touch); without it they are in anonymous memory. Prints, per mode,
// microseconds per layer and GB/s of weights. GGUF_PROFILE=1 adds the per-thread phase table.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/matmul.h"
#include "quant/quant.h"

namespace {

using gguf::GgmlType;

struct Args {
    int threads = 1, layers = 16, tokens = 1;
    GgmlType type = GgmlType::Q4_K, down_type = GgmlType::Q4_K;
    std::string mmap_dir;
    double seconds = 1.0;
};

GgmlType parse_type(const std::string& s) {
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0}) {
        if (s == gguf::type_name(t)) return t;
    }
    throw std::runtime_error("unknown type " + s + " (q4_K, q5_K, q6_K, q8_0, q4_0)");
}

double number(const std::string& key, const std::string& v) {
    try {
        size_t used = 0;
        const double d = std::stod(v, &used);
        if (used == v.size()) return d;
    } catch (const std::exception&) {
    }
    throw std::runtime_error(key + ": not a number: " + v);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (i + 1 >= argc) throw std::runtime_error("missing value after " + k);
        const std::string v = argv[++i];
        if (k == "--threads") a.threads = static_cast<int>(number(k, v));
        else if (k == "--layers") a.layers = static_cast<int>(number(k, v));
        else if (k == "--tokens") a.tokens = static_cast<int>(number(k, v));
        else if (k == "--type") a.type = parse_type(v);
        else if (k == "--down-type") a.down_type = parse_type(v);
        else if (k == "--mmap") a.mmap_dir = v;
        else if (k == "--seconds") a.seconds = number(k, v);
        else throw std::runtime_error("unknown option " + k);
    }
    if (a.threads < 1 || a.layers < 1 || a.tokens < 1 || a.tokens > 512) throw std::runtime_error("--threads, --layers >= 1 and --tokens 1..512");
    return a;
}

// Bytes for all layers, in anonymous memory or a mapped file; filled by repeating one quantized matrix.
class Store {
public:
    Store(size_t bytes, const std::string& dir) : bytes_(bytes) {
        if (dir.empty()) {
            p_ = static_cast<uint8_t*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096));
            return;
        }
        std::string path = dir + "/cpu-moe-bench-XXXXXX";
        fd_ = ::mkstemp(path.data());
        if (fd_ < 0) throw std::runtime_error("cannot create a file in " + dir);
        ::unlink(path.c_str());
        if (::ftruncate(fd_, static_cast<off_t>(bytes)) != 0) throw std::runtime_error("ftruncate failed");
        void* w = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (w == MAP_FAILED) throw std::runtime_error("mmap failed");
        p_ = static_cast<uint8_t*>(w);
    }
    // Remaps the file read-only, as gguf-run maps a model (a fresh mapping: no page is mapped yet).
    void seal() {
        if (fd_ < 0) return;
        ::munmap(p_, bytes_);
        void* r = ::mmap(nullptr, bytes_, PROT_READ, MAP_SHARED, fd_, 0);
        if (r == MAP_FAILED) throw std::runtime_error("mmap failed");
        p_ = static_cast<uint8_t*>(r);
    }
    ~Store() {
        if (fd_ < 0) {
            std::free(p_);
        } else {
            ::munmap(p_, bytes_);
            ::close(fd_);
        }
    }
    uint8_t* data() const { return p_; }

private:
    size_t bytes_;
    uint8_t* p_ = nullptr;
    int fd_ = -1;
};

std::vector<uint8_t> random_matrix(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> f(static_cast<size_t>(rows * cols));
    for (auto& v : f) v = normal(rng);
    std::vector<uint8_t> q(gguf::row_size(type, static_cast<uint64_t>(cols)) * static_cast<size_t>(rows));
    quant::quantize_rows(type, f.data(), q.data(), rows, cols);
    return q;
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Calls f(layer) over the layers round-robin until `seconds` have passed (after one warm-up round);
// returns seconds per call.
template <typename F>
double time_calls(int layers, double seconds, F&& f) {
    for (int l = 0; l < layers; ++l) f(l);
    int64_t calls = 0;
    const double t0 = now_s();
    double t = t0;
    while (t - t0 < seconds) {
        for (int l = 0; l < layers; ++l) f(l);
        calls += layers;
        t = now_s();
    }
    return (t - t0) / static_cast<double>(calls);
}

}  // namespace

int main(int argc, char** argv) try {
    const Args a = parse(argc, argv);
    const int64_t n_embd = 2048, n_ff = 768, n_exp = 8, k = 8;
    std::mt19937 rng(1);
    const std::vector<uint8_t> gate = random_matrix(a.type, n_ff, n_embd, rng);
    const std::vector<uint8_t> down = random_matrix(a.down_type, n_embd, n_ff, rng);
    const size_t gu_bytes = gate.size() * n_exp, down_bytes = down.size() * n_exp;
    const size_t layer_bytes = 2 * gu_bytes + down_bytes;
    Store store(layer_bytes * static_cast<size_t>(a.layers), a.mmap_dir);
    for (int l = 0; l < a.layers; ++l) {
        uint8_t* p = store.data() + layer_bytes * static_cast<size_t>(l);
        for (int64_t e = 0; e < 2 * n_exp; ++e) std::memcpy(p + e * gate.size(), gate.data(), gate.size());
        for (int64_t e = 0; e < n_exp; ++e) std::memcpy(p + 2 * gu_bytes + e * down.size(), down.data(), down.size());
    }
    store.seal();

    runtime::HParams hp;
    hp.arch = runtime::Arch::Qwen3Moe;
    hp.n_embd = n_embd;
    hp.n_layer = static_cast<uint32_t>(a.layers);
    hp.n_head = 32;
    hp.n_head_kv = 4;
    hp.head_dim_k = hp.head_dim_v = 128;
    hp.n_expert = n_exp;
    hp.n_expert_used = k;
    hp.n_ff_exp = n_ff;
    hp.rms_eps = 1e-6f;
    hp.n_rot = 128;
    std::vector<runtime::LayerWeights> layers(static_cast<size_t>(a.layers));
    for (int l = 0; l < a.layers; ++l) {
        const uint8_t* p = store.data() + layer_bytes * static_cast<size_t>(l);
        auto set = [&](runtime::Weight& w, GgmlType t, int64_t out, int64_t in, const uint8_t* d) {
            w.type = t;
            w.n_in = in;
            w.n_out = out;
            w.n_mat = n_exp;
            w.row_bytes = gguf::row_size(t, static_cast<uint64_t>(in));
            w.data = d;
        };
        set(layers[l].gate_exps, a.type, n_ff, n_embd, p);
        set(layers[l].up_exps, a.type, n_ff, n_embd, p + gu_bytes);
        set(layers[l].down_exps, a.down_type, n_embd, n_ff, p + 2 * gu_bytes);
    }
    runtime::cpu::CpuExecutor ex(hp, {64, a.tokens, a.threads, 8}, std::vector<double>(64, 1.0));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(a.tokens * n_embd)), out(x.size());
    for (auto& v : x) v = normal(rng);
    std::vector<int32_t> ids(static_cast<size_t>(a.tokens * k));
    std::vector<float> wts(ids.size(), 1.0f / k);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i % k);
    const runtime::Tensor xt{x.data(), a.tokens, n_embd, n_embd, runtime::Device::cpu()};
    const runtime::Tensor ot{out.data(), a.tokens, n_embd, n_embd, runtime::Device::cpu()};
    const runtime::Routing r{ids.data(), wts.data(), a.tokens, static_cast<int>(k), runtime::Device::cpu()};

    const double experts = time_calls(a.layers, a.seconds, [&](int l) { ex.experts(layers[l], xt, r, ot); });

    // the same bytes per layer as one dense matrix (the layer's gate, up and down stacks read as rows
    // of the gate's type and width: 2 * 8 * 768 + the down bytes' worth of rows)
    std::vector<runtime::Weight> dense(static_cast<size_t>(a.layers));
    const size_t row = gguf::row_size(a.type, n_embd);
    for (int l = 0; l < a.layers; ++l) {
        dense[l].type = a.type;
        dense[l].n_in = n_embd;
        dense[l].n_out = static_cast<int64_t>(layer_bytes / row) / 16 * 16;
        dense[l].row_bytes = row;
        dense[l].data = store.data() + layer_bytes * static_cast<size_t>(l);
    }
    std::vector<float> y(static_cast<size_t>(dense[0].n_out * a.tokens));
    runtime::cpu::Activations acts;
    acts.reserve(a.tokens, n_embd);
    const double matmul = time_calls(a.layers, a.seconds, [&](int l) {
        acts.set(x.data(), a.tokens, n_embd, n_embd);
        runtime::cpu::matmul(dense[l], 0, acts, y.data(), dense[l].n_out, a.threads);
    });
    const double dense_bytes = static_cast<double>(dense[0].n_out) * static_cast<double>(row);

    std::printf("cpu-moe-bench: %d threads, %d tokens, %d layers of 8 experts (%s gate/up, %s down), %.1f MB a layer, %s\n",
                a.threads, a.tokens, a.layers, std::string(gguf::type_name(a.type)).c_str(),
                std::string(gguf::type_name(a.down_type)).c_str(), layer_bytes / 1e6,
                a.mmap_dir.empty() ? "anonymous memory" : ("mapped from a file in " + a.mmap_dir).c_str());
    std::printf("experts step   %9.1f us a layer  %7.2f GB/s\n", experts * 1e6, layer_bytes / experts / 1e9);
    std::printf("dense matmul   %9.1f us a layer  %7.2f GB/s\n", matmul * 1e6, dense_bytes / matmul / 1e9);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
}
