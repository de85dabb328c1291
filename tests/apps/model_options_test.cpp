// The model options the apps that run a model share (appmodel): what reaches the context and --fit.
#include <gtest/gtest.h>

#include "appcommon/model_options.h"

namespace {

// The logits rows a command reads (n_outputs, set by the command, not a flag) reach the context and what
// --fit plans for: one row for generation and benchmarks, -b rows when the command leaves it at 0.
TEST(Options, OutputRowsReachTheContextAndTheFitPlan) {
    appcommon::CommonOptions o;
    o.batch_size = 256;
    o.fit = "on";
    EXPECT_EQ(appcommon::context_params(o).n_outputs, 0);
    EXPECT_EQ(appcommon::model_options(o).fit->n_outputs, 256);
    o.n_outputs = 1;
    EXPECT_EQ(appcommon::context_params(o).n_outputs, 1);
    EXPECT_EQ(appcommon::model_options(o).fit->n_outputs, 1);
}

// --fit keeps llama.cpp's 1024 MiB free on the GPU present, 256 MiB under a --vram-budget (a card planned for
// this run alone), and what --fit-target says in either case.
TEST(Options, FitTargetDefaultsByWhatThePlanIsFor) {
    appcommon::CommonOptions o;
    o.fit = "on";
    EXPECT_EQ(appcommon::model_options(o).fit->margin, 1024ull << 20);
    o.vram_budget = "16G";
    EXPECT_EQ(appcommon::model_options(o).fit->margin, 256ull << 20);
    EXPECT_EQ(appcommon::model_options(o).fit->budget, 16ull << 30);
    o.fit_target_mib = 0;
    EXPECT_EQ(appcommon::model_options(o).fit->margin, 0u);
    o.vram_budget.clear();
    o.fit_target_mib = 300;
    EXPECT_EQ(appcommon::model_options(o).fit->margin, 300ull << 20);
}

}  // namespace
