// How payloads and event ids are kept compactly on disk, and read back
// byte for byte.
//
// A payload is stored either as TEXT, verbatim, or as a BLOB whose first byte
// names its format: 1 = zstd (magicless frame) with kRawDictionaryV1. A
// canonical lower-case UUID event id is stored as its 16 bytes; any other id
// as TEXT.
#ifndef PDKARCHIVE_STORE_RAW_CODEC_H_
#define PDKARCHIVE_STORE_RAW_CODEC_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pdkarchive::store {

// The dictionary of raw format 1 (store/raw_dictionary_v1.cc). Never edited.
extern const std::string_view kRawDictionaryV1;

inline constexpr char kRawFormatZstdV1 = 1;

// Compresses payloads for storage. Thread-safe: each thread compresses with
// a context of its own over the shared, read-only dictionary.
class RawCompressor {
 public:
  static absl::StatusOr<std::unique_ptr<RawCompressor>> Create();
  ~RawCompressor();
  RawCompressor(const RawCompressor&) = delete;
  RawCompressor& operator=(const RawCompressor&) = delete;

  // Sets `*out` to the stored form of `raw` and returns true when that is a
  // BLOB (format byte + compressed bytes); returns false, leaving `out`
  // empty, when storing `raw` as TEXT is as small.
  bool Compress(std::string_view raw, std::string* out) const;

 private:
  struct Impl;
  explicit RawCompressor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads stored payloads back. Thread-safe.
class RawDecompressor {
 public:
  static absl::StatusOr<std::unique_ptr<RawDecompressor>> Create();
  ~RawDecompressor();
  RawDecompressor(const RawDecompressor&) = delete;
  RawDecompressor& operator=(const RawDecompressor&) = delete;

  // The payload of a stored BLOB. DataLoss when it is corrupt or of an
  // unknown format.
  absl::StatusOr<std::string> Decompress(std::string_view blob) const;

 private:
  struct Impl;
  explicit RawDecompressor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The 16 bytes of a canonical lower-case UUID ("679521e4-c455-423f-8155-
// d012c98f5dcc"), or nullopt-like empty string when `id` is not one.
std::string PackUuid(std::string_view id);
// The canonical text of 16 packed UUID bytes.
std::string UnpackUuid(std::string_view bytes);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_RAW_CODEC_H_
