#include "store/sqlite/migrations.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace pdkarchive::store {

absl::Status ApplyMigrations(SQLite::Database& db,
                             const std::vector<Migration>& migrations) {
  try {
    const int current = db.execAndGet("PRAGMA user_version").getInt();
    const int newest = migrations.empty() ? 0 : migrations.back().number;
    if (current > newest) {
      return absl::FailedPreconditionError(absl::StrCat(
          "archive schema version ", current, " is newer than this program knows (",
          newest, "); upgrade pdk-archive"));
    }
    for (const Migration& m : migrations) {
      if (m.number <= current) continue;
      try {
        SQLite::Transaction txn(db, SQLite::TransactionBehavior::IMMEDIATE);
        db.exec(std::string(m.sql));
        // PRAGMA takes no bound parameters; the number is ours, not input.
        db.exec(absl::StrCat("PRAGMA user_version=", m.number));
        txn.commit();
      } catch (const SQLite::Exception& e) {
        return absl::InternalError(
            absl::StrCat("migration ", std::string(m.name), " failed: ", e.what()));
      }
    }
    return absl::OkStatus();
  } catch (const SQLite::Exception& e) {
    return absl::InternalError(absl::StrCat("reading schema version: ", e.what()));
  }
}

}  // namespace pdkarchive::store
