// Writes small valid GGUF files covering every metadata type and several tensor types, as the
// fuzzer's seed corpus: mutations of valid files reach deeper than random bytes.
#include <string>
#include <vector>

#include "gguf/writer.h"

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : ".";
    using namespace gguf;
    for (int variant = 0; variant < 4; ++variant) {
        Writer w(dir + "/seed" + std::to_string(variant) + ".gguf", variant == 3 ? 2 : 3);
        Metadata& m = w.metadata();
        m.set("general.architecture", Value::string("llama"));
        if (variant == 1) m.set("general.alignment", Value::u32(64));
        m.set("a.u8", Value::u8(1));
        m.set("a.i8", Value::i8(-1));
        m.set("a.u16", Value::u16(2));
        m.set("a.i16", Value::i16(-2));
        m.set("a.u32", Value::u32(3));
        m.set("a.i32", Value::i32(-3));
        m.set("a.u64", Value::u64(4));
        m.set("a.i64", Value::i64(-4));
        m.set("a.f32", Value::f32(0.5f));
        m.set("a.f64", Value::f64(0.25));
        m.set("a.bool", Value::boolean(true));
        m.set("a.strs", Value::string_array({"<s>", "</s>", "hello"}));
        m.set("a.ints", Value::i32_array({1, 2, 3}));
        Array inner{ValueType::F32, {Value::f32(1), Value::f32(2)}};
        m.set("a.nested", Value::array(Array{ValueType::Array, {Value::array(inner)}}));
        w.add_tensor("token_embd.weight", GgmlType::Q8_0, {32, 2});
        w.add_tensor("blk.0.attn_q.weight", GgmlType::F16, {4, 4});
        if (variant >= 2) w.add_tensor("blk.0.ffn_up_exps.weight", GgmlType::Q4_K, {256, 1, 2});
        for (const auto& t : w.tensors()) {
            std::vector<uint8_t> data(t.n_bytes(), static_cast<uint8_t>(variant));
            w.write_data(data);
        }
        w.finish();
    }
    return 0;
}
