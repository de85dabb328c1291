// <immintrin.h> for the kernel files, included through here so its warnings are silenced once.
//
// GCC 12's unmasked forms of several AVX-512 intrinsics (insert, extract, int-to-float) pass an
// intentionally undefined register as the merge source, which -Wall reports as uninitialized wherever
// they are inlined (GCC bug 105593). The header's own warnings are silenced around the include; the
// helpers of dot_x86_512.h use the zero-masked forms with every lane selected, which compute the same.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
