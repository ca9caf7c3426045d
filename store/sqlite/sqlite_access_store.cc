#include "store/sqlite/sqlite_access_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/sqlite/sqlite_util.h"

namespace pdkarchive::store {
namespace {

constexpr char kInsertToken[] =
    "INSERT INTO access_tokens (name, hash, created_ms) VALUES (?, ?, ?)";
constexpr char kSelectTokens[] =
    "SELECT name, created_ms, last_used_ms, revoked_ms FROM access_tokens "
    "ORDER BY name, id";
constexpr char kRevokeToken[] =
    "UPDATE access_tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS "
    "NULL";
constexpr char kSelectLiveTokens[] =
    "SELECT name, hash FROM access_tokens WHERE revoked_ms IS NULL";
constexpr char kTouchToken[] =
    "UPDATE access_tokens SET last_used_ms = MAX(COALESCE(last_used_ms, 0), ?) "
    "WHERE name = ? AND revoked_ms IS NULL";
constexpr char kHasLiveToken[] =
    "SELECT EXISTS (SELECT 1 FROM access_tokens WHERE revoked_ms IS NULL)";
constexpr char kHasAnyToken[] = "SELECT EXISTS (SELECT 1 FROM access_tokens)";
constexpr char kInsertAccess[] =
    "INSERT INTO access_log (time_ms, token, peer, method, filter, "
    "rows_returned, "
    "bytes_returned, status_code, status_message) VALUES (?, ?, ?, ?, ?, ?, ?, "
    "?, ?)";
// NULL bounds select everything; the token filter likewise.
constexpr char kSelectAccess[] =
    "SELECT time_ms, token, peer, method, filter, rows_returned, "
    "bytes_returned, "
    "status_code, status_message FROM access_log "
    "WHERE (?1 IS NULL OR time_ms >= ?1) AND (?2 IS NULL OR time_ms < ?2) "
    "AND (?3 IS NULL OR token = ?3) ORDER BY time_ms, id LIMIT ?4";

void BindText(SQLite::Statement& stmt, int index, const std::string& value) {
  stmt.bind(index, value.data(), static_cast<int>(value.size()));
}

std::optional<int64_t> OptionalInt(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getInt64();
}

class SqliteAccessStore final : public AccessStore {
 public:
  explicit SqliteAccessStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}

  absl::Status CreateToken(const std::string& name, const std::string& hash,
                           int64_t created_ms) override {
    return Run("create token", [&] {
      SQLite::Statement insert(*db_, kInsertToken);
      BindText(insert, 1, name);
      insert.bind(2, hash.data(), static_cast<int>(hash.size()));
      insert.bind(3, created_ms);
      try {
        insert.exec();
      } catch (const SQLite::Exception& e) {
        if (e.getExtendedErrorCode() == SQLITE_CONSTRAINT_UNIQUE) {
          return absl::AlreadyExistsError(absl::StrCat("a token named ", name, " exists"));
        }
        throw;
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<TokenInfo>> ListTokens() override {
    std::vector<TokenInfo> tokens;
    absl::Status s = Run("list tokens", [&] {
      SQLite::Statement select(*db_, kSelectTokens);
      while (select.executeStep()) {
        TokenInfo& token = tokens.emplace_back();
        token.name = select.getColumn(0).getString();
        token.created_ms = select.getColumn(1).getInt64();
        token.last_used_ms = OptionalInt(select.getColumn(2));
        token.revoked_ms = OptionalInt(select.getColumn(3));
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return tokens;
  }

  absl::Status RevokeToken(const std::string& name, int64_t revoked_ms) override {
    return Run("revoke token", [&] {
      SQLite::Statement update(*db_, kRevokeToken);
      update.bind(1, revoked_ms);
      BindText(update, 2, name);
      if (update.exec() == 0) {
        return absl::NotFoundError(absl::StrCat("no live token named ", name));
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<LiveToken>> LiveTokens() override {
    std::vector<LiveToken> tokens;
    absl::Status s = Run("read tokens", [&] {
      SQLite::Statement select(*db_, kSelectLiveTokens);
      while (select.executeStep()) {
        SQLite::Column hash = select.getColumn(1);
        tokens.push_back(LiveToken{select.getColumn(0).getString(),
                                   std::string(static_cast<const char*>(hash.getBlob()),
                                               static_cast<size_t>(hash.getBytes()))});
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return tokens;
  }

  absl::Status RecordTokenUse(std::span<const std::pair<std::string, int64_t>> uses) override {
    if (uses.empty()) return absl::OkStatus();
    return Run("record token use", [&] {
      SQLite::Transaction transaction(*db_, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement update(*db_, kTouchToken);
      for (const auto& [name, time_ms] : uses) {
        update.bind(1, time_ms);
        BindText(update, 2, name);
        update.exec();
        update.reset();
      }
      transaction.commit();
      return absl::OkStatus();
    });
  }

  absl::StatusOr<bool> HasLiveToken() override {
    bool any = false;
    absl::Status s = Run("read tokens", [&] {
      any = db_->execAndGet(kHasLiveToken).getInt64() != 0;
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return any;
  }

  absl::StatusOr<bool> HasAnyToken() override {
    bool any = false;
    absl::Status s = Run("read tokens", [&] {
      any = db_->execAndGet(kHasAnyToken).getInt64() != 0;
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return any;
  }

  absl::Status AppendAccess(std::span<const AccessRecord> records) override {
    if (records.empty()) return absl::OkStatus();
    return Run("append to the access log", [&] {
      SQLite::Transaction transaction(*db_, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement insert(*db_, kInsertAccess);
      for (const AccessRecord& r : records) {
        insert.bind(1, r.time_ms);
        BindText(insert, 2, r.token);
        BindText(insert, 3, r.peer);
        BindText(insert, 4, r.method);
        BindText(insert, 5, r.filter);
        insert.bind(6, r.rows);
        insert.bind(7, r.bytes);
        insert.bind(8, r.code);
        BindText(insert, 9, r.message);
        insert.exec();
        insert.reset();
      }
      transaction.commit();
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<AccessRecord>> ListAccess(const AccessQuery& query) override {
    std::vector<AccessRecord> records;
    absl::Status s = Run("read the access log", [&] {
      SQLite::Statement select(*db_, kSelectAccess);
      if (query.from_ms) select.bind(1, *query.from_ms);
      if (query.to_ms) select.bind(2, *query.to_ms);
      if (query.token) BindText(select, 3, *query.token);
      select.bind(4, query.limit);
      while (select.executeStep()) {
        AccessRecord& r = records.emplace_back();
        r.time_ms = select.getColumn(0).getInt64();
        r.token = select.getColumn(1).getString();
        r.peer = select.getColumn(2).getString();
        r.method = select.getColumn(3).getString();
        r.filter = select.getColumn(4).getString();
        r.rows = select.getColumn(5).getInt64();
        r.bytes = select.getColumn(6).getInt64();
        r.code = select.getColumn(7).getInt();
        r.message = select.getColumn(8).getString();
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return records;
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
      if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(message);
      return absl::InternalError(message);
    }
  }

  std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AccessStore>> OpenSqliteAccessStore(const std::string& path) {
  try {
    auto db =
        std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX,
                                           static_cast<int>(kBusyTimeout.count()));
    return std::unique_ptr<AccessStore>(new SqliteAccessStore(std::move(db)));
  } catch (const SQLite::Exception& e) {
    return absl::InternalError(absl::StrCat("cannot open archive ", path, ": ", e.what()));
  }
}

}  // namespace pdkarchive::store
