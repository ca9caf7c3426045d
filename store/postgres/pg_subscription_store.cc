#include "store/postgres/pg_subscription_store.h"

#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pdkarchive::store::pg {
namespace {

constexpr char kInsert[] =
    "INSERT INTO subscriptions (name, family, api, pdk_id, secret, basic_auth, "
    "odometer_baseline, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
constexpr char kSelectLive[] =
    "SELECT name, family, api, pdk_id, secret, previous_secret, "
    "previous_until_ms, "
    "basic_auth, odometer_baseline, created_ms FROM subscriptions "
    "WHERE deleted_ms IS NULL ORDER BY name";
constexpr char kRotate[] =
    "UPDATE subscriptions SET previous_secret = secret, previous_until_ms = "
    "$1, secret = $2 "
    "WHERE name = $3 AND deleted_ms IS NULL RETURNING id";
constexpr char kDelete[] =
    "UPDATE subscriptions SET deleted_ms = $1 WHERE name = $2 AND deleted_ms "
    "IS NULL "
    "RETURNING id";

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
                           .Int(s.created_ms));
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
    }
    return subs;
  }

  absl::Status RotateSecret(const std::string& name, const std::string& secret,
                            int64_t previous_until_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r =
        Query(kRotate, Params().Int(previous_until_ms).Text(secret).Text(name));
    if (!r.ok()) return r.status();
    if (r->rows() == 0)
      return absl::NotFoundError(absl::StrCat("no subscription named ", name));
    return absl::OkStatus();
  }

  absl::Status DeleteSubscription(const std::string& name,
                                  int64_t deleted_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r =
        Query(kDelete, Params().Int(deleted_ms).Text(name));
    if (!r.ok()) return r.status();
    if (r->rows() == 0)
      return absl::NotFoundError(absl::StrCat("no subscription named ", name));
    return absl::OkStatus();
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
