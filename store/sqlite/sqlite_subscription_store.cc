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
    "odometer_baseline, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kSelectLive[] =
    "SELECT name, family, api, pdk_id, secret, previous_secret, "
    "previous_until_ms, "
    "basic_auth, odometer_baseline, created_ms FROM subscriptions "
    "WHERE deleted_ms IS NULL ORDER BY name";
constexpr char kRotate[] =
    "UPDATE subscriptions SET previous_secret = secret, previous_until_ms = ?, "
    "secret = ? "
    "WHERE name = ? AND deleted_ms IS NULL";
constexpr char kDelete[] =
    "UPDATE subscriptions SET deleted_ms = ? WHERE name = ? AND deleted_ms IS "
    "NULL";

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
      if (update.exec() == 0) {
        return absl::NotFoundError(
            absl::StrCat("no subscription named ", name));
      }
      return absl::OkStatus();
    });
  }

  absl::Status DeleteSubscription(const std::string& name,
                                  int64_t deleted_ms) override {
    return Run("delete subscription", [&] {
      SQLite::Statement update(*db_, kDelete);
      update.bind(1, deleted_ms);
      BindText(update, 2, name);
      if (update.exec() == 0) {
        return absl::NotFoundError(
            absl::StrCat("no subscription named ", name));
      }
      return absl::OkStatus();
    });
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
