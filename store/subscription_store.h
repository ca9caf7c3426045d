// SubscriptionStore: the PDK subscriptions the archive takes deliveries for,
// kept in the archive so every node of it shares them. Reached through
// Archive::subscriptions(); each engine implements it on a connection of its
// own. Secrets are kept in clear because verifying PDK's HMAC needs them:
// callers never print or log them.
#ifndef PDKARCHIVE_STORE_SUBSCRIPTION_STORE_H_
#define PDKARCHIVE_STORE_SUBSCRIPTION_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pdkarchive::store {

// One subscription. Times are milliseconds since the Unix epoch, UTC.
struct Subscription {
  std::string name;    // [a-z0-9][a-z0-9_-]{0,62}
  std::string family;  // "org" or "panel"
  int api = 1;         // PDK API version: 1 or 2
  std::string pdk_id;  // PDK's id; "" for one added by hand
  std::string secret;  // the current HMAC secret
  // The secret before the last rotation, accepted until previous_until_ms.
  std::string previous_secret;
  std::optional<int64_t> previous_until_ms;
  std::string basic_auth;  // "user:password"; "" = not required
  std::optional<int64_t> odometer_baseline;
  int64_t created_ms = 0;
  bool deleted = false;
};

// Thread-safe: implementations serialize calls on their own connection.
// Errors are the engine's (Unavailable when the database cannot be reached
// or is busy past its timeout, Internal otherwise) unless stated.
class SubscriptionStore {
 public:
  virtual ~SubscriptionStore() = default;

  // Keeps `subscription` (its `deleted` is ignored). AlreadyExists when a
  // subscription that is not deleted has its name.
  virtual absl::Status AddSubscription(const Subscription& subscription) = 0;

  // Every subscription that is not deleted, by name.
  virtual absl::StatusOr<std::vector<Subscription>> ListSubscriptions() = 0;

  // Makes `secret` the current secret of `name` and keeps its current one
  // accepted until `previous_until_ms`. NotFound when no live subscription
  // has that name.
  virtual absl::Status RotateSecret(const std::string& name,
                                    const std::string& secret,
                                    int64_t previous_until_ms) = 0;

  // Marks `name` deleted (its events stay). NotFound when no live
  // subscription has that name.
  virtual absl::Status DeleteSubscription(const std::string& name,
                                          int64_t deleted_ms) = 0;
};

// Whether `name` is a valid subscription name: [a-z0-9][a-z0-9_-]{0,62}.
bool ValidSubscriptionName(const std::string& name);

// A new webhook secret: 32 bytes from OpenSSL's CSPRNG in unpadded
// base64url (43 characters). Internal when the CSPRNG fails.
absl::StatusOr<std::string> NewSubscriptionSecret();

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SUBSCRIPTION_STORE_H_
