#include "appcommon/options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/version.h"

namespace appcommon {

namespace {

std::string range_text(long long min, long long max) {
    return "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

// Words of `text` in lines of at most `width` characters.
std::string wrap(const std::string& text, size_t width) {
    std::string out, line;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find(' ', start);
        if (end == std::string::npos) end = text.size();
        const std::string word = text.substr(start, end - start);
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            out += line + "\n";
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
        start = end + 1;
    }
    return out + line + "\n";
}

// A finite number within [min, max], read by `read` (std::strtof or std::strtod) in T's own precision.
template <typename T>
T parse_real(const std::string& s, T min, T max, T (*read)(const char*, char**)) {
    if (s.empty()) throw BadValue{"expected a number, got nothing"};
    char* end = nullptr;
    const T v = read(s.c_str(), &end);
    if (*end != '\0' || !std::isfinite(v)) throw BadValue{"expected a number, got '" + s + "'"};
    if (v < min || v > max) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%s is out of range [%g, %g]", s.c_str(), static_cast<double>(min),
                      static_cast<double>(max));
        throw BadValue{buf};
    }
    return v;
}

}  // namespace

long long parse_int64(const std::string& s, long long min, long long max) {
    if (s.empty()) throw BadValue{"expected an integer, got nothing"};
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (*end != '\0') throw BadValue{"expected an integer, got '" + s + "'"};
    if (errno == ERANGE || v < min || v > max) throw BadValue{s + " is out of range " + range_text(min, max)};
    return v;
}

int parse_int(const std::string& s, int min, int max) { return static_cast<int>(parse_int64(s, min, max)); }

float parse_float(const std::string& s, float min, float max) { return parse_real<float>(s, min, max, std::strtof); }

double parse_double(const std::string& s, double min, double max) { return parse_real<double>(s, min, max, std::strtod); }

bool parse_on_off(const std::string& s) {
    for (const char* t : {"on", "true", "1", "yes", "enabled"}) {
        if (s == t) return true;
    }
    for (const char* f : {"off", "false", "0", "no", "disabled"}) {
        if (s == f) return false;
    }
    throw BadValue{"expected on or off, got '" + s + "'"};
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

OptionSet::OptionSet(std::string program, std::string usage) : program_(std::move(program)), usage_(std::move(usage)) {
    sections_.push_back("Options");
}

void OptionSet::section(std::string title) { sections_.push_back(std::move(title)); }

OptionSet::Option& OptionSet::add(Names names, Kind kind) {
    Option o;
    for (auto n : names) {
        if (find(n)) throw std::logic_error("option spelled twice: " + std::string(n));
        o.names.emplace_back(n);
    }
    o.kind = kind;
    o.section = static_cast<int>(sections_.size()) - 1;
    options_.push_back(std::move(o));
    return options_.back();
}

void OptionSet::flag(Names names, std::string help, std::function<void()> on) {
    Option& o = add(names, Kind::Flag);
    o.help = std::move(help);
    o.on = [on = std::move(on)](const std::string&) { on(); };
}

void OptionSet::flag(Names names, std::string help, bool* target) {
    flag(names, std::move(help), [target] { *target = true; });
}

void OptionSet::value(Names names, std::string metavar, std::string help, OnValue on) {
    Option& o = add(names, Kind::Value);
    o.metavar = std::move(metavar);
    o.help = std::move(help);
    o.on = std::move(on);
}

void OptionSet::value(Names names, std::string metavar, std::string help, std::string* target) {
    value(names, std::move(metavar), std::move(help), [target](const std::string& v) { *target = v; });
}

void OptionSet::value(Names names, std::string metavar, std::string help, std::vector<std::string>* append_to) {
    value(names, std::move(metavar), std::move(help), [append_to](const std::string& v) { append_to->push_back(v); });
}

void OptionSet::optional_value(Names names, std::string metavar, std::string help, std::vector<std::string> choices,
                               std::string implicit, OnValue on) {
    Option& o = add(names, Kind::Optional);
    o.metavar = std::move(metavar);
    o.help = std::move(help);
    o.takes = [choices = std::move(choices)](const std::string& next) {
        return std::find(choices.begin(), choices.end(), next) != choices.end();
    };
    o.implicit = std::move(implicit);
    o.on = std::move(on);
}

void OptionSet::optional_value_if(Names names, std::string metavar, std::string help,
                                  std::function<bool(const std::string&)> takes, OnValue on) {
    Option& o = add(names, Kind::Optional);
    o.metavar = std::move(metavar);
    o.help = std::move(help);
    o.takes = std::move(takes);
    o.on = std::move(on);
}

void OptionSet::unsupported(Names names, bool takes_value, std::string why) {
    Option o;
    for (auto n : names) {
        if (!find(n)) o.names.emplace_back(n);
    }
    if (o.names.empty()) return;
    o.kind = Kind::Unsupported;
    o.takes_value = takes_value;
    o.why = std::move(why);
    o.section = static_cast<int>(sections_.size()) - 1;
    options_.push_back(std::move(o));
}

void OptionSet::ignored(Names names, std::string metavar, std::string note, std::function<void(const std::string&)> check) {
    auto print = [this, note] { std::fprintf(stderr, "note: %s: no effect: %s\n", current_.c_str(), note.c_str()); };
    if (metavar.empty()) {
        flag(names, "no effect: " + note, print);
    } else {
        value(names, metavar, "no effect: " + note, [print, check](const std::string& v) {
            if (check) check(v);
            print();
        });
    }
}

const OptionSet::Option* OptionSet::find(std::string_view name) const {
    for (const auto& o : options_) {
        if (std::find(o.names.begin(), o.names.end(), name) != o.names.end()) return &o;
    }
    return nullptr;
}

bool OptionSet::given(std::string_view name) const {
    const Option* o = find(name);
    return o && o->seen;
}

std::string OptionSet::nearest(std::string_view name) const {
    std::string best;
    size_t best_d = SIZE_MAX;
    for (const auto& o : options_) {
        if (o.kind == Kind::Unsupported) continue;
        for (const auto& n : o.names) {
            size_t d = edit_distance(name, n);
            // "-ngl" for "--ngl" and "--top-k" for "-top-k": the dash count is the usual slip
            const std::string_view bare_a = name.substr(name.find_first_not_of('-'));
            const std::string_view bare_b = std::string_view(n).substr(n.find_first_not_of('-'));
            if (bare_a == bare_b) d = 0;
            if (d < best_d) {
                best_d = d;
                best = n;
            }
        }
    }
    // a suggestion further away than a third of the name is noise
    if (best.empty() || best_d > std::max<size_t>(2, name.size() / 3)) return "";
    return best;
}

OptionSet::Outcome OptionSet::parse(int argc, char** argv, int first) {
    return parse(std::vector<std::string>(argv + std::min(first, argc), argv + argc));
}

OptionSet::Outcome OptionSet::parse(const std::vector<std::string>& args) {
    positional_.clear();
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            positional_.insert(positional_.end(), args.begin() + static_cast<ptrdiff_t>(i) + 1, args.end());
            break;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            positional_.push_back(arg);
            continue;
        }
        if (arg == "-h" || arg == "--help" || arg == "--usage") {
            std::cout << help();
            return Outcome::Exit;
        }
        if (arg == "--version") {
            std::cout << version() << "\n";
            return Outcome::Exit;
        }
        std::string name = arg, attached;
        bool has_attached = false;
        if (const size_t eq = arg.find('='); eq != std::string::npos) {
            name = arg.substr(0, eq);
            attached = arg.substr(eq + 1);
            has_attached = true;
        }
        Option* o = const_cast<Option*>(find(name));
        if (!o) {
            const std::string near = nearest(name);
            throw UsageError{"unknown option '" + name + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?")};
        }
        if (o->kind == Kind::Unsupported) throw UsageError{name + ": " + o->why};
        o->seen = true;
        std::string value;
        switch (o->kind) {
            case Kind::Flag:
                if (has_attached) throw UsageError{name + " takes no value"};
                break;
            case Kind::Value:
                if (has_attached) {
                    value = attached;
                } else {
                    if (i + 1 >= args.size()) throw UsageError{name + " needs a value (" + o->metavar + ")"};
                    value = args[++i];
                }
                break;
            case Kind::Optional:
                if (has_attached) value = attached;
                else if (i + 1 < args.size() && o->takes(args[i + 1])) value = args[++i];
                else value = o->implicit;
                break;
            case Kind::Unsupported: break;
        }
        current_ = name;
        try {
            o->on(value);
        } catch (const BadValue& e) {
            throw UsageError{name + ": " + e.why};
        }
    }
    return Outcome::Run;
}

std::string OptionSet::version() const {
    return program_ + " " + kVersion + " (gguf-suite, commit " + kCommit + ")";
}

std::string OptionSet::help() const {
    std::string out = usage_ + "\n";
    for (size_t s = 0; s < sections_.size(); ++s) {
        std::string body;
        for (const auto& o : options_) {
            if (o.section != static_cast<int>(s) || o.kind == Kind::Unsupported) continue;
            std::string left = "  ";
            for (size_t k = 0; k < o.names.size(); ++k) left += (k ? ", " : "") + o.names[k];
            if (!o.metavar.empty()) left += o.kind == Kind::Optional ? " [" + o.metavar + "]" : " " + o.metavar;
            constexpr size_t kColumn = 30;
            if (left.size() + 2 > kColumn) body += left + "\n" + std::string(kColumn, ' ');
            else body += left + std::string(kColumn - left.size(), ' ');
            body += o.help + "\n";
        }
        if (!body.empty()) out += "\n" + sections_[s] + ":\n" + body;
    }
    std::string names;
    for (const auto& o : options_) {
        if (o.kind == Kind::Unsupported) names += (names.empty() ? "" : ", ") + o.names.front();
    }
    out += "\n  -h, --help                  this help\n  --version                   the version\n";
    if (!names.empty()) out += "\n" + wrap("Recognised but not supported here (each fails naming the reason): " + names, 100);
    return out;
}

}  // namespace appcommon
