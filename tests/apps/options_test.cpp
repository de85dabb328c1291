// The apps' option parser: llama.cpp's spellings (single-dash multi-letter names), clear errors for
// unknown and unsupported options, value checks, and the escape processing of -p.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "appcommon/cli.h"
#include "appcommon/options.h"
#include "appcommon/text.h"

namespace {

using appcommon::OptionSet;

struct Parsed {
    std::string sys, model, fa = "unset";
    int seed = -1, ngl = 0, n = 0;
    bool cnv = false;
    std::vector<std::string> ot;
};

// A set shaped like gguf-run's, small enough to read in the test.
struct Fixture {
    Parsed p;
    OptionSet opts{"tool", "Usage: tool [options]"};
    Fixture() {
        opts.value({"-m", "--model"}, "FILE", "model", &p.model);
        opts.value({"-s", "--seed"}, "N", "seed", [this](const std::string& v) { p.seed = appcommon::parse_int(v, -1, 1000); });
        opts.value({"-sys", "--system-prompt"}, "TEXT", "system prompt", &p.sys);
        opts.value({"-ngl", "--n-gpu-layers"}, "N", "layers", [this](const std::string& v) { p.ngl = appcommon::parse_int(v, -1, 999); });
        opts.value({"-n", "--n-predict"}, "N", "tokens", [this](const std::string& v) { p.n = appcommon::parse_int(v, -1, 999); });
        opts.flag({"-cnv", "--conversation"}, "chat", &p.cnv);
        opts.value({"-ot", "--override-tensor"}, "R=D", "override", &p.ot);
        opts.optional_value({"-fa", "--flash-attn"}, "on|off|auto", "fa", {"on", "off", "auto"}, "on",
                            [this](const std::string& v) { p.fa = v; });
        opts.unsupported({"--grammar"}, true, "not supported yet");
        opts.unsupported({"-m"}, true, "ignored: already registered");  // keeps its meaning
    }
    OptionSet::Outcome parse(std::vector<std::string> args) { return opts.parse(args); }
    std::string error(std::vector<std::string> args) {
        try {
            opts.parse(args);
        } catch (const appcommon::UsageError& e) {
            return e.message;
        }
        return "no error";
    }
};

TEST(Options, SingleDashMultiLetterNamesAreWholeNames) {
    Fixture f;
    ASSERT_EQ(f.parse({"-sys", "be nice", "-ngl", "99", "-cnv", "-s", "7", "-m", "x.gguf"}), OptionSet::Outcome::Run);
    EXPECT_EQ(f.p.sys, "be nice");
    EXPECT_EQ(f.p.ngl, 99);
    EXPECT_TRUE(f.p.cnv);
    EXPECT_EQ(f.p.seed, 7);
    EXPECT_EQ(f.p.model, "x.gguf");
    EXPECT_TRUE(f.opts.given("--system-prompt"));  // any spelling asks about the same option
    EXPECT_FALSE(f.opts.given("-fa"));
}

TEST(Options, ValuesAttachWithEqualsAndNegativeNumbersAreValues) {
    Fixture f;
    f.parse({"--n-predict=12", "-s", "-1", "-ngl=-1"});
    EXPECT_EQ(f.p.n, 12);
    EXPECT_EQ(f.p.seed, -1);
    EXPECT_EQ(f.p.ngl, -1);
}

TEST(Options, RepeatedOptionsKeepTheirOrder) {
    Fixture f;
    f.parse({"-ot", "a=CPU", "--override-tensor", "b=CUDA0"});
    EXPECT_EQ(f.p.ot, (std::vector<std::string>{"a=CPU", "b=CUDA0"}));
}

TEST(Options, OptionalValueTakesOnlyItsChoices) {
    Fixture f;
    f.parse({"-fa", "on"});
    EXPECT_EQ(f.p.fa, "on");
    Fixture g;  // the old switch form: -fa followed by another option or a file
    g.parse({"-fa", "model.gguf"});
    EXPECT_EQ(g.p.fa, "on");
    EXPECT_EQ(g.opts.positional(), std::vector<std::string>{"model.gguf"});
    Fixture h;
    h.parse({"--flash-attn=off"});
    EXPECT_EQ(h.p.fa, "off");
    Fixture k;
    k.parse({"-fa"});
    EXPECT_EQ(k.p.fa, "on");
}

TEST(Options, PositionalsAndDoubleDash) {
    Fixture f;
    f.parse({"in.gguf", "-n", "3", "-", "out.gguf", "--", "-sys", "--grammar"});
    EXPECT_EQ(f.opts.positional(), (std::vector<std::string>{"in.gguf", "-", "out.gguf", "-sys", "--grammar"}));
    EXPECT_EQ(f.p.sys, "");
}

TEST(Options, UnknownOptionsNameTheNearestValidOne) {
    Fixture f;
    EXPECT_EQ(f.error({"--ngl", "3"}), "unknown option '--ngl'; did you mean '-ngl'?");
    EXPECT_EQ(f.error({"--seeed", "3"}), "unknown option '--seeed'; did you mean '--seed'?");
    EXPECT_EQ(f.error({"--conversaton"}), "unknown option '--conversaton'; did you mean '--conversation'?");
    // nothing close: no suggestion rather than a silly one
    EXPECT_EQ(f.error({"--frobnicate-everything"}), "unknown option '--frobnicate-everything'");
    // never split into letters: -sy is not -s y
    EXPECT_NE(f.error({"-sy", "x"}).find("unknown option '-sy'"), std::string::npos);
}

TEST(Options, UnsupportedOptionsSaySo) {
    Fixture f;
    EXPECT_EQ(f.error({"--grammar", "root ::= x"}), "--grammar: not supported yet");
    Fixture g;  // a spelling registered before the unsupported list keeps its meaning
    g.parse({"-m", "a.gguf"});
    EXPECT_EQ(g.p.model, "a.gguf");
}

TEST(Options, BadValuesNameTheOptionAsTyped) {
    Fixture f;
    EXPECT_EQ(f.error({"--seed", "abc"}), "--seed: expected an integer, got 'abc'");
    EXPECT_EQ(f.error({"-ngl", "5000"}), "-ngl: 5000 is out of range [-1, 999]");
    EXPECT_EQ(f.error({"-sys"}), "-sys needs a value (TEXT)");
    EXPECT_EQ(f.error({"-cnv=yes"}), "-cnv takes no value");
}

TEST(Options, HelpAndVersionExit) {
    Fixture f;
    testing::internal::CaptureStdout();
    EXPECT_EQ(f.parse({"-n", "2", "--help"}), OptionSet::Outcome::Exit);
    const std::string help = testing::internal::GetCapturedStdout();
    EXPECT_NE(help.find("-sys, --system-prompt TEXT"), std::string::npos) << help;
    EXPECT_NE(help.find("-fa, --flash-attn [on|off|auto]"), std::string::npos) << help;
    EXPECT_NE(help.find("not supported here (each fails naming the reason): --grammar"), std::string::npos) << help;
    testing::internal::CaptureStdout();
    EXPECT_EQ(f.parse({"--version"}), OptionSet::Outcome::Exit);
    EXPECT_EQ(testing::internal::GetCapturedStdout().rfind("tool 0.", 0), 0u);
}

TEST(Options, IgnoredOptionsPrintANote) {
    OptionSet opts("tool", "usage");
    int checked = 0;
    opts.ignored({"--mlock"}, "", "memory is not locked");
    opts.ignored({"-ub", "--ubatch-size"}, "N", "no micro-batch", [&](const std::string& v) {
        checked = appcommon::parse_int(v, 1, 100);
    });
    testing::internal::CaptureStderr();
    opts.parse(std::vector<std::string>{"--mlock", "--ubatch-size", "64"});
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("note: --mlock: no effect: memory is not locked"), std::string::npos) << err;
    EXPECT_NE(err.find("note: --ubatch-size: no effect: no micro-batch"), std::string::npos) << err;
    EXPECT_EQ(checked, 64);
    EXPECT_THROW(opts.parse(std::vector<std::string>{"-ub", "0"}), appcommon::UsageError);
}

TEST(Options, Converters) {
    EXPECT_EQ(appcommon::parse_int("42", 0, 100), 42);
    EXPECT_THROW(appcommon::parse_int("4x", 0, 100), appcommon::BadValue);
    EXPECT_THROW(appcommon::parse_int("", 0, 100), appcommon::BadValue);
    EXPECT_THROW(appcommon::parse_int64("99999999999999999999", 0, 100), appcommon::BadValue);
    EXPECT_FLOAT_EQ(appcommon::parse_float("0.5", 0, 1), 0.5f);
    EXPECT_THROW(appcommon::parse_float("nan", 0, 1), appcommon::BadValue);
    EXPECT_THROW(appcommon::parse_float("2", 0, 1), appcommon::BadValue);
    EXPECT_EQ(appcommon::parse_double("0.05", 0, 1), 0.05);  // no detour through float
    EXPECT_THROW(appcommon::parse_double("1e400", 0, 1e300), appcommon::BadValue);
    EXPECT_THROW(appcommon::parse_double("0.5x", 0, 1), appcommon::BadValue);
    EXPECT_THROW(appcommon::parse_double("-1", 0, 1), appcommon::BadValue);
    EXPECT_TRUE(appcommon::parse_on_off("on"));
    EXPECT_FALSE(appcommon::parse_on_off("0"));
    EXPECT_THROW(appcommon::parse_on_off("maybe"), appcommon::BadValue);
    EXPECT_EQ(appcommon::edit_distance("kitten", "sitting"), 3u);
    EXPECT_EQ(appcommon::edit_distance("", "abc"), 3u);
}

TEST(Options, EscapesAsLlamaCppProcessesThem) {
    using appcommon::process_escapes;
    EXPECT_EQ(process_escapes(R"(def f():\n\treturn 1)"), "def f():\n\treturn 1");
    EXPECT_EQ(process_escapes(R"(a\\n \"q\" \x41\x4a)"), "a\\n \"q\" AJ");
    // unknown escapes, a bad \x and a trailing backslash stay as typed
    EXPECT_EQ(process_escapes(R"(C:\dir\x4 end\)"), R"(C:\dir\x4 end\)");
}

// The apps' one reader of a whole file: bytes as they are (NUL and CR included); a file that cannot be
// opened names the option it came from, when there is one, and the path.
TEST(Options, ReadFileKeepsBytesAndNamesWhatFailed) {
    const std::string path = testing::TempDir() + "read_file_test.txt";
    const std::string bytes("a\r\nb\0c", 6);
    {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        ASSERT_NE(f, nullptr);
        std::fwrite(bytes.data(), 1, bytes.size(), f);
        std::fclose(f);
    }
    EXPECT_EQ(appcommon::read_file(path), bytes);
    std::remove(path.c_str());
    const std::string missing = testing::TempDir() + "no-such-file.txt";
    try {
        appcommon::read_file(missing, "--grammar-file");
        FAIL() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "--grammar-file: " + missing + ": cannot open");
    }
    try {
        appcommon::read_file(missing);
        FAIL() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), missing + ": cannot open");
    }
}

}  // namespace

namespace {

// Progress with a fake clock: a redrawn line with rate and ETA on a terminal, plain lines at most
// every interval elsewhere.
TEST(Progress, TerminalLineHasPercentRateAndEta) {
    double now = 100;
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* out = open_memstream(&buf, &len);
    {
        appcommon::Progress p(10, "tensors", out, true, [&] { return now; });
        now += 2;
        p.step("blk.0.attn_q.weight");
        now += 2;
        p.step("blk.0.attn_k.weight");
        p.done();
    }
    std::fclose(out);
    const std::string text(buf, len);
    std::free(buf);
    EXPECT_NE(text.find("[   1/  10]  10.0%  0.5 tensors/s  0:02 elapsed  ETA 0:18  blk.0.attn_q.weight"), std::string::npos) << text;
    EXPECT_NE(text.find("[   2/  10]  20.0%  0.5 tensors/s  0:04 elapsed  ETA 0:16  blk.0.attn_k.weight"), std::string::npos) << text;
    EXPECT_EQ(text.substr(text.size() - 4), "\r\033[K");  // the line is cleared for what follows
}

TEST(Progress, PlainLinesAtIntervalsWhenNotATerminal) {
    double now = 0;
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* out = open_memstream(&buf, &len);
    {
        appcommon::Progress p(100, "chunks", out, false, [&] { return now; }, 10);
        for (int i = 0; i < 100; ++i) {
            now += 1;  // one chunk a second: a line every ten
            p.step("");
        }
        p.done();
    }
    std::fclose(out);
    const std::string text(buf, len);
    std::free(buf);
    size_t lines = 0;
    for (char c : text) lines += c == '\n';
    EXPECT_EQ(lines, 9u) << text;  // at 10, 20, ... 90 s; the finished run reports itself
    EXPECT_NE(text.find("progress: 10/100 chunks (10.0%), 1.0 chunks/s, 0:10 elapsed, ETA 1:30\n"), std::string::npos) << text;
    EXPECT_EQ(text.find('\r'), std::string::npos);
    EXPECT_EQ(appcommon::format_duration(3725), "1:02:05");
}

}  // namespace
