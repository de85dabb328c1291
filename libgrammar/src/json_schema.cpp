// JSON Schema -> GBNF. Each schema node becomes a rule named after where it sits (its property name);
// the primitives (string, number, ...) are written once and shared.
#include "grammar/json_schema.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "grammar/grammar.h"

namespace grammar {

namespace {

using Json = nlohmann::ordered_json;

// The primitive rules, each ending in optional whitespace ("ws").
const std::map<std::string, std::string> kPrimitives = {
    {"ws", R"(| " " | "\n"{1,2} [ \t]{0,20})"},
    {"json-char", R"([^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))"},
    {"json-int", R"("-"? ("0" | [1-9] [0-9]{0,15}))"},
    {"boolean", R"(("true" | "false") ws)"},
    {"null", R"("null" ws)"},
    {"integer", R"(json-int ws)"},
    {"number", R"(json-int ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,16})? ws)"},
    {"string", R"("\"" json-char* "\"" ws)"},
    {"value", R"(object | array | string | number | boolean | null)"},
    {"object", R"("{" ws (string ":" ws value ("," ws string ":" ws value)*)? "}" ws)"},
    {"array", R"("[" ws (value ("," ws value)*)? "]" ws)"},
};
const std::map<std::string, std::vector<std::string>> kUses = {
    {"integer", {"json-int", "ws"}}, {"number", {"json-int", "ws"}}, {"string", {"json-char", "ws"}},
    {"boolean", {"ws"}}, {"null", {"ws"}},
    {"value", {"object", "array", "string", "number", "boolean", "null"}},
    {"object", {"string", "value", "ws"}}, {"array", {"value", "ws"}},
};

// Keywords that only describe (or that JSON Schema treats as annotations): no constraint to write.
const std::set<std::string> kAnnotations = {"$schema", "$id", "$comment", "title", "description", "default",
                                            "examples", "format", "readOnly", "writeOnly", "deprecated",
                                            "definitions", "$defs"};

std::string literal(const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20) {
            static const char* hex = "0123456789ABCDEF";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

class Converter {
public:
    explicit Converter(const Json& root) : root_(root) {}

    std::string run() {
        const std::string body = visit(root_, "/", "root");
        rules_["root"] = body;
        std::string out;
        for (const auto& [name, def] : rules_) out += name + " ::= " + def + "\n";
        return out;
    }

private:
    [[noreturn]] static void fail(const std::string& at, const std::string& what) {
        throw Error("json-schema: at " + at + ": " + what);
    }

    std::string use(const std::string& primitive) {
        if (rules_.contains(primitive)) return primitive;
        rules_[primitive] = kPrimitives.at(primitive);
        if (const auto it = kUses.find(primitive); it != kUses.end()) {
            for (const auto& dep : it->second) use(dep);
        }
        return primitive;
    }

    // A new rule with a name derived from `hint`; returns its name.
    std::string add(const std::string& hint, const std::string& def) {
        std::string base;
        for (char c : hint) base += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? static_cast<char>(std::tolower(c)) : '-';
        if (base.empty()) base = "item";
        std::string name = base;
        for (int i = 2; rules_.contains(name) || kPrimitives.contains(name) || name == "root"; ++i) name = base + "-" + std::to_string(i);
        rules_[name] = def;
        return name;
    }

    // A constant JSON value as the exact text it must be (compact form), followed by whitespace.
    std::string constant(const Json& v) { return literal(v.dump()) + " " + use("ws"); }

    std::string resolve_ref(const std::string& ref, const std::string& at) {
        if (ref == "#") return "root";  // the whole schema
        if (const auto it = refs_.find(ref); it != refs_.end()) return it->second;
        if (!ref.starts_with("#/")) fail(at, "$ref '" + ref + "': only references into this document (#/...) are supported");
        const Json* node = &root_;
        size_t pos = 2;
        while (pos <= ref.size()) {
            const size_t next = std::min(ref.find('/', pos), ref.size());
            const std::string key = ref.substr(pos, next - pos);
            if (!node->is_object() || !node->contains(key)) fail(at, "$ref '" + ref + "' points nowhere");
            node = &(*node)[key];
            pos = next + 1;
        }
        // named before it is visited, so that a recursive schema refers to itself
        const std::string name = add(ref.substr(ref.rfind('/') + 1), "\"\"");
        refs_[ref] = name;
        rules_[name] = visit(*node, ref.substr(1), name);
        return name;
    }

    // The GBNF of one schema node.
    std::string visit(const Json& s, const std::string& at, const std::string& hint) {
        // schemas are user input: nesting is bounded so that it cannot overflow the stack
        struct Depth {
            int& d;
            explicit Depth(int& v) : d(++v) {}
            ~Depth() { --d; }
        } depth(depth_);
        if (depth_ > 64) fail(at, "schemas nest deeper than 64");
        if (s.is_boolean()) {
            if (!s.get<bool>()) fail(at, "the schema 'false' accepts nothing");
            return use("value");
        }
        if (!s.is_object()) fail(at, "a schema must be an object or a boolean");
        for (const auto& [key, _] : s.items()) {
            static const std::set<std::string> known = {"type", "properties", "required", "additionalProperties", "items",
                                                        "prefixItems", "minItems", "maxItems", "minLength", "maxLength",
                                                        "enum", "const", "anyOf", "oneOf", "$ref"};
            if (!known.contains(key) && !kAnnotations.contains(key)) fail(at, "'" + key + "' is not supported");
        }
        if (s.contains("$ref")) {
            if (!s["$ref"].is_string()) fail(at, "'$ref' must be a string");
            return resolve_ref(s["$ref"].get<std::string>(), at);
        }
        if (s.contains("const")) return constant(s["const"]);
        if (s.contains("enum")) {
            if (!s["enum"].is_array() || s["enum"].empty()) fail(at, "'enum' must be a non-empty array");
            std::string alts;
            for (const auto& v : s["enum"]) alts += (alts.empty() ? "" : " | ") + literal(v.dump());
            return "(" + alts + ") " + use("ws");
        }
        for (const char* key : {"anyOf", "oneOf"}) {
            if (!s.contains(key)) continue;
            if (!s[key].is_array() || s[key].empty()) fail(at, std::string("'") + key + "' must be a non-empty array");
            std::string alts;
            for (size_t i = 0; i < s[key].size(); ++i) {
                alts += (alts.empty() ? "" : " | ") +
                        add(hint + "-" + std::to_string(i), visit(s[key][i], at + key + "/" + std::to_string(i) + "/", hint));
            }
            return "(" + alts + ")";
        }
        if (!s.contains("type")) {
            if (s.contains("properties")) return object(s, at, hint);
            if (s.contains("items") || s.contains("prefixItems")) return array(s, at, hint);
            return use("value");
        }
        const Json& type = s["type"];
        if (type.is_array()) {
            if (type.empty()) fail(at, "'type' must not be an empty array");
            std::string alts;
            for (const auto& t : type) {
                if (!t.is_string()) fail(at, "'type' must be a string or an array of strings");
                Json one = s;
                one["type"] = t;
                alts += (alts.empty() ? "" : " | ") + add(hint + "-" + t.get<std::string>(), visit(one, at, hint));
            }
            return "(" + alts + ")";
        }
        if (!type.is_string()) fail(at, "'type' must be a string or an array of strings");
        const std::string t = type.get<std::string>();
        if (t == "object") return object(s, at, hint);
        if (t == "array") return array(s, at, hint);
        if (t == "string") return string(s, at);
        if (t == "integer" || t == "number" || t == "boolean" || t == "null") return use(t);
        fail(at, "unknown type '" + t + "'");
    }

    static size_t count(const Json& s, const char* key, size_t dflt, const std::string& at) {
        if (!s.contains(key)) return dflt;
        if (!s[key].is_number_unsigned()) fail(at, std::string("'") + key + "' must be a non-negative integer");
        return s[key].get<size_t>();
    }

    // "{m,n}" for a repetition, "*" when unbounded from 0.
    static std::string times(size_t min, size_t max) {
        if (max == SIZE_MAX) return min == 0 ? "*" : min == 1 ? "+" : "{" + std::to_string(min) + ",}";
        return "{" + std::to_string(min) + "," + std::to_string(max) + "}";
    }

    std::string string(const Json& s, const std::string& at) {
        const size_t min = count(s, "minLength", 0, at), max = count(s, "maxLength", SIZE_MAX, at);
        if (min == 0 && max == SIZE_MAX) return use("string");
        if (max < min) fail(at, "maxLength is below minLength");
        use("json-char");
        return "\"\\\"\" json-char" + times(min, max) + " \"\\\"\" " + use("ws");
    }

    std::string array(const Json& s, const std::string& at, const std::string& hint) {
        use("ws");
        if (s.contains("prefixItems")) {
            std::string seq = "\"[\" ws";
            const Json& items = s["prefixItems"];
            for (size_t i = 0; i < items.size(); ++i) {
                seq += (i ? " \",\" ws " : " ") +
                       add(hint + "-" + std::to_string(i), visit(items[i], at + "prefixItems/" + std::to_string(i) + "/", hint));
            }
            return seq + " \"]\" ws";
        }
        const std::string item = s.contains("items") ? add(hint + "-item", visit(s["items"], at + "items/", hint + "-item"))
                                                     : use("value");
        const size_t min = count(s, "minItems", 0, at), max = count(s, "maxItems", SIZE_MAX, at);
        if (max < min) fail(at, "maxItems is below minItems");
        if (max == 0) return "\"[\" ws \"]\" ws";
        const std::string rest = "(\",\" ws " + item + ")" + times(min > 0 ? min - 1 : 0, max == SIZE_MAX ? SIZE_MAX : max - 1);
        const std::string list = item + " " + rest;
        return "\"[\" ws " + (min == 0 ? "(" + list + ")?" : list) + " \"]\" ws";
    }

    std::string object(const Json& s, const std::string& at, const std::string& hint) {
        use("ws");
        std::vector<std::string> required, optional;  // key-value rules, in the order of "properties"
        std::set<std::string> req;
        if (s.contains("required")) {
            if (!s["required"].is_array()) fail(at, "'required' must be an array of property names");
            for (const auto& r : s["required"]) {
                if (!r.is_string()) fail(at, "'required' must be an array of property names");
                req.insert(r.get<std::string>());
            }
        }
        if (s.contains("properties") && !s["properties"].is_object()) fail(at, "'properties' must be an object");
        if (s.contains("properties")) {
            for (const auto& [name, sub] : s["properties"].items()) {
                const std::string kv =
                    add(hint + "-" + name + "-kv", literal(Json(name).dump()) + " ws \":\" ws " +
                                                       add(hint + "-" + name, visit(sub, at + "properties/" + name + "/", name)));
                (req.contains(name) ? required : optional).push_back(kv);
            }
        }
        for (const auto& r : req) {
            if (!s.contains("properties") || !s["properties"].contains(r)) fail(at, "required property '" + r + "' has no schema in 'properties'");
        }
        std::string extra;  // the rule for one more key-value pair, when allowed
        if (s.contains("additionalProperties") && !(s["additionalProperties"].is_boolean() && !s["additionalProperties"].get<bool>())) {
            const std::string value = add(hint + "-additional", visit(s["additionalProperties"], at + "additionalProperties/", hint));
            extra = add(hint + "-additional-kv", use("string") + " \":\" ws " + value);
        } else if (!s.contains("properties") && !s.contains("additionalProperties")) {
            return use("object");
        }
        std::string body;
        for (const auto& kv : required) body += (body.empty() ? "" : " \",\" ws ") + kv;
        // optional pairs keep their order; each may be left out
        std::vector<std::string> opt = optional;
        if (!extra.empty()) opt.push_back("(" + extra + ")");
        if (!body.empty()) {
            for (size_t i = 0; i < opt.size(); ++i) {
                const bool last_extra = !extra.empty() && i + 1 == opt.size();
                body += " (\",\" ws " + opt[i] + (last_extra ? ")*" : ")?");
            }
        } else if (!opt.empty()) {
            // no required pair: the first one present has no comma before it
            std::string alts;
            for (size_t i = 0; i < opt.size(); ++i) {
                std::string alt = opt[i];
                for (size_t j = i + 1; j < opt.size(); ++j) {
                    const bool last_extra = !extra.empty() && j + 1 == opt.size();
                    alt += " (\",\" ws " + opt[j] + (last_extra ? ")*" : ")?");
                }
                if (!extra.empty() && i + 1 == opt.size()) alt += " (\",\" ws " + opt[i] + ")*";
                alts += (alts.empty() ? "" : " | ") + alt;
            }
            body = "(" + alts + ")?";
        }
        return "\"{\" ws " + body + " \"}\" ws";
    }

    const Json& root_;
    std::map<std::string, std::string> rules_;
    std::map<std::string, std::string> refs_;
    int depth_ = 0;
};

}  // namespace

std::string json_schema_to_gbnf(std::string_view schema_json) {
    Json root;
    try {
        root = Json::parse(schema_json);
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number like 1E999
        throw Error(std::string("json-schema: not valid JSON: ") + e.what());
    }
    std::string gbnf;
    try {
        gbnf = Converter(root).run();
    } catch (const nlohmann::json::exception& e) {
        // a value of the wrong JSON type where the checks above do not look (the schema is user input)
        throw Error(std::string("json-schema: ") + e.what());
    }
    Grammar::parse(gbnf);  // the converter's own check: what it writes must parse
    return gbnf;
}

}  // namespace grammar
