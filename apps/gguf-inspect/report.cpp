#include "report.h"

#include <cstdio>
#include <map>
#include <set>

#include "appcommon/json_writer.h"
#include "gguf/checksum.h"
#include "gguf/summary.h"
#include "gguf/text.h"
#include "quant/recipe.h"

using appcommon::JsonWriter;
using gguf::File;

namespace {

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string human_count(uint64_t n) {
    if (n >= 1'000'000'000) return fmt("%.2f B", n / 1e9);
    if (n >= 1'000'000) return fmt("%.2f M", n / 1e6);
    if (n >= 1'000) return fmt("%.2f K", n / 1e3);
    return std::to_string(n);
}

bool selected(const gguf::TensorInfo& t, const InspectOptions& opt) {
    return !opt.tensor_filter || std::regex_search(t.name, *opt.tensor_filter);
}

std::string pad(std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
}

std::string lpad(std::string s, size_t w) {
    if (s.size() < w) s.insert(0, w - s.size(), ' ');
    return s;
}

}  // namespace

// general.file_type is llama.cpp's ftype id; its name is what users know ("15 (Q4_K_M)").
static std::string file_type_note(const std::string& key, const gguf::Value& v) {
    if (key != "general.file_type" || v.type() == gguf::ValueType::Array || v.type() == gguf::ValueType::String) {
        return "";
    }
    try {
        const quant::Recipe* r = quant::recipe_for_file_type(static_cast<uint32_t>(v.as_u64()));
        return r ? " (" + std::string(r->name) + ")" : " (unknown to this build)";
    } catch (const std::exception&) {
        return "";
    }
}

void print_text(std::ostream& out, const File& f, const InspectOptions& opt) {
    const gguf::Summary s = gguf::summarize(f);
    out << "file:          " << f.path() << "\n"
        << "format:        GGUF v" << f.version() << ", alignment " << f.alignment() << "\n"
        << "architecture:  " << (s.architecture.empty() ? "(none)" : s.architecture) << "\n"
        << "name:          " << (s.name.empty() ? "(none)" : s.name) << "\n"
        << "parameters:    " << human_count(s.parameters) << " (" << s.parameters << ")\n"
        << "file size:     " << gguf::format_bytes(s.file_size) << " (" << s.file_size << " bytes)\n"
        << "tensor data:   " << gguf::format_bytes(s.tensor_bytes) << ", " << fmt("%.3f", s.bits_per_weight())
        << " bits per weight\n"
        << "tensors:       " << f.tensors().size() << "\n";
    if (f.n_shards() > 1) {
        out << "split:         " << f.n_shards() << " files, " << f.shard_path(0) << " ... "
            << f.shard_path(f.n_shards() - 1) << " (offsets are within each tensor's shard)\n";
    }
    out << "\n";

    out << "type histogram:\n  " << pad("type", 9) << lpad("tensors", 8) << lpad("bytes", 14) << lpad("share", 9)
        << lpad("bpw", 8) << "\n";
    for (const auto& [type, ts] : s.by_type) {
        double share = s.tensor_bytes ? 100.0 * ts.bytes / s.tensor_bytes : 0;
        double bpw = ts.elements ? 8.0 * ts.bytes / ts.elements : 0;
        out << "  " << pad(std::string(gguf::type_name(type)), 9) << lpad(std::to_string(ts.tensors), 8)
            << lpad(gguf::format_bytes(ts.bytes), 14) << lpad(fmt("%.1f%%", share), 9) << lpad(fmt("%.2f", bpw), 8) << "\n";
    }

    out << "\nmetadata (" << f.metadata().size() << " keys):\n";
    for (const auto& [key, v] : f.metadata().entries()) {
        out << "  " << pad(key, 44) << " " << pad(std::string(gguf::value_type_name(v.type())), 6) << " "
            << v.to_display(opt.array_preview) << file_type_note(key, v) << "\n";
    }

    if (opt.layers) {
        out << "\nlayers:\n  " << pad("block", 8) << lpad("bytes", 12) << lpad("attention", 12) << lpad("ffn", 12)
            << lpad("experts", 12) << lpad("other", 12) << "\n";
        auto row = [&](const std::string& label, const gguf::BlockShare& b) {
            out << "  " << pad(label, 8) << lpad(gguf::format_bytes(b.bytes), 12) << lpad(gguf::format_bytes(b.attention), 12)
                << lpad(gguf::format_bytes(b.feed_forward), 12) << lpad(gguf::format_bytes(b.experts), 12)
                << lpad(gguf::format_bytes(b.other), 12) << "\n";
        };
        for (const auto& [idx, b] : s.by_block) row(std::to_string(idx), b);
        row("(rest)", s.outside_blocks);
    }

    if (opt.tensors) {
        out << "\ntensors:\n  " << pad("name", 36) << pad("type", 9) << pad("shape", 22) << lpad("bytes", 12)
            << lpad("offset", 14) << (opt.checksums ? "  xxh64" : "") << "\n";
        const std::vector<uint64_t> sums = opt.checksums ? gguf::xxh64_tensors(f, [&](const gguf::TensorInfo& t) { return selected(t, opt); })
                                                           : std::vector<uint64_t>{};
        for (size_t i = 0; i < f.tensors().size(); ++i) {
            const auto& t = f.tensors()[i];
            if (!selected(t, opt)) continue;
            out << "  " << pad(t.name, 36) << pad(std::string(gguf::type_name(t.type)), 9) << pad(t.shape_string(), 22)
                << lpad(std::to_string(t.n_bytes()), 12) << lpad(std::to_string(f.absolute_offset(t)), 14);
            if (f.n_shards() > 1) out << "  shard " << t.shard + 1;
            if (opt.checksums) out << "  " << gguf::hex64(sums[i]);
            out << "\n";
        }
    }
}

namespace {

void write_value(JsonWriter& j, const gguf::Value& v) {
    using gguf::ValueType;
    switch (v.type()) {
        case ValueType::String: j.value(v.as_string()); break;
        case ValueType::Bool: j.value(v.as_bool()); break;
        case ValueType::F32:
        case ValueType::F64: j.value(v.as_f64()); break;
        case ValueType::Array: {
            j.begin_array();
            for (const auto& item : v.as_array().items) write_value(j, item);
            j.end_array();
            break;
        }
        case ValueType::I8:
        case ValueType::I16:
        case ValueType::I32:
        case ValueType::I64: j.value(v.as_i64()); break;
        default: j.value(v.as_u64()); break;
    }
}

void write_block(JsonWriter& j, const gguf::BlockShare& b) {
    j.field("bytes", b.bytes).field("attention", b.attention).field("ffn", b.feed_forward);
    j.field("experts", b.experts).field("other", b.other);
}

}  // namespace

void print_json(std::ostream& out, const File& f, const InspectOptions& opt) {
    const gguf::Summary s = gguf::summarize(f);
    JsonWriter j(out);
    j.begin_object();
    j.field("file", f.path()).field("version", f.version()).field("alignment", f.alignment());
    j.field("architecture", s.architecture).field("name", s.name);
    j.field("parameters", s.parameters).field("file_size", s.file_size).field("tensor_bytes", s.tensor_bytes);
    j.field("bits_per_weight", s.bits_per_weight()).field("tensor_count", uint64_t{f.tensors().size()});
    j.key("shards").begin_array();
    for (size_t i = 0; i < f.n_shards(); ++i) j.value(f.shard_path(i));
    j.end_array();
    j.key("types").begin_object();
    for (const auto& [type, ts] : s.by_type) {
        j.key(gguf::type_name(type)).begin_object();
        j.field("tensors", ts.tensors).field("elements", ts.elements).field("bytes", ts.bytes);
        j.field("share", s.tensor_bytes ? static_cast<double>(ts.bytes) / s.tensor_bytes : 0.0);
        j.end_object();
    }
    j.end_object();
    // Arrays are written in full in JSON: a consumer asked for the data, not a preview.
    j.key("metadata").begin_object();
    for (const auto& [key, v] : f.metadata().entries()) {
        j.key(key);
        write_value(j, v);
    }
    j.end_object();
    if (opt.layers) {
        j.key("layers").begin_array();
        for (const auto& [idx, b] : s.by_block) {
            j.begin_object().field("block", idx);
            write_block(j, b);
            j.end_object();
        }
        j.end_array();
        j.key("outside_blocks").begin_object();
        write_block(j, s.outside_blocks);
        j.end_object();
    }
    if (opt.tensors) {
        j.key("tensors").begin_array();
        const std::vector<uint64_t> sums = opt.checksums ? gguf::xxh64_tensors(f, [&](const gguf::TensorInfo& t) { return selected(t, opt); })
                                                           : std::vector<uint64_t>{};
        for (size_t i = 0; i < f.tensors().size(); ++i) {
            const auto& t = f.tensors()[i];
            if (!selected(t, opt)) continue;
            j.begin_object().field("name", t.name).field("type", gguf::type_name(t.type));
            j.key("shape").begin_array();
            for (int64_t d : t.dims) j.value(d);
            j.end_array();
            j.field("bytes", t.n_bytes()).field("offset", f.absolute_offset(t));
            if (f.n_shards() > 1) j.field("shard", t.shard);
            if (opt.checksums) j.field("xxh64", gguf::hex64(sums[i]));
            j.end_object();
        }
        j.end_array();
    }
    j.end_object();
}

// ---- diff ----------------------------------------------------------------------------------

namespace {

struct TensorChange {
    std::string name;
    const gguf::TensorInfo* a = nullptr;  // null: only in b
    const gguf::TensorInfo* b = nullptr;  // null: only in a
};

struct MetaChange {
    std::string key;
    const gguf::Value* a = nullptr;
    const gguf::Value* b = nullptr;
};

struct Diff {
    std::vector<TensorChange> tensors;
    std::vector<MetaChange> metadata;
    int64_t size_delta = 0;
    int64_t tensor_bytes_delta = 0;
};

Diff compute_diff(const File& a, const File& b) {
    Diff d;
    for (const auto& t : a.tensors()) {
        const gguf::TensorInfo* u = b.find_tensor(t.name);
        if (!u || u->type != t.type || u->dims != t.dims) d.tensors.push_back({t.name, &t, u});
    }
    for (const auto& t : b.tensors()) {
        if (!a.find_tensor(t.name)) d.tensors.push_back({t.name, nullptr, &t});
    }
    for (const auto& [key, v] : a.metadata().entries()) {
        const gguf::Value* w = b.metadata().find(key);
        if (!w || !(*w == v)) d.metadata.push_back({key, &v, w});
    }
    for (const auto& [key, v] : b.metadata().entries()) {
        if (!a.metadata().contains(key)) d.metadata.push_back({key, nullptr, &v});
    }
    d.size_delta = static_cast<int64_t>(b.file_size()) - static_cast<int64_t>(a.file_size());
    d.tensor_bytes_delta = static_cast<int64_t>(gguf::summarize(b).tensor_bytes) -
                           static_cast<int64_t>(gguf::summarize(a).tensor_bytes);
    return d;
}

std::string describe(const gguf::TensorInfo* t) {
    return t ? std::string(gguf::type_name(t->type)) + " " + t->shape_string() : "(absent)";
}

std::string signed_bytes(int64_t v) {
    std::string s(v >= 0 ? "+" : "-");
    return s.append(gguf::format_bytes(static_cast<uint64_t>(v >= 0 ? v : -v)));
}

}  // namespace

void print_diff_text(std::ostream& out, const File& a, const File& b) {
    const Diff d = compute_diff(a, b);
    out << "A: " << a.path() << " (" << gguf::format_bytes(a.file_size()) << ")\n"
        << "B: " << b.path() << " (" << gguf::format_bytes(b.file_size()) << ")\n"
        << "file size delta:   " << signed_bytes(d.size_delta) << " (" << d.size_delta << " bytes)\n"
        << "tensor data delta: " << signed_bytes(d.tensor_bytes_delta) << "\n";
    out << "\ntensors differing in type or shape: " << d.tensors.size() << "\n";
    for (const auto& c : d.tensors) {
        int64_t delta = static_cast<int64_t>(c.b ? c.b->n_bytes() : 0) - static_cast<int64_t>(c.a ? c.a->n_bytes() : 0);
        out << "  " << pad(c.name, 36) << pad(describe(c.a), 26) << " -> " << pad(describe(c.b), 26) << " "
            << signed_bytes(delta) << "\n";
    }
    out << "\nmetadata differences: " << d.metadata.size() << "\n";
    for (const auto& m : d.metadata) {
        out << "  " << m.key << "\n    A: " << (m.a ? m.a->to_display(4) : "(absent)")
            << "\n    B: " << (m.b ? m.b->to_display(4) : "(absent)") << "\n";
    }
    if (d.tensors.empty() && d.metadata.empty()) out << "\nno differences in tensor types, shapes or metadata\n";
}

void print_diff_json(std::ostream& out, const File& a, const File& b) {
    const Diff d = compute_diff(a, b);
    JsonWriter j(out);
    j.begin_object().field("a", a.path()).field("b", b.path());
    j.field("file_size_delta", d.size_delta).field("tensor_bytes_delta", d.tensor_bytes_delta);
    j.key("tensors").begin_array();
    for (const auto& c : d.tensors) {
        j.begin_object().field("name", c.name);
        c.a ? j.field("a", describe(c.a)) : j.key("a").null();
        c.b ? j.field("b", describe(c.b)) : j.key("b").null();
        j.end_object();
    }
    j.end_array();
    j.key("metadata").begin_array();
    for (const auto& m : d.metadata) {
        j.begin_object().field("key", m.key);
        m.a ? j.field("a", m.a->to_display(4)) : j.key("a").null();
        m.b ? j.field("b", m.b->to_display(4)) : j.key("b").null();
        j.end_object();
    }
    j.end_array();
    j.end_object();
}
