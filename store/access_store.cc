#include "store/access_store.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"

namespace pdkarchive::store {

std::optional<std::string> MatchToken(std::span<const LiveToken> tokens, const std::string& hash) {
  // Every token is compared, whichever matches, so the time taken says
  // nothing about which hash (or how much of one) was right.
  std::optional<std::string> found;
  for (const LiveToken& token : tokens) {
    if (token.hash.size() != hash.size()) continue;
    if (CRYPTO_memcmp(token.hash.data(), hash.data(), hash.size()) == 0) found = token.name;
  }
  return found;
}

absl::StatusOr<std::string> NewToken() {
  std::string bytes(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size())) !=
      1) {
    return absl::InternalError("cannot draw a token: RAND_bytes failed");
  }
  return "pdka_" + absl::WebSafeBase64Escape(bytes);
}

std::string HashToken(const std::string& token) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

bool ValidTokenName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

}  // namespace pdkarchive::store
