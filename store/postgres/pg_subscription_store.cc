#include "store/postgres/pg_subscription_store.h"

#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pdkarchive::store::pg {
namespace {

constexpr char kInsert[] =
    "INSERT INTO subscriptions (name, family, api, pdk_id, secret, basic_auth, "
    "odometer_baseline, created_ms, events, scope, public_url, secrecy_level, "
    "expires_at, pdk_active, baseline_sequence) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
    "$15)";
constexpr char kSelectLive[] =
    "SELECT name, family, api, pdk_id, secret, previous_secret, "
    "previous_until_ms, "
    "basic_auth, odometer_baseline, created_ms, events, scope, public_url, "
    "secrecy_level, expires_at, pdk_active, baseline_sequence, last_check_ms, "
    "last_check_pdk, last_check_archived, last_check_missing FROM subscriptions "
    "WHERE deleted_ms IS NULL ORDER BY name";
constexpr char kRotate[] =
    "UPDATE subscriptions SET previous_secret = secret, previous_until_ms = "
    "$1, secret = $2 "
    "WHERE name = $3 AND deleted_ms IS NULL RETURNING id";
constexpr char kDelete[] =
    "UPDATE subscriptions SET deleted_ms = $1 WHERE name = $2 AND deleted_ms "
    "IS NULL "
    "RETURNING id";

constexpr char kUpdateSettings[] =
    "UPDATE subscriptions SET events = $1, scope = $2, public_url = $3, "
    "secrecy_level = $4, expires_at = $5, pdk_active = $6 "
    "WHERE name = $7 AND deleted_ms IS NULL RETURNING id";
constexpr char kRecordCheck[] =
    "UPDATE subscriptions SET last_check_ms = $1, last_check_pdk = $2, "
    "last_check_archived = $3, last_check_missing = $4 "
    "WHERE name = $5 AND deleted_ms IS NULL RETURNING id";
constexpr char kLatestSequence[] =
    "SELECT COALESCE(max(sequence), 0) FROM events";
constexpr char kCountSince[] =
    "SELECT count(*) FROM events WHERE subscription = $1 AND sequence > $2";

std::optional<int64_t> OptionalBool(std::optional<bool> value) {
  if (!value) return std::nullopt;
  return *value ? 1 : 0;
}

std::optional<int64_t> OptionalLevel(std::optional<int> value) {
  if (!value) return std::nullopt;
  return *value;
}

class PgSubscriptionStore final : public SubscriptionStore {
 public:
  explicit PgSubscriptionStore(ConnectOptions connect)
      : connect_(std::move(connect)) {}

  absl::Status AddSubscription(const Subscription& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r =
        Query(kInsert, Params()
                           .Text(s.name)
                           .Text(s.family)
                           .Int(s.api)
                           .Text(s.pdk_id)
                           .Text(s.secret)
                           .Text(s.basic_auth)
                           .OptionalInt(s.odometer_baseline)
                           .Int(s.created_ms)
                           .Text(s.events)
                           .Text(s.scope)
                           .Text(s.public_url)
                           .OptionalInt(OptionalLevel(s.secrecy_level))
                           .Text(s.expires_at)
                           .OptionalInt(OptionalBool(s.pdk_active))
                           .OptionalInt(s.baseline_sequence));
    if (r.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(
          absl::StrCat("a subscription named ", s.name, " exists"));
    }
    return r.status();
  }

  absl::StatusOr<std::vector<Subscription>> ListSubscriptions() override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r = Query(kSelectLive);
    if (!r.ok()) return r.status();
    std::vector<Subscription> subs;
    for (int i = 0; i < r->rows(); ++i) {
      Subscription& s = subs.emplace_back();
      s.name = std::string(r->bytes(i, 0));
      s.family = std::string(r->bytes(i, 1));
      s.api = static_cast<int>(r->int64(i, 2));
      s.pdk_id = std::string(r->bytes(i, 3));
      s.secret = std::string(r->bytes(i, 4));
      s.previous_secret = std::string(r->bytes(i, 5));
      s.previous_until_ms = r->optional_int64(i, 6);
      s.basic_auth = std::string(r->bytes(i, 7));
      s.odometer_baseline = r->optional_int64(i, 8);
      s.created_ms = r->int64(i, 9);
      s.events = std::string(r->bytes(i, 10));
      s.scope = std::string(r->bytes(i, 11));
      s.public_url = std::string(r->bytes(i, 12));
      if (std::optional<int64_t> level = r->optional_int64(i, 13))
        s.secrecy_level = static_cast<int>(*level);
      s.expires_at = std::string(r->bytes(i, 14));
      if (std::optional<int64_t> active = r->optional_int64(i, 15))
        s.pdk_active = *active != 0;
      s.baseline_sequence = r->optional_int64(i, 16);
      if (std::optional<int64_t> at = r->optional_int64(i, 17)) {
        s.last_check = Subscription::Check{.checked_ms = *at,
                                           .pdk_events = r->int64(i, 18),
                                           .archived_events = r->int64(i, 19),
                                           .missing_events = r->int64(i, 20)};
      }
    }
    return subs;
  }

  absl::Status RotateSecret(const std::string& name, const std::string& secret,
                            int64_t previous_until_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r =
        Query(kRotate, Params().Int(previous_until_ms).Text(secret).Text(name));
    if (!r.ok()) return r.status();
    return OneSubscriptionChanged(r->rows(), name);
  }

  absl::Status DeleteSubscription(const std::string& name,
                                  int64_t deleted_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r =
        Query(kDelete, Params().Int(deleted_ms).Text(name));
    if (!r.ok()) return r.status();
    return OneSubscriptionChanged(r->rows(), name);
  }

  absl::Status UpdatePdkSettings(const std::string& name,
                                 const Subscription& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r =
        Query(kUpdateSettings, Params()
                                   .Text(s.events)
                                   .Text(s.scope)
                                   .Text(s.public_url)
                                   .OptionalInt(OptionalLevel(s.secrecy_level))
                                   .Text(s.expires_at)
                                   .OptionalInt(OptionalBool(s.pdk_active))
                                   .Text(name));
    if (!r.ok()) return r.status();
    return OneSubscriptionChanged(r->rows(), name);
  }

  absl::Status RecordCheck(const std::string& name,
                           const Subscription::Check& check) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r =
        Query(kRecordCheck, Params()
                                .Int(check.checked_ms)
                                .Int(check.pdk_events)
                                .Int(check.archived_events)
                                .Int(check.missing_events)
                                .Text(name));
    if (!r.ok()) return r.status();
    return OneSubscriptionChanged(r->rows(), name);
  }

  absl::StatusOr<int64_t> LatestSequence() override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r = Query(kLatestSequence);
    if (!r.ok()) return r.status();
    return r->int64(0, 0);
  }

  absl::StatusOr<int64_t> CountArchivedSince(const std::string& name,
                                             int64_t after_sequence) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r =
        Query(kCountSince, Params().Text(name).Int(after_sequence));
    if (!r.ok()) return r.status();
    return r->int64(0, 0);
  }

  absl::Status Connect() {
    if (conn_ != nullptr && conn_->healthy()) return absl::OkStatus();
    conn_.reset();
    absl::StatusOr<std::unique_ptr<Connection>> conn =
        Connection::Open(connect_);
    if (!conn.ok()) return conn.status();
    conn_ = *std::move(conn);
    return absl::OkStatus();
  }

 private:
  // One statement on a (re)connected connection. Call with mu_ held.
  absl::StatusOr<Result> Query(const char* sql, const Params& params = {}) {
    if (absl::Status s = Connect(); !s.ok()) return s;
    return conn_->Query(sql, params);
  }

  const ConnectOptions connect_;
  std::mutex mu_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SubscriptionStore>> OpenSubscriptionStore(
    const ConnectOptions& connect) {
  auto store = std::make_unique<PgSubscriptionStore>(connect);
  if (absl::Status s = store->Connect(); !s.ok()) return s;
  return std::unique_ptr<SubscriptionStore>(std::move(store));
}

}  // namespace pdkarchive::store::pg
