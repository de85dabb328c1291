// Recipe conformance with llama.cpp: for every types file llama-quantize left in
// fixtures/llama-cpp/types/, the plan for the same model, recipe and imatrix choice must give
// every tensor the same type, in the same order, and a file of the size REFERENCE.md lists.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "fixtures.h"
#include "gguf/file.h"
#include "quant/imatrix.h"
#include "quant/recipe.h"
#include "recipe_reference.h"

namespace {

namespace fs = std::filesystem;
using testing_support::fixture;

struct Case {
    std::string model;   // "dense" or "moe"
    std::string recipe;  // "Q4_K_M"
    bool imatrix;
    fs::path types_file;
};

// MODEL-RECIPE-imyes|imno.txt
std::vector<Case> cases() {
    std::vector<Case> out;
    const fs::path dir = fixture("llama-cpp/types");
    if (!fs::is_directory(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string stem = e.path().stem().string();
        const size_t a = stem.find('-');
        const size_t b = stem.rfind('-');
        if (a == std::string::npos || b == a) continue;
        out.push_back({stem.substr(0, a), stem.substr(a + 1, b - a - 1), stem.substr(b + 1) == "imyes", e.path()});
    }
    std::sort(out.begin(), out.end(), [](const Case& x, const Case& y) { return x.types_file < y.types_file; });
    return out;
}

class RecipeConformance : public ::testing::TestWithParam<Case> {};

TEST_P(RecipeConformance, SameTypesOrderAndSizeAsLlamaCpp) {
    const Case& c = GetParam();
    const std::string input = "gguf/tiny-" + c.model + "-bf16.gguf";
    const std::string imatrix_file = "llama-cpp/imatrix-" + c.model + ".gguf";
    REQUIRE_FIXTURE(input);
    if (c.imatrix) REQUIRE_FIXTURE(imatrix_file);

    const gguf::File in = gguf::File::open(fixture(input).string());
    std::optional<quant::Imatrix> im;
    if (c.imatrix) im = quant::Imatrix::load(fixture(imatrix_file).string());
    quant::PlanInputs inputs;
    inputs.recipe = quant::find_recipe(c.recipe);
    ASSERT_NE(inputs.recipe, nullptr) << c.recipe;
    inputs.imatrix = im ? &*im : nullptr;
    const quant::QuantPlan plan = quant::make_plan(in, inputs);

    const auto expected = testing_support::read_types_file(c.types_file);
    ASSERT_EQ(plan.tensors.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(plan.tensors[i].name, expected[i].first) << "tensor order differs at " << i;
        EXPECT_EQ(gguf::type_name(plan.tensors[i].to.type), expected[i].second) << expected[i].first;
    }

    // REFERENCE.md lists every case but one (moe Q5_K_M without an imatrix).
    const auto ref = testing_support::llama_cpp_file_bytes(c.model, c.recipe, c.imatrix);
    if (ref) {
        // Same types and layout: only the header can differ (the imatrix path llama.cpp recorded).
        EXPECT_NEAR(static_cast<double>(plan.file_bytes), static_cast<double>(*ref), *ref * 0.005);
        if (!c.imatrix) {
            EXPECT_EQ(plan.file_bytes, *ref);
        }
    }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
    return info.param.model + "_" + info.param.recipe + (info.param.imatrix ? "_imatrix" : "_plain");
}

// The parameterized cases come from the directory listing; this says so when it is absent, and
// guards against a listing that silently lost files.
TEST(RecipeConformanceFiles, AllTypesFilesAreFound) {
    REQUIRE_FIXTURE("llama-cpp/types");
    EXPECT_EQ(cases().size(), 40u);
}

INSTANTIATE_TEST_SUITE_P(TypesFiles, RecipeConformance, ::testing::ValuesIn(cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(RecipeConformance);

}  // namespace
