#include "manifest.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "gguf/output_file.h"
#include "gguf/checksum.h"
#include "prefault.h"

namespace verify {

namespace {

constexpr const char* kHeader = "# gguf-verify manifest 1";

uint64_t parse_hex(const std::string& s, const std::string& where) {
    if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos) {
        throw std::runtime_error(where + ": expected 16 lower-case hex digits, got '" + s + "'");
    }
    return std::stoull(s, nullptr, 16);
}

}  // namespace

Manifest make_manifest(const gguf::File& file, int threads) {
    Manifest m;
    m.metadata_hash = gguf::metadata_xxh3(file.metadata());
    const auto& tensors = file.tensors();
    m.tensors.resize(tensors.size());
    // One tensor per task, largest first, so that the big ones do not all end up last on one thread.
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].n_bytes() > tensors[b].n_bytes(); });
    const int n = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(n)
    for (size_t k = 0; k < order.size(); ++k) {
        const auto& t = tensors[order[k]];
        auto& e = m.tensors[order[k]];
        e.name = t.name;
        e.type = std::string(gguf::type_name(t.type));
        e.shape = t.shape_string();
        const auto data = file.tensor_data(t);
        prefault(data.data(), data.size());
        e.hash = gguf::xxh3_64(data);
    }
    return m;
}

void write_manifest(const Manifest& m, const std::string& path) {
    std::ostringstream out;
    out << kHeader << "\n";
    out << "metadata " << gguf::hex64(m.metadata_hash) << "\n";
    for (const auto& e : m.tensors) out << "tensor " << gguf::hex64(e.hash) << " " << e.type << " " << e.shape << " " << e.name << "\n";
    gguf::write_file(path, out.str());  // through a temp file: an interrupted run leaves nothing behind
}

Manifest read_manifest(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open");
    std::string line;
    if (!std::getline(in, line) || line != kHeader) throw std::runtime_error(path + ": not a gguf-verify manifest");
    Manifest m;
    bool have_metadata = false;
    for (int n = 2; std::getline(in, line); ++n) {
        const std::string where = path + ":" + std::to_string(n);
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        std::string kind, hex;
        ss >> kind >> hex;
        if (kind == "metadata") {
            m.metadata_hash = parse_hex(hex, where);
            have_metadata = true;
        } else if (kind == "tensor") {
            ManifestEntry e;
            e.hash = parse_hex(hex, where);
            ss >> e.type;
            // the shape "[a, b, c]" holds spaces: read up to its closing bracket, then the name is the rest
            std::string rest;
            std::getline(ss, rest);
            const size_t open = rest.find('['), close = rest.find(']');
            if (e.type.empty() || open == std::string::npos || close == std::string::npos || close + 2 > rest.size()) {
                throw std::runtime_error(where + ": malformed tensor line");
            }
            e.shape = rest.substr(open, close - open + 1);
            e.name = rest.substr(close + 2);
            m.tensors.push_back(std::move(e));
        } else {
            throw std::runtime_error(where + ": unknown line '" + kind + "'");
        }
    }
    if (!have_metadata) throw std::runtime_error(path + ": no metadata line");
    return m;
}

CheckResult manifest_check(const gguf::File& file, const std::string& manifest_path, int threads) {
    CheckResult r;
    r.name = "manifest";
    const Manifest want = read_manifest(manifest_path);
    const auto start = std::chrono::steady_clock::now();
    const Manifest have = make_manifest(file, threads);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (want.metadata_hash != have.metadata_hash) {
        r.problems.push_back("metadata changed (" + gguf::hex64(have.metadata_hash) + ", manifest " +
                             gguf::hex64(want.metadata_hash) + ")");
    }
    std::map<std::string, const ManifestEntry*> expected;
    for (const auto& e : want.tensors) expected[e.name] = &e;
    size_t changed = 0;
    for (const auto& e : have.tensors) {
        const auto it = expected.find(e.name);
        if (it == expected.end()) {
            r.problems.push_back(e.name + ": not in the manifest");
            continue;
        }
        const ManifestEntry& w = *it->second;
        if (w.type != e.type || w.shape != e.shape) {
            r.problems.push_back(e.name + ": " + e.type + " " + e.shape + ", manifest " + w.type + " " + w.shape);
            ++changed;
        } else if (w.hash != e.hash) {
            r.problems.push_back(e.name + ": data changed (xxh3 " + gguf::hex64(e.hash) + ", manifest " + gguf::hex64(w.hash) + ")");
            ++changed;
        }
        expected.erase(it);
    }
    for (const auto& [name, e] : expected) r.problems.push_back(name + ": in the manifest, missing from the file");
    char fig[160];
    std::snprintf(fig, sizeof fig, "%zu tensors and metadata hashed in %.2f s; %zu changed", have.tensors.size(), seconds,
                  changed);
    r.figure = fig;
    r.metrics = {{"tensors", static_cast<double>(have.tensors.size())}, {"changed", static_cast<double>(changed)},
                 {"seconds", seconds}};
    r.conclude();
    return r;
}

}  // namespace verify
