// How gguf-quantize shows a plan: a table for people, JSON for scripts.
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "quant/imatrix.h"
#include "quant/recipe.h"

struct RunInfo {
    std::string input;
    std::optional<std::string> output;  // absent for --dry-run without OUT
    bool dry_run = false;
    const quant::Imatrix* imatrix = nullptr;
    double seconds = 0;  // time spent writing; 0 for a dry run
    std::vector<std::string> shards;  // the files written, when the output was split
    // with --target-bpw / --target-size / --max-kld: each chosen tensor's predicted KL divergence
    const std::map<std::string, double>* predicted_kld = nullptr;
    double predicted_total = 0;
};

// "[ 3/57] blk.0.attn_k.weight  bf16 -> q4_K", the per-tensor label of plans and progress.
std::string tensor_label(const quant::TensorPlan& t);

void print_plan_text(std::ostream& out, const quant::QuantPlan& plan, const RunInfo& run);
void print_summary_text(std::ostream& out, const quant::QuantPlan& plan, const RunInfo& run);
void print_json(std::ostream& out, const quant::QuantPlan& plan, const RunInfo& run);
