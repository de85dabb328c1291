#include "quality.h"

#include <cstdio>

namespace verify {

namespace {

std::string fmt(const char* f, double a, double b = 0, double c = 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, f, a, b, c);
    return buf;
}

// A KLD figure against its threshold. With bounds [lower, upper]: pass when upper <= limit, a clear fail
// when lower > limit, and otherwise a fail that says the baseline cannot decide.
void gate_kld(CheckResult& r, const char* what, const char* flag, double lower, double upper, bool exact,
              std::optional<double> limit) {
    // written so that a NaN figure fails: a gate must not pass what it cannot compare
    if (!limit || upper <= *limit) return;
    if (exact) {
        r.problems.push_back(std::string(what) + fmt(" %.6f exceeds %g (", upper, *limit) + flag + ")");
    } else if (lower > *limit) {
        r.problems.push_back(std::string(what) + fmt(" is at least %.6f, above %g (", lower, *limit) + flag + ")");
    } else {
        r.problems.push_back(std::string(what) + fmt(" is between %.6f and %.6f, and %g lies between: ", lower, upper, *limit) +
                             "the compact baseline cannot decide (make it with a smaller --max-rest, or use --base)");
    }
}

}  // namespace

CheckResult quality_check(const runtime::QualityResult& q, const QualityThresholds& t) {
    CheckResult r;
    r.name = "quality";
    const double same_top = 100 * q.same_top;
    r.figure = fmt("PPL %.4f (base %.4f, ratio %.4f), ", q.ppl, q.base_ppl, q.ppl_ratio());
    if (q.exact) {
        r.figure += fmt("mean KLD %.6f, p99 KLD %.6f, ", q.mean_kld, q.p99_kld);
    } else {
        r.figure += fmt("mean KLD %.6f..%.6f, ", q.mean_kld_lower, q.mean_kld) +
                    fmt("p99 KLD %.6f..%.6f, ", q.p99_kld_lower, q.p99_kld);
    }
    r.figure += fmt("same-top %.3f %% over %.0f positions", same_top, static_cast<double>(q.n_positions));
    gate_kld(r, "mean KLD", "--max-kld", q.mean_kld_lower, q.mean_kld, q.exact, t.max_kld);
    gate_kld(r, "p99 KLD", "--max-kld-p99", q.p99_kld_lower, q.p99_kld, q.exact, t.max_kld_p99);
    if (t.min_same_top_percent && !(same_top >= *t.min_same_top_percent)) {
        r.problems.push_back(fmt("same-top %.3f %% is below %g %% (--min-same-top)", same_top, *t.min_same_top_percent));
    }
    if (t.max_ppl_ratio && !(q.ppl_ratio() <= *t.max_ppl_ratio)) {
        r.problems.push_back(fmt("PPL ratio %.4f exceeds %g (--max-ppl-ratio)", q.ppl_ratio(), *t.max_ppl_ratio));
    }
    r.metrics = {{"ppl", q.ppl},
                 {"base_ppl", q.base_ppl},
                 {"ppl_ratio", q.ppl_ratio()},
                 {"mean_kld", q.mean_kld},
                 {"p99_kld", q.p99_kld},
                 {"max_kld", q.max_kld},
                 {"mean_kld_lower", q.mean_kld_lower},
                 {"p99_kld_lower", q.p99_kld_lower},
                 {"same_top_percent", same_top},
                 {"positions", static_cast<double>(q.n_positions)},
                 {"exact", q.exact ? 1.0 : 0.0}};
    r.conclude();
    return r;
}

}  // namespace verify
