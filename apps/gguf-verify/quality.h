// The quality gate: PPL, PPL ratio, mean and 99th-percentile KLD and same-top against a base model, with
// thresholds. From a compact baseline the KLD is known only within bounds: a threshold passes only when
// the upper bound meets it, so the gate never passes what the full computation would fail.
#pragma once

#include <optional>

#include "check.h"
#include "runtime/kld_baseline.h"

namespace verify {

struct QualityThresholds {
    std::optional<double> max_kld, max_kld_p99, min_same_top_percent, max_ppl_ratio;
};

CheckResult quality_check(const runtime::QualityResult& q, const QualityThresholds& t);

}  // namespace verify
