// Which vector instructions the CPU kernels use, decided once; libquant's GGUF_SIMD cap applies too,
// so a test can compare the SIMD paths with the scalar ones.
#pragma once

#define RT_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define RT_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace runtime::cpu {

enum class Simd { Scalar, Avx2, Avx512 };

Simd simd();

}  // namespace runtime::cpu
