// Every chat template of tests/chat/templates rendered for every conversation of cases.json must equal
// the reference rendering byte for byte (reference/*.json, written by make_reference.py: transformers'
// apply_chat_template renderer, or Jinja2 set up the same way); where the reference is an error
// (a template's raise_exception), the renderer must fail with the same message.
#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "jinja/template.h"
#include "text_file.h"

namespace {

namespace fs = std::filesystem;
const fs::path kDir = fs::path(GGUF_SOURCE_DIR) / "tests" / "chat";

using testing_support::read_text;

std::tm parse_now(const std::string& iso) {  // "2026-01-15T10:30:00"
    std::tm tm{};
    std::istringstream in(iso);
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
    std::tm copy = tm;
    timegm(&copy);  // fills the weekday and day of the year
    tm.tm_wday = copy.tm_wday;
    tm.tm_yday = copy.tm_yday;
    return tm;
}

// Renders one template for one conversation as transformers does: messages, tools and documents
// (None when not given), add_generation_prompt, the special tokens and the conversation's kwargs.
std::string render(const jinja::Template& t, const nlohmann::ordered_json& special, const nlohmann::ordered_json& conv, const std::tm& now) {
    nlohmann::ordered_json ctx = special;
    ctx["messages"] = conv["messages"];
    ctx["tools"] = conv.contains("tools") ? conv["tools"] : nlohmann::ordered_json();
    ctx["documents"] = nullptr;
    ctx["add_generation_prompt"] = conv["add_generation_prompt"];
    if (conv.contains("kwargs")) ctx.update(conv["kwargs"]);
    jinja::RenderOptions options;
    options.now = [now] { return now; };
    return t.render(jinja::Value::from_json(ctx), options);
}

TEST(ChatReference, EveryTemplateMatchesEveryReference) {
    const auto cases = nlohmann::ordered_json::parse(read_text(kDir / "cases.json"));
    const std::tm now = parse_now(cases["now"]);
    size_t references = 0, compared = 0;
    bool transformers = false;  // the reference that matters; jinja2.json is its stand-in where transformers is absent
    for (const auto& entry : fs::directory_iterator(kDir / "reference")) {
        if (entry.path().extension() != ".json") continue;
        ++references;
        transformers = transformers || entry.path().filename() == "transformers.json";
        const auto ref = nlohmann::ordered_json::parse(read_text(entry.path()));
        SCOPED_TRACE(entry.path().filename().string() + " (" + ref["engine"].get<std::string>() + ")");
        ASSERT_EQ(ref["now"], cases["now"]);
        for (const auto& [name, special] : cases["templates"].items()) {
            ASSERT_TRUE(ref["renders"].contains(name)) << name << " has no reference render";
            const jinja::Template t(read_text(kDir / "templates" / (name + ".jinja")));
            for (const auto& [conv_name, conv] : cases["conversations"].items()) {
                ASSERT_TRUE(ref["renders"][name].contains(conv_name)) << name << " / " << conv_name << " has no reference render";
                const auto& expected = ref["renders"][name][conv_name];
                ++compared;
                if (expected.contains("error")) {
                    try {
                        const std::string got = render(t, special, conv, now);
                        ADD_FAILURE() << name << " / " << conv_name << ": rendered, the reference failed with "
                                      << expected["error"] << "\n" << got;
                    } catch (const jinja::Error& e) {
                        EXPECT_EQ(std::string(e.what()), expected["error"].get<std::string>()) << name << " / " << conv_name;
                    }
                    continue;
                }
                try {
                    EXPECT_EQ(render(t, special, conv, now), expected["text"].get<std::string>()) << name << " / " << conv_name;
                } catch (const jinja::Error& e) {
                    ADD_FAILURE() << name << " / " << conv_name << ": " << e.what();
                }
            }
        }
    }
    // every reference file renders every template for every conversation, transformers' among them
    EXPECT_TRUE(transformers) << "tests/chat/reference/transformers.json is missing";
    EXPECT_GE(references, 2u);
    EXPECT_EQ(compared, references * cases["templates"].size() * cases["conversations"].size());
    EXPECT_GE(compared, 130u);  // 13 templates x 5 conversations x 2 reference files
}

}  // namespace
