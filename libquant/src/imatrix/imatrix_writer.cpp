// Writing importance matrices in llama.cpp's two formats, each to a temp file renamed into place.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "gguf/error.h"
#include "gguf/writer.h"
#include "imatrix_names.h"
#include "quant/imatrix_data.h"
#include "quant/quant.h"

namespace quant {

namespace {

std::span<const uint8_t> as_bytes(const std::vector<float>& v) {
    return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

// The entries a file can hold: some values and at least one count.
bool writable(const ImatrixStats& s) { return !s.sums.empty() && !s.counts.empty() && s.sums.size() % s.counts.size() == 0; }

}  // namespace

void ImatrixData::write_gguf(const std::string& path, const gguf::OutputPolicy& policy) const {
    if (legacy) throw Error(path + ": legacy imatrix data must be made raw before writing it as GGUF");
    try {
        gguf::Writer w(path, 3, policy);
        gguf::Metadata& md = w.metadata();
        md.set(imatrix_keys::kGeneralType, gguf::Value::string(imatrix_keys::kTypeValue));
        md.set(imatrix_keys::kDatasets, gguf::Value::string_array(datasets));
        md.set(imatrix_keys::kChunkCount, gguf::Value::u32(chunk_count));
        md.set(imatrix_keys::kChunkSize, gguf::Value::u32(chunk_size));
        // llama.cpp drops trailing dimensions of 1: a dense entry's sums are [n_cols], its count [1]
        auto dims = [](int64_t a, int64_t n_mat) { return n_mat > 1 ? std::vector<int64_t>{a, n_mat} : std::vector<int64_t>{a}; };
        // entries in name order (the map's), as llama-imatrix sorts them
        for (const auto& [name, s] : entries) {
            if (!writable(s)) continue;
            const auto n_mat = static_cast<int64_t>(s.n_mat());
            w.add_tensor(name + std::string(imatrix_keys::kSum2Suffix), gguf::GgmlType::F32,
                         dims(static_cast<int64_t>(s.n_cols()), n_mat));
            w.add_tensor(name + std::string(imatrix_keys::kCountsSuffix), gguf::GgmlType::F32, dims(1, n_mat));
        }
        for (const auto& [name, s] : entries) {
            if (!writable(s)) continue;
            const std::vector<float> sums(s.sums.begin(), s.sums.end());
            std::vector<float> counts(s.counts.size());
            std::transform(s.counts.begin(), s.counts.end(), counts.begin(), [](int64_t c) { return static_cast<float>(c); });
            w.write_data(as_bytes(sums));
            w.write_data(as_bytes(counts));
        }
        w.finish();
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
}

void ImatrixData::write_legacy(const std::string& path, const gguf::OutputPolicy& policy) const {
    std::vector<uint8_t> out;
    auto put = [&](const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        out.insert(out.end(), b, b + n);
    };
    auto put_i32 = [&](int64_t v) {
        const auto x = static_cast<int32_t>(v);
        put(&x, sizeof x);
    };
    std::vector<const std::pair<const std::string, ImatrixStats>*> kept;
    for (const auto& e : entries) {
        // an entry no activation reached has no mean to store (llama-imatrix skips it too)
        const auto& c = e.second.counts;
        if (writable(e.second) && std::any_of(c.begin(), c.end(), [](int64_t n) { return n > 0; })) kept.push_back(&e);
    }
    put_i32(static_cast<int64_t>(kept.size()));
    for (const auto* e : kept) {
        const ImatrixStats& s = e->second;
        put_i32(static_cast<int64_t>(e->first.size()));
        put(e->first.data(), e->first.size());
        const int64_t max_count = *std::max_element(s.counts.begin(), s.counts.end());
        // a legacy file's entries are already means times calls; raw data gets one call per chunk
        // (rounded up, so that a partial chunk does not become zero calls)
        const int64_t calls = legacy ? max_count
                                     : (chunk_size > 0 ? (max_count + chunk_size - 1) / chunk_size : max_count);
        put_i32(calls);
        put_i32(static_cast<int64_t>(s.sums.size()));
        const size_t n_cols = s.n_cols();
        for (size_t i = 0; i < s.sums.size(); ++i) {
            const int64_t n = s.counts[i / n_cols];
            float v;
            if (legacy) v = static_cast<float>(s.sums[i]);
            // an expert that saw nothing gets 1, the neutral weight, as llama-imatrix stores it
            else if (n == 0) v = static_cast<float>(calls);
            else v = static_cast<float>(s.sums[i]) / static_cast<float>(n) * static_cast<float>(calls);
            put(&v, sizeof v);
        }
    }
    put_i32(chunk_count);
    const std::string dataset = datasets.empty() ? std::string() : datasets.back();
    put_i32(static_cast<int64_t>(dataset.size()));
    put(dataset.data(), dataset.size());

    try {
        gguf::check_output_path(path, policy);
        gguf::TempFile temp(gguf::resolve_output_path(path));
        size_t done = 0;
        while (done < out.size()) {
            const ssize_t n = ::write(temp.fd(), out.data() + done, out.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw Error(temp.display_name() + ": write failed: " + std::strerror(errno));
            done += static_cast<size_t>(n);
        }
        temp.commit();  // the temp file closes its descriptor
    } catch (const gguf::Error& e) {
        throw Error(e.what());
    }
}

}  // namespace quant
