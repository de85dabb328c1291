// gguf-verify's data scan on every block type of fixtures/quant/quant-vectors.gguf (ggml's own blocks):
// the magnitude it derives from the block scales bounds the dequantized values, a clean tensor has no
// findings, and a NaN written into the scale of one block of one row is found in that row, for every type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "fixtures.h"
#include "gguf/file.h"
#include "manifest.h"
#include "quant/blocks.h"
#include "scan.h"

namespace {

using testing_support::fixture;

std::vector<uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// Writes a NaN into the scale of the first block at byte `at` of the buffer, for block type `t`.
void poison(uint8_t* block, gguf::GgmlType t) {
    using namespace quant;
    using T = gguf::GgmlType;
    const uint16_t nan = 0x7e00;
    size_t off = 0;
    switch (t) {
        case T::MXFP4: block[0] = 0xff; return;
        case T::IQ1_M: {
            // the fp16 scale is the top nibbles of the four scale words: 0x7e00 = nibbles 0, 0, e, 7
            uint8_t* s = block + offsetof(BlockIQ1M, scales);
            s[1] &= 0x0f, s[3] &= 0x0f, s[5] = static_cast<uint8_t>((s[5] & 0x0f) | 0xe0), s[7] = static_cast<uint8_t>((s[7] & 0x0f) | 0x70);
            return;
        }
        case T::Q2_K: off = offsetof(BlockQ2_K, d); break;
        case T::Q3_K: off = offsetof(BlockQ3_K, d); break;
        case T::Q6_K: off = offsetof(BlockQ6_K, d); break;
        case T::TQ1_0: off = offsetof(BlockTQ1_0, d); break;
        case T::TQ2_0: off = offsetof(BlockTQ2_0, d); break;
        default: off = 0;  // every other type keeps d first
    }
    std::memcpy(block + off, &nan, 2);
}

TEST(VerifyScan, EveryBlockTypeBoundedCleanAndPoisonable) {
    REQUIRE_FIXTURE("quant/quant-vectors.gguf");
    auto bytes = read_all(fixture("quant/quant-vectors.gguf").string());
    const gguf::File clean = gguf::File::parse(bytes, "quant-vectors.gguf");
    verify::ScanOptions opt;
    opt.threads = 1;
    const auto findings = verify::scan_tensors(clean, opt);
    std::set<gguf::GgmlType> types;
    for (size_t i = 0; i < clean.tensors().size(); ++i) {
        const auto& t = clean.tensors()[i];
        const std::string& name = t.name;
        const bool q = name.size() > 2 && name.compare(name.size() - 2, 2, ".q") == 0;
        const bool qi = name.size() > 3 && name.compare(name.size() - 3, 3, ".qi") == 0;
        if (!q && !qi) continue;
        const auto& f = findings[i];
        EXPECT_EQ(f.non_finite, 0u) << name;
        EXPECT_FALSE(f.all_zero) << name;
        EXPECT_FALSE(f.constant) << name;
        // the bound from the scales is at least the largest dequantized value
        const auto* deq = clean.find_tensor(name.substr(0, name.rfind('.')) + (qi ? ".deqi" : ".deq"));
        ASSERT_NE(deq, nullptr) << name;
        const auto d = clean.tensor_data(*deq);
        float mx = 0;
        for (size_t k = 0; k < d.size() / 4; ++k) {
            float v;
            std::memcpy(&v, d.data() + 4 * k, 4);
            mx = std::max(mx, std::fabs(v));
        }
        EXPECT_GE(f.max_abs, mx) << name;
        EXPECT_LT(f.max_abs, 1e4 * std::max(mx, 1e-3f)) << name << ": a bound this loose would hide absurd values";

        // a NaN scale in block 0 of row 3
        std::vector<uint8_t> copy = bytes;
        const uint64_t at = clean.data_offset() + t.offset + 3 * gguf::row_size(t.type, static_cast<uint64_t>(t.dims[0]));
        poison(copy.data() + at, t.type);
        const gguf::File bad = gguf::File::parse(copy, "poisoned");
        const auto bad_findings = verify::scan_tensors(bad, opt);
        EXPECT_EQ(bad_findings[i].non_finite, 1u) << name;
        EXPECT_EQ(bad_findings[i].first_bad_row, 3) << name;
        types.insert(t.type);
    }
    EXPECT_EQ(types.size(), 22u);  // every block type of the fixture
}

TEST(VerifyManifest, RoundTripsAndNamesTheChangedTensor) {
    REQUIRE_FIXTURE("quant/quant-vectors.gguf");
    auto bytes = read_all(fixture("quant/quant-vectors.gguf").string());
    const gguf::File f = gguf::File::parse(bytes, "quant-vectors.gguf");
    const auto m = verify::make_manifest(f, 2);
    const std::string path = testing::TempDir() + "/qv.manifest";
    verify::write_manifest(m, path);
    const auto back = verify::read_manifest(path);
    ASSERT_EQ(back.tensors.size(), m.tensors.size());
    EXPECT_EQ(back.metadata_hash, m.metadata_hash);
    for (size_t i = 0; i < m.tensors.size(); ++i) {
        EXPECT_EQ(back.tensors[i].name, m.tensors[i].name);
        EXPECT_EQ(back.tensors[i].hash, m.tensors[i].hash);
        EXPECT_EQ(back.tensors[i].shape, m.tensors[i].shape);
    }
    // one byte of q4_K.qi's data
    const auto& t = f.tensor("q4_K.qi");
    bytes[f.data_offset() + t.offset + 77] ^= 1;
    const auto changed = verify::make_manifest(gguf::File::parse(bytes, "changed"), 1);
    for (size_t i = 0; i < m.tensors.size(); ++i) {
        EXPECT_EQ(changed.tensors[i].hash != m.tensors[i].hash, m.tensors[i].name == "q4_K.qi") << m.tensors[i].name;
    }
    EXPECT_EQ(changed.metadata_hash, m.metadata_hash);
}

}  // namespace
