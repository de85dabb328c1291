// libFuzzer target for libconvert's readers of untrusted checkpoint files (convert_exercise.h).
#include "convert_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    convert_fuzz::exercise(data, size);
    return 0;
}
