#include "denormals.h"

#include <omp.h>

#if defined(__SSE2__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

namespace runtime::cpu {

namespace {

void flush_here() {
#if defined(__SSE2__)
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
}

}  // namespace

void flush_denormals(int n_threads) {
    flush_here();
#pragma omp parallel num_threads(n_threads)
    flush_here();
}

bool flushes_denormals() {
#if defined(__SSE2__)
    return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON && _MM_GET_DENORMALS_ZERO_MODE() == _MM_DENORMALS_ZERO_ON;
#else
    return false;
#endif
}

}  // namespace runtime::cpu
