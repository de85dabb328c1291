#include "quant/allocation.h"

#include <algorithm>
#include <queue>

#include "gguf/types.h"

namespace quant {

namespace {

// One tensor's options on the lower convex hull of (bytes, cost), by increasing bytes: the only
// options a budget-constrained optimum of additive costs uses (the others are dominated).
std::vector<size_t> hull(const TensorOptions& t) {
    std::vector<size_t> idx(t.options.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
        const auto &x = t.options[a], &y = t.options[b];
        return x.bytes != y.bytes ? x.bytes < y.bytes : x.cost < y.cost;
    });
    std::vector<size_t> h;
    for (size_t i : idx) {
        const TypeOption& p = t.options[i];
        if (!h.empty() && p.cost >= t.options[h.back()].cost) continue;  // more bytes, no better
        if (!h.empty() && p.bytes == t.options[h.back()].bytes) h.pop_back();
        // drop points above the segment from the one before to this one
        while (h.size() >= 2) {
            const TypeOption& a = t.options[h[h.size() - 2]];
            const TypeOption& b = t.options[h.back()];
            const double s1 = (b.cost - a.cost) / static_cast<double>(b.bytes - a.bytes);
            const double s2 = (p.cost - b.cost) / static_cast<double>(p.bytes - b.bytes);
            if (s2 <= s1) h.pop_back();  // b is not convex: the slope must flatten
            else break;
        }
        h.push_back(i);
    }
    return h;
}

struct Step {
    double saving_per_byte;
    size_t tensor;
    size_t next;  // position on that tensor's hull
    bool operator<(const Step& o) const { return saving_per_byte < o.saving_per_byte; }
};

template <class Stop>
Allocation walk(std::span<const TensorOptions> tensors, Stop stop) {
    std::vector<std::vector<size_t>> hulls;
    Allocation a;
    a.choice.resize(tensors.size());
    std::priority_queue<Step> steps;
    auto push = [&](size_t t, size_t pos) {
        const auto& h = hulls[t];
        if (pos + 1 >= h.size()) return;
        const TypeOption& cur = tensors[t].options[h[pos]];
        const TypeOption& nxt = tensors[t].options[h[pos + 1]];
        steps.push({(cur.cost - nxt.cost) / static_cast<double>(nxt.bytes - cur.bytes), t, pos + 1});
    };
    for (size_t t = 0; t < tensors.size(); ++t) {
        if (tensors[t].options.empty()) throw Error("tensor '" + tensors[t].name + "' has no type to choose from");
        hulls.push_back(hull(tensors[t]));
        a.choice[t] = hulls[t][0];
        a.bytes += tensors[t].options[a.choice[t]].bytes;
        a.cost += tensors[t].options[a.choice[t]].cost;
    }
    for (size_t t = 0; t < tensors.size(); ++t) push(t, 0);
    while (!steps.empty()) {
        const Step s = steps.top();
        steps.pop();
        const TypeOption& cur = tensors[s.tensor].options[a.choice[s.tensor]];
        const TypeOption& nxt = tensors[s.tensor].options[hulls[s.tensor][s.next]];
        if (stop(a, nxt.bytes - cur.bytes)) continue;  // this upgrade does not fit; a smaller one may
        a.bytes += nxt.bytes - cur.bytes;
        a.cost += nxt.cost - cur.cost;
        a.choice[s.tensor] = hulls[s.tensor][s.next];
        push(s.tensor, s.next);
    }
    return a;
}

}  // namespace

Allocation allocate_under_budget(std::span<const TensorOptions> tensors, uint64_t budget_bytes) {
    Allocation a = walk(tensors, [&](const Allocation& cur, uint64_t extra) { return cur.bytes + extra > budget_bytes; });
    if (a.bytes > budget_bytes) {
        throw Error("the budget of " + std::to_string(budget_bytes) + " bytes is below the smallest choice (" +
                    std::to_string(a.bytes) + " bytes)");
    }
    return a;
}

Allocation allocate_under_cost(std::span<const TensorOptions> tensors, double max_cost) {
    // upgrades in order of saving per byte, until the cost is low enough
    bool done = false;
    Allocation a = walk(tensors, [&](const Allocation& cur, uint64_t) {
        if (cur.cost <= max_cost) done = true;
        return done;
    });
    if (a.cost > max_cost) {
        throw Error("no choice of types reaches a predicted KL divergence of " + std::to_string(max_cost) +
                    " (the best is " + std::to_string(a.cost) + ")");
    }
    return a;
}

double weighted_quantization_error(GgmlType type, const float* rows, int64_t n_rows, int64_t n_per_row,
                                   const float* importance) {
    const uint64_t row_bytes = gguf::row_size(type, static_cast<uint64_t>(n_per_row));
    std::vector<uint8_t> q(row_bytes * static_cast<uint64_t>(n_rows));
    quantize_rows(type, rows, q.data(), n_rows, n_per_row, importance);
    std::vector<float> back(static_cast<size_t>(n_per_row));
    double err = 0;
    for (int64_t r = 0; r < n_rows; ++r) {
        dequantize_row(type, q.data() + static_cast<uint64_t>(r) * row_bytes, back.data(), n_per_row);
        const float* w = rows + r * n_per_row;
        for (int64_t c = 0; c < n_per_row; ++c) {
            const double d = static_cast<double>(w[c]) - back[static_cast<size_t>(c)];
            err += (importance ? importance[c] : 1.0) * d * d;
        }
    }
    return err;
}

}  // namespace quant
