// The apps' command-line parser. It takes llama.cpp's spellings as they are pasted: long options with
// two dashes, short ones with one, and llama.cpp's multi-letter single-dash names (-ngl, -sys, -ctk) as
// whole names, never split into letters. Every spelling of an option is listed explicitly; there is no
// prefix guessing and no bundling (-n5), so "-sys" can never be read as "-s ys".
//
// Unknown options are a usage error naming the nearest valid spelling. llama.cpp options a tool does not
// have yet are registered as unsupported so that they fail with a message saying so, instead of "unknown".
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace appcommon {

// Thrown by value converters (parse_int...) for a malformed value; the parser prefixes the option's
// spelling as typed and rethrows it as a UsageError.
struct BadValue {
    std::string why;
};

// Converters for option values; they throw BadValue. The ranges are inclusive.
int parse_int(const std::string& s, int min, int max);
long long parse_int64(const std::string& s, long long min, long long max);
float parse_float(const std::string& s, float min, float max);
// For thresholds compared with double figures (gguf-verify): no rounding to float on the way.
double parse_double(const std::string& s, double min, double max);
// on/off, true/false, 1/0, yes/no, enabled/disabled.
bool parse_on_off(const std::string& s);

// Edit distance, for "did you mean".
size_t edit_distance(std::string_view a, std::string_view b);

class OptionSet {
public:
    using Names = std::initializer_list<std::string_view>;
    using OnValue = std::function<void(const std::string&)>;

    // `usage` opens --help; `program` names the tool in --version.
    OptionSet(std::string program, std::string usage);
    OptionSet(const OptionSet&) = delete;  // actions may refer to the set (current())
    OptionSet& operator=(const OptionSet&) = delete;

    // Starts a group in --help.
    void section(std::string title);

    // A switch without a value.
    void flag(Names names, std::string help, std::function<void()> on);
    void flag(Names names, std::string help, bool* target);
    // An option with a value: "-n 5", "--n-predict 5", "--n-predict=5", "-n=5".
    void value(Names names, std::string metavar, std::string help, OnValue on);
    void value(Names names, std::string metavar, std::string help, std::string* target);
    void value(Names names, std::string metavar, std::string help, std::vector<std::string>* append_to);
    // A value that may be left out: the next argument is taken only when it is one of `choices`;
    // otherwise (or when it is the last argument) the option gets `implicit`. "--name=value" always works.
    // For llama.cpp's -fa, which was a switch before it took on|off|auto.
    void optional_value(Names names, std::string metavar, std::string help, std::vector<std::string> choices,
                        std::string implicit, OnValue on);
    // Like optional_value, but the next argument is taken unless `looks_positional` says it is not the
    // option's (gguf-inspect --tensors [REGEX] FILE: the file is not taken as the regex).
    void optional_value_if(Names names, std::string metavar, std::string help,
                           std::function<bool(const std::string&)> takes, OnValue on);
    // An option of llama.cpp (or of a sibling tool) this tool does not have: using it is a usage error
    // "OPTION: WHY". --help lists them in one closing paragraph. Spellings already registered keep
    // their meaning, so a tool can add a shared list of llama.cpp options after its own.
    void unsupported(Names names, bool takes_value, std::string why);
    // An option accepted for compatibility that changes nothing in this tool: using it prints
    // "note: OPTION: NOTE" on stderr. A value, when it takes one, is still checked by `check`.
    void ignored(Names names, std::string metavar, std::string note,
                 std::function<void(const std::string&)> check = nullptr);

    enum class Outcome { Run, Exit };
    // Calls the options' actions in command-line order and collects positional arguments (everything
    // not starting with '-', a lone "-", and everything after "--"). -h/--help prints help on stdout and
    // --version prints the version; both return Exit. Errors throw UsageError.
    Outcome parse(const std::vector<std::string>& args);
    Outcome parse(int argc, char** argv, int first = 1);

    const std::vector<std::string>& positional() const { return positional_; }
    // Whether the option with this spelling appeared on the command line.
    bool given(std::string_view name) const;
    std::string help() const;
    // The spelling of the option whose action is running, for messages that name it as typed.
    const std::string& current() const { return current_; }
    // "gguf-run 0.1.0 (gguf-suite, commit abc1234)"
    std::string version() const;

private:
    enum class Kind { Flag, Value, Optional, Unsupported };
    struct Option {
        std::vector<std::string> names;
        Kind kind;
        std::string metavar, help;
        std::function<bool(const std::string&)> takes;  // Optional: does it take the next argument?
        std::string implicit;
        OnValue on;
        std::string why;  // Unsupported
        bool takes_value = false;  // Unsupported: skip its value so the error names the right thing
        int section = 0;
        bool seen = false;
    };
    Option& add(Names names, Kind kind);
    const Option* find(std::string_view name) const;
    std::string nearest(std::string_view name) const;

    std::string program_, usage_;
    std::vector<std::string> sections_;
    std::vector<Option> options_;
    std::vector<std::string> positional_;
    std::string current_;
};

}  // namespace appcommon
