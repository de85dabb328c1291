// gguf-convert against llama.cpp's convert_hf_to_gguf: converting the shared HF fixtures must give
// the reference GGUFs' tensors (names, order, types, shapes, bytes) and metadata.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "convert/converter.h"
#include "fixtures.h"
#include "gguf/file.h"
#include "gguf_compare.h"
#include "hf_checkpoint.h"
#include "spm_model.h"
#include "quant/float16.h"
#include "quant/quant.h"

using testing_support::expect_same_gguf;
using testing_support::fixture;
namespace fs = std::filesystem;

namespace {

// Outputs go to one directory per run, removed when the test binary exits.
struct OutputDir {
    fs::path path = fs::temp_directory_path() / ("convert-conformance-" + std::to_string(::getpid()));
    OutputDir() { fs::create_directories(path); }
    ~OutputDir() { fs::remove_all(path); }
};

fs::path out_path(const std::string& name) {
    static OutputDir dir;
    return dir.path / name;
}

gguf::File convert_fixture(const std::string& model, convert::OutType outtype, const std::string& out_name) {
    convert::ConvertOptions opt;
    opt.input_dir = fixture("hf/" + model).string();
    opt.output_path = out_path(out_name).string();
    opt.outtype = outtype;
    convert::convert_checkpoint(opt);
    return gguf::File::open(opt.output_path);
}

// The shared tiny-dense/tiny-moe files hold tokenizer.ggml.pre as their last key, after the special
// token ids; llama.cpp's converter (_set_vocab_gpt2) writes it right after tokenizer.ggml.model, as
// gguf-convert does and as the tiny gpt-oss reference file made by that converter has it
// (test_gptoss_reference compares every key's position there). Here its value is compared, not its position.
const std::vector<std::string> kAppendedInFixtures = {"tokenizer.ggml.pre"};

}  // namespace

TEST(ConvertConformance, TinyDenseBf16MatchesLlamaCpp) {
    REQUIRE_FIXTURE("hf/tiny-dense/config.json");
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    gguf::File ours = convert_fixture("tiny-dense", convert::OutType::BF16, "dense-bf16.gguf");
    expect_same_gguf(ours, gguf::File::open(fixture("gguf/tiny-dense-bf16.gguf").string()), kAppendedInFixtures);
}

TEST(ConvertConformance, TinyMoeBf16MatchesLlamaCpp) {
    REQUIRE_FIXTURE("hf/tiny-moe/config.json");
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    gguf::File ours = convert_fixture("tiny-moe", convert::OutType::BF16, "moe-bf16.gguf");
    expect_same_gguf(ours, gguf::File::open(fixture("gguf/tiny-moe-bf16.gguf").string()), kAppendedInFixtures);
}

TEST(ConvertConformance, AutoOuttypeKeepsBf16) {
    REQUIRE_FIXTURE("hf/tiny-dense/config.json");
    REQUIRE_FIXTURE("gguf/tiny-dense-bf16.gguf");
    gguf::File ours = convert_fixture("tiny-dense", convert::OutType::Auto, "dense-auto.gguf");
    expect_same_gguf(ours, gguf::File::open(fixture("gguf/tiny-dense-bf16.gguf").string()), kAppendedInFixtures);
}

// q8_0: 2-D weights become ggml's Q8_0 blocks of the same values, everything else as for bf16.
TEST(ConvertConformance, Q8_0QuantizesTheReferenceWeights) {
    REQUIRE_FIXTURE("hf/tiny-moe/config.json");
    REQUIRE_FIXTURE("gguf/tiny-moe-bf16.gguf");
    gguf::File ours = convert_fixture("tiny-moe", convert::OutType::Q8_0, "moe-q8_0.gguf");
    gguf::File ref = gguf::File::open(fixture("gguf/tiny-moe-bf16.gguf").string());
    EXPECT_EQ(ours.metadata().get_u32("general.file_type"), 7u);
    ASSERT_EQ(ours.tensors().size(), ref.tensors().size());
    for (size_t i = 0; i < ref.tensors().size(); ++i) {
        const gguf::TensorInfo& x = ours.tensors()[i];
        const gguf::TensorInfo& y = ref.tensors()[i];
        ASSERT_EQ(x.name, y.name);
        EXPECT_EQ(x.dims, y.dims);
        if (y.type == gguf::GgmlType::F32) {  // norms and the router keep their F32 bytes
            EXPECT_EQ(x.type, gguf::GgmlType::F32) << x.name;
            EXPECT_EQ(std::memcmp(ours.tensor_data(x).data(), ref.tensor_data(y).data(), y.n_bytes()), 0) << x.name;
            continue;
        }
        ASSERT_EQ(x.type, gguf::GgmlType::Q8_0) << x.name;
        std::vector<float> f(y.n_elements());
        const uint8_t* src = ref.tensor_data(y).data();
        for (size_t k = 0; k < f.size(); ++k) {
            uint16_t h;
            std::memcpy(&h, src + 2 * k, 2);
            f[k] = quant::bf16_to_f32(h);
        }
        std::vector<uint8_t> expect(x.n_bytes());
        quant::quantize_rows(gguf::GgmlType::Q8_0, f.data(), expect.data(), static_cast<int64_t>(y.n_rows()), y.dims[0]);
        EXPECT_EQ(std::memcmp(ours.tensor_data(x).data(), expect.data(), expect.size()), 0) << x.name;
    }
}

// SentencePiece: a tokenizer.model carrying the Llama 2 vocabulary of the reference GGUF converts
// back to the same tokens, scores, types and special ids.
TEST(ConvertConformance, SentencePieceVocabularyRoundTrips) {
    REQUIRE_FIXTURE("gguf/llama-2-tiny-random.gguf");
    const gguf::File ref = gguf::File::open(fixture("gguf/llama-2-tiny-random.gguf").string());
    const gguf::Metadata& rm = ref.metadata();
    const std::vector<std::string> tokens = rm.get_string_array("tokenizer.ggml.tokens");
    const std::vector<float> scores = rm.get_f32_array("tokenizer.ggml.scores");
    const std::vector<int64_t> types = rm.get_int_array("tokenizer.ggml.token_type");
    std::vector<convert::SentencePiece> pieces(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i)
        pieces[i] = {tokens[i], scores[i], static_cast<convert::PieceType>(types[i])};

    hf_test::TempDir dir("spm-fixture");
    hf_test::ModelShape s;
    s.layers = 1;
    s.hidden = 8;
    s.heads = 2;
    s.kv_heads = 2;
    s.ff = 32;
    s.vocab = static_cast<int>(tokens.size());
    hf_test::write_file(dir / "config.json", hf_test::config_json("LlamaForCausalLM", s, ",\"unk_token_id\":0"));
    hf_test::write_safetensors(dir / "model.safetensors", hf_test::decoder_tensors(s, "F16"));
    hf_test::write_file(dir / "tokenizer.model", hf_test::spm_model(pieces));

    convert::ConvertOptions opt;
    opt.input_dir = dir.path.string();
    opt.output_path = (dir / "out.gguf").string();
    convert::convert_checkpoint(opt);
    const gguf::File f = gguf::File::open(opt.output_path);
    const gguf::Metadata& m = f.metadata();
    EXPECT_EQ(m.get_string("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(m.get_string("tokenizer.ggml.pre"), "default");
    EXPECT_EQ(m.get_string_array("tokenizer.ggml.tokens"), tokens);
    EXPECT_EQ(m.get_f32_array("tokenizer.ggml.scores"), scores);
    EXPECT_EQ(m.get_int_array("tokenizer.ggml.token_type"), types);
    for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"})
        EXPECT_EQ(m.get_u32(key), rm.get_u32(key)) << key;
    EXPECT_EQ(m.get_u32("general.file_type"), 1u);  // auto on an f16 checkpoint
    EXPECT_EQ(f.tensor("token_embd.weight").type, gguf::GgmlType::F16);
}
