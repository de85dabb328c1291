#include "recipe_check.h"

#include <stdexcept>

#include "quant/recipe.h"

namespace verify {

namespace {

struct Outcome {
    const quant::Recipe* recipe = nullptr;
    std::vector<std::string> differences;
    size_t compared = 0;
};

Outcome compare(const gguf::File& file, const quant::Recipe& recipe, bool have_imatrix) {
    quant::RecipeOptions options;
    options.have_imatrix = have_imatrix;
    const auto choices = quant::choose_types(recipe, quant::ModelFacts::from_metadata(file.metadata()), options,
                                             file.tensors());
    Outcome o;
    o.recipe = &recipe;
    for (size_t i = 0; i < choices.size(); ++i) {
        // Kept tensors (norms, router, 1-D) stay as the converter wrote them: nothing to compare with.
        if (choices[i].source == quant::ChoiceSource::Kept) continue;
        ++o.compared;
        const auto& t = file.tensors()[i];
        if (t.type != choices[i].type) {
            o.differences.push_back(t.name + ": " + std::string(gguf::type_name(t.type)) + ", " +
                                    std::string(recipe.name) + " gives " + std::string(gguf::type_name(choices[i].type)));
        }
    }
    return o;
}

}  // namespace

CheckResult recipe_check(const gguf::File& file, const std::string& recipe_name) {
    const gguf::Value* ft = file.metadata().find("general.file_type");
    if (!ft) return CheckResult::skipped("recipe", "no general.file_type in the file");
    uint64_t file_type = 0;
    try {
        file_type = ft->as_u64();
    } catch (const std::exception&) {
        CheckResult r;
        r.name = "recipe";
        r.problems.push_back("general.file_type is not an unsigned integer");
        r.figure = "general.file_type unreadable";
        r.conclude();
        return r;
    }
    std::vector<const quant::Recipe*> candidates;
    if (!recipe_name.empty()) {
        const quant::Recipe* r = quant::find_recipe(recipe_name);
        if (!r) throw std::invalid_argument("unknown recipe '" + recipe_name + "' (--recipe)");
        candidates.push_back(r);
    } else {
        for (const auto& r : quant::recipes()) {
            if (static_cast<uint64_t>(r.file_type) == file_type) candidates.push_back(&r);
        }
    }
    if (candidates.empty()) {
        return CheckResult::skipped("recipe", "general.file_type " + std::to_string(file_type) + " names no recipe this tool knows");
    }
    // llama-quantize records an importance matrix in the file; some rules differ with one
    const bool have_imatrix = file.metadata().contains("quantize.imatrix.file") ||
                              file.metadata().contains("quantize.imatrix.entries_count");
    CheckResult r;
    r.name = "recipe";
    Outcome best;
    bool first = true;
    for (const auto* c : candidates) {
        Outcome o = compare(file, *c, have_imatrix);
        if (first || o.differences.size() < best.differences.size()) best = std::move(o);
        first = false;
    }
    r.problems = best.differences;
    r.figure = std::string(best.recipe->name) + (have_imatrix ? " (imatrix)" : "") + ": " +
               std::to_string(best.compared - best.differences.size()) + " of " + std::to_string(best.compared) +
               " tensors it sets have its types";
    r.metrics = {{"compared", static_cast<double>(best.compared)}, {"differ", static_cast<double>(best.differences.size())}};
    r.conclude();
    return r;
}

}  // namespace verify
