// The FormatOps each format file defines; registry.cpp lists them.
#pragma once

#include "format.h"

namespace quant {

extern const FormatOps kF32Ops;
extern const FormatOps kF16Ops;
extern const FormatOps kBF16Ops;

}  // namespace quant
