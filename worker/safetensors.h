// Safetensors: a memory-mapped reader and a streaming writer for the Hugging Face format.
//
// File layout: an 8-byte little-endian header length N, N bytes of JSON header, then the data
// section. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (byte offsets into the data section) and may hold a "__metadata__" object of strings.
//
// SafetensorsFile::Open validates the whole header before returning, so later accessors cannot
// read outside the mapping: N sane and inside the file, valid JSON, every entry complete,
// non-negative shapes whose byte size (elements x dtype size) equals end - begin, ranges inside
// the data section, no two ranges overlapping, data aligned to the element size. Every error
// names the file, the tensor and what was expected versus found. A bad file is a Status, never a
// crash.
//
// Data is never copied: TensorView::data points into the read-only mapping, which lives as long
// as the SafetensorsFile. The page cache, not the heap, holds the weights.
//
// Tested by tests/unit/worker/safetensors_test.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "comm/status.h"
#include "kernels/dtype.h"

namespace sieve::worker {

// A tensor's bytes inside a mapped file (or any host buffer). Non-owning.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // row-major; [] is a scalar
  const void* data;            // nbytes bytes, aligned to DTypeSize(dtype); valid while the file
                               // it came from is open
  size_t nbytes;               // NumElements() * DTypeSize(dtype)
  std::string file;            // path of the file holding it (for error messages)

  int64_t NumElements() const;
};

// One header entry. `dtype` is set only for the dtypes weights may have (F32, F16, BF16); the
// others the format defines (F64, I64, I32, I16, I8, U8, ..., BOOL, F8_E4M3, F8_E5M2) are listed
// with dtype_name only and rejected by SafetensorsFile::Get.
struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;  // as in the header, e.g. "BF16"
  std::optional<DType> dtype;
  std::vector<int64_t> shape;
  size_t begin = 0;  // byte offset in the data section
  size_t nbytes = 0;
};

// "[4096, 128256]".
std::string ShapeToString(std::span<const int64_t> shape);

// Product of the dims (1 for a scalar).
int64_t NumElements(std::span<const int64_t> shape);

class SafetensorsFile {
 public:
  // Headers larger than this are rejected as corrupt (real ones are a few hundred KB).
  static constexpr size_t kMaxHeaderBytes = size_t{100} << 20;

  // Maps `path` read-only and validates its header (see the file comment). NotFound if the file
  // cannot be opened, DataLoss for a truncated or corrupt file, InvalidArgument for a malformed
  // header.
  static StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
  // Entries in data-section order.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  // The "__metadata__" strings (non-string values are kept as their JSON text).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The entry for `name`, or nullptr.
  const SafetensorsEntry* Find(std::string_view name) const;

  // A view of tensor `name`: NotFound ("tensor 'X' not found in <file>") if absent, Unimplemented
  // if its dtype is not F32/F16/BF16.
  StatusOr<TensorView> Get(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  Status ParseHeader();
  void Unmap();

  std::string path_;
  const uint8_t* map_ = nullptr;  // the whole file, read-only
  size_t size_ = 0;
  size_t data_begin_ = 0;  // 8 + header length
  std::vector<SafetensorsEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> entries_ position
  std::map<std::string, std::string> metadata_;
};

// One tensor for WriteSafetensors: either `data` (nbytes = elements x dtype size, host memory,
// borrowed) or `fill`, which is called with a scratch buffer of that size just before the tensor
// is written, so a writer never holds more than one tensor in memory.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::function<Status(void* out, size_t nbytes)> fill;
};

// Writes `tensors` to `path` as a safetensors file: the header lists them in the given order; the
// data section holds them wider dtypes first (F32 before F16/BF16, otherwise in the given order),
// with no holes and every tensor aligned to its element size; the header is space-padded so the
// data section starts 8-byte aligned. `fill`s are called in data order, one at a time. Writes
// `path`.tmp and renames it on success, so `path` is never left half-written. Errors:
// InvalidArgument (bad name, duplicate, negative dim, neither data nor fill), Internal (I/O), or
// the Status a `fill` returned.
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace sieve::worker
