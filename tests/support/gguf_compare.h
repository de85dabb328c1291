// Two GGUF files compared as llama.cpp's converter output is checked against ours: every metadata key
// in the same order with the same type and value, every tensor with the same name, position, type,
// shape and bytes, and the same file size.
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "gguf/file.h"

namespace testing_support {

inline void expect_same_gguf(const gguf::File& ours, const gguf::File& ref) {
    const auto& a = ours.metadata().entries();
    const auto& b = ref.metadata().entries();
    EXPECT_EQ(a.size(), b.size());
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        EXPECT_EQ(a[i].first, b[i].first) << "key " << i;
        EXPECT_TRUE(a[i].second == b[i].second) << a[i].first << ": " << a[i].second.to_display() << " vs "
                                                << b[i].second.to_display();
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
