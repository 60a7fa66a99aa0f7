// Tests of worker/safetensors.{h,cc}: the writer/reader round trip, the tiny fixture, and every
// way a file can be corrupt (each must give a Status naming the file, never a crash).
#include "worker/safetensors.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/unit/test_util.h"

namespace sieve::worker {
namespace {

namespace fs = std::filesystem;

class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sieve_safetensors_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~ScopedTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// A safetensors file from a raw header text (not padded) and a data section.
std::string RawFile(const std::string& header, const std::string& data, uint64_t header_len) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(header_len >> (8 * i));
  return bytes + header + data;
}
// The same with the header padded (as writers do) so the data section starts 8-byte aligned.
std::string RawFile(const std::string& header, const std::string& data) {
  const std::string padded = header + std::string((8 - (8 + header.size()) % 8) % 8, ' ');
  return RawFile(padded, data, padded.size());
}

// Opens a raw file and expects failure with `code` and each fragment (plus the path) in the
// message.
void ExpectOpenError(const ScopedTempDir& dir, const std::string& bytes, StatusCode code,
                     std::initializer_list<std::string_view> fragments) {
  const std::string path = dir.File("bad.safetensors");
  WriteBytes(path, bytes);
  StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  ASSERT_FALSE(f.ok()) << "opened a corrupt file";
  EXPECT_EQ(f.status().code(), code) << f.status().ToString();
  EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
  for (const std::string_view frag : fragments) {
    EXPECT_NE(f.status().message().find(frag), std::string::npos)
        << "'" << frag << "' not in: " << f.status().message();
  }
}

TEST(SafetensorsTest, WriteThenReadRoundTrip) {
  ScopedTempDir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> b = {FloatToBF16(0.5f), FloatToBF16(-1.25f), FloatToBF16(3.f),
                                   FloatToBF16(1e-3f)};
  const uint16_t scalar = FloatToHalf(2.5f);
  std::vector<TensorToWrite> tensors;
  tensors.push_back({"a", DType::kF32, {2, 3}, a.data(), nullptr});
  tensors.push_back({"b", DType::kBF16, {4}, b.data(), nullptr});
  tensors.push_back({"empty", DType::kF32, {0, 5}, nullptr, nullptr});
  tensors.push_back({"scalar", DType::kF16, {}, &scalar, nullptr});
  tensors.push_back({"filled", DType::kF32, {3}, nullptr, [](void* out, size_t nbytes) {
                       EXPECT_EQ(nbytes, 12u);
                       const float v[3] = {7, 8, 9};
                       std::memcpy(out, v, sizeof(v));
                       return Status::Ok();
                     }});
  const std::string path = dir.File("model.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}, {"k", "v"}}).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const SafetensorsFile& file = **f;
  EXPECT_EQ(file.entries().size(), 5u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("k"), "v");
  EXPECT_EQ(file.file_size(), fs::file_size(path));

  StatusOr<TensorView> va = file.Get("a");
  ASSERT_TRUE(va.ok()) << va.status().ToString();
  EXPECT_EQ(va->name, "a");
  EXPECT_EQ(va->dtype, DType::kF32);
  EXPECT_EQ(va->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(va->nbytes, 24u);
  EXPECT_EQ(va->file, path);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(va->data) % 8, 0u) << "data section must be aligned";
  EXPECT_EQ(std::memcmp(va->data, a.data(), 24), 0);

  StatusOr<TensorView> vb = file.Get("b");
  ASSERT_TRUE(vb.ok());
  EXPECT_EQ(vb->dtype, DType::kBF16);
  EXPECT_EQ(std::memcmp(vb->data, b.data(), 8), 0);

  StatusOr<TensorView> ve = file.Get("empty");
  ASSERT_TRUE(ve.ok());
  EXPECT_EQ(ve->nbytes, 0u);
  EXPECT_EQ(ve->NumElements(), 0);

  StatusOr<TensorView> vs = file.Get("scalar");
  ASSERT_TRUE(vs.ok());
  EXPECT_TRUE(vs->shape.empty());
  EXPECT_EQ(vs->NumElements(), 1);
  EXPECT_FLOAT_EQ(LoadAsFloat(vs->data, vs->dtype, 0), 2.5f);

  StatusOr<TensorView> vf = file.Get("filled");
  ASSERT_TRUE(vf.ok());
  EXPECT_FLOAT_EQ(LoadAsFloat(vf->data, DType::kF32, 2), 9.f);

  StatusOr<TensorView> missing = file.Get("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'nope'"), std::string::npos);
  EXPECT_NE(missing.status().message().find(path), std::string::npos);
}

TEST(SafetensorsTest, MoveKeepsMappingAlive) {
  ScopedTempDir dir;
  const std::vector<float> a = {1, 2, 3};
  const std::string path = dir.File("m.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"a", DType::kF32, {3}, a.data(), nullptr}}).ok());
  StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok());
  SafetensorsFile moved(std::move(**f));
  f = Status::Cancelled("drop the original");  // destroys the moved-from object
  StatusOr<TensorView> v = moved.Get("a");
  ASSERT_TRUE(v.ok());
  EXPECT_FLOAT_EQ(static_cast<const float*>(v->data)[2], 3.f);
}

TEST(SafetensorsTest, WriterRejectsBadInput) {
  ScopedTempDir dir;
  const float x = 1;
  const std::string path = dir.File("w.safetensors");
  Status s = WriteSafetensors(
      path, {{"a", DType::kF32, {1}, &x, nullptr}, {"a", DType::kF32, {1}, &x, nullptr}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("twice"), std::string::npos) << s.message();
  s = WriteSafetensors(path, {{"a", DType::kF32, {-1}, &x, nullptr}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = WriteSafetensors(path, {{"a", DType::kF32, {1}, nullptr, nullptr}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = WriteSafetensors(path, {{"__metadata__", DType::kF32, {1}, &x, nullptr}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  // A failing fill aborts the write and leaves nothing behind.
  s = WriteSafetensors(path, {{"a", DType::kF32, {4}, nullptr, [](void*, size_t) {
                                 return Status::ResourceExhausted("out of entropy");
                               }}});
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("'a'"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  s = WriteSafetensors("/nonexistent-dir/x.safetensors", {{"a", DType::kF32, {1}, &x, nullptr}});
  EXPECT_EQ(s.code(), StatusCode::kInternal);
}

TEST(SafetensorsTest, TinyFixture) {
  const std::string path = testing::FixturePath("tiny-llama3/model.safetensors");
  StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->entries().size(), 20u);  // 9 per layer x 2 + embedding + final norm (tied)
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  StatusOr<TensorView> embed = (*f)->Get("model.embed_tokens.weight");
  ASSERT_TRUE(embed.ok()) << embed.status().ToString();
  EXPECT_EQ(embed->dtype, DType::kBF16);
  EXPECT_EQ(embed->shape, (std::vector<int64_t>{128256, 64}));
  EXPECT_EQ(embed->nbytes, size_t{128256} * 64 * 2);
  // Random normal weights: not all zero, and small.
  double sum_sq = 0;
  for (int64_t i = 0; i < 64 * 100; ++i) {
    const float v = LoadAsFloat(embed->data, embed->dtype, static_cast<size_t>(i));
    sum_sq += double(v) * v;
  }
  EXPECT_GT(sum_sq, 0);
  EXPECT_LT(sum_sq / (64 * 100), 1.0);
}

TEST(SafetensorsTest, MissingFile) {
  StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open("/nonexistent/x.st");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_NE(f.status().message().find("/nonexistent/x.st"), std::string::npos);
}

TEST(SafetensorsTest, CorruptHeaders) {
  ScopedTempDir dir;
  const std::string data24(24, '\0');
  ExpectOpenError(dir, "", StatusCode::kDataLoss, {"truncated", "0 bytes"});
  ExpectOpenError(dir, std::string(5, '\x01'), StatusCode::kDataLoss, {"truncated", "5 bytes"});
  ExpectOpenError(dir, RawFile("{}", "", 100), StatusCode::kDataLoss,
                  {"header length 100", "runs past the end"});
  ExpectOpenError(dir, RawFile("{}", "", uint64_t{1} << 62), StatusCode::kDataLoss, {"exceeds"});
  ExpectOpenError(dir, RawFile("{\"a\": {", ""), StatusCode::kDataLoss, {"not valid JSON"});
  ExpectOpenError(dir, RawFile("[1, 2]", ""), StatusCode::kDataLoss, {"JSON object"});
  ExpectOpenError(dir, RawFile(R"({"a": 3})", ""), StatusCode::kDataLoss, {"'a'", "object"});
  ExpectOpenError(dir, RawFile(R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", data24),
                  StatusCode::kDataLoss, {"'a'", "'dtype'"});
  ExpectOpenError(dir, RawFile(R"({"a": {"dtype": "F32", "data_offsets": [0, 8]}})", data24),
                  StatusCode::kDataLoss, {"'a'", "'shape'"});
  ExpectOpenError(dir, RawFile(R"({"a": {"dtype": "F32", "shape": [2]}})", data24),
                  StatusCode::kDataLoss, {"'a'", "data_offsets"});
  ExpectOpenError(dir,
                  RawFile(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", data24),
                  StatusCode::kDataLoss, {"'a'", "data_offsets"});
  ExpectOpenError(
      dir, RawFile(R"({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}})", data24),
      StatusCode::kDataLoss, {"'a'", "unknown dtype 'Q4'"});
  ExpectOpenError(
      dir, RawFile(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", data24),
      StatusCode::kDataLoss, {"'a'", "non-negative"});
  ExpectOpenError(
      dir, RawFile(R"({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", data24),
      StatusCode::kDataLoss, {"'a'", "non-negative integers"});
  ExpectOpenError(
      dir,
      RawFile(
          R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})",
          data24),
      StatusCode::kDataLoss, {"'a'", "absurdly large"});
  ExpectOpenError(
      dir, RawFile(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", data24),
      StatusCode::kDataLoss, {"'a'", "begin <= end"});
  ExpectOpenError(
      dir, RawFile(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}})", data24),
      StatusCode::kDataLoss, {"'a'", "non-negative"});
  // Shape x dtype disagrees with the byte range.
  ExpectOpenError(
      dir, RawFile(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}})", data24),
      StatusCode::kDataLoss, {"'a'", "[2, 3]", "needs 24 bytes", "span 16"});
  // Range beyond the data section.
  ExpectOpenError(
      dir, RawFile(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}})", data24),
      StatusCode::kDataLoss, {"'a'", "[16, 32]", "past the end of the data section"});
  ExpectOpenError(
      dir,
      RawFile(
          R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [18446744073709551600, 18446744073709551608]}})",
          data24),
      StatusCode::kDataLoss, {"'a'", "past the end"});
  // Overlapping tensors.
  ExpectOpenError(dir,
                  RawFile(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                          data24),
                  StatusCode::kDataLoss, {"'a'", "'b'", "overlap"});
  // __metadata__ must be an object.
  ExpectOpenError(dir, RawFile(R"({"__metadata__": 5})", ""), StatusCode::kDataLoss,
                  {"__metadata__"});
}

TEST(SafetensorsTest, MisalignedDataIsRejected) {
  ScopedTempDir dir;
  // One space more than the aligning padding puts F32 data at an odd file offset.
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string aligned = header + std::string((8 - (8 + header.size()) % 8) % 8, ' ');
  const std::string misaligned = aligned + " ";
  ExpectOpenError(dir, RawFile(misaligned, std::string(4, '\0'), misaligned.size()),
                  StatusCode::kDataLoss, {"'a'", "not aligned"});
  // The aligned header opens.
  WriteBytes(dir.File("ok.safetensors"), RawFile(aligned, std::string(4, '\0'), aligned.size()));
  EXPECT_TRUE(SafetensorsFile::Open(dir.File("ok.safetensors")).ok());
}

TEST(SafetensorsTest, TruncatedFile) {
  ScopedTempDir dir;
  std::vector<float> a(100, 1.f), b(50, 2.f);
  const std::string path = dir.File("t.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"a", DType::kF32, {100}, a.data(), nullptr},
                                      {"b", DType::kF32, {5, 10}, b.data(), nullptr}})
                  .ok());
  ASSERT_TRUE(SafetensorsFile::Open(path).ok());
  fs::resize_file(path, fs::file_size(path) - 3);
  StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(f.status().message().find("'b'"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("truncated"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
  // Cut inside the header.
  fs::resize_file(path, 20);
  f = SafetensorsFile::Open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("runs past the end of the file"), std::string::npos)
      << f.status().message();
}

TEST(SafetensorsTest, UnsupportedDtypeIsListedButRejected) {
  ScopedTempDir dir;
  const std::string path = dir.File("i64.safetensors");
  WriteBytes(path, RawFile(R"({"ids": {"dtype": "I64", "shape": [3], "data_offsets": [0, 24]}})",
                           std::string(24, '\0')));
  StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const SafetensorsEntry* e = (*f)->Find("ids");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype_name, "I64");
  EXPECT_FALSE(e->dtype.has_value());
  StatusOr<TensorView> v = (*f)->Get("ids");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(v.status().message().find("I64"), std::string::npos) << v.status().message();
  EXPECT_NE(v.status().message().find("'ids'"), std::string::npos) << v.status().message();
}

TEST(SafetensorsTest, ShapeHelpers) {
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{128256, 64}), "[128256, 64]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{}), "[]");
  EXPECT_EQ(NumElements(std::vector<int64_t>{3, 0, 2}), 0);
  EXPECT_EQ(NumElements(std::vector<int64_t>{}), 1);
}

}  // namespace
}  // namespace sieve::worker
