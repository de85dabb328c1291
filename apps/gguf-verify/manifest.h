// Checksum manifests: a text file with the XXH3-64 of the metadata and of every tensor's data, one line
// each, so that a published file can be checked later and a change names the tensors it touched.
//
//   # gguf-verify manifest 1
//   metadata 0123456789abcdef
//   tensor 89abcdef01234567 q4_K [256, 768] blk.0.ffn_up.weight
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "check.h"
#include "gguf/file.h"

namespace verify {

struct ManifestEntry {
    std::string name;
    std::string type;   // "q4_K"
    std::string shape;  // "[256, 768]"
    uint64_t hash = 0;
};

struct Manifest {
    uint64_t metadata_hash = 0;
    std::vector<ManifestEntry> tensors;  // in file order
};

// Hashes every tensor on all threads (threads 0: all).
Manifest make_manifest(const gguf::File& file, int threads);
void write_manifest(const Manifest& m, const std::string& path);
// A malformed manifest throws std::runtime_error naming the file and line.
Manifest read_manifest(const std::string& path);

// The file against a manifest: each changed, missing or extra tensor named, and the metadata.
CheckResult manifest_check(const gguf::File& file, const std::string& manifest_path, int threads);

}  // namespace verify
