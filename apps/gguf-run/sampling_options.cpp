#include "sampling_options.h"

#include <climits>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "appcommon/cli.h"
#include "appcommon/text.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "runtime/error.h"

namespace gguf_run {

namespace {


// llama.cpp's TOKEN_ID(+|-)BIAS: "15043+1", "15043-1", "2-inf".
std::pair<int32_t, float> parse_logit_bias(const std::string& v) {
    const size_t sign = v.find_first_of("+-", 1);
    const auto bad = [&] { return appcommon::BadValue{"expected TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 15043+1, 2-inf), got '" + v + "'"}; };
    if (sign == std::string::npos || sign + 1 >= v.size()) throw bad();
    const int id = appcommon::parse_int(v.substr(0, sign), 0, INT_MAX);
    const std::string num = v.substr(sign + 1);
    char* end = nullptr;
    const float bias = std::strtof(num.c_str(), &end);
    if (end != num.c_str() + num.size() || num[0] == '+' || num[0] == '-' || std::isnan(bias)) throw bad();
    return {id, v[sign] == '-' ? -bias : bias};
}

}  // namespace

void SamplingOptions::add_to(appcommon::OptionSet& opts) {
    using appcommon::parse_float;
    using appcommon::parse_int;
    auto& s = sampler;
    opts.section("Samplers (llama.cpp's, with its defaults; docs/run.md#samplers)");
    opts.value({"--samplers"}, "LIST",
               "the chain's stages in order, ';'-separated (default: penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature)",
               [&s](const std::string& v) {
                   try {
                       s.order = runtime::sampler_order_from_names(v);
                   } catch (const runtime::Error& e) {
                       throw appcommon::BadValue{e.what()};
                   }
               });
    opts.value({"--sampler-seq", "--sampling-seq"}, "LETTERS", "the chain as letters (default: edskypmxt)",
               [&s](const std::string& v) {
                   try {
                       s.order = runtime::sampler_order_from_letters(v);
                   } catch (const runtime::Error& e) {
                       throw appcommon::BadValue{e.what()};
                   }
               });
    opts.value({"--min-keep"}, "N", "top-p, min-p, typical-p and XTC keep at least N tokens (default 0)",
               [&s](const std::string& v) { s.min_keep = parse_int(v, 0, INT_MAX); });
    opts.value({"--typical", "--typical-p"}, "P", "locally typical sampling (1: off, the default)",
               [&s](const std::string& v) { s.typical_p = parse_float(v, 0.0f, 1.0f); });
    opts.value({"--top-nsigma", "--top-n-sigma"}, "N", "keep logits within N standard deviations of the top (-1: off)",
               [&s](const std::string& v) { s.top_n_sigma = parse_float(v, -1e9f, 1e9f); });
    opts.value({"--xtc-probability"}, "P", "XTC: chance of excluding the top choices (0: off)",
               [&s](const std::string& v) { s.xtc_probability = parse_float(v, 0.0f, 1.0f); });
    opts.value({"--xtc-threshold"}, "P", "XTC: probability a top choice must reach (default 0.1; > 0.5: off)",
               [&s](const std::string& v) { s.xtc_threshold = parse_float(v, 0.0f, 1.0f); });
    opts.value({"--dynatemp-range"}, "X", "dynamic temperature: temp -/+ X by the entropy (0: off)",
               [&s](const std::string& v) { s.dynatemp_range = parse_float(v, 0.0f, 1e9f); });
    opts.value({"--dynatemp-exp"}, "X", "dynamic temperature exponent (default 1)",
               [&s](const std::string& v) { s.dynatemp_exponent = parse_float(v, -1e9f, 1e9f); });
    opts.value({"--dry-multiplier"}, "X", "DRY repetition penalty (0: off)",
               [&s](const std::string& v) { s.dry_multiplier = parse_float(v, 0.0f, 1e9f); });
    opts.value({"--dry-base"}, "X", "DRY base (default 1.75)", [&s](const std::string& v) { s.dry_base = parse_float(v, 0.0f, 1e9f); });
    opts.value({"--dry-allowed-length"}, "N", "DRY: repeats longer than N are penalised (default 2)",
               [&s](const std::string& v) { s.dry_allowed_length = parse_int(v, 0, INT_MAX); });
    opts.value({"--dry-penalty-last-n"}, "N", "DRY: tokens to look back on (default 64; 0: off)",
               [&s](const std::string& v) { s.dry_penalty_last_n = parse_int(v, 0, INT_MAX); });
    opts.value({"--dry-sequence-breaker"}, "TEXT",
               "DRY sequence breaker (repeatable; replaces the defaults \\n : \" *; 'none': no breakers)",
               [&s, cleared = false](const std::string& v) mutable {
                   if (!cleared) s.dry_sequence_breakers.clear();
                   cleared = true;
                   if (v == "none") s.dry_sequence_breakers.clear();
                   else s.dry_sequence_breakers.push_back(v);
               });
    opts.value({"--mirostat"}, "N", "mirostat instead of the chain: 1 or 2 (0: off)",
               [&s](const std::string& v) { s.mirostat = parse_int(v, 0, 2); });
    opts.value({"--mirostat-lr"}, "ETA", "mirostat learning rate (default 0.1)",
               [&s](const std::string& v) { s.mirostat_eta = parse_float(v, 0.0f, 1e9f); });
    opts.value({"--mirostat-ent"}, "TAU", "mirostat target entropy (default 5)",
               [&s](const std::string& v) { s.mirostat_tau = parse_float(v, 0.0f, 1e9f); });
    opts.value({"-l", "--logit-bias"}, "ID(+|-)BIAS", "add BIAS to token ID's logit, e.g. 15043+1, 2-inf (repeatable)",
               [&s](const std::string& v) { s.logit_bias.push_back(parse_logit_bias(v)); });
    opts.section("Constrained output (docs/run.md#grammars)");
    opts.value({"--grammar"}, "GBNF", "the output must match this GBNF grammar (llama.cpp's format)", &grammar);
    opts.value({"--grammar-file"}, "FILE", "GBNF grammar from FILE", &grammar_file);
    opts.value({"-j", "--json-schema"}, "SCHEMA", "the output must be JSON that this JSON Schema accepts", &json_schema);
    opts.value({"-jf", "--json-schema-file"}, "FILE", "JSON Schema from FILE", &json_schema_file);
}

void SamplingOptions::finish() {
    const int given = !grammar.empty() + !grammar_file.empty() + !json_schema.empty() + !json_schema_file.empty();
    if (given > 1) throw appcommon::UsageError{"give one of --grammar, --grammar-file, --json-schema, --json-schema-file"};
    // a bad grammar or schema names the option it came from (and the file)
    std::string source;
    try {
        if (!grammar.empty()) {
            source = "--grammar: ";
            sampler.grammar = grammar;
        } else if (!grammar_file.empty()) {
            sampler.grammar = appcommon::read_file(grammar_file, "--grammar-file");
            source = "--grammar-file: " + grammar_file + ": ";
        } else if (!json_schema.empty() || !json_schema_file.empty()) {
            const bool file = !json_schema_file.empty();
            const std::string schema = file ? appcommon::read_file(json_schema_file, "--json-schema-file") : json_schema;
            source = file ? "--json-schema-file: " + json_schema_file + ": " : "--json-schema: ";
            sampler.grammar = grammar::json_schema_to_gbnf(schema);
        }
        if (!sampler.grammar.empty()) grammar::Grammar::parse(sampler.grammar);
        source.clear();
        runtime::validate_sampler_params(sampler);
    } catch (const grammar::Error& e) {
        throw appcommon::UsageError{source + e.what()};
    } catch (const runtime::Error& e) {
        if (std::string(e.what()).find(": cannot open") != std::string::npos) throw;
        throw appcommon::UsageError{source + e.what()};
    }
}

std::string SamplingOptions::describe() const {
    const auto& p = sampler;
    std::ostringstream o;
    o.setf(std::ios::fixed);
    o.precision(3);
    if (p.mirostat != 0) {
        o << "sampler: logit bias (" << p.logit_bias.size() << "), temperature " << p.temperature << ", mirostat v"
          << p.mirostat << " (tau " << p.mirostat_tau << ", eta " << p.mirostat_eta << ")";
    } else {
        o << "sampler: logit bias (" << p.logit_bias.size() << "), chain " << runtime::sampler_order_to_string(p.order)
          << "\n  repeat-penalty " << p.repeat_penalty << ", presence-penalty " << p.presence_penalty
          << ", frequency-penalty " << p.frequency_penalty << " (last " << p.repeat_last_n << "), dry " << p.dry_multiplier
          << " (base " << p.dry_base << ", allowed " << p.dry_allowed_length << ", last " << p.dry_penalty_last_n
          << "), top-n-sigma " << p.top_n_sigma << ", top-k " << p.top_k << ", typical-p " << p.typical_p << ", top-p "
          << p.top_p << ", min-p " << p.min_p << ", xtc " << p.xtc_probability << " (threshold " << p.xtc_threshold
          << "), temp " << p.temperature << " (dynatemp " << p.dynatemp_range << ")";
    }
    if (!p.grammar.empty()) o << "\ngrammar:\n" << p.grammar << (p.grammar.back() == '\n' ? "" : "\n") << "[end of grammar]";
    return o.str();
}

}  // namespace gguf_run
