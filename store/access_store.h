// AccessStore: what the archive keeps about who may query it and who did —
// bearer tokens (only their SHA-256 hashes) and the access log. Reached
// through Archive::access(); each engine implements it on a connection of
// its own, so callers never wait on the event writer's transactions.
#ifndef PDKARCHIVE_STORE_ACCESS_STORE_H_
#define PDKARCHIVE_STORE_ACCESS_STORE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pdkarchive::store {

// One token as `tokens list` shows it. Times are milliseconds since the Unix
// epoch, UTC.
struct TokenInfo {
  std::string name;
  int64_t created_ms = 0;
  std::optional<int64_t> last_used_ms;
  std::optional<int64_t> revoked_ms;  // set once revoked
};

// A token that is not revoked: its name and the SHA-256 of the token text.
struct LiveToken {
  std::string name;
  std::string hash;  // 32 raw bytes
};

// One query call, accepted or refused.
struct AccessRecord {
  int64_t time_ms = 0;
  std::string token;   // the token's name; "" when none matched
  std::string peer;    // gRPC's peer string, e.g. "ipv4:127.0.0.1:53012"
  std::string method;  // e.g. "/pdk.archive.v1.EventArchive/ListEvents"
  std::string filter;  // the request as protobuf JSON, bounded in size
  int64_t rows = 0;    // events (or groups) returned
  int64_t bytes = 0;   // response bytes returned
  int code = 0;        // the gRPC status code the call ended with
  std::string message;
};

// Which access records to list: time in [from_ms, to_ms), one token's name,
// at most `limit`, oldest first.
struct AccessQuery {
  std::optional<int64_t> from_ms;
  std::optional<int64_t> to_ms;
  std::optional<std::string> token;
  int64_t limit = 1000;
};

// Thread-safe: implementations serialize calls on their own connection.
// Errors are the engine's (Unavailable when the database cannot be reached
// or is busy past its timeout, Internal otherwise) unless stated.
class AccessStore {
 public:
  virtual ~AccessStore() = default;

  // Keeps a new token `name` with `hash` (SHA-256 of the token text).
  // AlreadyExists when a live token already has that name.
  virtual absl::Status CreateToken(const std::string& name, const std::string& hash,
                                   int64_t created_ms) = 0;

  // Every token ever created, live and revoked, by name then creation.
  virtual absl::StatusOr<std::vector<TokenInfo>> ListTokens() = 0;

  // Revokes the live token `name`. NotFound when there is none.
  virtual absl::Status RevokeToken(const std::string& name, int64_t revoked_ms) = 0;

  // Every live token with its hash.
  virtual absl::StatusOr<std::vector<LiveToken>> LiveTokens() = 0;

  // Records when tokens were last used: (name, time) pairs, applied in one
  // transaction; a time never moves a token's last use back.
  virtual absl::Status RecordTokenUse(std::span<const std::pair<std::string, int64_t>> uses) = 0;

  // Whether the archive holds at least one live token.
  virtual absl::StatusOr<bool> HasLiveToken() = 0;

  // Whether a token was ever created in the archive, live or revoked.
  virtual absl::StatusOr<bool> HasAnyToken() = 0;

  // Appends `records` in one transaction.
  virtual absl::Status AppendAccess(std::span<const AccessRecord> records) = 0;

  // The records `query` selects, oldest first (ties in append order).
  virtual absl::StatusOr<std::vector<AccessRecord>> ListAccess(const AccessQuery& query) = 0;
};

// The name of the live token in `tokens` whose hash equals `hash`, compared
// in constant time (CRYPTO_memcmp) against every token; nullopt when none.
std::optional<std::string> MatchToken(std::span<const LiveToken> tokens, const std::string& hash);

// A new bearer token: "pdka_" and 32 bytes from OpenSSL's CSPRNG in
// unpadded base64url. Internal when the CSPRNG fails.
absl::StatusOr<std::string> NewToken();

// The SHA-256 of `token`, 32 raw bytes.
std::string HashToken(const std::string& token);

// Whether `name` is a valid token name: [A-Za-z0-9][A-Za-z0-9._-]{0,62}.
bool ValidTokenName(const std::string& name);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_ACCESS_STORE_H_
