// A Hugging Face checkpoint directory: config.json plus safetensors weights, single-file or
// sharded through model.safetensors.index.json, opened and cross-checked up front.
#pragma once

#include <string>
#include <vector>

#include "convert/hf_config.h"
#include "convert/safetensors.h"

namespace convert {

class Checkpoint {
public:
    // Reads DIR/config.json and maps every weight file. A missing file, a shard the index names
    // but the directory lacks, a tensor the index and the shards disagree on, or a tensor name
    // present twice throws convert::Error naming it.
    static Checkpoint open(const std::string& dir);

    const std::string& dir() const { return dir_; }
    const HfConfig& hparams() const { return hparams_; }
    // Conversion order, llama.cpp's: weight files sorted by name, each file's tensors sorted by name.
    const std::vector<const SafeTensor*>& tensors() const { return order_; }
    // config.json, the shard index and the weight files (outputs must never replace one of them).
    const std::vector<std::string>& input_files() const { return inputs_; }

private:
    Checkpoint(std::string dir, HfConfig hparams) : dir_(std::move(dir)), hparams_(std::move(hparams)) {}
    std::string dir_;
    HfConfig hparams_;
    std::vector<SafetensorsFile> files_;
    std::vector<const SafeTensor*> order_;
    std::vector<std::string> inputs_;
};

}  // namespace convert
