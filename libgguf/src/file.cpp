#include "gguf/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "gguf/error.h"
#include "gguf/text.h"

namespace gguf {

Error parse_error(const std::string& file, const std::string& what, uint64_t offset) {
    return Error(file + ": " + what + " at offset " + std::to_string(offset));
}

namespace {

// Names read from a hostile file may hold control bytes or NULs (which would cut a C-string error
// message short); messages show them escaped and shortened.
std::string printable(const std::string& name) {
    constexpr size_t kMax = 96;
    std::string out;
    for (size_t i = 0; i < name.size() && i < kMax; ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    if (name.size() > kMax) out += "...";
    return out;
}

}  // namespace

// ---- TensorInfo ---------------------------------------------------------------------------

uint64_t TensorInfo::n_elements() const {
    uint64_t n = 1;
    for (int64_t d : dims) n *= static_cast<uint64_t>(d);
    return n;
}

uint64_t TensorInfo::n_rows() const {
    uint64_t n = 1;
    for (size_t i = 1; i < dims.size(); ++i) n *= static_cast<uint64_t>(dims[i]);
    return n;
}

bool TensorInfo::has_zero_dim() const {
    for (int64_t d : dims)
        if (d == 0) return true;
    return false;
}

uint64_t TensorInfo::n_bytes() const {
    const TypeTraits& t = type_traits(type);
    return n_elements() / t.block_size * t.type_size;
}

std::string TensorInfo::shape_string() const { return shape_text(dims); }

// ---- Mapping ------------------------------------------------------------------------------

std::shared_ptr<const Mapping> Mapping::map_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw Error(path + ": cannot stat: " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(path + ": not a regular file");
    }
    size_t size = static_cast<size_t>(st.st_size);
    const uint8_t* data = nullptr;
    if (size > 0) {
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            throw Error(path + ": cannot map: " + std::strerror(e));
        }
        data = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    return std::shared_ptr<const Mapping>(new Mapping(data, size, true));
}

std::shared_ptr<const Mapping> Mapping::borrow(std::span<const uint8_t> bytes) {
    return std::shared_ptr<const Mapping>(new Mapping(bytes.data(), bytes.size(), false));
}

void Mapping::release(std::span<const uint8_t> part) const {
    if (!owned_ || part.empty()) return;
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    // whole pages inside `part` only: a page shared with a neighbouring tensor stays mapped
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(part.data()) + page - 1) & ~(page - 1);
    const uintptr_t end = reinterpret_cast<uintptr_t>(part.data() + part.size()) & ~(page - 1);
    if (end <= begin) return;
    void* p = reinterpret_cast<void*>(begin);
#ifdef MADV_PAGEOUT
    ::madvise(p, end - begin, MADV_PAGEOUT);
#endif
    ::madvise(p, end - begin, MADV_DONTNEED);
}

Mapping::~Mapping() {
    if (owned_ && data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

// ---- Parser -------------------------------------------------------------------------------

// Every read is bounds-checked against the buffer, and every count is checked against the bytes
// that remain before anything is allocated for it, so hostile input can neither crash the parser
// nor make it allocate more than a small multiple of the file size.
class Parser {
public:
    Parser(std::span<const uint8_t> bytes, const std::string& name) : b_(bytes), name_(name) {}

    void parse(File& f) {
        if (b_.size() < 4) fail("file too small for a GGUF header (" + std::to_string(b_.size()) + " bytes)", 0);
        uint32_t magic = read_u32();
        if (magic != kMagic) fail("not a GGUF file (bad magic)", 0);
        uint64_t at = pos_;
        uint32_t version = read_u32();
        if (version == 1) fail("GGUF version 1 is not supported (only 2 and 3)", at);
        if (version != 2 && version != 3) {
            if ((version & 0xFFFF) == 0 && version != 0) {
                fail("big-endian GGUF files are not supported", at);
            }
            fail("unsupported GGUF version " + std::to_string(version), at);
        }
        f.version_ = version;

        at = pos_;
        uint64_t n_tensors = read_u64();
        // The smallest tensor info: name length (8), n_dims (4), type (4), offset (8).
        if (n_tensors > remaining() / 24) fail("tensor count " + std::to_string(n_tensors) + " exceeds what the file can hold", at);
        at = pos_;
        uint64_t n_kv = read_u64();
        // The smallest key/value: key length (8), type (4), one byte of value.
        if (n_kv > remaining() / 13) fail("metadata count " + std::to_string(n_kv) + " exceeds what the file can hold", at);

        for (uint64_t i = 0; i < n_kv; ++i) {
            uint64_t key_at = pos_;
            std::string key = read_string();
            if (key.empty()) fail("empty metadata key", key_at);
            if (f.metadata_.contains(key)) fail("duplicate metadata key '" + printable(key) + "'", key_at);
            uint64_t type_at = pos_;
            uint32_t type = read_u32();
            if (!is_valid_value_type(type)) fail("metadata key '" + printable(key) + "' has invalid value type " + std::to_string(type), type_at);
            f.metadata_.set(key, read_value(static_cast<ValueType>(type), 0));
        }

        if (const Value* a = f.metadata_.find(kAlignmentKey)) {
            if (a->type() != ValueType::U32) fail("general.alignment must be u32, not " + std::string(value_type_name(a->type())), 0);
            uint64_t align = a->as_u64();
            if (align == 0 || (align & (align - 1)) != 0) fail("general.alignment " + std::to_string(align) + " is not a power of two", 0);
            f.alignment_ = static_cast<uint32_t>(align);
        }

        f.tensors_.reserve(n_tensors);
        std::vector<uint64_t> info_offsets;
        info_offsets.reserve(n_tensors);
        for (uint64_t i = 0; i < n_tensors; ++i) {
            info_offsets.push_back(pos_);
            f.tensors_.push_back(read_tensor_info());
            const TensorInfo& t = f.tensors_.back();
            if (!f.tensor_index_.emplace(t.name, f.tensors_.size() - 1).second) {
                fail("duplicate tensor name '" + printable(t.name) + "'", info_offsets.back());
            }
        }

        uint64_t data_offset = align_up(pos_, f.alignment_);
        if (n_tensors > 0 && data_offset > b_.size()) fail("file ends before its tensor data section", b_.size());
        f.data_offset_ = std::min<uint64_t>(data_offset, b_.size());
        check_tensor_layout(f, info_offsets);
    }

private:
    [[noreturn]] void fail(const std::string& what, uint64_t at) const { throw parse_error(name_, what, at); }

    uint64_t remaining() const { return b_.size() - pos_; }

    void need(uint64_t n, const char* what) const {
        if (n > remaining()) fail(std::string("unexpected end of file reading ") + what, pos_);
    }

    template <typename T>
    T read_raw(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    uint32_t read_u32() { return read_raw<uint32_t>("a u32"); }
    uint64_t read_u64() { return read_raw<uint64_t>("a u64"); }

    std::string read_string() {
        uint64_t at = pos_;
        uint64_t len = read_raw<uint64_t>("a string length");
        if (len > remaining()) fail("string length " + std::to_string(len) + " runs past the end of the file", at);
        std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(len));
        pos_ += len;
        return s;
    }

    Value read_value(ValueType type, int depth) {
        switch (type) {
            case ValueType::U8: return Value::u8(read_raw<uint8_t>("a u8"));
            case ValueType::I8: return Value::i8(read_raw<int8_t>("an i8"));
            case ValueType::U16: return Value::u16(read_raw<uint16_t>("a u16"));
            case ValueType::I16: return Value::i16(read_raw<int16_t>("an i16"));
            case ValueType::U32: return Value::u32(read_raw<uint32_t>("a u32"));
            case ValueType::I32: return Value::i32(read_raw<int32_t>("an i32"));
            case ValueType::U64: return Value::u64(read_raw<uint64_t>("a u64"));
            case ValueType::I64: return Value::i64(read_raw<int64_t>("an i64"));
            case ValueType::F32: return Value::f32(read_raw<float>("an f32"));
            case ValueType::F64: return Value::f64(read_raw<double>("an f64"));
            case ValueType::Bool: {
                uint64_t at = pos_;
                uint8_t v = read_raw<uint8_t>("a bool");
                if (v > 1) fail("invalid bool value " + std::to_string(v), at);
                return Value::boolean(v != 0);
            }
            case ValueType::String: return Value::string(read_string());
            case ValueType::Array: return read_array(depth);
        }
        fail("invalid value type", pos_);
    }

    Value read_array(int depth) {
        uint64_t at = pos_;
        if (depth >= 8) fail("arrays nested more than 8 deep", at);
        uint32_t elem = read_u32();
        if (!is_valid_value_type(elem)) fail("array has invalid element type " + std::to_string(elem), at);
        uint64_t count_at = pos_;
        uint64_t count = read_u64();
        auto et = static_cast<ValueType>(elem);
        uint64_t min_size = et == ValueType::String ? 8 : et == ValueType::Array ? 12 : scalar_size(et);
        if (count > remaining() / min_size) {
            fail("array of " + std::to_string(count) + " elements runs past the end of the file", count_at);
        }
        Array a{et, {}};
        a.items.reserve(count);
        for (uint64_t i = 0; i < count; ++i) a.items.push_back(read_value(et, depth + 1));
        return Value::array(std::move(a));
    }

    TensorInfo read_tensor_info() {
        TensorInfo t;
        uint64_t at = pos_;
        t.name = read_string();
        if (t.name.empty()) fail("empty tensor name", at);
        uint64_t dims_at = pos_;
        uint32_t n_dims = read_u32();
        if (n_dims > kMaxDims) fail("tensor '" + printable(t.name) + "' has " + std::to_string(n_dims) + " dimensions (at most 4)", dims_at);
        uint64_t n = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            uint64_t dim_at = pos_;
            auto v = read_raw<int64_t>("a tensor dimension");
            if (v < 0) fail("tensor '" + printable(t.name) + "' has negative dimension " + std::to_string(v), dim_at);
            if (v != 0 && n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / static_cast<uint64_t>(v)) {
                fail("tensor '" + printable(t.name) + "' element count overflows", dim_at);
            }
            n *= static_cast<uint64_t>(v);
            t.dims.push_back(v);
        }
        uint64_t type_at = pos_;
        uint32_t type = read_u32();
        const TypeTraits* traits = find_type_traits(type);
        if (!traits) fail("tensor '" + printable(t.name) + "' has unknown type id " + std::to_string(type), type_at);
        t.type = traits->type;
        if (!t.dims.empty() && static_cast<uint64_t>(t.dims[0]) % traits->block_size != 0) {
            fail("tensor '" + printable(t.name) + "' row of " + std::to_string(t.dims[0]) + " is not a multiple of the " +
                     std::string(traits->name) + " block size " + std::to_string(traits->block_size),
                 dims_at);
        }
        t.offset = read_u64();
        return t;
    }

    static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

    void check_tensor_layout(const File& f, const std::vector<uint64_t>& info_offsets) const {
        uint64_t data_size = b_.size() - f.data_offset_;
        std::vector<size_t> order(f.tensors_.size());
        for (size_t i = 0; i < order.size(); ++i) {
            const TensorInfo& t = f.tensors_[i];
            uint64_t at = info_offsets[i];
            if (t.offset % f.alignment_ != 0) {
                fail("tensor '" + printable(t.name) + "' data offset " + std::to_string(t.offset) + " is not aligned to " +
                         std::to_string(f.alignment_),
                     at);
            }
            uint64_t bytes = t.n_bytes();
            if (t.offset > data_size || bytes > data_size - t.offset) {
                fail("tensor '" + printable(t.name) + "' data (" + std::to_string(bytes) + " bytes at data offset " +
                         std::to_string(t.offset) + ") runs past the end of the file",
                     at);
            }
            order[i] = i;
        }
        std::sort(order.begin(), order.end(),
                  [&](size_t a, size_t b) { return f.tensors_[a].offset < f.tensors_[b].offset; });
        for (size_t k = 1; k < order.size(); ++k) {
            const TensorInfo& prev = f.tensors_[order[k - 1]];
            const TensorInfo& cur = f.tensors_[order[k]];
            if (prev.n_bytes() > 0 && cur.offset < prev.offset + prev.n_bytes()) {
                fail("tensor '" + printable(cur.name) + "' data overlaps tensor '" + printable(prev.name) + "'", info_offsets[order[k]]);
            }
        }
    }

    std::span<const uint8_t> b_;
    const std::string& name_;
    uint64_t pos_ = 0;
};

// ---- File ---------------------------------------------------------------------------------

File File::open_single(const std::string& path) {
    File f;
    f.path_ = path;
    f.map_ = Mapping::map_file(path);
    Parser(f.map_->bytes(), path).parse(f);
    return f;
}

File File::open(const std::string& path) {
    File f = open_single(path);
    f.open_other_shards();
    return f;
}

uint64_t File::file_size() const {
    uint64_t n = map_->bytes().size();
    for (const Shard& s : more_shards_) n += s.map->bytes().size();
    return n;
}

uint64_t File::absolute_offset(const TensorInfo& t) const {
    return (t.shard == 0 ? data_offset_ : more_shards_.at(t.shard - 1).data_offset) + t.offset;
}

File File::parse(std::span<const uint8_t> bytes, const std::string& name) {
    File f;
    f.path_ = name;
    f.map_ = Mapping::borrow(bytes);
    Parser(bytes, name).parse(f);
    return f;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(std::string(name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(std::string_view name) const {
    const TensorInfo* t = find_tensor(name);
    if (!t) throw Error(path_ + ": no tensor named '" + std::string(name) + "'");
    return *t;
}

std::span<const uint8_t> File::tensor_data(const TensorInfo& t) const {
    if (t.shard == 0) return map_->bytes().subspan(data_offset_ + t.offset, t.n_bytes());
    const Shard& s = more_shards_.at(t.shard - 1);
    return s.map->bytes().subspan(s.data_offset + t.offset, t.n_bytes());
}

void File::release_tensor_data(const TensorInfo& t) const {
    (t.shard == 0 ? *map_ : *more_shards_.at(t.shard - 1).map).release(tensor_data(t));
}

}  // namespace gguf
