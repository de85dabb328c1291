#include "convert/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "convert/error.h"

namespace fs = std::filesystem;

namespace convert {

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";

// Shard file names in llama.cpp's order: from the index's weight map when there is one, else
// every model*.safetensors in the directory; sorted either way.
std::vector<std::string> weight_files(const fs::path& dir, std::unordered_map<std::string, std::string>& weight_map) {
    const fs::path index_path = dir / kIndexName;
    std::set<std::string> names;
    if (fs::exists(index_path)) {
        json::Value index = json::parse_file(index_path.string());
        const json::Value* map = index.is_object() ? index.find("weight_map") : nullptr;
        if (!map || !map->is_object()) throw Error(index_path.string() + ": missing \"weight_map\" object");
        for (const auto& m : map->entries()) {
            if (!m.value.is_string())
                throw Error(index_path.string() + ": weight_map entry \"" + m.key + "\" is not a file name");
            const std::string& file = m.value.as_string();
            // The index names files inside the checkpoint; a path out of it is not one of them.
            if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
                throw Error(index_path.string() + ": weight_map entry \"" + m.key + "\" names an invalid file \"" +
                            file + "\"");
            weight_map.emplace(m.key, file);
            names.insert(file);
        }
        if (names.empty()) throw Error(index_path.string() + ": weight_map is empty");
        for (const std::string& n : names)
            if (!fs::is_regular_file(dir / n))
                throw Error((dir / n).string() + ": missing shard named in " + kIndexName);
        return {names.begin(), names.end()};
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().string();
        if (n.starts_with("model") && n.ends_with(".safetensors") && e.is_regular_file()) names.insert(n);
    }
    if (ec) throw Error(dir.string() + ": cannot list directory: " + ec.message());
    if (names.empty()) {
        const bool bin = fs::exists(dir / "pytorch_model.bin") || fs::exists(dir / "pytorch_model.bin.index.json");
        throw Error(dir.string() + ": no model.safetensors or " + kIndexName + " found" +
                    (bin ? " (PyTorch .bin checkpoints are not supported; save with safetensors)" : ""));
    }
    return {names.begin(), names.end()};
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& dir_arg) {
    const fs::path dir(dir_arg);
    if (!fs::is_directory(dir)) throw Error(dir_arg + ": not a directory (expected a Hugging Face model directory)");
    const fs::path config_path = dir / "config.json";
    if (!fs::is_regular_file(config_path)) throw Error(config_path.string() + ": missing (every HF checkpoint has one)");

    Checkpoint c(dir_arg, HfConfig(json::parse_file(config_path.string()), config_path.string()));
    c.inputs_.push_back(config_path.string());

    std::unordered_map<std::string, std::string> weight_map;
    if (fs::exists(dir / kIndexName)) c.inputs_.push_back((dir / kIndexName).string());
    for (const std::string& name : weight_files(dir, weight_map)) {
        c.files_.push_back(SafetensorsFile::open((dir / name).string()));
        c.inputs_.push_back((dir / name).string());
    }

    std::unordered_map<std::string_view, const SafeTensor*> seen;
    for (const SafetensorsFile& f : c.files_) {
        for (const SafeTensor& t : f.tensors()) {
            auto [it, fresh] = seen.emplace(t.name, &t);
            if (!fresh)
                throw Error(f.path() + ": tensor '" + t.name + "' is also in " + *it->second->file);
            if (!weight_map.empty()) {
                auto w = weight_map.find(t.name);
                if (w == weight_map.end())
                    throw Error(f.path() + ": tensor '" + t.name + "' is not listed in " + kIndexName);
                if ((dir / w->second).string() != f.path())
                    throw Error(f.path() + ": tensor '" + t.name + "' is listed in " + kIndexName + " under " +
                                w->second);
            }
            c.order_.push_back(&t);
        }
        // each file's tensors by name, as llama.cpp reads them (gguf-py sorts a file's header
        // entries; safetensors writers lay them out by dtype first)
        std::sort(c.order_.end() - static_cast<std::ptrdiff_t>(f.tensors().size()), c.order_.end(),
                  [](const SafeTensor* a, const SafeTensor* b) { return a->name < b->name; });
    }
    // A shard that exists but lacks tensors the index promises is as broken as a missing one.
    std::vector<std::string> missing;
    for (const auto& [name, file] : weight_map)
        if (!seen.count(name)) missing.push_back(name + " (in " + file + ")");
    if (!missing.empty()) {
        std::sort(missing.begin(), missing.end());
        throw Error(dir_arg + ": " + std::to_string(missing.size()) + " tensor(s) listed in " + kIndexName +
                    " are missing from the shards, first: " + missing.front());
    }
    return c;
}

}  // namespace convert
