// The PostgreSQL ArchiveReader. Every statement asks for binary results:
// integers arrive as 8 bytes, and text and the payload (bytea) as their own
// bytes, with no hex to decode or numbers to parse (pg_query.h's DecodeRow).
// Statements are bound (PQexecParams' unnamed statements), so each is
// planned with its values: partitions outside the time bounds are pruned.
#include "store/postgres/pg_reader.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "store/postgres/pg_count.h"
#include "store/postgres/pg_pool.h"
#include "store/postgres/pg_query.h"

namespace pdkarchive::store::pg {
namespace {

constexpr char kSelectPageTokenKey[] =
    "SELECT value FROM archive_meta WHERE name = 'page_token_key'";
constexpr char kSelectLastSequence[] = "SELECT last_sequence FROM archive_state WHERE id = 1";
// ScanEach past this many rows reads through a cursor, this many rows a
// fetch, so memory stays flat however many rows a call visits.
constexpr int kScanChunk = 4096;
constexpr char kBeginScan[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
constexpr char kCommit[] = "COMMIT";
constexpr char kCursorName[] = "pdkarchive_scan";
// The most sequences one live-feed read looks at, so a selective filter's
// catch-up stays bounded.
constexpr int64_t kMaxSequencesPerRead = 8192;

// Replaces the "prefix.*" patterns among `filter`'s topics by the stored
// topics they match (so a list can walk each topic's index range in order).
// False when the filter names topics and none is stored.
absl::StatusOr<bool> ResolveTopics(Lease& lease, EventFilter& filter, std::string_view what) {
  std::optional<Query> resolve = ResolvePrefixes(filter.topics);
  if (!resolve) return true;
  absl::StatusOr<Result> result = lease.Query(resolve->sql, resolve->params, what);
  if (!result.ok()) return result.status();
  std::vector<std::string> topics;
  for (const std::string& topic : filter.topics) {
    if (!IsPrefixPattern(topic)) topics.push_back(topic);
  }
  for (int i = 0; i < result->rows(); ++i) topics.emplace_back(result->bytes(i, 0));
  filter.topics = std::move(topics);
  return !filter.topics.empty();
}

class PgReader final : public ArchiveReader {
 public:
  explicit PgReader(std::unique_ptr<ConnectionPool> pool) : pool_(std::move(pool)) {}

  absl::StatusOr<ListPage> List(const ListQuery& query, const QueryControl& control) override;
  absl::StatusOr<EventRow> Get(int64_t sequence, const QueryControl& control) override;
  absl::StatusOr<std::vector<CountGroup>> Count(const EventFilter& filter,
                                                const std::vector<Dimension>& dimensions,
                                                int64_t max_groups,
                                                const QueryControl& control) override;
  absl::StatusOr<ScanProgress> ScanEach(const EventFilter& filter,
                                        const std::optional<Cursor>& after, int limit,
                                        bool with_raw,
                                        absl::FunctionRef<bool(const EventView&)> visit,
                                        const QueryControl& control) override;
  absl::StatusOr<SequencePage> ListAfterSequence(const EventFilter& filter,
                                                 int64_t after_sequence, int limit,
                                                 size_t max_bytes,
                                                 const QueryControl& control) override;
  absl::StatusOr<int64_t> MaxSequence() override;
  absl::StatusOr<std::string> PageTokenKey() override;

 private:
  const std::unique_ptr<ConnectionPool> pool_;
};

absl::StatusOr<ListPage> PgReader::List(const ListQuery& query, const QueryControl& control) {
  constexpr char kWhat[] = "listing events";
  if (query.limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  Lease lease(*pool_, Lane::kScan, control);
  if (!lease.status().ok()) return lease.status();
  ListQuery resolved = query;
  absl::StatusOr<bool> any = ResolveTopics(lease, resolved.filter, kWhat);
  if (!any.ok()) return any.status();
  if (!*any) return ListPage{};
  // One row more than asked for says whether more follow.
  const Query built = BuildList(resolved, static_cast<int64_t>(query.limit) + 1);
  absl::StatusOr<Result> result = lease.Query(built.sql, built.params, kWhat);
  if (!result.ok()) return result.status();
  ListPage page;
  size_t bytes = 0;
  for (int i = 0; i < result->rows(); ++i) {
    if (page.rows.size() == static_cast<size_t>(query.limit)) {
      page.more = true;
      break;
    }
    EventRow& row = page.rows.emplace_back();
    DecodeRow(*result, i, 0, query.with_raw, row);
    bytes += RowReplyBytes(row);
    if (query.max_bytes > 0 && bytes > query.max_bytes && page.rows.size() > 1) {
      page.rows.pop_back();
      page.more = true;
      break;
    }
  }
  return page;
}

absl::StatusOr<EventRow> PgReader::Get(int64_t sequence, const QueryControl& control) {
  constexpr char kWhat[] = "reading an event";
  Lease lease(*pool_, Lane::kLookup, control);
  if (!lease.status().ok()) return lease.status();
  const Query built = RowBySequence(sequence);
  absl::StatusOr<Result> result = lease.Query(built.sql, built.params, kWhat);
  if (!result.ok()) return result.status();
  if (result->rows() == 0) {
    return absl::NotFoundError(absl::StrCat("no event with sequence ", sequence));
  }
  EventRow row;
  DecodeRow(*result, 0, 0, /*with_raw=*/true, row);
  return row;
}

absl::StatusOr<std::vector<CountGroup>> PgReader::Count(const EventFilter& filter,
                                                        const std::vector<Dimension>& dimensions,
                                                        int64_t max_groups,
                                                        const QueryControl& control) {
  constexpr char kWhat[] = "counting events";
  for (size_t i = 0; i < dimensions.size(); ++i) {
    if (std::find(dimensions.begin() + static_cast<std::ptrdiff_t>(i) + 1, dimensions.end(),
                  dimensions[i]) != dimensions.end()) {
      return absl::InvalidArgumentError("a dimension is repeated");
    }
  }
  Lease lease(*pool_, Lane::kScan, control);
  if (!lease.status().ok()) return lease.status();
  const CountSource source = ChooseCountSource(filter, dimensions);
  // One group past the limit is enough to know: the server stops there.
  const int64_t max_rows = max_groups > 0 ? max_groups + 1 : 0;
  const Query built = BuildCount(filter, dimensions, source, max_rows);
  absl::StatusOr<Result> result = lease.Query(built.sql, built.params, kWhat);
  if (!result.ok()) return result.status();
  if (max_groups > 0 && result->rows() > max_groups) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the count has more than ", max_groups,
                     " groups; narrow the filter or group by fewer dimensions"));
  }
  std::vector<CountGroup> groups = ReadCountGroups(*result, dimensions, source);
  // Formatting and sorting many groups takes a while too: past the deadline
  // the answer is as late as an unfinished one.
  if (absl::Status stopped = lease.CheckControl(kWhat); !stopped.ok()) return stopped;
  return groups;
}

absl::StatusOr<ScanProgress> PgReader::ScanEach(const EventFilter& filter,
                                                const std::optional<Cursor>& after, int limit,
                                                bool with_raw,
                                                absl::FunctionRef<bool(const EventView&)> visit,
                                                const QueryControl& control) {
  constexpr char kWhat[] = "scanning events";
  if (limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  Lease lease(*pool_, Lane::kScan, control);
  if (!lease.status().ok()) return lease.status();
  ListQuery query;
  query.filter = filter;
  query.limit = limit;
  query.after = after;
  query.with_raw = with_raw;
  ScanProgress progress;
  absl::StatusOr<bool> any = ResolveTopics(lease, query.filter, kWhat);
  if (!any.ok()) return any.status();
  if (!*any) {
    progress.exhausted = true;
    return progress;
  }
  const Query built = BuildList(query, limit);
  EventView view;
  // Visits the rows of one result; false once the visitor stopped.
  auto visit_all = [&](const Result& result) {
    for (int i = 0; i < result.rows(); ++i) {
      DecodeRow(result, i, 0, with_raw, view);
      ++progress.rows;
      progress.last = Cursor{view.occur_time_ms, view.sequence};
      if (!visit(view)) return false;
    }
    return true;
  };
  if (limit <= kScanChunk) {
    // One statement: one snapshot.
    absl::StatusOr<Result> result = lease.Query(built.sql, built.params, kWhat);
    if (!result.ok()) return result.status();
    if (visit_all(*result) && result->rows() < limit) progress.exhausted = true;
    return progress;
  }
  // A cursor in a read-only transaction reads one snapshot a chunk at a time.
  if (absl::Status s = lease.Exec(kBeginScan, kWhat); !s.ok()) return s;
  const std::string declare =
      absl::StrCat("DECLARE ", kCursorName, " NO SCROLL CURSOR FOR ", built.sql);
  if (absl::StatusOr<Result> declared = lease.Query(declare, built.params, kWhat);
      !declared.ok()) {
    return declared.status();
  }
  const std::string fetch = absl::StrCat("FETCH ", kScanChunk, " FROM ", kCursorName);
  while (progress.rows < limit) {
    absl::StatusOr<Result> result = lease.Query(fetch, Params(), kWhat);
    if (!result.ok()) return result.status();
    if (!visit_all(*result)) break;
    if (result->rows() < kScanChunk) {
      // The cursor ended before its LIMIT: no matching row follows.
      progress.exhausted = progress.rows < limit;
      break;
    }
  }
  // Ending the transaction closes the cursor.
  if (absl::Status s = lease.Exec(kCommit, kWhat); !s.ok()) return s;
  return progress;
}

absl::StatusOr<SequencePage> PgReader::ListAfterSequence(const EventFilter& filter,
                                                         int64_t after_sequence, int limit,
                                                         size_t max_bytes,
                                                         const QueryControl& control) {
  constexpr char kWhat[] = "reading new events";
  if (limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  Lease lease(*pool_, Lane::kScan, control);
  if (!lease.status().ok()) return lease.status();
  const int64_t through = after_sequence > INT64_MAX - kMaxSequencesPerRead
                              ? INT64_MAX
                              : after_sequence + kMaxSequencesPerRead;
  const Query built = RowsAfterSequence(filter, after_sequence, through, limit);
  absl::StatusOr<Result> result = lease.Query(built.sql, built.params, kWhat);
  if (!result.ok()) return result.status();
  SequencePage page;
  if (result->rows() == 0) return absl::InternalError("archive_state has no row");
  page.newest = BinaryInt(*result, 0, 0);
  page.scanned_through = std::max(after_sequence, std::min(page.newest, through));
  size_t bytes = 0;
  bool cut = false;
  for (int i = 0; i < result->rows(); ++i) {
    if (result->is_null(i, 1)) break;  // the one row of an empty window
    EventRow& row = page.rows.emplace_back();
    DecodeRow(*result, i, 1, /*with_raw=*/true, row);
    bytes += RowReplyBytes(row);
    if (max_bytes > 0 && bytes > max_bytes && page.rows.size() > 1) {
      page.rows.pop_back();
      cut = true;
      break;
    }
  }
  if (cut || page.rows.size() == static_cast<size_t>(limit)) {
    page.scanned_through = page.rows.back().sequence;
  }
  return page;
}

absl::StatusOr<int64_t> PgReader::MaxSequence() {
  constexpr char kWhat[] = "reading the newest sequence";
  Lease lease(*pool_, Lane::kLookup, {});
  if (!lease.status().ok()) return lease.status();
  absl::StatusOr<Result> result = lease.Query(kSelectLastSequence, Params(), kWhat);
  if (!result.ok()) return result.status();
  if (result->rows() == 0) return absl::InternalError("archive_state has no row");
  return BinaryInt(*result, 0, 0);
}

absl::StatusOr<std::string> PgReader::PageTokenKey() {
  constexpr char kWhat[] = "reading the page token key";
  Lease lease(*pool_, Lane::kLookup, {});
  if (!lease.status().ok()) return lease.status();
  absl::StatusOr<Result> result = lease.Query(kSelectPageTokenKey, Params(), kWhat);
  if (!result.ok()) return result.status();
  if (result->rows() == 0 || result->bytes(0, 0).empty()) {
    return absl::FailedPreconditionError(
        "the archive has no page_token_key; open it for writing once");
  }
  return std::string(result->bytes(0, 0));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenReader(const ConnectOptions& connect,
                                                          const EventReaderOptions& options) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  if (options.lookup_connections < 0) {
    return absl::InvalidArgumentError("lookup_connections must not be negative");
  }
  auto pool = std::make_unique<ConnectionPool>(connect, options.max_connections,
                                               options.lookup_connections);
  // One connection now, so that an unreachable server is reported here; the
  // pool keeps it.
  {
    Lease first(*pool, Lane::kLookup, {});
    if (!first.status().ok()) return first.status();
  }
  return std::unique_ptr<ArchiveReader>(new PgReader(std::move(pool)));
}

}  // namespace pdkarchive::store::pg
