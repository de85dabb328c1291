#include "gguf/writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "gguf/error.h"

namespace gguf {

bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {}, sb {};
    if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

namespace {
constexpr size_t kMaxTensorName = 63;  // ggml's GGML_MAX_NAME (64) minus the terminator

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
}  // namespace

Writer::Writer(std::string path, uint32_t version, OutputPolicy policy)
    : path_(std::move(path)), policy_(std::move(policy)), version_(version) {
    if (version_ != 2 && version_ != 3) throw Error("cannot write GGUF version " + std::to_string(version_));
}

Writer::~Writer() {
    if (out_) std::fclose(out_);
    // temp_ removes an unfinished temp file itself
}

uint32_t Writer::alignment() const {
    const Value* a = metadata_.find(kAlignmentKey);
    if (!a) return kDefaultAlignment;
    if (a->type() != ValueType::U32) throw Error(path_ + ": general.alignment must be u32");
    uint64_t v = a->as_u64();
    if (v == 0 || (v & (v - 1)) != 0) throw Error(path_ + ": general.alignment must be a power of two");
    return static_cast<uint32_t>(v);
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims) {
    if (header_done_) throw Error(path_ + ": tensor '" + name + "' declared after data writing began");
    if (name.empty() || name.size() > kMaxTensorName) {
        throw Error(path_ + ": tensor name '" + name + "' must be 1 to 63 bytes long");
    }
    for (const auto& t : tensors_) {
        if (t.name == name) throw Error(path_ + ": duplicate tensor name '" + name + "'");
    }
    if (dims.size() > kMaxDims) throw Error(path_ + ": tensor '" + name + "' has more than 4 dimensions");
    for (int64_t d : dims) {
        if (d < 0) throw Error(path_ + ": tensor '" + name + "' has a negative dimension");
    }
    const TypeTraits& traits = type_traits(type);
    if (!dims.empty() && dims[0] % traits.block_size != 0) {
        throw Error(path_ + ": tensor '" + name + "' row of " + std::to_string(dims[0]) +
                    " elements is not a multiple of the " + std::string(traits.name) + " block size " +
                    std::to_string(traits.block_size));
    }
    TensorInfo t;
    t.name = name;
    t.type = type;
    t.dims = std::move(dims);
    tensors_.push_back(std::move(t));
}

uint64_t Writer::expected_file_size() {
    // Header size: computed by writing nothing, only counting.
    uint64_t n = 4 + 4 + 8 + 8;
    std::function<uint64_t(const Value&)> value_size = [&](const Value& v) -> uint64_t {
        if (v.type() == ValueType::String) return 8 + v.as_string().size();
        if (v.type() != ValueType::Array) return scalar_size(v.type());
        uint64_t s = 4 + 8;
        for (const auto& item : v.as_array().items) s += value_size(item);
        return s;
    };
    for (const auto& [key, v] : metadata_.entries()) n += 8 + key.size() + 4 + value_size(v);
    uint64_t data = 0;
    const uint64_t align = alignment();
    for (const auto& t : tensors_) {
        n += 8 + t.name.size() + 4 + 8 * t.dims.size() + 4 + 8;
        data = align_up(data, align) + t.n_bytes();
    }
    return align_up(n, align) + align_up(data, align);
}

void Writer::put(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, out_) != n) {
        throw Error(temp_->display_name() + ": write failed: " + std::strerror(errno));
    }
    written_ += n;
}

void Writer::put_string(const std::string& s) {
    uint64_t len = s.size();
    put(&len, 8);
    put(s.data(), s.size());
}

void Writer::put_value(const Value& v) {
    switch (v.type()) {
        case ValueType::U8: { uint8_t x = static_cast<uint8_t>(v.as_u64()); put(&x, 1); break; }
        case ValueType::I8: { int8_t x = static_cast<int8_t>(v.as_i64()); put(&x, 1); break; }
        case ValueType::U16: { uint16_t x = static_cast<uint16_t>(v.as_u64()); put(&x, 2); break; }
        case ValueType::I16: { int16_t x = static_cast<int16_t>(v.as_i64()); put(&x, 2); break; }
        case ValueType::U32: { uint32_t x = static_cast<uint32_t>(v.as_u64()); put(&x, 4); break; }
        case ValueType::I32: { int32_t x = static_cast<int32_t>(v.as_i64()); put(&x, 4); break; }
        case ValueType::U64: { uint64_t x = v.as_u64(); put(&x, 8); break; }
        case ValueType::I64: { int64_t x = v.as_i64(); put(&x, 8); break; }
        case ValueType::F32: { float x = static_cast<float>(v.as_f64()); put(&x, 4); break; }
        case ValueType::F64: { double x = v.as_f64(); put(&x, 8); break; }
        case ValueType::Bool: { uint8_t x = v.as_bool() ? 1 : 0; put(&x, 1); break; }
        case ValueType::String: put_string(v.as_string()); break;
        case ValueType::Array: {
            const Array& a = v.as_array();
            uint32_t et = static_cast<uint32_t>(a.elem_type);
            uint64_t count = a.items.size();
            put(&et, 4);
            put(&count, 8);
            for (const auto& item : a.items) {
                if (item.type() != a.elem_type) throw Error(path_ + ": array element type differs from the array's");
                put_value(item);
            }
            break;
        }
    }
}

void Writer::pad_to(uint64_t alignment) {
    static const uint8_t zeros[256] = {};
    uint64_t pad = align_up(written_, alignment) - written_;
    while (pad > 0) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof zeros));
        put(zeros, n);
        pad -= n;
    }
}

void Writer::write_header() {
    const uint32_t align = alignment();
    uint64_t offset = 0;
    for (auto& t : tensors_) {
        offset = align_up(offset, align);
        t.offset = offset;
        offset += t.n_bytes();
    }

    check_output_path(path_, policy_);
    temp_ = std::make_unique<TempFile>(resolve_output_path(path_));
    const int fd = ::dup(temp_->fd());
    out_ = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
    if (!out_) {
        if (fd >= 0) ::close(fd);
        throw Error(temp_->display_name() + ": cannot open for writing: " + std::strerror(errno));
    }
    buffer_.resize(1 << 20);
    std::setvbuf(out_, buffer_.data(), _IOFBF, buffer_.size());

    put(&kMagic, 4);
    put(&version_, 4);
    uint64_t n_tensors = tensors_.size(), n_kv = metadata_.size();
    put(&n_tensors, 8);
    put(&n_kv, 8);
    for (const auto& [key, v] : metadata_.entries()) {
        put_string(key);
        uint32_t type = static_cast<uint32_t>(v.type());
        put(&type, 4);
        put_value(v);
    }
    for (const auto& t : tensors_) {
        put_string(t.name);
        uint32_t n_dims = static_cast<uint32_t>(t.dims.size());
        put(&n_dims, 4);
        for (int64_t d : t.dims) put(&d, 8);
        uint32_t type = static_cast<uint32_t>(t.type);
        put(&type, 4);
        put(&t.offset, 8);
    }
    pad_to(align);
    header_done_ = true;
    cur_tensor_ = 0;
    cur_written_ = 0;
}

void Writer::write_data(std::span<const uint8_t> bytes) {
    if (finished_) throw Error(path_ + ": write after finish");
    if (!header_done_) write_header();
    while (!bytes.empty()) {
        // Zero-byte tensors are complete as soon as they come up.
        while (cur_tensor_ < tensors_.size() && cur_written_ == tensors_[cur_tensor_].n_bytes()) {
            ++cur_tensor_;
            cur_written_ = 0;
            pad_to(alignment());
        }
        if (cur_tensor_ >= tensors_.size()) throw Error(path_ + ": more tensor data than the declared tensors hold");
        uint64_t want = tensors_[cur_tensor_].n_bytes() - cur_written_;
        size_t n = static_cast<size_t>(std::min<uint64_t>(want, bytes.size()));
        put(bytes.data(), n);
        cur_written_ += n;
        bytes = bytes.subspan(n);
    }
}

void Writer::finish() {
    if (finished_) return;
    if (!header_done_) write_header();
    while (cur_tensor_ < tensors_.size() && cur_written_ == tensors_[cur_tensor_].n_bytes()) {
        ++cur_tensor_;
        cur_written_ = 0;
    }
    if (cur_tensor_ < tensors_.size()) {
        throw Error(path_ + ": tensor '" + tensors_[cur_tensor_].name + "' was not written in full");
    }
    pad_to(alignment());
    if (std::fflush(out_) != 0) throw Error(temp_->display_name() + ": flush failed: " + std::strerror(errno));
    const int closed = std::fclose(out_);
    out_ = nullptr;
    if (closed != 0) throw Error(temp_->display_name() + ": close failed: " + std::strerror(errno));
    temp_->commit();
    temp_.reset();
    finished_ = true;
}

}  // namespace gguf
