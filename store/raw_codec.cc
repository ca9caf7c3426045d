#include "store/raw_codec.h"

#include <zstd.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "absl/status/status.h"

#include "absl/strings/str_cat.h"

namespace pdkarchive::store {
namespace {

// Small payloads: the dictionary does the heavy lifting. Level 3 (4 us,
// 90 bytes a door event) beats 9 (10 us, 85 bytes) for a single writer.
constexpr int kCompressionLevel = 3;

// Every zstd frame starts with these 4 bytes; stored blobs leave them out
// (the format byte already says what follows) and reads put them back.
constexpr char kZstdMagic[4] = {'\x28', '\xb5', '\x2f', '\xfd'};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

struct RawCompressor::Impl {
  ZSTD_CDict* cdict = nullptr;
  ~Impl() { ZSTD_freeCDict(cdict); }
};

namespace {

// One compression context and frame buffer per thread, kept for reuse.
struct ThreadCompressionState {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::string scratch;
  ~ThreadCompressionState() { ZSTD_freeCCtx(cctx); }
};

ThreadCompressionState& ThisThreadState() {
  thread_local ThreadCompressionState state;
  return state;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RawCompressor>> RawCompressor::Create() {
  auto impl = std::make_unique<Impl>();
  // Without zstd's dictionary magic the bytes load as raw content.
  impl->cdict =
      ZSTD_createCDict(kRawDictionaryV1.data(), kRawDictionaryV1.size(), kCompressionLevel);
  if (impl->cdict == nullptr) {
    return absl::ResourceExhaustedError("cannot set up zstd compression");
  }
  return std::unique_ptr<RawCompressor>(new RawCompressor(std::move(impl)));
}

RawCompressor::RawCompressor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RawCompressor::~RawCompressor() = default;

bool RawCompressor::Compress(std::string_view raw, std::string* out) const {
  out->clear();
  ThreadCompressionState& state = ThisThreadState();
  if (state.cctx == nullptr) return false;  // out of memory: keep it verbatim
  std::string& frame = state.scratch;
  frame.resize(ZSTD_compressBound(raw.size()));
  const size_t n = ZSTD_compress_usingCDict(state.cctx, frame.data(), frame.size(), raw.data(),
                                            raw.size(), impl_->cdict);
  if (ZSTD_isError(n) || n <= sizeof kZstdMagic ||
      1 + n - sizeof kZstdMagic >= raw.size()) {
    return false;  // incompressible, or an error: verbatim is always right
  }
  out->reserve(1 + n - sizeof kZstdMagic);
  out->push_back(kRawFormatZstdV1);
  out->append(frame.data() + sizeof kZstdMagic, n - sizeof kZstdMagic);
  return true;
}

struct RawDecompressor::Impl {
  ZSTD_DDict* ddict = nullptr;
  // Decompression contexts are reused across calls; each call borrows one.
  mutable std::mutex mu;
  mutable std::vector<ZSTD_DCtx*> idle;
  ~Impl() {
    ZSTD_freeDDict(ddict);
    for (ZSTD_DCtx* d : idle) ZSTD_freeDCtx(d);
  }
};

absl::StatusOr<std::unique_ptr<RawDecompressor>> RawDecompressor::Create() {
  auto impl = std::make_unique<Impl>();
  impl->ddict = ZSTD_createDDict(kRawDictionaryV1.data(), kRawDictionaryV1.size());
  if (impl->ddict == nullptr) {
    return absl::ResourceExhaustedError("cannot set up zstd decompression");
  }
  return std::unique_ptr<RawDecompressor>(new RawDecompressor(std::move(impl)));
}

RawDecompressor::RawDecompressor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RawDecompressor::~RawDecompressor() = default;

absl::StatusOr<std::string> RawDecompressor::Decompress(std::string_view blob) const {
  if (blob.empty() || blob[0] != kRawFormatZstdV1) {
    return absl::DataLossError("stored payload has an unknown format");
  }
  std::string frame(kZstdMagic, sizeof kZstdMagic);
  frame.append(blob.data() + 1, blob.size() - 1);
  ZSTD_DCtx* dctx = nullptr;
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->idle.empty()) {
      dctx = impl_->idle.back();
      impl_->idle.pop_back();
    }
  }
  if (dctx == nullptr) {
    dctx = ZSTD_createDCtx();
    if (dctx == nullptr) return absl::ResourceExhaustedError("zstd: out of memory");
  }
  absl::StatusOr<std::string> result;
  const unsigned long long size =  // NOLINT(runtime/int)
      ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
      size > (64u << 20)) {
    result = absl::DataLossError("stored payload is corrupt");
  } else {
    std::string out(static_cast<size_t>(size), '\0');
    const size_t n = ZSTD_decompress_usingDDict(dctx, out.data(), out.size(), frame.data(),
                                                frame.size(), impl_->ddict);
    if (ZSTD_isError(n) || n != out.size()) {
      result = absl::DataLossError(absl::StrCat("stored payload is corrupt: ",
                                                ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
    } else {
      result = std::move(out);
    }
  }
  std::lock_guard lock(impl_->mu);
  impl_->idle.push_back(dctx);
  return result;
}

std::string PackUuid(std::string_view id) {
  // 8-4-4-4-12 lower-case hex digits.
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-') {
    return "";
  }
  std::string out;
  out.reserve(16);
  for (size_t i = 0; i < id.size();) {
    if (id[i] == '-') {
      ++i;
      continue;
    }
    const int hi = HexValue(id[i]);
    const int lo = HexValue(id[i + 1]);
    if (hi < 0 || lo < 0) return "";
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string UnpackUuid(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    const auto b = static_cast<unsigned char>(bytes[i]);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace pdkarchive::store
