// gguf-split: cuts a GGUF model into shards or merges shards into one file, with llama.cpp's
// gguf-split options and file names. Options in, libgguf calls out.
#include <iostream>

#include "appcommon/cli.h"
#include "appcommon/options.h"
#include "appcommon/text.h"
#include "gguf/split.h"

int main(int argc, char** argv) {
    return appcommon::run_main([&] {
        bool merge = false, dry_run = false, force = false;
        gguf::SplitLimits limits;
        appcommon::OptionSet opts(
            "gguf-split",
            "Usage: gguf-split [--split] [--split-max-tensors N | --split-max-size N(M|G)] IN.gguf OUT_PREFIX\n"
            "       gguf-split --merge FIRST-00001-of-0000N.gguf OUT.gguf\n\n"
            "--split writes OUT_PREFIX-00001-of-0000N.gguf ... (llama.cpp's names and split.* keys; the first\n"
            "shard holds the metadata). --merge reads every shard through the first and writes one file.\n"
            "IN may itself be a split model (its first file). Files are written through temp files; existing\n"
            "outputs are replaced only with --force.");
        opts.flag({"--split"}, "cut IN into shards (the default)", [&] { merge = false; });
        opts.flag({"--merge"}, "merge the shards of a split model into one file", &merge);
        opts.value({"--split-max-tensors"}, "N", "at most N tensors per shard (default 128)", [&](const std::string& v) {
            limits.max_tensors = static_cast<uint32_t>(appcommon::parse_int(v, 1, 1 << 30));
        });
        opts.value({"--split-max-size"}, "N(M|G)", "at most this much tensor data per shard (M = 10^6, G = 10^9 bytes)",
                   [&](const std::string& v) { limits.max_bytes = appcommon::parse_split_size(v); });
        opts.flag({"--dry-run"}, "print the shards and their tensors, write nothing", &dry_run);
        opts.flag({"--force"}, "replace output files that exist (never a shard of the input)", &force);
        opts.unsupported({"--no-tensor-first-split"}, false, "not supported yet: the first shard holds tensors too");
        if (opts.parse(argc, argv) == appcommon::OptionSet::Outcome::Exit) return 0;
        const auto& args = opts.positional();
        if (args.size() != 2) throw appcommon::UsageError{merge ? "expected FIRST.gguf OUT.gguf" : "expected IN.gguf OUT_PREFIX"};
        if (limits.max_bytes > 0 && limits.max_tensors > 0) {
            throw appcommon::UsageError{"give --split-max-tensors or --split-max-size, not both"};
        }
        if (merge && (limits.max_bytes > 0 || limits.max_tensors > 0)) {
            throw appcommon::UsageError{"--merge takes no --split-max-* option"};
        }
        if (!merge && limits.max_bytes == 0 && limits.max_tensors == 0) limits.max_tensors = 128;  // gguf-split's default

        gguf::OutputPolicy policy;
        policy.replace_existing = force;
        const gguf::File in = gguf::File::open(args[0]);
        appcommon::Progress progress(in.tensors().size());
        const auto step = [&](size_t done, size_t) { progress.step(in.tensors()[done - 1].name); };
        if (merge) {
            if (in.n_shards() == 1) std::cerr << "warning: " << args[0] << " is not split; writing a copy\n";
            if (dry_run) {
                std::cout << args[1] << ": " << in.tensors().size() << " tensors from " << in.n_shards() << " shards\n";
                return 0;
            }
            gguf::write_merged(in, args[1], step, policy);
            progress.done();
            std::cout << args[1] << ": " << in.tensors().size() << " tensors from " << in.n_shards() << " shards\n";
            return 0;
        }
        std::string prefix = args[1];
        if (prefix.ends_with(".gguf")) prefix.resize(prefix.size() - 5);
        const std::vector<uint32_t> shard_of = gguf::plan_split(in, limits);
        const uint32_t count = shard_of.empty() ? 1 : shard_of.back() + 1;
        if (dry_run) {
            for (uint32_t s = 0; s < count; ++s) {
                uint64_t bytes = 0;
                size_t n = 0;
                for (size_t i = 0; i < shard_of.size(); ++i) {
                    if (shard_of[i] == s) {
                        bytes += in.tensors()[i].n_bytes();
                        ++n;
                    }
                }
                std::cout << gguf::split_path(prefix, s, count) << ": " << n << " tensors, " << bytes
                          << " bytes of tensor data\n";
            }
            return 0;
        }
        const auto paths = gguf::write_shards(in, prefix, shard_of, step, policy);
        progress.done();
        for (const auto& p : paths) std::cout << p << "\n";
        return 0;
    });
}
