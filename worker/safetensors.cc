// Safetensors reader (mmap + header validation) and writer (worker/safetensors.h).
//
// Tested by tests/unit/worker/safetensors_test.cc.
#include "worker/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_set>

namespace sieve::worker {
namespace {

namespace json = boost::json;

struct FileDType {
  std::string_view name;
  size_t size;  // bytes per element
  std::optional<DType> dtype;
};

// The dtypes of the safetensors format with a whole number of bytes per element.
constexpr FileDType kFileDTypes[] = {
    {"F32", 4, DType::kF32},     {"F16", 2, DType::kF16},      {"BF16", 2, DType::kBF16},
    {"F64", 8, std::nullopt},    {"I64", 8, std::nullopt},     {"U64", 8, std::nullopt},
    {"I32", 4, std::nullopt},    {"U32", 4, std::nullopt},     {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},    {"I8", 1, std::nullopt},      {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt},   {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
    {"F8_E8M0", 1, std::nullopt}};

const FileDType* FindFileDType(std::string_view name) {
  for (const FileDType& t : kFileDTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string Render(const json::value& v) {
  std::string s = json::serialize(v);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// A non-negative JSON integer.
bool AsIndex(const json::value& v, uint64_t* out) {
  if (v.is_int64() && v.get_int64() >= 0) {
    *out = static_cast<uint64_t>(v.get_int64());
    return true;
  }
  if (v.is_uint64()) {
    *out = v.get_uint64();
    return true;
  }
  return false;
}

}  // namespace

int64_t NumElements(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

int64_t TensorView::NumElements() const { return worker::NumElements(shape); }

std::string ShapeToString(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status::NotFound(
        StrFormat("cannot open safetensors file %s: %s", path.c_str(), std::strerror(err)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(StrFormat("%s is not a regular file", path.c_str()));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return Status::Internal(StrFormat("cannot mmap %s (%zu bytes): %s", path.c_str(), file->size_,
                                        std::strerror(err)));
    }
    file->map_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid
  SIEVE_RETURN_IF_ERROR(file->ParseHeader());
  return file;
}

Status SafetensorsFile::ParseHeader() {
  const char* file = path_.c_str();
  if (size_ < 8) {
    return Status::DataLoss(StrFormat(
        "%s: truncated: %zu bytes, expected at least 8 (the header length)", file, size_));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | map_[i];
  if (header_len > kMaxHeaderBytes) {
    return Status::DataLoss(StrFormat(
        "%s: header length %llu exceeds the %zu-byte limit (not a safetensors file, or corrupt)",
        file, static_cast<unsigned long long>(header_len), kMaxHeaderBytes));
  }
  if (header_len > size_ - 8) {
    return Status::DataLoss(StrFormat(
        "%s: header length %llu runs past the end of the file (%zu bytes): truncated or corrupt",
        file, static_cast<unsigned long long>(header_len), size_));
  }
  data_begin_ = 8 + static_cast<size_t>(header_len);
  const size_t data_size = size_ - data_begin_;

  // The format pads the header with spaces; tolerate NUL padding too.
  std::string_view text(reinterpret_cast<const char*>(map_ + 8), static_cast<size_t>(header_len));
  while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.remove_suffix(1);
  json::stream_parser parser;
  boost::system::error_code ec;
  const size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    return Status::DataLoss(StrFormat("%s: header is not valid JSON (near byte %zu of %llu): %s",
                                      file, consumed, static_cast<unsigned long long>(header_len),
                                      ec.message().c_str()));
  }
  const json::value root = parser.release();
  if (!root.is_object()) {
    return Status::DataLoss(
        StrFormat("%s: header must be a JSON object, got %s", file, Render(root).c_str()));
  }

  for (const auto& kv : root.get_object()) {
    const std::string name(kv.key());
    const json::value& v = kv.value();
    if (name == "__metadata__") {
      if (!v.is_object()) {
        return Status::DataLoss(
            StrFormat("%s: __metadata__ must be an object, got %s", file, Render(v).c_str()));
      }
      for (const auto& m : v.get_object()) {
        metadata_[std::string(m.key())] = m.value().is_string()
                                              ? std::string(m.value().get_string())
                                              : json::serialize(m.value());
      }
      continue;
    }
    const char* tname = name.c_str();
    if (!v.is_object()) {
      return Status::DataLoss(StrFormat("%s: tensor '%s': entry must be an object, got %s", file,
                                        tname, Render(v).c_str()));
    }
    const json::object& e = v.get_object();
    const json::value* dtype_v = e.if_contains("dtype");
    const json::value* shape_v = e.if_contains("shape");
    const json::value* offsets_v = e.if_contains("data_offsets");
    if (dtype_v == nullptr || !dtype_v->is_string()) {
      return Status::DataLoss(StrFormat("%s: tensor '%s': expected a string 'dtype', got %s", file,
                                        tname, dtype_v ? Render(*dtype_v).c_str() : "none"));
    }
    if (shape_v == nullptr || !shape_v->is_array()) {
      return Status::DataLoss(StrFormat("%s: tensor '%s': expected a 'shape' list, got %s", file,
                                        tname, shape_v ? Render(*shape_v).c_str() : "none"));
    }
    if (offsets_v == nullptr || !offsets_v->is_array() || offsets_v->get_array().size() != 2) {
      return Status::DataLoss(
          StrFormat("%s: tensor '%s': expected 'data_offsets' [begin, end], got %s", file, tname,
                    offsets_v ? Render(*offsets_v).c_str() : "none"));
    }
    SafetensorsEntry entry;
    entry.name = name;
    entry.dtype_name = std::string(dtype_v->get_string());
    const FileDType* ft = FindFileDType(entry.dtype_name);
    if (ft == nullptr) {
      return Status::DataLoss(
          StrFormat("%s: tensor '%s': unknown dtype '%s'", file, tname, entry.dtype_name.c_str()));
    }
    entry.dtype = ft->dtype;

    uint64_t elements = 1;
    bool overflow = false;
    for (const json::value& d : shape_v->get_array()) {
      uint64_t dim;
      if (!AsIndex(d, &dim) || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Status::DataLoss(
            StrFormat("%s: tensor '%s': shape %s: dimensions must be non-negative integers", file,
                      tname, Render(*shape_v).c_str()));
      }
      entry.shape.push_back(static_cast<int64_t>(dim));
      overflow |= __builtin_mul_overflow(elements, dim, &elements);
    }
    uint64_t nbytes = 0;
    overflow |= __builtin_mul_overflow(elements, static_cast<uint64_t>(ft->size), &nbytes);
    if (overflow || elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::DataLoss(StrFormat("%s: tensor '%s': shape %s is absurdly large", file, tname,
                                        Render(*shape_v).c_str()));
    }
    uint64_t begin, end;
    const json::array& off = offsets_v->get_array();
    if (!AsIndex(off[0], &begin) || !AsIndex(off[1], &end) || begin > end) {
      return Status::DataLoss(StrFormat(
          "%s: tensor '%s': data_offsets %s must be non-negative integers with begin <= end", file,
          tname, Render(*offsets_v).c_str()));
    }
    if (end - begin != nbytes) {
      return Status::DataLoss(StrFormat(
          "%s: tensor '%s': shape %s of dtype %s needs %llu bytes, but data_offsets [%llu, %llu] "
          "span %llu",
          file, tname, ShapeToString(entry.shape).c_str(), entry.dtype_name.c_str(),
          static_cast<unsigned long long>(nbytes), static_cast<unsigned long long>(begin),
          static_cast<unsigned long long>(end), static_cast<unsigned long long>(end - begin)));
    }
    if (end > data_size) {
      return Status::DataLoss(StrFormat(
          "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data section "
          "(%zu bytes after the %llu-byte header): file truncated?",
          file, tname, static_cast<unsigned long long>(begin), static_cast<unsigned long long>(end),
          data_size, static_cast<unsigned long long>(header_len)));
    }
    if ((data_begin_ + begin) % ft->size != 0) {
      return Status::DataLoss(StrFormat(
          "%s: tensor '%s': data at file offset %llu is not aligned to its %zu-byte elements", file,
          tname, static_cast<unsigned long long>(data_begin_ + begin), ft->size));
    }
    entry.begin = static_cast<size_t>(begin);
    entry.nbytes = static_cast<size_t>(nbytes);
    entries_.push_back(std::move(entry));
  }

  std::sort(entries_.begin(), entries_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.name < b.name;
            });
  const SafetensorsEntry* prev = nullptr;
  for (const SafetensorsEntry& e : entries_) {
    if (e.nbytes == 0) continue;
    if (prev != nullptr && prev->begin + prev->nbytes > e.begin) {
      return Status::DataLoss(
          StrFormat("%s: tensors '%s' (bytes [%zu, %zu)) and '%s' (bytes [%zu, %zu)) overlap", file,
                    prev->name.c_str(), prev->begin, prev->begin + prev->nbytes, e.name.c_str(),
                    e.begin, e.begin + e.nbytes));
    }
    prev = &e;
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!index_.emplace(entries_[i].name, i).second) {
      return Status::DataLoss(
          StrFormat("%s: tensor '%s' appears twice in the header", file, entries_[i].name.c_str()));
    }
  }
  return Status::Ok();
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept { *this = std::move(other); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    data_begin_ = other.data_begin_;
    entries_ = std::move(other.entries_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { Unmap(); }

void SafetensorsFile::Unmap() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), size_);
  map_ = nullptr;
  size_ = 0;
}

const SafetensorsEntry* SafetensorsFile::Find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

StatusOr<TensorView> SafetensorsFile::Get(std::string_view name) const {
  const SafetensorsEntry* e = Find(name);
  if (e == nullptr) {
    return Status::NotFound(StrFormat("tensor '%.*s' not found in %s",
                                      static_cast<int>(name.size()), name.data(), path_.c_str()));
  }
  if (!e->dtype) {
    return Status::Unimplemented(
        StrFormat("tensor '%s' in %s: dtype %s is not supported for weights (expected F32, F16 "
                  "or BF16)",
                  e->name.c_str(), path_.c_str(), e->dtype_name.c_str()));
  }
  return TensorView{e->name, *e->dtype, e->shape, map_ + data_begin_ + e->begin, e->nbytes, path_};
}

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  // Header first: it fixes every offset.
  json::object header;
  if (!metadata.empty()) {
    json::object m;
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::vector<size_t> sizes;
  std::vector<json::array> shapes;
  std::unordered_set<std::string> names;
  for (const TensorToWrite& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") {
      return Status::InvalidArgument(
          StrFormat("%s: invalid tensor name '%s'", path.c_str(), t.name.c_str()));
    }
    if (!names.insert(t.name).second) {
      return Status::InvalidArgument(
          StrFormat("%s: tensor '%s' given twice", path.c_str(), t.name.c_str()));
    }
    uint64_t elements = 1;
    bool overflow = false;
    json::array shape;
    for (const int64_t d : t.shape) {
      if (d < 0) {
        return Status::InvalidArgument(StrFormat("%s: tensor '%s' has a negative dim in %s",
                                                 path.c_str(), t.name.c_str(),
                                                 ShapeToString(t.shape).c_str()));
      }
      overflow |= __builtin_mul_overflow(elements, static_cast<uint64_t>(d), &elements);
      shape.push_back(d);
    }
    uint64_t nbytes = 0;
    overflow |= __builtin_mul_overflow(elements, uint64_t{DTypeSize(t.dtype)}, &nbytes);
    if (overflow || nbytes > (uint64_t{1} << 50)) {
      return Status::InvalidArgument(StrFormat("%s: tensor '%s' of shape %s is too large",
                                               path.c_str(), t.name.c_str(),
                                               ShapeToString(t.shape).c_str()));
    }
    if (nbytes > 0 && t.data == nullptr && !t.fill) {
      return Status::InvalidArgument(
          StrFormat("%s: tensor '%s' has neither data nor fill", path.c_str(), t.name.c_str()));
    }
    sizes.push_back(static_cast<size_t>(nbytes));
    shapes.push_back(std::move(shape));
  }
  // Data order: wider elements first (stable), so every tensor starts aligned to its element
  // size with no padding between tensors (readers such as the Rust safetensors crate reject
  // holes). The header lists the tensors in the given order.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return DTypeSize(tensors[a].dtype) > DTypeSize(tensors[b].dtype);
  });
  std::vector<uint64_t> offsets(tensors.size());
  uint64_t offset = 0;
  for (const size_t i : order) {
    offsets[i] = offset;
    offset += sizes[i];
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    header[tensors[i].name] =
        json::object{{"dtype", DTypeName(tensors[i].dtype)},
                     {"shape", std::move(shapes[i])},
                     {"data_offsets", json::array{offsets[i], offsets[i] + sizes[i]}}};
  }
  std::string text = json::serialize(header);
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // data section starts 8-byte aligned

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    const int err = errno;
    return Status::Internal(StrFormat("cannot create %s: %s", tmp.c_str(), std::strerror(err)));
  }
  auto fail = [&](const std::string& what) {
    const int err = errno;
    std::fclose(f);
    std::remove(tmp.c_str());
    return Status::Internal(
        StrFormat("writing %s: %s: %s", tmp.c_str(), what.c_str(), std::strerror(err)));
  };
  uint8_t len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
  if (std::fwrite(len_bytes, 1, 8, f) != 8 ||
      std::fwrite(text.data(), 1, text.size(), f) != text.size()) {
    return fail("header");
  }
  for (const size_t i : order) {
    const TensorToWrite& t = tensors[i];
    const size_t nbytes = sizes[i];
    if (nbytes == 0) continue;
    const void* src = t.data;
    std::unique_ptr<std::byte[]> scratch;
    if (src == nullptr) {
      scratch.reset(new (std::nothrow) std::byte[nbytes]);
      if (scratch == nullptr) {
        std::fclose(f);
        std::remove(tmp.c_str());
        return Status::ResourceExhausted(StrFormat("%s: cannot allocate %zu bytes for tensor '%s'",
                                                   path.c_str(), nbytes, t.name.c_str()));
      }
      Status s = t.fill(scratch.get(), nbytes);
      if (!s.ok()) {
        std::fclose(f);
        std::remove(tmp.c_str());
        return s.WithContext(StrFormat("%s: tensor '%s'", path.c_str(), t.name.c_str()));
      }
      src = scratch.get();
    }
    if (std::fwrite(src, 1, nbytes, f) != nbytes) return fail("tensor '" + t.name + "'");
  }
  if (std::fflush(f) != 0) return fail("flush");
  if (std::fclose(f) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return Status::Internal(StrFormat("closing %s: %s", tmp.c_str(), std::strerror(err)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return Status::Internal(
        StrFormat("cannot rename %s to %s: %s", tmp.c_str(), path.c_str(), std::strerror(err)));
  }
  return Status::Ok();
}

}  // namespace sieve::worker
