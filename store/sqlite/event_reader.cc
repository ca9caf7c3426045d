#include "store/sqlite/event_reader.h"

#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "store/raw_codec.h"
#include "store/sqlite/connection_pool.h"
#include "store/sqlite/count_plan.h"
#include "store/sqlite/name_cache.h"
#include "store/sqlite/read_query.h"
#include "store/sqlite/read_statement.h"
#include "store/sqlite/row_decoder.h"
#include "store/sqlite/sqlite_util.h"

namespace pdkarchive::store {
namespace {

using sqlite::Conditions;
using sqlite::Lane;
using sqlite::Lease;
using sqlite::Query;
using sqlite::RowDecoder;
using sqlite::Statement;

constexpr char kSelectMeta[] = "SELECT value FROM archive_meta WHERE name = ?";
constexpr char kPageTokenKeyName[] = "page_token_key";
constexpr char kExplain[] = "EXPLAIN QUERY PLAN ";
// The column of EXPLAIN QUERY PLAN's rows that holds the detail text.
constexpr int kExplainDetailColumn = 3;
// The most sequences one live-feed read looks at, so a selective filter's
// catch-up stays bounded.
constexpr int64_t kMaxSequencesPerRead = 8192;

}  // namespace

absl::StatusOr<std::unique_ptr<EventReader>> EventReader::Open(const std::string& path,
                                                               int max_connections) {
  EventReaderOptions options;
  options.max_connections = max_connections;
  return Open(path, options);
}

absl::StatusOr<std::unique_ptr<EventReader>> EventReader::Open(
    const std::string& path, const EventReaderOptions& options) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  if (options.lookup_connections < 0) {
    return absl::InvalidArgumentError("lookup_connections must not be negative");
  }
  absl::StatusOr<std::unique_ptr<SQLite::Database>> first = OpenReadConnection(path);
  if (!first.ok()) return first.status();
  absl::StatusOr<std::unique_ptr<RawDecompressor>> decompressor = RawDecompressor::Create();
  if (!decompressor.ok()) return decompressor.status();
  auto pool = std::make_unique<sqlite::ConnectionPool>(
      path, options.max_connections, options.lookup_connections, *std::move(first));
  return std::unique_ptr<EventReader>(
      new EventReader(std::move(pool), *std::move(decompressor), options.name_cache_bytes));
}

EventReader::EventReader(std::unique_ptr<sqlite::ConnectionPool> pool,
                         std::unique_ptr<RawDecompressor> decompressor, size_t name_cache_bytes)
    : pool_(std::move(pool)),
      decompressor_(std::move(decompressor)),
      names_(std::make_unique<sqlite::NameCache>(name_cache_bytes)) {}

EventReader::~EventReader() = default;

absl::StatusOr<ListPage> EventReader::List(const ListQuery& query, const QueryControl& control) {
  constexpr char kWhat[] = "listing events";
  if (query.limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = pool_->Acquire(Lane::kScan, control);
  if (!db.ok()) return db.status();
  Lease lease(*pool_, Lane::kScan, *std::move(db), control);
  absl::StatusOr<std::optional<std::vector<int64_t>>> topic_ids =
      sqlite::ResolveTopicIds(lease.handle(), query.filter);
  if (!topic_ids.ok()) return lease.Failed(topic_ids.status(), kWhat);
  ListPage page;
  if (*topic_ids && (*topic_ids)->empty()) return page;  // no such topic stored
  const Query built = sqlite::BuildList(query, *topic_ids);
  Statement statement(lease.handle(), built.sql, built.values, kWhat);
  RowDecoder decoder(*names_, *decompressor_);
  size_t bytes = 0;
  while (statement.Next()) {
    if (page.rows.size() == static_cast<size_t>(query.limit)) {
      page.more = true;
      break;
    }
    EventRow& row = page.rows.emplace_back();
    if (absl::Status s = decoder.Decode(statement, query.with_raw, row); !s.ok()) {
      return lease.Failed(s, kWhat);
    }
    bytes += RowReplyBytes(row);
    if (query.max_bytes > 0 && bytes > query.max_bytes && page.rows.size() > 1) {
      page.rows.pop_back();
      page.more = true;
      break;
    }
  }
  if (!statement.status().ok()) return lease.Failed(statement.status(), kWhat);
  return page;
}

absl::StatusOr<EventRow> EventReader::Get(int64_t sequence, const QueryControl& control) {
  constexpr char kWhat[] = "reading an event";
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = pool_->Acquire(Lane::kLookup, control);
  if (!db.ok()) return db.status();
  Lease lease(*pool_, Lane::kLookup, *std::move(db), control);
  const Query built = sqlite::RowBySequence(sequence);
  Statement statement(lease.handle(), built.sql, built.values, kWhat);
  if (!statement.Next()) {
    if (!statement.status().ok()) return lease.Failed(statement.status(), kWhat);
    return absl::NotFoundError("no event with sequence " + std::to_string(sequence));
  }
  EventRow row;
  RowDecoder decoder(*names_, *decompressor_);
  if (absl::Status s = decoder.Decode(statement, /*with_raw=*/true, row); !s.ok()) {
    return lease.Failed(s, kWhat);
  }
  return row;
}

absl::StatusOr<std::vector<CountGroup>> EventReader::Count(
    const EventFilter& filter, const std::vector<Dimension>& dimensions, int64_t max_groups,
    const QueryControl& control) {
  constexpr char kWhat[] = "counting events";
  std::vector<Dimension> seen;
  for (Dimension dimension : dimensions) {
    if (std::find(seen.begin(), seen.end(), dimension) != seen.end()) {
      return absl::InvalidArgumentError("a dimension is repeated");
    }
    seen.push_back(dimension);
  }
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = pool_->Acquire(Lane::kScan, control);
  if (!db.ok()) return db.status();
  Lease lease(*pool_, Lane::kScan, *std::move(db), control);
  // The topics are resolved in the count's snapshot too.
  sqlite::ReadTransaction snapshot(lease.handle(), kWhat);
  if (!snapshot.status().ok()) return lease.Failed(snapshot.status(), kWhat);
  absl::StatusOr<std::optional<std::vector<int64_t>>> topic_ids =
      sqlite::ResolveTopicIds(lease.handle(), filter);
  if (!topic_ids.ok()) return lease.Failed(topic_ids.status(), kWhat);
  absl::StatusOr<std::vector<CountGroup>> groups = sqlite::CountGroups(
      snapshot, lease.handle(), filter, *topic_ids, dimensions, max_groups);
  if (!groups.ok()) return lease.Failed(groups.status(), kWhat);
  if (absl::Status s = snapshot.Commit(); !s.ok()) return lease.Failed(s, kWhat);
  return groups;
}

absl::StatusOr<ScanProgress> EventReader::ScanEach(
    const EventFilter& filter, const std::optional<Cursor>& after, int limit, bool with_raw,
    absl::FunctionRef<bool(const EventView&)> visit, const QueryControl& control) {
  constexpr char kWhat[] = "scanning events";
  if (limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = pool_->Acquire(Lane::kScan, control);
  if (!db.ok()) return db.status();
  Lease lease(*pool_, Lane::kScan, *std::move(db), control);
  ScanProgress progress;
  absl::StatusOr<std::optional<std::vector<int64_t>>> topic_ids =
      sqlite::ResolveTopicIds(lease.handle(), filter);
  if (!topic_ids.ok()) return lease.Failed(topic_ids.status(), kWhat);
  if (*topic_ids && (*topic_ids)->empty()) {  // no such topic stored
    progress.exhausted = true;
    return progress;
  }
  ListQuery query;
  query.filter = filter;
  query.limit = limit;
  query.after = after;
  const Query built = sqlite::BuildList(query, *topic_ids);
  Statement statement(lease.handle(), built.sql, built.values, kWhat);
  if (!statement.status().ok()) return lease.Failed(statement.status(), kWhat);
  RowDecoder decoder(*names_, *decompressor_);
  EventView row;
  while (progress.rows < limit) {
    if (!statement.Next()) {
      if (!statement.status().ok()) return lease.Failed(statement.status(), kWhat);
      progress.exhausted = true;
      break;
    }
    if (absl::Status s = decoder.Decode(statement, with_raw, row); !s.ok()) {
      // A payload that cannot be unpacked is DataLoss, whatever the control.
      if (absl::IsDataLoss(s)) return s;
      return lease.Failed(s, kWhat);
    }
    ++progress.rows;
    progress.last = Cursor{row.occur_time_ms, row.sequence};
    if (!visit(row)) break;
  }
  return progress;
}

absl::StatusOr<SequencePage> EventReader::ListAfterSequence(const EventFilter& filter,
                                                            int64_t after_sequence, int limit,
                                                            size_t max_bytes,
                                                            const QueryControl& control) {
  constexpr char kWhat[] = "reading new events";
  if (limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = pool_->Acquire(Lane::kScan, control);
  if (!db.ok()) return db.status();
  Lease lease(*pool_, Lane::kScan, *std::move(db), control);
  // Sequences are assigned in commit order by one writer, so every row at or
  // below the maximum read here is already committed: bounding the second
  // statement by it gives one consistent window without holding a read
  // transaction open. The topics of those rows are committed with or before
  // them, so resolving the filter's topics after it finds them.
  Statement max_statement(lease.handle(), sqlite::kSelectMaxSequence, kWhat);
  if (!max_statement.Next()) return lease.Failed(max_statement.status(), kWhat);
  const int64_t newest = max_statement.Int(0);
  const int64_t max_sequence = std::min(newest, after_sequence + kMaxSequencesPerRead);

  SequencePage page;
  page.newest = newest;
  page.scanned_through = std::max(after_sequence, max_sequence);
  if (max_sequence <= after_sequence) return page;

  absl::StatusOr<std::optional<std::vector<int64_t>>> topic_ids =
      sqlite::ResolveTopicIds(lease.handle(), filter);
  if (!topic_ids.ok()) return lease.Failed(topic_ids.status(), kWhat);
  Conditions conditions;
  conditions.AddFilter(filter, *topic_ids);
  const Query built = sqlite::RowsInSequenceWindow(conditions, after_sequence, max_sequence,
                                                   static_cast<int64_t>(limit));
  Statement statement(lease.handle(), built.sql, built.values, kWhat);
  RowDecoder decoder(*names_, *decompressor_);
  size_t bytes = 0;
  bool cut = false;
  while (statement.Next()) {
    EventRow& row = page.rows.emplace_back();
    if (absl::Status s = decoder.Decode(statement, /*with_raw=*/true, row); !s.ok()) {
      return lease.Failed(s, kWhat);
    }
    bytes += RowReplyBytes(row);
    if (max_bytes > 0 && bytes > max_bytes && page.rows.size() > 1) {
      page.rows.pop_back();
      cut = true;
      break;
    }
  }
  if (!statement.status().ok()) return lease.Failed(statement.status(), kWhat);
  if (cut || page.rows.size() == static_cast<size_t>(limit)) {
    page.scanned_through = page.rows.back().sequence;
  }
  return page;
}

absl::StatusOr<int64_t> EventReader::MaxSequence() {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = pool_->Acquire(Lane::kLookup, {});
  if (!db.ok()) return db.status();
  Lease lease(*pool_, Lane::kLookup, *std::move(db), {});
  Statement statement(lease.handle(), sqlite::kSelectMaxSequence, "reading the newest sequence");
  if (!statement.Next()) return statement.status();
  return statement.Int(0);
}

absl::StatusOr<std::string> EventReader::PageTokenKey() {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = pool_->Acquire(Lane::kLookup, {});
  if (!db.ok()) return db.status();
  Lease lease(*pool_, Lane::kLookup, *std::move(db), {});
  Statement statement(lease.handle(), kSelectMeta, {std::string(kPageTokenKeyName)},
                      "reading the page token key");
  if (!statement.Next() || statement.Bytes(0).empty()) {
    if (!statement.status().ok()) return statement.status();
    return absl::FailedPreconditionError(
        "the archive has no page_token_key; open it for writing once");
  }
  return std::string(statement.Bytes(0));
}

absl::StatusOr<std::vector<std::string>> EventReader::ExplainList(const ListQuery& query) {
  constexpr char kWhat[] = "explaining a query";
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = pool_->Acquire(Lane::kScan, {});
  if (!db.ok()) return db.status();
  Lease lease(*pool_, Lane::kScan, *std::move(db), {});
  absl::StatusOr<std::optional<std::vector<int64_t>>> topic_ids =
      sqlite::ResolveTopicIds(lease.handle(), query.filter);
  if (!topic_ids.ok()) return topic_ids.status();
  const Query built = sqlite::BuildList(query, *topic_ids);
  Statement statement(lease.handle(), std::string(kExplain) + built.sql, built.values, kWhat);
  std::vector<std::string> details;
  while (statement.Next()) details.emplace_back(statement.Bytes(kExplainDetailColumn));
  if (!statement.status().ok()) return statement.status();
  return details;
}

}  // namespace pdkarchive::store
