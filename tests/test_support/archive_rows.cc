#include "tests/test_support/archive_rows.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/archive.h"
#include "store/postgres/pg_connection.h"

namespace pdkarchive::testing {

std::vector<store::EventRow> ReadAllRows(store::ArchiveReader& reader) {
  std::vector<store::EventRow> rows;
  auto newest = reader.MaxSequence();
  EXPECT_TRUE(newest.ok()) << newest.status();
  if (!newest.ok()) return rows;
  int64_t after = 0;
  while (after < *newest) {
    auto page = reader.ListAfterSequence(store::EventFilter{}, after, 1000);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok() || page->scanned_through <= after) break;
    for (store::EventRow& row : page->rows) rows.push_back(std::move(row));
    after = page->scanned_through;
  }
  return rows;
}

std::vector<store::EventRow> ReadAllRows(const std::string& db) {
  store::EventReaderOptions options;
  options.max_connections = 1;
  auto reader = store::OpenArchiveReader(db, options);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return {};
  return ReadAllRows(**reader);
}

std::string ArchiveIntegrity(const std::string& db) {
  if (!store::pg::IsPostgresUri(db)) {
    try {
      SQLite::Database conn(db, SQLite::OPEN_READONLY);
      return conn.execAndGet("PRAGMA integrity_check").getString();
    } catch (const SQLite::Exception& e) {
      return e.what();
    }
  }
  store::pg::ConnectOptions connect;
  connect.uri = db;
  auto conn = store::pg::Connection::Open(connect);
  if (!conn.ok()) return conn.status().ToString();
  auto result = (*conn)->Query(
      "SELECT (SELECT count(*) FROM events), (SELECT count(DISTINCT sequence) FROM events), "
      "(SELECT COALESCE(min(sequence), 0) FROM events), "
      "(SELECT COALESCE(max(sequence), 0) FROM events), "
      "(SELECT count(*) FROM event_keys), (SELECT last_sequence FROM archive_state), "
      "(SELECT COALESCE(sum(n), 0) FROM counts_daily), "
      "(SELECT COALESCE(sum(n), 0) FROM counts_daily_topic), "
      "(SELECT count(*) FROM events e LEFT JOIN event_keys k USING (sequence) "
      " WHERE k.sequence IS NULL)");
  if (!result.ok()) return result.status().ToString();
  const int64_t rows = result->int64(0, 0);
  const int64_t distinct = result->int64(0, 1);
  const int64_t min_sequence = result->int64(0, 2);
  const int64_t max_sequence = result->int64(0, 3);
  const int64_t keys = result->int64(0, 4);
  const int64_t last = result->int64(0, 5);
  const int64_t rollup = result->int64(0, 6);
  const int64_t topic_rollup = result->int64(0, 7);
  const int64_t keyless = result->int64(0, 8);
  if (distinct != rows) return absl::StrCat(rows - distinct, " repeated sequences");
  if (rows > 0 && (min_sequence != 1 || max_sequence != rows)) {
    return absl::StrCat("sequences ", min_sequence, "..", max_sequence, " for ", rows, " rows");
  }
  if (max_sequence != last) {
    return absl::StrCat("last_sequence ", last, " but the newest row is ", max_sequence);
  }
  if (keys != rows || keyless != 0) {
    return absl::StrCat(keys, " dedupe keys for ", rows, " rows, ", keyless, " rows without");
  }
  if (rollup != rows || topic_rollup != rows) {
    return absl::StrCat("rollups count ", rollup, " and ", topic_rollup, " of ", rows, " rows");
  }
  return "ok";
}

}  // namespace pdkarchive::testing
