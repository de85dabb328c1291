#include "runtime/kld_baseline.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>

#include "runtime/error.h"
#include "safe_output.h"

namespace runtime {

namespace {

// Version 2 stores ids as gaps and probabilities as float (5 bytes a token instead of 12 in version 1).
constexpr char kMagic[8] = {'G', 'V', 'C', 'O', 'M', 'P', 'K', '2'};
// A float holds a probability to within half a unit in the last of its 24 significant bits.
constexpr double kFloatRelError = 0x1p-24;

struct Header {
    char magic[8];
    uint32_t n_vocab, n_ctx, n_chunks, first, top_k, reserved;
    double max_rest;
};
static_assert(sizeof(Header) == 40);

// Per position: logp_next (f32), rest (f64), count and the most likely token's place among the stored ones
// (varints), then the stored ids in increasing order as gaps (varint: id - previous id - 1, the first from
// -1), then their probabilities in the same order (f32). Ids sorted make the gaps small (one byte each when
// the stored tokens are dense); the order by likelihood is rebuilt from the probabilities.
// The fewest bytes a row of `count` tokens can take.
uint64_t least_row_bytes(uint64_t count) { return 4 + 8 + 1 + 1 + count * 5; }

void put_varint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>(v | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

// False when the stream ends or the value takes more than 5 bytes (more than any count here needs).
bool get_varint(std::istream& in, uint32_t& v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        const int c = in.get();
        if (c == std::char_traits<char>::eof()) return false;
        x |= static_cast<uint64_t>(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (x > 0xffffffffu) return false;
            v = static_cast<uint32_t>(x);
            return true;
        }
    }
    return false;
}

template <typename T>
void put_raw(std::string& out, const T& v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// One row as the file stores it.
std::string encode_row(const CompactRow& row) {
    std::vector<size_t> by_id(row.ids.size());
    std::iota(by_id.begin(), by_id.end(), size_t{0});
    std::sort(by_id.begin(), by_id.end(), [&](size_t a, size_t b) { return row.ids[a] < row.ids[b]; });
    std::string out;
    put_raw(out, row.logp_next);
    put_raw(out, row.rest);
    put_varint(out, row.ids.size());
    const size_t top_place = static_cast<size_t>(std::find(by_id.begin(), by_id.end(), size_t{0}) - by_id.begin());
    put_varint(out, top_place);
    int64_t prev = -1;
    for (size_t j : by_id) {
        put_varint(out, static_cast<uint64_t>(row.ids[j] - prev - 1));
        prev = row.ids[j];
    }
    for (size_t j : by_id) put_raw(out, static_cast<float>(std::exp(row.logp[j])));
    return out;
}

// Log-probabilities of a row of logits, in double.
void log_softmax(std::span<const float> logits, std::vector<double>& out) {
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
    const double lse = mx + std::log(sum);
    out.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - lse;
}

// KL(p || q) from both log-probability rows.
double kld_of(const std::vector<double>& lp, const std::vector<double>& lq) {
    double kld = 0;
    for (size_t i = 0; i < lp.size(); ++i) kld += std::exp(lp[i]) * (lp[i] - lq[i]);
    return kld;
}

int argmax(std::span<const float> x) { return static_cast<int>(std::max_element(x.begin(), x.end()) - x.begin()); }

// The quantile definition compare_kld_base uses, so that both report the same p99 on the same values.
double quantile(const std::vector<double>& sorted, double q) {
    const double n = static_cast<double>(sorted.size());
    return sorted[static_cast<size_t>(std::min(n - 1, std::floor(q * (n - 1))))];
}

// Accumulates the per-position figures into a QualityResult.
struct Tally {
    double sum_nll = 0, sum_base_nll = 0;
    std::vector<double> upper, lower;
    int64_t same = 0;

    void add(double nll, double base_nll, double kld_lower, double kld_upper, bool same_top) {
        sum_nll += nll;
        sum_base_nll += base_nll;
        lower.push_back(kld_lower);
        upper.push_back(kld_upper);
        same += same_top;
    }

    QualityResult finish(int n_chunks, bool exact, int top_k) {
        QualityResult r;
        r.n_positions = static_cast<int64_t>(upper.size());
        if (r.n_positions == 0) throw Error("quality: no position was scored");
        const double n = static_cast<double>(r.n_positions);
        r.ppl = std::exp(sum_nll / n);
        r.base_ppl = std::exp(sum_base_nll / n);
        r.same_top = static_cast<double>(same) / n;
        r.n_chunks = n_chunks;
        r.exact = exact;
        r.top_k = top_k;
        r.klds = upper;
        r.mean_kld = std::accumulate(upper.begin(), upper.end(), 0.0) / n;
        r.mean_kld_lower = std::accumulate(lower.begin(), lower.end(), 0.0) / n;
        std::sort(upper.begin(), upper.end());
        std::sort(lower.begin(), lower.end());
        r.p99_kld = quantile(upper, 0.99);
        r.p99_kld_lower = quantile(lower, 0.99);
        r.max_kld = upper.back();
        return r;
    }
};

}  // namespace

CompactRow compact_row(std::span<const float> logits, const CompactParams& params, int32_t next) {
    std::vector<double> lp;
    log_softmax(logits, lp);
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    // ties broken by id, so that the stored set does not depend on the sort's whims
    const auto more_likely = [&](int32_t a, int32_t b) { return lp[a] > lp[b] || (lp[a] == lp[b] && a < b); };
    // the rest summed directly rather than as 1 - sum(top): no cancellation when the top holds nearly all
    const auto rest_after = [&](size_t k) {
        double rest = 0;
        for (size_t j = k; j < order.size(); ++j) rest += std::exp(lp[static_cast<size_t>(order[j])]);
        return rest;
    };
    const size_t n = order.size();
    size_t k = std::min(static_cast<size_t>(std::max(params.top_k, 1)), n);
    std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(k), order.end(), more_likely);
    size_t sorted = k;
    double rest = rest_after(k);
    // beyond top_k, tokens are added one at a time until the rest is small enough, sorting in doubling runs
    while (rest > params.max_rest && k < n) {
        if (k == sorted) {
            sorted = std::min(n, sorted * 2);
            std::partial_sort(order.begin() + static_cast<ptrdiff_t>(k), order.begin() + static_cast<ptrdiff_t>(sorted),
                              order.end(), more_likely);
        }
        rest -= std::exp(lp[static_cast<size_t>(order[k++])]);
    }
    // a probability too small for a normal float is left in the tail, where the bounds account for it
    const double log_min_stored = std::log(static_cast<double>(std::numeric_limits<float>::min()));
    const size_t k_sorted = k;
    while (k > 1 && lp[static_cast<size_t>(order[k - 1])] < log_min_stored) --k;
    if (k > static_cast<size_t>(params.top_k) || k < k_sorted) rest = rest_after(k);  // the running difference, recomputed exactly
    CompactRow row;
    row.ids.assign(order.begin(), order.begin() + static_cast<ptrdiff_t>(k));
    for (int32_t id : row.ids) row.logp.push_back(lp[static_cast<size_t>(id)]);
    row.rest = rest;
    row.logp_next = static_cast<float>(lp[static_cast<size_t>(next)]);
    return row;
}

KldBounds kld_bounds(const CompactRow& base, std::span<const double> lq, std::vector<double>& scratch) {
    // The stored tokens contribute exactly, up to the rounding of their probabilities: p log(p/q) moves by
    // at most |dp| (|log(p/q)| + 1), and |dp| <= rel_error p (doubled: the bound of the bound's own error).
    double top = 0, slack = 0;
    for (size_t j = 0; j < base.ids.size(); ++j) {
        const double lp = base.logp[j];
        const double d = lp - lq[static_cast<size_t>(base.ids[j])];
        top += std::exp(lp) * d;
        slack += std::exp(lp) * (std::abs(d) + 1);
    }
    slack *= 2 * base.rel_error;
    const double r = base.rest;
    if (r <= 0 || base.ids.empty()) return {top - slack, top + slack};

    // The test model's log-probabilities of the tail tokens; stored tokens are pushed out of the way.
    scratch.assign(lq.begin(), lq.end());
    for (int32_t id : base.ids) scratch[static_cast<size_t>(id)] = std::numeric_limits<double>::infinity();
    const size_t n_tail = lq.size() - base.ids.size();
    double q_rest = 0;
    for (double v : scratch) q_rest += std::isinf(v) ? 0.0 : std::exp(v);

    // Lower: the tail as one outcome (log-sum inequality: merging outcomes never raises the KL).
    KldBounds b;
    b.lower = top - slack + r * (std::log(r) - std::log(q_rest));

    // Upper: each tail token has base probability at most p_K, the smallest stored one, and together r.
    // p log(p/q) is convex in p, so its maximum over that polytope is at a vertex: m = floor(r / p_K)
    // tokens at p_K, one at the remainder, the rest at 0; by rearrangement the largest shares go to the
    // tokens the test model finds least likely.
    // p_K rounded up by the stored probabilities' error, so that it still caps every tail token
    const double log_pk = base.logp.back() + 2 * base.rel_error;
    const double pk = std::exp(log_pk);
    size_t m = static_cast<size_t>(std::floor(r / pk));
    double rem = r - static_cast<double>(m) * pk;
    if (m >= n_tail) {  // only through rounding: r <= n_tail * p_K holds for a true tail
        m = n_tail;
        rem = 0;
    }
    const size_t need = std::min(m + 1, n_tail);
    std::nth_element(scratch.begin(), scratch.begin() + static_cast<ptrdiff_t>(need - 1), scratch.end());
    double tail = 0;
    // scratch[0..need-1] now holds the `need` smallest tail values with the largest of them at need-1
    std::sort(scratch.begin(), scratch.begin() + static_cast<ptrdiff_t>(need));
    for (size_t j = 0; j < m; ++j) tail += pk * (log_pk - scratch[j]);
    if (rem > 0 && m < n_tail) tail += rem * (std::log(rem) - scratch[m]);
    b.upper = top + slack + tail;
    // The lower bound can exceed the upper only by rounding when both are tight.
    b.upper = std::max(b.upper, b.lower);
    return b;
}

double kld_exact(std::span<const float> base_logits, std::span<const float> test_logits) {
    std::vector<double> lp, lq;
    log_softmax(base_logits, lp);
    log_softmax(test_logits, lq);
    return kld_of(lp, lq);
}

PerplexityResult save_compact_baseline(Context& ctx, std::span<const int32_t> tokens, const PerplexityParams& params,
                                       const CompactParams& compact, const std::string& path) {
    if (compact.top_k < 1) throw Error("baseline: top-K must be at least 1, got " + std::to_string(compact.top_k));
    if (!(compact.max_rest >= 0 && compact.max_rest <= 1)) {
        throw Error("baseline: the remaining mass must be within [0, 1], got " + std::to_string(compact.max_rest));
    }
    const int n_vocab = ctx.n_vocab();
    const int available = params.n_ctx > 0 ? static_cast<int>(tokens.size() / static_cast<size_t>(params.n_ctx)) : 0;
    const int n_chunks = params.n_chunks < 0 ? available : std::min(params.n_chunks, available);
    if (n_chunks <= 0) evaluate_chunks(ctx, tokens, params, {});  // throws perplexity's error for a short text
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.n_vocab = static_cast<uint32_t>(n_vocab);
    h.n_ctx = static_cast<uint32_t>(params.n_ctx);
    h.n_chunks = static_cast<uint32_t>(n_chunks);
    h.first = static_cast<uint32_t>(params.n_ctx / 2);
    h.top_k = static_cast<uint32_t>(std::min(compact.top_k, n_vocab));
    h.max_rest = compact.max_rest;
    // the tokens as evaluated (BOS substituted), so that the comparison runs on exactly the same input
    std::vector<int32_t> chunk_tokens(tokens.begin(), tokens.begin() + static_cast<ptrdiff_t>(n_chunks) * params.n_ctx);
    if (params.add_bos) {
        for (int c = 0; c < n_chunks; ++c) chunk_tokens[static_cast<size_t>(c) * params.n_ctx] = params.bos;
    }

    // through a temp file put in place when complete: an interrupted run leaves nothing behind
    SafeOutput out(path);
    PerplexityResult r;
    double sum = 0, sum2 = 0;
    out.write(&h, sizeof h);
    out.write(chunk_tokens.data(), chunk_tokens.size() * sizeof(int32_t));
    PerplexityParams p = params;
    p.add_bos = false;  // already substituted
    p.n_chunks = n_chunks;
    r.n_chunks = evaluate_chunks(ctx, chunk_tokens, p, [&](std::span<const float> logits, int32_t next) {
        const CompactRow row = compact_row(logits, compact, next);
        const double nll = -static_cast<double>(row.logp_next);
        sum += nll;
        sum2 += nll * nll;
        ++r.n_scored;
        const std::string bytes = encode_row(row);
        out.write(bytes.data(), bytes.size());
    });
    out.commit();
    const double n = static_cast<double>(r.n_scored);
    r.mean_nll = sum / n;
    r.ppl = std::exp(r.mean_nll);
    const double var = n > 1 ? std::max(0.0, (sum2 / n - r.mean_nll * r.mean_nll) / (n - 1)) : 0.0;
    r.ppl_stderr = r.ppl * std::sqrt(var);
    return r;
}

CompactBaselineInfo read_compact_baseline_info(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    Header h{};
    in.read(reinterpret_cast<char*>(&h), sizeof h);
    if (!in || std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) {
        throw Error(path + ": not a compact baseline (made by gguf-verify baseline)");
    }
    // every count is checked before it sizes anything: a hostile header cannot make us allocate
    if (h.n_vocab == 0 || h.n_vocab > (1u << 24) || h.n_ctx < 2 || h.n_ctx > (1u << 20) || h.n_chunks == 0 ||
        h.first != h.n_ctx / 2 || h.top_k == 0 || h.top_k > h.n_vocab || h.reserved != 0 ||
        !(h.max_rest >= 0 && h.max_rest <= 1)) {
        throw Error(path + ": damaged compact baseline header");
    }
    CompactBaselineInfo info;
    info.n_vocab = h.n_vocab;
    info.n_ctx = h.n_ctx;
    info.n_chunks = h.n_chunks;
    info.params = {static_cast<int>(h.top_k), h.max_rest};
    info.n_positions = uint64_t{h.n_chunks} * (h.n_ctx - 1 - h.first);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error(path + ": cannot stat");
    const uint64_t least = sizeof(Header) + uint64_t{h.n_ctx} * h.n_chunks * 4 + info.n_positions * least_row_bytes(1);
    if (static_cast<uint64_t>(st.st_size) < least) {
        throw Error(path + ": " + std::to_string(st.st_size) + " bytes, fewer than the " + std::to_string(least) +
                    " its header implies (truncated or damaged)");
    }
    return info;
}

namespace {

// Reads one row (encode_row's layout) into `row`, most likely token first. False when the file ends;
// damaged contents throw runtime::Error prefixed with `where`: a damaged row must not index out of
// range nor make the bounds meaningless.
bool read_row(std::istream& in, const CompactBaselineInfo& info, CompactRow& row, std::vector<int32_t>& ids,
              std::vector<float>& probs, const std::string& where) {
    uint32_t count = 0, top_place = 0;
    in.read(reinterpret_cast<char*>(&row.logp_next), 4);
    in.read(reinterpret_cast<char*>(&row.rest), 8);
    if (!in || !get_varint(in, count) || !get_varint(in, top_place)) return false;
    if (count == 0 || count > info.n_vocab || top_place >= count) {
        throw Error(where + "damaged (" + std::to_string(count) + " tokens stored)");
    }
    if (!(row.rest >= 0 && row.rest <= 1) || !std::isfinite(row.logp_next) || row.logp_next > 0) {
        throw Error(where + "damaged (remaining mass or next-token log-probability out of range)");
    }
    ids.resize(count);
    int64_t prev = -1;
    for (uint32_t j = 0; j < count; ++j) {
        uint32_t gap = 0;
        if (!get_varint(in, gap)) return false;
        prev += int64_t{gap} + 1;
        if (prev >= int64_t{info.n_vocab}) throw Error(where + "damaged token ids");
        ids[j] = static_cast<int32_t>(prev);
    }
    probs.resize(count);
    in.read(reinterpret_cast<char*>(probs.data()), static_cast<std::streamsize>(count * sizeof(float)));
    if (!in) return false;
    double sum = 0;
    for (float p : probs) {
        if (!(p > 0 && p <= 1)) throw Error(where + "damaged probabilities");
        sum += p;
    }
    if (sum + row.rest > 1 + 1e-4) throw Error(where + "damaged probabilities (they sum to more than 1)");
    // most likely first: the stored top, then by probability (ties by id, as compact_row orders them)
    std::vector<uint32_t> place(count);
    std::iota(place.begin(), place.end(), 0u);
    std::sort(place.begin(), place.end(), [&](uint32_t a, uint32_t b) {
        if ((a == top_place) != (b == top_place)) return a == top_place;
        return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
    });
    if (probs[place[0]] < probs[place.size() > 1 ? place[1] : place[0]]) {
        throw Error(where + "damaged (the stored most likely token is not the most likely)");
    }
    row.ids.resize(count);
    row.logp.resize(count);
    for (uint32_t j = 0; j < count; ++j) {
        row.ids[j] = ids[place[j]];
        row.logp[j] = std::log(static_cast<double>(probs[place[j]]));
    }
    row.rel_error = kFloatRelError;
    return true;
}

}  // namespace

QualityResult compare_compact_baseline(Context& ctx, const std::string& path,
                                       const std::function<void(int, int)>& progress) {
    const CompactBaselineInfo info = read_compact_baseline_info(path);
    const int n_vocab = ctx.n_vocab();
    if (info.n_vocab != static_cast<uint32_t>(n_vocab)) {
        throw Error(path + ": made for a vocabulary of " + std::to_string(info.n_vocab) + " tokens, this model has " +
                    std::to_string(n_vocab));
    }
    std::ifstream in(path, std::ios::binary);
    in.seekg(sizeof(Header));
    std::vector<int32_t> tokens(static_cast<size_t>(info.n_ctx) * info.n_chunks);
    in.read(reinterpret_cast<char*>(tokens.data()), static_cast<std::streamsize>(tokens.size() * 4));
    if (!in) throw Error(path + ": truncated");
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            throw Error(path + ": token " + std::to_string(tokens[i]) + " at " + std::to_string(i) + " is out of range");
        }
    }

    PerplexityParams params;
    params.n_ctx = static_cast<int>(info.n_ctx);
    params.n_chunks = static_cast<int>(info.n_chunks);
    params.progress = progress;
    CompactRow row;
    uint64_t stored = 0;
    std::vector<double> lq, scratch;
    std::vector<int32_t> order;
    std::vector<float> probs;
    int64_t position = 0;
    Tally tally;
    const int n_chunks = evaluate_chunks(ctx, tokens, params, [&](std::span<const float> logits, int32_t next) {
        const std::string where = path + ": position " + std::to_string(position) + ": ";
        if (!read_row(in, info, row, order, probs, where)) throw Error(where + "truncated");
        stored += row.ids.size();
        log_softmax(logits, lq);
        const KldBounds b = kld_bounds(row, lq, scratch);
        tally.add(-lq[static_cast<size_t>(next)], -static_cast<double>(row.logp_next), b.lower, b.upper,
                  row.ids[0] == argmax(logits));
        ++position;
    });
    if (in.peek() != std::char_traits<char>::eof()) throw Error(path + ": bytes after the last position (damaged)");
    QualityResult r = tally.finish(n_chunks, false, info.params.top_k);
    r.mean_stored = static_cast<double>(stored) / static_cast<double>(r.n_positions);
    return r;
}

QualityResult compare_models(Context& base, Context& test, std::span<const int32_t> tokens,
                             const PerplexityParams& params) {
    if (base.n_vocab() != test.n_vocab()) {
        throw Error("quality: the base model has a vocabulary of " + std::to_string(base.n_vocab()) +
                    " tokens, the model under test " + std::to_string(test.n_vocab()));
    }
    const int n_ctx = params.n_ctx;
    const size_t n_vocab = static_cast<size_t>(base.n_vocab());
    const int available = n_ctx > 0 ? static_cast<int>(tokens.size() / static_cast<size_t>(n_ctx)) : 0;
    const int n_chunks = params.n_chunks < 0 ? available : std::min(params.n_chunks, available);
    if (n_chunks <= 0) evaluate_chunks(test, tokens, params, {});  // throws perplexity's error
    PerplexityParams one = params;
    one.n_chunks = 1;
    one.progress = nullptr;
    std::vector<float> base_rows;
    std::vector<int32_t> next_tokens;
    std::vector<double> lp, lq;
    Tally tally;
    for (int c = 0; c < n_chunks; ++c) {
        const auto chunk = tokens.subspan(static_cast<size_t>(c) * n_ctx, static_cast<size_t>(n_ctx));
        base_rows.clear();
        evaluate_chunks(base, chunk, one, [&](std::span<const float> logits, int32_t) {
            base_rows.insert(base_rows.end(), logits.begin(), logits.end());
        });
        size_t j = 0;
        evaluate_chunks(test, chunk, one, [&](std::span<const float> logits, int32_t next) {
            const std::span<const float> b(base_rows.data() + j * n_vocab, n_vocab);
            log_softmax(b, lp);
            log_softmax(logits, lq);
            const double kld = kld_of(lp, lq);
            const auto n = static_cast<size_t>(next);
            tally.add(-lq[n], -lp[n], kld, kld, argmax(b) == argmax(logits));
            ++j;
        });
        if (params.progress) params.progress(c + 1, n_chunks);
    }
    return tally.finish(n_chunks, true, 0);
}

}  // namespace runtime
