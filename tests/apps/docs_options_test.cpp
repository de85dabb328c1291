// The docs match the tools' options: every option an app's --help lists (each of its modes) is named
// in README.md or docs/*.md by at least one of its spellings, and every option docs/cli.md names for an
// app is one the app knows (in its --help, or refused with a reason rather than "unknown option").
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "run_command.h"
#include "text_file.h"

namespace {

namespace fs = std::filesystem;
using testing_support::run_app;

const fs::path kSource(GGUF_SOURCE_DIR);

using testing_support::read_text;

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }

// The option names in `text`: "-x" or "--xyz" starting a word (so "comma-separated" is none), whole.
// A name ending in '-' ("--rope-*") is a family, not an option, and is left out.
std::vector<std::string> options_in(const std::string& text) {
    std::vector<std::string> out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '-' || (i > 0 && word_char(text[i - 1]))) continue;
        size_t j = i + 1;
        if (j < text.size() && text[j] == '-') ++j;
        if (j >= text.size() || !std::isalpha(static_cast<unsigned char>(text[j]))) continue;
        while (j < text.size() && word_char(text[j]) && text[j] != '_') ++j;
        if (text[j - 1] != '-') out.push_back(text.substr(i, j - i));
        i = j;
    }
    return out;
}

// An app's --help as groups of spellings: one group per option line ("  -c, --ctx-size N   text": the
// spellings before the description), and one per name of its "Recognised but not supported" list.
std::vector<std::vector<std::string>> help_groups(const std::string& help) {
    std::vector<std::vector<std::string>> groups;
    std::istringstream in(help);
    bool refused = false;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("Recognised but not supported", 0) == 0) {
            refused = true;
            line = line.substr(line.find(':') + 1);
        }
        if (refused) {
            for (const auto& o : options_in(line)) groups.push_back({o});
        } else if (line.rfind("  -", 0) == 0) {
            const size_t text = line.find("  ", 2);  // the description starts after two spaces
            std::vector<std::string> spellings;
            for (const auto& o : options_in(line.substr(0, text))) spellings.push_back(o);
            groups.push_back(spellings);
        }
    }
    return groups;
}

struct App {
    std::string name;
    std::vector<std::string> modes;  // "" is the app without a mode
};

const std::vector<App> kApps = {
    {"gguf-run", {"", "chat", "bench", "perplexity", "imatrix", "devices"}},
    {"gguf-quantize", {""}}, {"gguf-inspect", {""}}, {"gguf-convert", {""}}, {"gguf-split", {""}},
    {"gguf-verify", {"", "baseline"}},
};

std::string help_of(const std::string& app, const std::string& mode) {
    const auto r = run_app(app, (mode.empty() ? "" : mode + " ") + "--help");
    EXPECT_EQ(r.status, 0) << app << " " << mode << " --help\n" << r.err;
    return r.out;
}

TEST(DocsOptions, EveryHelpOptionIsDocumented) {
    std::string docs = read_text(kSource / "README.md");
    for (const auto& e : fs::directory_iterator(kSource / "docs"))
        if (e.path().extension() == ".md") docs += read_text(e.path());
    const auto named_list = options_in(docs);
    const std::set<std::string> named(named_list.begin(), named_list.end());
    size_t checked = 0;
    for (const auto& app : kApps) {
        for (const auto& mode : app.modes) {
            const auto groups = help_groups(help_of(app.name, mode));
            EXPECT_GE(groups.size(), 3u) << app.name << " " << mode;
            for (const auto& g : groups) {
                if (g.empty()) continue;
                ++checked;
                bool found = false;
                for (const auto& o : g) found = found || named.count(o);
                std::string all;
                for (const auto& o : g) all += (all.empty() ? "" : ", ") + o;
                EXPECT_TRUE(found) << app.name << " " << mode << ": " << all << " is in --help but in no doc";
            }
        }
    }
    EXPECT_GE(checked, 400u);  // ~550 option lines over the apps and modes today
}

// docs/cli.md's "## gguf-X" sections name options of app gguf-X (llama.cpp's, and how each is taken).
TEST(DocsOptions, CliDocNamesOnlyKnownOptions) {
    const std::string cli = read_text(kSource / "docs" / "cli.md");
    size_t checked = 0, sections = 0;
    for (const auto& app : kApps) {
        const size_t begin = cli.find("\n## " + app.name);
        if (begin == std::string::npos) continue;  // gguf-verify has no llama.cpp counterpart
        ++sections;
        const std::string section = cli.substr(begin, cli.find("\n## ", begin + 1) - begin);
        std::set<std::string> in_help;
        for (const auto& mode : app.modes)
            for (const auto& g : help_groups(help_of(app.name, mode))) in_help.insert(g.begin(), g.end());
        const auto listed = options_in(section);
        for (const auto& o : std::set<std::string>(listed.begin(), listed.end())) {
            ++checked;
            if (in_help.count(o)) continue;
            // not listed: the app must still know it, in some mode, and refuse it with a reason
            bool known = false;
            for (const auto& mode : app.modes) {
                const auto r = run_app(app.name, (mode.empty() ? "" : mode + " ") + o + " < /dev/null");
                known = known || r.err.find("unknown option") == std::string::npos;
            }
            EXPECT_TRUE(known) << "docs/cli.md names " << o << " for " << app.name << ", which does not know it";
        }
    }
    EXPECT_EQ(sections, 5u);  // gguf-run, -quantize, -split, -inspect, -convert
    EXPECT_GE(checked, 150u);
}

}  // namespace
