#include "random_blocks.h"

#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/float16.h"

namespace synth {

namespace {

using gguf::GgmlType;

// xoshiro256**-style generator seeded through splitmix64: fast, and good enough for noise weights.
class Rng {
public:
    explicit Rng(uint64_t seed) {
        for (auto& v : s_) v = splitmix(seed);
    }
    uint64_t next() {
        const uint64_t r = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return r;
    }
    void bytes(uint8_t* dst, uint64_t n) {
        uint64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const uint64_t r = next();
            std::memcpy(dst + i, &r, 8);
        }
        if (i < n) {
            const uint64_t r = next();
            std::memcpy(dst + i, &r, n - i);
        }
    }
    float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static uint64_t splitmix(uint64_t& x) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    uint64_t s_[4];
};

template <class Block, class Fix>
void blocks(uint8_t* dst, uint64_t n, Rng& rng, Fix fix) {
    rng.bytes(dst, n * sizeof(Block));
    auto* b = reinterpret_cast<Block*>(dst);
    for (uint64_t i = 0; i < n; ++i) fix(b[i]);
}

// Scales: typical magnitudes of 0.1-0.5 per weight, as the python generator of ../shared/tools.
const uint16_t kD = quant::f32_to_f16(0.0008f);
const uint16_t kDmin = quant::f32_to_f16(0.0004f);
const uint16_t kD8 = quant::f32_to_f16(0.002f);
const uint16_t kD4 = quant::f32_to_f16(0.02f);

}  // namespace

bool can_fill(GgmlType type) {
    switch (type) {
        case GgmlType::F32:
        case GgmlType::F16:
        case GgmlType::BF16:
        case GgmlType::Q4_0:
        case GgmlType::Q5_0:
        case GgmlType::Q8_0:
        case GgmlType::Q4_K:
        case GgmlType::Q5_K:
        case GgmlType::Q6_K:
        case GgmlType::MXFP4: return true;
        default: return false;
    }
}

void fill_blocks(GgmlType type, uint8_t* dst, uint64_t n, uint64_t seed, bool gaussian, float constant) {
    Rng rng(seed);
    switch (type) {
        case GgmlType::F32:
        case GgmlType::F16:
        case GgmlType::BF16:
            for (uint64_t i = 0; i < n; ++i) {
                float v = constant;
                if (gaussian) {  // Box-Muller
                    const float u1 = std::max(rng.uniform(), 1e-7f), u2 = rng.uniform();
                    v = 0.02f * std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
                }
                if (type == GgmlType::F32) {
                    std::memcpy(dst + 4 * i, &v, 4);
                } else {
                    const uint16_t h = type == GgmlType::F16 ? quant::f32_to_f16(v) : quant::f32_to_bf16(v);
                    std::memcpy(dst + 2 * i, &h, 2);
                }
            }
            return;
        case GgmlType::Q4_0: return blocks<quant::BlockQ4_0>(dst, n, rng, [](auto& b) { b.d = kD4; });
        case GgmlType::Q5_0: return blocks<quant::BlockQ5_0>(dst, n, rng, [](auto& b) { b.d = kD4; });
        case GgmlType::Q8_0: return blocks<quant::BlockQ8_0>(dst, n, rng, [](auto& b) { b.d = kD8; });
        case GgmlType::Q4_K:
            return blocks<quant::BlockQ4_K>(dst, n, rng, [](auto& b) { b.d = kD, b.dmin = kDmin; });
        case GgmlType::Q5_K:
            return blocks<quant::BlockQ5_K>(dst, n, rng, [](auto& b) { b.d = kD, b.dmin = kDmin; });
        case GgmlType::Q6_K:
            return blocks<quant::BlockQ6_K>(dst, n, rng, [](auto& b) {
                for (auto& s : b.scales) s = static_cast<int8_t>(1 + static_cast<uint8_t>(s) % 15);
                b.d = kD;
            });
        case GgmlType::MXFP4:
            // E8M0 exponent 2^-4: e2m1 values up to 6 become up to 0.375
            return blocks<quant::BlockMXFP4>(dst, n, rng, [](auto& b) { b.e = 123; });
        default: break;
    }
}

}  // namespace synth
