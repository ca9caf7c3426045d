#include "store/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "store/sqlite_util.h"

namespace pdkarchive::store {
namespace {

// A redelivery hits the UNIQUE dedupe_key and inserts nothing; RETURNING then
// yields no row and kSelectSequenceByDedupeKey finds the original.
constexpr char kInsertEvent[] =
    "INSERT INTO events(event_id, topic, family, panel_id, ou_id, door_id, "
    "door_name, person_id, actor_user_id, occur_time, receive_time, "
    "subscription, dedupe_key, raw) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
    "ON CONFLICT(dedupe_key) DO NOTHING RETURNING sequence";

constexpr char kSelectSequenceByDedupeKey[] =
    "SELECT sequence FROM events WHERE dedupe_key = ?1";

void BindText(SQLite::Statement& stmt, int index, const std::string& value) {
  // bindNoCopy: the row outlives the statement's use of it.
  stmt.bindNoCopy(index, value);
}

}  // namespace

struct SqliteStore::Statements {
  explicit Statements(SQLite::Database& db)
      : insert(db, kInsertEvent), select_by_key(db, kSelectSequenceByDedupeKey) {}
  SQLite::Statement insert;
  SQLite::Statement select_by_key;
};

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(
    const std::string& path) {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = OpenWriteConnection(path);
  if (!db.ok()) return db.status();
  try {
    return std::unique_ptr<SqliteStore>(new SqliteStore(*std::move(db)));
  } catch (const SQLite::Exception& e) {
    return absl::InternalError(absl::StrCat("preparing statements: ", e.what()));
  }
}

SqliteStore::SqliteStore(std::unique_ptr<SQLite::Database> db)
    : db_(std::move(db)), statements_(std::make_unique<Statements>(*db_)) {}

SqliteStore::~SqliteStore() = default;

absl::StatusOr<std::vector<AppendResult>> SqliteStore::AppendBatch(
    std::span<const EventRow> rows) {
  std::vector<AppendResult> results;
  results.reserve(rows.size());
  SQLite::Statement& insert = statements_->insert;
  SQLite::Statement& select = statements_->select_by_key;
  try {
    SQLite::Transaction txn(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    for (const EventRow& row : rows) {
      insert.reset();
      insert.clearBindings();
      BindText(insert, 1, row.event_id);
      BindText(insert, 2, row.topic);
      BindText(insert, 3, row.family);
      BindText(insert, 4, row.panel_id);
      BindText(insert, 5, row.ou_id);
      if (row.door_id) insert.bind(6, *row.door_id);
      BindText(insert, 7, row.door_name);
      if (row.person_id) insert.bind(8, *row.person_id);
      BindText(insert, 9, row.actor_user_id);
      insert.bind(10, row.occur_time_ms);
      insert.bind(11, row.receive_time_ms);
      BindText(insert, 12, row.subscription);
      insert.bindNoCopy(13, row.dedupe_key.data(), static_cast<int>(row.dedupe_key.size()));
      BindText(insert, 14, row.raw);
      if (insert.executeStep()) {
        results.push_back({insert.getColumn(0).getInt64(), false});
        // Step past the RETURNING row so the insert statement completes.
        while (insert.executeStep()) {
        }
        continue;
      }
      select.reset();
      select.bindNoCopy(1, row.dedupe_key.data(), static_cast<int>(row.dedupe_key.size()));
      if (!select.executeStep()) {
        return absl::InternalError("dedupe key conflict without a stored row");
      }
      results.push_back({select.getColumn(0).getInt64(), true});
      select.reset();
    }
    insert.reset();
    txn.commit();
  } catch (const SQLite::Exception& e) {
    insert.reset();
    select.reset();
    // Disk full, I/O error, a lock held too long: the caller may retry.
    return absl::UnavailableError(absl::StrCat("archive cannot commit: ", e.what()));
  }
  return results;
}

}  // namespace pdkarchive::store
