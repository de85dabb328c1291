// gguf-run chat with Jinja chat templates: the model's own tokenizer.chat_template, --chat-template-file
// and inline --chat-template source are rendered by libjinja (the prompt shown by -v), a template's
// raise_exception is a one-line error, and bad options fail before the model is loaded.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "run_command.h"
#include "text_file.h"

namespace {

namespace fs = std::filesystem;
using testing_support::fixture;
using testing_support::run_app;

const char* kMoe = "gguf/tiny-moe-bf16.gguf";
const fs::path kTemplates = fs::path(GGUF_SOURCE_DIR) / "tests" / "chat" / "templates";

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

using testing_support::read_text;

// The prompt -v prints between "chat prompt:" and "[end of chat prompt]".
std::string shown_prompt(const std::string& err) {
    const size_t b = err.find("chat prompt:\n");
    const size_t e = err.find("\n[end of chat prompt]");
    if (b == std::string::npos || e == std::string::npos) return "(no prompt shown)";
    return err.substr(b + 13, e - b - 13);
}

class ChatTemplateCli : public testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("gguf_chat_template_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        input_ = dir_ / "input.txt";
        std::ofstream(input_) << "What is 2 + 2?\n";
    }
    void TearDown() override { fs::remove_all(dir_); }

    testing_support::CommandResult chat(const fs::path& model, const std::string& extra) {
        return run_app("gguf-run", "chat -m " + q(model) + " -t 1 -n 2 --temp 0 -v -sys 'You are a terse assistant.' " +
                                       extra + " < " + q(input_));
    }
    fs::path dir_, input_;
};

// The same conversation as cases.json's "system_user"; the expected text is its reference rendering.
const char* kQwen3SystemUser =
    "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n"
    "<|im_start|>assistant\n";

TEST_F(ChatTemplateCli, ModelTemplateIsRendered) {
    REQUIRE_FIXTURE(kMoe);
    // a copy of the fixture whose metadata carries Qwen3's template
    const fs::path model = dir_ / "with-template.gguf";
    {
        const gguf::File f = gguf::File::open(fixture(kMoe).string());
        gguf::Writer w(model.string());
        w.metadata() = f.metadata();
        w.metadata().set("tokenizer.chat_template", gguf::Value::string(read_text(kTemplates / "Qwen-Qwen3-0.6B.jinja")));
        for (const auto& t : f.tensors()) w.add_tensor(t.name, t.type, t.dims);
        for (const auto& t : f.tensors()) w.write_data(f.tensor_data(t));
        w.finish();
    }
    const auto r = chat(model, "");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("chat template: the model's Jinja template"), std::string::npos) << r.err;
    EXPECT_EQ(shown_prompt(r.err), kQwen3SystemUser);
    // a name still picks a built-in format over the model's template
    const auto builtin = chat(model, "--chat-template llama3");
    ASSERT_EQ(builtin.status, 0) << builtin.err;
    EXPECT_NE(shown_prompt(builtin.err).find("<|start_header_id|>system<|end_header_id|>"), std::string::npos) << builtin.err;
}

TEST_F(ChatTemplateCli, TemplateFileAndInlineSource) {
    REQUIRE_FIXTURE(kMoe);
    const auto file = chat(fixture(kMoe), "--chat-template-file " + q(kTemplates / "Qwen-Qwen3-0.6B.jinja"));
    ASSERT_EQ(file.status, 0) << file.err;
    EXPECT_EQ(shown_prompt(file.err), kQwen3SystemUser);

    const auto inline_source =
        chat(fixture(kMoe), "--chat-template '{% for m in messages %}[{{ m.role | upper }}] {{ m.content }}\n{% endfor %}>'");
    ASSERT_EQ(inline_source.status, 0) << inline_source.err;
    EXPECT_EQ(shown_prompt(inline_source.err), "[SYSTEM] You are a terse assistant.\n[USER] What is 2 + 2?\n>");
}

// llama.cpp's --chat-template-kwargs: Qwen3's template closes an empty think block when told not to think.
TEST_F(ChatTemplateCli, KwargsReachTheTemplate) {
    REQUIRE_FIXTURE(kMoe);
    const std::string qwen3 = "--chat-template-file " + q(kTemplates / "Qwen-Qwen3-0.6B.jinja");
    const auto r = chat(fixture(kMoe), qwen3 + " --chat-template-kwargs '{\"enable_thinking\": false}'");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(shown_prompt(r.err), std::string(kQwen3SystemUser) + "<think>\n\n</think>\n\n");
    const auto bad = chat(fixture(kMoe), qwen3 + " --chat-template-kwargs '[1]'");
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("error: --chat-template-kwargs: expected a JSON object"), std::string::npos) << bad.err;
    const auto broken = chat(fixture(kMoe), qwen3 + " --chat-template-kwargs '{enable'");
    EXPECT_EQ(broken.status, 2);
    EXPECT_NE(broken.err.find("error: --chat-template-kwargs: not valid JSON"), std::string::npos) << broken.err;
    EXPECT_EQ(broken.err.find("model:"), std::string::npos) << broken.err;
}

// llama.cpp's -rea/--reasoning on|off|auto sets enable_thinking; --chat-template-kwargs' own value wins.
TEST_F(ChatTemplateCli, ReasoningSwitchSetsEnableThinking) {
    REQUIRE_FIXTURE(kMoe);
    const std::string qwen3 = "--chat-template-file " + q(kTemplates / "Qwen-Qwen3-0.6B.jinja");
    const std::string no_thinking = std::string(kQwen3SystemUser) + "<think>\n\n</think>\n\n";
    for (const char* off : {"-rea off", "--reasoning=off", "-rea 0"}) {
        const auto r = chat(fixture(kMoe), qwen3 + " " + off);
        ASSERT_EQ(r.status, 0) << off << "\n" << r.err;
        EXPECT_EQ(shown_prompt(r.err), no_thinking) << off;
    }
    for (const char* on : {"-rea on", "-rea", "-rea auto"}) {  // alone: on, as llama.cpp's switch
        const auto r = chat(fixture(kMoe), qwen3 + " " + on);
        ASSERT_EQ(r.status, 0) << on << "\n" << r.err;
        EXPECT_EQ(shown_prompt(r.err), kQwen3SystemUser) << on;
    }
    const auto both = chat(fixture(kMoe), qwen3 + " --chat-template-kwargs '{\"enable_thinking\": true}' -rea off");
    ASSERT_EQ(both.status, 0) << both.err;
    EXPECT_EQ(shown_prompt(both.err), kQwen3SystemUser);
    const auto bad = chat(fixture(kMoe), qwen3 + " --reasoning=maybe");
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("error: --reasoning: expected on or off, got 'maybe'"), std::string::npos) << bad.err;
}

TEST_F(ChatTemplateCli, TemplateErrorsAreOneLine) {
    REQUIRE_FIXTURE(kMoe);
    // Gemma 2's template refuses a system message with raise_exception
    const auto gemma = chat(fixture(kMoe), "--chat-template-file " + q(kTemplates / "google-gemma-2-2b-it.jinja"));
    EXPECT_EQ(gemma.status, 1);
    EXPECT_NE(gemma.err.find("\nerror: chat template: System role not supported\n"), std::string::npos) << gemma.err;

    // before the model is loaded: an unknown name, a missing file, a template that does not parse
    const auto name = chat(fixture(kMoe), "--chat-template vicuna");
    EXPECT_EQ(name.status, 2);
    EXPECT_NE(name.err.find("error: --chat-template: unknown template 'vicuna'"), std::string::npos) << name.err;
    const auto missing = chat(fixture(kMoe), "--chat-template-file " + q(dir_ / "none.jinja"));
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("none.jinja: cannot open"), std::string::npos) << missing.err;
    std::ofstream(dir_ / "bad.jinja") << "{% for m in messages %}\n{{ m.content }}\n";
    const auto bad = chat(fixture(kMoe), "--chat-template-file " + q(dir_ / "bad.jinja"));
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.err.find("bad.jinja: line 2: missing '{% endfor %}'"), std::string::npos) << bad.err;
    for (const auto* r : {&name, &missing, &bad}) EXPECT_EQ(r->err.find("model:"), std::string::npos) << r->err;
}

}  // namespace
