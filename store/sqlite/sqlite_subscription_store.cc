#include "store/sqlite/sqlite_subscription_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/sqlite/sqlite_util.h"

namespace pdkarchive::store {
namespace {

constexpr char kInsert[] =
    "INSERT INTO subscriptions (name, family, api, pdk_id, secret, basic_auth, "
    "odometer_baseline, created_ms, events, scope, public_url, secrecy_level, "
    "expires_at, pdk_active, baseline_sequence) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kSelectLive[] =
    "SELECT name, family, api, pdk_id, secret, previous_secret, "
    "previous_until_ms, "
    "basic_auth, odometer_baseline, created_ms, events, scope, public_url, "
    "secrecy_level, expires_at, pdk_active, baseline_sequence, last_check_ms, "
    "last_check_pdk, last_check_archived, last_check_missing FROM subscriptions "
    "WHERE deleted_ms IS NULL ORDER BY name";
constexpr char kRotate[] =
    "UPDATE subscriptions SET previous_secret = secret, previous_until_ms = ?, "
    "secret = ? "
    "WHERE name = ? AND deleted_ms IS NULL";
constexpr char kDelete[] =
    "UPDATE subscriptions SET deleted_ms = ? WHERE name = ? AND deleted_ms IS "
    "NULL";

constexpr char kUpdateSettings[] =
    "UPDATE subscriptions SET events = ?, scope = ?, public_url = ?, "
    "secrecy_level = ?, expires_at = ?, pdk_active = ? "
    "WHERE name = ? AND deleted_ms IS NULL";
constexpr char kRecordCheck[] =
    "UPDATE subscriptions SET last_check_ms = ?, last_check_pdk = ?, "
    "last_check_archived = ?, last_check_missing = ? "
    "WHERE name = ? AND deleted_ms IS NULL";
constexpr char kLatestSequence[] = "SELECT COALESCE(MAX(sequence), 0) FROM events";
constexpr char kCountSince[] =
    "SELECT COUNT(*) FROM events WHERE sequence > ? AND subscription_ref = "
    "(SELECT name_id FROM names WHERE value = ?)";

std::optional<int64_t> OptionalBool(std::optional<bool> value) {
  if (!value) return std::nullopt;
  return *value ? 1 : 0;
}

// Binds as TEXT (the CHECK on family compares text).
void BindText(SQLite::Statement& stmt, int index, const std::string& value) {
  stmt.bind(index, value);
}

void BindOptional(SQLite::Statement& stmt, int index,
                  std::optional<int64_t> value) {
  if (value) {
    stmt.bind(index, *value);
  } else {
    stmt.bind(index);
  }
}

std::optional<int64_t> OptionalInt(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getInt64();
}

class SqliteSubscriptionStore final : public SubscriptionStore {
 public:
  explicit SqliteSubscriptionStore(std::unique_ptr<SQLite::Database> db)
      : db_(std::move(db)) {}

  absl::Status AddSubscription(const Subscription& s) override {
    return Run("add subscription", [&] {
      SQLite::Statement insert(*db_, kInsert);
      BindText(insert, 1, s.name);
      BindText(insert, 2, s.family);
      insert.bind(3, s.api);
      BindText(insert, 4, s.pdk_id);
      BindText(insert, 5, s.secret);
      BindText(insert, 6, s.basic_auth);
      BindOptional(insert, 7, s.odometer_baseline);
      insert.bind(8, s.created_ms);
      BindText(insert, 9, s.events);
      BindText(insert, 10, s.scope);
      BindText(insert, 11, s.public_url);
      BindOptional(insert, 12, s.secrecy_level);
      BindText(insert, 13, s.expires_at);
      BindOptional(insert, 14, OptionalBool(s.pdk_active));
      BindOptional(insert, 15, s.baseline_sequence);
      try {
        insert.exec();
      } catch (const SQLite::Exception& e) {
        if (e.getExtendedErrorCode() == SQLITE_CONSTRAINT_UNIQUE) {
          return absl::AlreadyExistsError(
              absl::StrCat("a subscription named ", s.name, " exists"));
        }
        throw;
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<Subscription>> ListSubscriptions() override {
    std::vector<Subscription> subs;
    absl::Status st = Run("read subscriptions", [&] {
      SQLite::Statement select(*db_, kSelectLive);
      while (select.executeStep()) {
        Subscription& s = subs.emplace_back();
        s.name = select.getColumn(0).getString();
        s.family = select.getColumn(1).getString();
        s.api = select.getColumn(2).getInt();
        s.pdk_id = select.getColumn(3).getString();
        s.secret = select.getColumn(4).getString();
        s.previous_secret = select.getColumn(5).getString();
        s.previous_until_ms = OptionalInt(select.getColumn(6));
        s.basic_auth = select.getColumn(7).getString();
        s.odometer_baseline = OptionalInt(select.getColumn(8));
        s.created_ms = select.getColumn(9).getInt64();
        s.events = select.getColumn(10).getString();
        s.scope = select.getColumn(11).getString();
        s.public_url = select.getColumn(12).getString();
        if (std::optional<int64_t> level = OptionalInt(select.getColumn(13)))
          s.secrecy_level = static_cast<int>(*level);
        s.expires_at = select.getColumn(14).getString();
        if (std::optional<int64_t> active = OptionalInt(select.getColumn(15)))
          s.pdk_active = *active != 0;
        s.baseline_sequence = OptionalInt(select.getColumn(16));
        if (std::optional<int64_t> at = OptionalInt(select.getColumn(17))) {
          s.last_check = Subscription::Check{
              .checked_ms = *at,
              .pdk_events = select.getColumn(18).getInt64(),
              .archived_events = select.getColumn(19).getInt64(),
              .missing_events = select.getColumn(20).getInt64()};
        }
      }
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return subs;
  }

  absl::Status RotateSecret(const std::string& name, const std::string& secret,
                            int64_t previous_until_ms) override {
    return Run("rotate secret", [&] {
      SQLite::Statement update(*db_, kRotate);
      update.bind(1, previous_until_ms);
      BindText(update, 2, secret);
      BindText(update, 3, name);
      return OneSubscriptionChanged(update.exec(), name);
    });
  }

  absl::Status DeleteSubscription(const std::string& name,
                                  int64_t deleted_ms) override {
    return Run("delete subscription", [&] {
      SQLite::Statement update(*db_, kDelete);
      update.bind(1, deleted_ms);
      BindText(update, 2, name);
      return OneSubscriptionChanged(update.exec(), name);
    });
  }

  absl::Status UpdatePdkSettings(const std::string& name,
                                 const Subscription& s) override {
    return Run("update subscription", [&] {
      SQLite::Statement update(*db_, kUpdateSettings);
      BindText(update, 1, s.events);
      BindText(update, 2, s.scope);
      BindText(update, 3, s.public_url);
      BindOptional(update, 4, s.secrecy_level);
      BindText(update, 5, s.expires_at);
      BindOptional(update, 6, OptionalBool(s.pdk_active));
      BindText(update, 7, name);
      return OneSubscriptionChanged(update.exec(), name);
    });
  }

  absl::Status RecordCheck(const std::string& name,
                           const Subscription::Check& check) override {
    return Run("record check", [&] {
      SQLite::Statement update(*db_, kRecordCheck);
      update.bind(1, check.checked_ms);
      update.bind(2, check.pdk_events);
      update.bind(3, check.archived_events);
      update.bind(4, check.missing_events);
      BindText(update, 5, name);
      return OneSubscriptionChanged(update.exec(), name);
    });
  }

  absl::StatusOr<int64_t> LatestSequence() override {
    int64_t latest = 0;
    absl::Status st = Run("read the latest sequence", [&] {
      SQLite::Statement select(*db_, kLatestSequence);
      if (select.executeStep()) latest = select.getColumn(0).getInt64();
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return latest;
  }

  absl::StatusOr<int64_t> CountArchivedSince(const std::string& name,
                                             int64_t after_sequence) override {
    int64_t count = 0;
    absl::Status st = Run("count archived events", [&] {
      SQLite::Statement select(*db_, kCountSince);
      select.bind(1, after_sequence);
      BindText(select, 2, name);
      if (select.executeStep()) count = select.getColumn(0).getInt64();
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return count;
  }

 private:
  // Runs `body` under the connection's lock, turning SQLite's exceptions
  // into a status naming `what`: Unavailable when busy past the timeout.
  template <typename Body>
  absl::Status Run(const char* what, Body&& body) {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      return body();
    } catch (const SQLite::Exception& e) {
      const int code = e.getErrorCode();
      const std::string message = absl::StrCat("cannot ", what, ": ", e.what());
      if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return absl::UnavailableError(message);
      return absl::InternalError(message);
    }
  }

  std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SubscriptionStore>> OpenSqliteSubscriptionStore(
    const std::string& path) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX,
        static_cast<int>(kBusyTimeout.count()));
    return std::unique_ptr<SubscriptionStore>(
        new SqliteSubscriptionStore(std::move(db)));
  } catch (const SQLite::Exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot open archive ", path, ": ", e.what()));
  }
}

}  // namespace pdkarchive::store
