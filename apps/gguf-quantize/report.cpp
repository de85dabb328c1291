#include "report.h"

#include <cstdio>

#include "appcommon/json_writer.h"
#include "gguf/text.h"

namespace {

std::string type_str(gguf::GgmlType t) { return std::string(gguf::type_name(t)); }

double bpw(uint64_t bytes, uint64_t elements) { return elements ? 8.0 * static_cast<double>(bytes) / elements : 0.0; }

const char* source_name(quant::ChoiceSource s) {
    switch (s) {
        case quant::ChoiceSource::Kept: return "kept";
        case quant::ChoiceSource::Recipe: return "recipe";
        case quant::ChoiceSource::Option: return "option";
        case quant::ChoiceSource::Override: return "override";
    }
    return "kept";
}

const char* imatrix_name(quant::ImatrixUse u) {
    switch (u) {
        case quant::ImatrixUse::Used: return "used";
        case quant::ImatrixUse::Missing: return "missing";
        case quant::ImatrixUse::NotApplicable: return "none";
    }
    return "none";
}

void print_header(std::ostream& out, const quant::QuantPlan& plan, const RunInfo& run) {
    out << run.input << " -> " << (run.output ? *run.output : "(dry run)") << ": recipe " << plan.recipe->name
        << " (file type " << static_cast<uint32_t>(plan.recipe->file_type) << ")";
    if (run.imatrix) {
        out << ", imatrix " << run.imatrix->path() << " (" << run.imatrix->entries().size() << " entries, "
            << run.imatrix->chunk_count() << " chunks)";
    }
    out << "\n";
}

}  // namespace

std::string tensor_label(const quant::TensorPlan& t) {
    return t.name + "  " + type_str(t.from) + " -> " + type_str(t.to.type);
}

void print_plan_text(std::ostream& out, const quant::QuantPlan& plan, const RunInfo& run) {
    print_header(out, plan, run);
    const size_t n = plan.tensors.size();
    for (size_t i = 0; i < n; ++i) {
        const auto& t = plan.tensors[i];
        std::string note;
        if (t.to.fallback_from) note += "  (fallback from " + type_str(*t.to.fallback_from) + ")";
        const auto pred = run.predicted_kld ? run.predicted_kld->find(t.name) : decltype(run.predicted_kld->end()){};
        if (run.predicted_kld && pred != run.predicted_kld->end()) {
            char cost[64];
            std::snprintf(cost, sizeof cost, "  predicted KLD %.6f", pred->second);
            note += cost;
        } else if (t.to.source == quant::ChoiceSource::Override) {
            note += "  (--tensor-type)";
        }
        if (t.imatrix == quant::ImatrixUse::Missing) note += "  (no imatrix entry)";
        char line[512];
        std::snprintf(line, sizeof line, "[%4zu/%4zu] %-40s %-18s %7s -> %-7s %11s -> %11s %6.2f bpw%s\n", i + 1, n,
                      t.name.c_str(), gguf::shape_text(t.dims).c_str(), type_str(t.from).c_str(), type_str(t.to.type).c_str(),
                      gguf::format_bytes(t.from_bytes).c_str(), gguf::format_bytes(t.to_bytes).c_str(),
                      bpw(t.to_bytes, t.n_elements()), note.c_str());
        out << line;
    }
    print_summary_text(out, plan, run);
}

void print_summary_text(std::ostream& out, const quant::QuantPlan& plan, const RunInfo& run) {
    if (!run.dry_run) print_header(out, plan, run);
    char line[256];
    std::snprintf(line, sizeof line, "size: %s (%.2f bpw) -> %s (%.2f bpw); file %llu bytes; %zu fallback(s)\n",
                  gguf::format_bytes(plan.from_bytes()).c_str(), bpw(plan.from_bytes(), plan.n_elements()),
                  gguf::format_bytes(plan.to_bytes()).c_str(), bpw(plan.to_bytes(), plan.n_elements()),
                  static_cast<unsigned long long>(plan.file_bytes), plan.n_fallbacks());
    out << line;
    if (!run.shards.empty()) {
        out << "shards: " << run.shards.size() << " (" << run.shards.front() << " ... " << run.shards.back() << ")\n";
    }
    if (run.seconds > 0) {
        std::snprintf(line, sizeof line, "time: %.2f s, %s/s read, %.1f M weights/s\n", run.seconds,
                      gguf::format_bytes(static_cast<uint64_t>(plan.from_bytes() / run.seconds)).c_str(),
                      plan.n_elements() / run.seconds / 1e6);
        out << line;
    }
    if (run.predicted_kld) {
        std::snprintf(line, sizeof line, "predicted mean KLD (sum over the chosen tensors): %.6f\n", run.predicted_total);
        out << line;
    }
}

void print_json(std::ostream& out, const quant::QuantPlan& plan, const RunInfo& run) {
    appcommon::JsonWriter j(out);
    j.begin_object();
    j.field("input", run.input);
    j.key("output");
    run.output ? j.value(*run.output) : j.null();
    j.field("dry_run", run.dry_run);
    j.key("shards").begin_array();
    for (const auto& p : run.shards) j.value(p);
    j.end_array();
    if (!run.dry_run) {
        j.field("seconds", run.seconds);
        j.field("input_bytes_per_second", run.seconds > 0 ? plan.from_bytes() / run.seconds : 0.0);
        j.field("weights_per_second", run.seconds > 0 ? plan.n_elements() / run.seconds : 0.0);
    }
    j.field("recipe", plan.recipe->name);
    j.field("file_type", static_cast<uint32_t>(plan.recipe->file_type));
    j.key("imatrix");
    if (run.imatrix) {
        j.begin_object();
        j.field("file", run.imatrix->path());
        j.field("format", run.imatrix->is_legacy() ? "legacy" : "gguf");
        j.field("entries", static_cast<uint64_t>(run.imatrix->entries().size()));
        j.field("chunks", run.imatrix->chunk_count());
        j.key("datasets").begin_array();
        for (const auto& d : run.imatrix->datasets()) j.value(d);
        j.end_array();
        j.end_object();
    } else {
        j.null();
    }
    j.key("tensors").begin_array();
    for (const auto& t : plan.tensors) {
        j.begin_object();
        j.field("name", t.name);
        j.key("shape").begin_array();
        for (int64_t d : t.dims) j.value(d);
        j.end_array();
        j.field("from", type_str(t.from));
        j.field("to", type_str(t.to.type));
        j.field("source", source_name(t.to.source));
        j.key("fallback_from");
        t.to.fallback_from ? j.value(type_str(*t.to.fallback_from)) : j.null();
        j.field("imatrix", imatrix_name(t.imatrix));
        j.field("from_bytes", t.from_bytes);
        j.field("to_bytes", t.to_bytes);
        j.field("bpw", bpw(t.to_bytes, t.n_elements()));
        if (run.predicted_kld) {
            const auto it = run.predicted_kld->find(t.name);
            j.key("predicted_kld");
            it != run.predicted_kld->end() ? j.value(it->second) : j.null();
        }
        j.end_object();
    }
    j.end_array();
    j.key("totals").begin_object();
    j.field("n_elements", plan.n_elements());
    j.field("from_bytes", plan.from_bytes());
    j.field("to_bytes", plan.to_bytes());
    j.field("bpw", bpw(plan.to_bytes(), plan.n_elements()));
    j.field("file_bytes", plan.file_bytes);
    j.field("fallbacks", static_cast<uint64_t>(plan.n_fallbacks()));
    if (run.predicted_kld) j.field("predicted_kld", run.predicted_total);
    j.end_object();
    j.key("warnings").begin_array();
    for (const auto& w : plan.warnings) j.value(w);
    j.end_array();
    j.end_object();
    out << "\n";
}
