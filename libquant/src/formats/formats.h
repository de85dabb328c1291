// The FormatOps each format file defines; registry.cpp lists them.
#pragma once

#include "format_ops.h"

namespace quant {

extern const FormatOps kF32Ops;
extern const FormatOps kF16Ops;
extern const FormatOps kBF16Ops;
extern const FormatOps kQ4_0Ops;
extern const FormatOps kQ4_1Ops;
extern const FormatOps kQ5_0Ops;
extern const FormatOps kQ5_1Ops;
extern const FormatOps kQ8_0Ops;
extern const FormatOps kQ2_KOps;
extern const FormatOps kQ3_KOps;
extern const FormatOps kQ4_KOps;
extern const FormatOps kQ5_KOps;
extern const FormatOps kQ6_KOps;
extern const FormatOps kQ8_KOps;
extern const FormatOps kIQ4_NLOps;
extern const FormatOps kIQ4_XSOps;
extern const FormatOps kMXFP4Ops;
extern const FormatOps kTQ1_0Ops;
extern const FormatOps kTQ2_0Ops;
extern const FormatOps kIQ2_XXSOps;
extern const FormatOps kIQ2_XSOps;
extern const FormatOps kIQ2_SOps;
extern const FormatOps kIQ3_XXSOps;
extern const FormatOps kIQ3_SOps;
extern const FormatOps kIQ1_SOps;
extern const FormatOps kIQ1_MOps;

}  // namespace quant
