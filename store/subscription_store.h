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
  std::string family;  // "org", "panel" (API 1), "system", "cloudnode" (API 2)
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

  // What was sent to PDK by `subscriptions create`/`update` ("" / nullopt for
  // a subscription added by hand). Changed by UpdatePdkSettings.
  std::string events;      // JSON array of topic names: ["ou.created",...]
  std::string scope;       // PDK's scope string: ouRecursive, recursive, ...
  std::string public_url;  // PDK delivers to public_url + "/webhooks/" + name
  std::optional<int> secrecy_level;  // nullopt = PDK's default
  std::string expires_at;            // ISO 8601; "" = never expires
  std::optional<bool> pdk_active;    // PDK's `active` as last seen
  // The archive's highest sequence when the subscription was registered:
  // what `check` counts are its events with higher sequences.
  std::optional<int64_t> baseline_sequence;

  // The figures of the last `subscriptions check` (RecordCheck).
  struct Check {
    int64_t checked_ms = 0;
    int64_t pdk_events = 0;       // PDK's odometer now - odometer_baseline
    int64_t archived_events = 0;  // CountArchivedSince(baseline_sequence)
    int64_t missing_events = 0;   // pdk_events - archived_events, at least 0
  };
  std::optional<Check> last_check;
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

  // Sets the PDK-side settings of `name` (events, scope, public_url,
  // secrecy_level, expires_at, pdk_active) to those of `settings`; its other
  // fields are ignored. NotFound when no live subscription has that name.
  virtual absl::Status UpdatePdkSettings(const std::string& name,
                                         const Subscription& settings) = 0;

  // Keeps `check` as the last check's figures of `name`. NotFound when no
  // live subscription has that name.
  virtual absl::Status RecordCheck(const std::string& name,
                                   const Subscription::Check& check) = 0;

  // The highest sequence the archive holds (0 when empty): the baseline a
  // new subscription's events are counted from.
  virtual absl::StatusOr<int64_t> LatestSequence() = 0;

  // How many events the archive holds for subscription `name` with a
  // sequence above `after_sequence`. Rows are distinct events already (a
  // redelivery adds no row), so this is the distinct events archived.
  virtual absl::StatusOr<int64_t> CountArchivedSince(
      const std::string& name, int64_t after_sequence) = 0;
};

// Whether `name` is a valid subscription name: [a-z0-9][a-z0-9_-]{0,62}.
bool ValidSubscriptionName(const std::string& name);

// For engines: OK when a statement changed `rows_changed` > 0 rows of the
// live subscription `name`, else NotFound naming it.
absl::Status OneSubscriptionChanged(int64_t rows_changed,
                                    const std::string& name);

// A new webhook secret: 32 bytes from OpenSSL's CSPRNG in unpadded
// base64url (43 characters). Internal when the CSPRNG fails.
absl::StatusOr<std::string> NewSubscriptionSecret();

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SUBSCRIPTION_STORE_H_
