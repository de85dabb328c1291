// Two GGUF files compared as llama.cpp's converter output is checked against ours: every metadata key
// in the same order with the same type and value, every tensor with the same name, position, type,
// shape and bytes, and the same file size.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "gguf/file.h"

namespace testing_support {

// `moved_keys`: keys that must be present with equal values in both but may stand elsewhere in the
// order (a reference file made with a key appended afterwards); every other key keeps its position.
inline void expect_same_gguf(const gguf::File& ours, const gguf::File& ref,
                             const std::vector<std::string>& moved_keys = {}) {
    using Entry = std::pair<std::string, gguf::Value>;
    const auto ordered = [&](const gguf::File& f) {
        std::vector<const Entry*> out;
        for (const Entry& e : f.metadata().entries())
            if (std::find(moved_keys.begin(), moved_keys.end(), e.first) == moved_keys.end()) out.push_back(&e);
        return out;
    };
    const auto a = ordered(ours), b = ordered(ref);
    EXPECT_EQ(a.size(), b.size());
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        EXPECT_EQ(a[i]->first, b[i]->first) << "key " << i;
        EXPECT_TRUE(a[i]->second == b[i]->second) << a[i]->first << ": " << a[i]->second.to_display() << " vs "
                                                  << b[i]->second.to_display();
    }
    for (const std::string& key : moved_keys) {
        const gguf::Value* x = ours.metadata().find(key);
        const gguf::Value* y = ref.metadata().find(key);
        ASSERT_TRUE(x && y) << key << " missing";
        EXPECT_TRUE(*x == *y) << key << ": " << x->to_display() << " vs " << y->to_display();
    }
    ASSERT_EQ(ours.tensors().size(), ref.tensors().size());
    for (size_t i = 0; i < ours.tensors().size(); ++i) {
        const gguf::TensorInfo& x = ours.tensors()[i];
        const gguf::TensorInfo& y = ref.tensors()[i];
        EXPECT_EQ(x.name, y.name) << "tensor " << i;
        EXPECT_EQ(x.type, y.type) << x.name;
        EXPECT_EQ(x.dims, y.dims) << x.name;
        auto dx = ours.tensor_data(x), dy = ref.tensor_data(y);
        ASSERT_EQ(dx.size(), dy.size()) << x.name;
        EXPECT_EQ(std::memcmp(dx.data(), dy.data(), dx.size()), 0) << x.name << ": data differs";
    }
    EXPECT_EQ(ours.file_size(), ref.file_size());
}

}  // namespace testing_support
