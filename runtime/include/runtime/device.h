// Where a weight tensor, a KV-cache layer or a block of computation lives: the CPU or one CUDA device.
#pragma once

#include <string>
#include <string_view>

namespace runtime {

struct Device {
    enum class Kind { Cpu, Cuda };
    Kind kind = Kind::Cpu;
    int index = 0;  // CUDA ordinal; always 0 for the CPU

    static Device cpu() { return {}; }
    static Device cuda(int index) { return {Kind::Cuda, index}; }

    bool is_cpu() const { return kind == Kind::Cpu; }
    // "CPU", "CUDA0": the names llama.cpp prints and accepts in -ot rules.
    std::string name() const;
    // Accepts "CPU", "cpu", "CUDA0", "cuda:0", "CUDA:1"; anything else throws runtime::Error.
    static Device parse(std::string_view text);

    bool operator==(const Device&) const = default;
    auto operator<=>(const Device&) const = default;
};

}  // namespace runtime
