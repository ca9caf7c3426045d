#include "ingest/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <climits>
#include <cstddef>
#include <string>
#include <string_view>

namespace pdkarchive::ingest {
namespace {

constexpr size_t kSha1Size = 20;
using Sha1Digest = std::array<unsigned char, kSha1Size>;

// False only when the input cannot be given to OpenSSL (over INT_MAX key
// bytes) or OpenSSL fails; callers then treat the delivery as unsigned.
bool HmacSha1(std::string_view secret, std::string_view body, Sha1Digest* out) {
  if (secret.size() > static_cast<size_t>(INT_MAX)) return false;
  // OpenSSL wants non-null pointers even for empty input.
  static constexpr unsigned char kEmpty = 0;
  const void* key =
      secret.empty() ? static_cast<const void*>(&kEmpty) : secret.data();
  const auto* data = body.empty()
                         ? &kEmpty
                         : reinterpret_cast<const unsigned char*>(body.data());
  unsigned int size = 0;
  return HMAC(EVP_sha1(), key, static_cast<int>(secret.size()), data,
              body.size(), out->data(), &size) != nullptr &&
         size == kSha1Size;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::string HmacSha1Hex(std::string_view secret, std::string_view body) {
  Sha1Digest digest{};
  if (!HmacSha1(secret, body, &digest)) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * kSha1Size);
  for (unsigned char byte : digest) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 0x0f]);
  }
  return hex;
}

bool VerifySignature(std::string_view secret, std::string_view body,
                     std::string_view signature_hex) {
  signature_hex = TrimSpaces(signature_hex);
  if (signature_hex.size() != 2 * kSha1Size) return false;
  // Decoding branches on the client's own bytes only; the secret-dependent
  // comparison below is constant-time.
  Sha1Digest claimed{};
  for (size_t i = 0; i < kSha1Size; ++i) {
    const int high = HexValue(signature_hex[2 * i]);
    const int low = HexValue(signature_hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    claimed[i] = static_cast<unsigned char>(high << 4 | low);
  }
  Sha1Digest expected{};
  if (!HmacSha1(secret, body, &expected)) return false;
  return CRYPTO_memcmp(claimed.data(), expected.data(), kSha1Size) == 0;
}

}  // namespace pdkarchive::ingest
