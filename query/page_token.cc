#include "query/page_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"

namespace pdkarchive::query {
namespace {

constexpr uint8_t kVersion = 1;
constexpr uint8_t kDescendingFlag = 1;
constexpr size_t kFingerprintSize = 16;
constexpr size_t kMacSize = 32;
// version, flags, occur_time, sequence, fingerprint.
constexpr size_t kBodySize = 1 + 1 + 8 + 8 + kFingerprintSize;
constexpr size_t kTokenSize = kBodySize + kMacSize;

constexpr char kMalformed[] = "page_token is malformed";
constexpr char kMismatch[] = "page_token does not match this filter/order";

void PutInt64(std::string& out, int64_t value) {
  const auto bits = static_cast<uint64_t>(value);
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((bits >> shift) & 0xff));
  }
}

int64_t GetInt64(std::string_view in) {
  uint64_t bits = 0;
  for (size_t i = 0; i < 8; ++i) {
    bits = (bits << 8) | static_cast<uint8_t>(in[i]);
  }
  return static_cast<int64_t>(bits);
}

void PutString(std::string& out, std::string_view value) {
  PutInt64(out, static_cast<int64_t>(value.size()));
  out.append(value);
}

template <typename T>
std::vector<T> SortedUnique(std::vector<T> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

std::string Mac(const std::string& key, std::string_view body) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), out,
       &out_size);
  return std::string(reinterpret_cast<const char*>(out), out_size);
}

}  // namespace

std::string FilterFingerprint(const store::EventFilter& filter) {
  // A canonical, unambiguous serialization: every field tagged, every list
  // counted, every string length-prefixed.
  std::string canonical;
  canonical.push_back(filter.start_ms ? 'S' : 's');
  PutInt64(canonical, filter.start_ms.value_or(0));
  canonical.push_back(filter.end_ms ? 'E' : 'e');
  PutInt64(canonical, filter.end_ms.value_or(0));
  auto put_strings = [&](char tag, const std::vector<std::string>& values) {
    std::vector<std::string> sorted = SortedUnique(values);
    canonical.push_back(tag);
    PutInt64(canonical, static_cast<int64_t>(sorted.size()));
    for (const std::string& value : sorted) PutString(canonical, value);
  };
  auto put_ints = [&](char tag, const std::vector<int64_t>& values) {
    std::vector<int64_t> sorted = SortedUnique(values);
    canonical.push_back(tag);
    PutInt64(canonical, static_cast<int64_t>(sorted.size()));
    for (int64_t value : sorted) PutInt64(canonical, value);
  };
  put_strings('T', filter.topics);
  put_strings('P', filter.panel_ids);
  put_ints('D', filter.door_ids);
  put_ints('H', filter.person_ids);
  put_strings('O', filter.ou_ids);
  canonical.push_back('F');
  PutString(canonical, filter.family);
  // 2.0's text ids, only when given: a 1.0 filter's fingerprint (and the
  // tokens issued before they existed) stays as it was.
  if (!filter.device_ids.empty()) put_strings('V', filter.device_ids);
  if (!filter.holder_ids.empty()) put_strings('U', filter.holder_ids);

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &digest_size,
             EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), kFingerprintSize);
}

PageTokenCodec::PageTokenCodec(std::string key) : key_(std::move(key)) {}

std::string PageTokenCodec::Encode(const store::EventFilter& filter,
                                   bool descending,
                                   const store::Cursor& last) const {
  std::string body;
  body.reserve(kTokenSize);
  body.push_back(static_cast<char>(kVersion));
  body.push_back(static_cast<char>(descending ? kDescendingFlag : 0));
  PutInt64(body, last.occur_time_ms);
  PutInt64(body, last.sequence);
  body += FilterFingerprint(filter);
  body += Mac(key_, body);
  return absl::WebSafeBase64Escape(body);
}

absl::StatusOr<store::Cursor> PageTokenCodec::Decode(
    std::string_view token, const store::EventFilter& filter,
    bool descending) const {
  std::string bytes;
  if (!absl::WebSafeBase64Unescape(
          absl::string_view(token.data(), token.size()), &bytes) ||
      bytes.size() != kTokenSize) {
    return absl::InvalidArgumentError(kMalformed);
  }
  const std::string_view body = std::string_view(bytes).substr(0, kBodySize);
  const std::string expected = Mac(key_, body);
  if (CRYPTO_memcmp(expected.data(), bytes.data() + kBodySize, kMacSize) != 0 ||
      static_cast<uint8_t>(body[0]) != kVersion) {
    return absl::InvalidArgumentError(kMalformed);
  }
  const bool token_descending =
      (static_cast<uint8_t>(body[1]) & kDescendingFlag) != 0;
  if (token_descending != descending ||
      body.substr(18, kFingerprintSize) != FilterFingerprint(filter)) {
    return absl::InvalidArgumentError(kMismatch);
  }
  store::Cursor cursor;
  cursor.occur_time_ms = GetInt64(body.substr(2, 8));
  cursor.sequence = GetInt64(body.substr(10, 8));
  return cursor;
}

}  // namespace pdkarchive::query
