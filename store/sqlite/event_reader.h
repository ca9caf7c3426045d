// EventReader: the read side of the archive. Every query the query API needs
// (keyset-paged lists, lookups by sequence, grouped counts, export scans and
// the live feed's catch-up reads) runs here, over a small pool of read-only
// connections, so readers never block the single writer (WAL).
//
// All SQL is fixed text: the WHERE clause is assembled from constant
// fragments and every value is bound, never concatenated. The reader's parts
// live beside it in store/sqlite/: read_query.h builds the statements (and
// composes every read of an index with the events not merged into it yet),
// count_plan.h plans counts, row_decoder.h holds the one column list and
// decoder, connection_pool.h the connections and deadlines.
//
// Every query can be bounded (QueryControl): it is interrupted inside SQLite
// once its deadline passes or its caller cancels it. Lookups by sequence keep
// connections of their own, so they never wait behind scans.
#ifndef PDKARCHIVE_STORE_SQLITE_EVENT_READER_H_
#define PDKARCHIVE_STORE_SQLITE_EVENT_READER_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "store/event.h"

namespace pdkarchive::store {

class RawDecompressor;
namespace sqlite {
class ConnectionPool;
class NameCache;
}  // namespace sqlite

// What CountEvents can group by.
enum class Dimension {
  kTopic,   // the topic text
  kPanel,   // panel_id
  kDoor,    // door_id as decimal text, "" when absent
  kPerson,  // person_id as decimal text, "" when absent
  kHour,    // UTC hour of occur_time, "2026-01-01T13:00:00Z"
  kDay,     // UTC day of occur_time, "2026-01-01"
};

// Bounds one query in time. The query is interrupted (inside SQLite, between
// steps of its statement) once `deadline` passes, with DeadlineExceeded, or
// once `*cancelled` becomes true, with Cancelled; waiting for a connection
// counts against the deadline too. The default bounds nothing. `cancelled`,
// when set, must outlive the call.
struct QueryControl {
  std::chrono::steady_clock::time_point deadline =
      std::chrono::steady_clock::time_point::max();
  const std::atomic<bool>* cancelled = nullptr;
};

// The bytes a row adds to a reply: its text and payload plus a fixed
// allowance for the other fields and the encoding. Page byte budgets
// (ListQuery::max_bytes, ListAfterSequence) count rows with this.
size_t RowReplyBytes(const EventRow& row);

// One page request in (occur_time, sequence) order.
struct ListQuery {
  EventFilter filter;
  int limit = 100;              // rows wanted, >= 1
  std::optional<Cursor> after;  // resume strictly after this position
  bool descending = false;
  bool with_raw = true;          // false leaves EventRow::raw empty (cheaper)
  // When > 0, the page ends before the row that would take the rows'
  // RowReplyBytes past this (setting `more`); the first row is always kept.
  size_t max_bytes = 0;
};

// One page of rows; `more` says whether rows follow the last one.
struct ListPage {
  std::vector<EventRow> rows;
  bool more = false;
};

// One group of a count: one key value per requested dimension, in order.
struct CountGroup {
  std::vector<std::string> key;
  int64_t count = 0;

  bool operator==(const CountGroup&) const = default;
};

// Rows after a sequence, for the live feed. Every row with a sequence in
// (after, scanned_through] that matches the filter is in `rows` (in sequence
// order), so the next call may resume after `scanned_through`.
struct SequencePage {
  std::vector<EventRow> rows;
  int64_t scanned_through = 0;
  int64_t newest = 0;  // the archive's newest sequence when read: more may follow
};

// One row as ScanEach presents it: EventRow's fields (less the dedupe key)
// without copies. The text points into the reader's buffers and is valid
// only during the visit.
struct EventView {
  int64_t sequence = 0;
  std::string_view event_id;
  std::string_view topic;
  std::string_view family;
  std::string_view panel_id;
  std::string_view ou_id;
  std::optional<int64_t> door_id;
  std::string_view door_name;
  std::optional<int64_t> person_id;
  std::string_view actor_user_id;
  int64_t occur_time_ms = 0;
  int64_t receive_time_ms = 0;
  std::string_view subscription;
  std::string_view raw;  // empty unless the scan asked for it
};

// How far one ScanEach got.
struct ScanProgress {
  int64_t rows = 0;             // rows visited
  std::optional<Cursor> last;   // the last row visited; unset when none was
  bool exhausted = false;       // true when no matching row follows `last`
};

// How an EventReader uses its connections and memory.
struct EventReaderOptions {
  // Connections open at once (>= 1); further queries wait for one.
  int max_connections = 4;
  // Of those, how many only lookups (Get, MaxSequence, PageTokenKey) may
  // take, so a lookup never waits behind scans. Ignored (no reservation) when
  // max_connections is 1; at most max_connections - 1.
  int lookup_connections = 1;
  // The most bytes of names (panel ids, door names, subscriptions) kept in
  // memory; older entries are evicted past it and read again when needed.
  size_t name_cache_bytes = 8 << 20;
};

// Thread-safe: any number of threads may call any method; at most
// `max_connections` queries run at once, the rest wait for a connection.
// Errors: InvalidArgument for bad arguments, NotFound from Get, Internal or
// Unavailable (busy) from SQLite, DeadlineExceeded or Cancelled as the
// QueryControl says, ResourceExhausted from Count past its group limit.
class EventReader {
 public:
  // Opens the archive at `path` (which the write side has created and
  // migrated) for reading. NotFound when the file does not exist.
  static absl::StatusOr<std::unique_ptr<EventReader>> Open(
      const std::string& path, int max_connections = 4);
  static absl::StatusOr<std::unique_ptr<EventReader>> Open(
      const std::string& path, const EventReaderOptions& options);

  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // Up to `query.limit` rows matching the filter after `query.after`, in
  // (occur_time, sequence) order (reversed when descending).
  absl::StatusOr<ListPage> List(const ListQuery& query,
                                const QueryControl& control = {});

  // The row with `sequence`; NotFound when there is none. A lookup: it may
  // take the connections kept for lookups.
  absl::StatusOr<EventRow> Get(int64_t sequence,
                               const QueryControl& control = {});

  // Counts of matching rows grouped by `dimensions` (each at most once),
  // sorted by key (byte-wise, element by element). With no dimensions, one
  // group with an empty key holds the total, even when it is 0. When
  // `max_groups` > 0 and there would be more groups, ResourceExhausted (the
  // count stops as soon as it knows).
  absl::StatusOr<std::vector<CountGroup>> Count(
      const EventFilter& filter, const std::vector<Dimension>& dimensions,
      int64_t max_groups = 0, const QueryControl& control = {});

  // Calls `visit` for up to `limit` matching rows after `after` (from the
  // start when unset) in ascending (occur_time, sequence) order, from one
  // statement, and stops after a row for which it returns false. An export
  // resumes after ScanProgress::last, holding no rows between calls. The
  // visitor must not call back into the reader. DataLoss when a stored
  // payload cannot be unpacked (only read `with_raw`).
  absl::StatusOr<ScanProgress> ScanEach(const EventFilter& filter,
                                        const std::optional<Cursor>& after,
                                        int limit, bool with_raw,
                                        absl::FunctionRef<bool(const EventView&)> visit,
                                        const QueryControl& control = {});

  // Up to `limit` matching rows with sequence > `after_sequence`, in sequence
  // order, read from one snapshot; see SequencePage. When `max_bytes` > 0
  // the page also ends before the row that would take the rows'
  // RowReplyBytes past it (the first row is always kept).
  absl::StatusOr<SequencePage> ListAfterSequence(const EventFilter& filter,
                                                 int64_t after_sequence,
                                                 int limit, size_t max_bytes = 0,
                                                 const QueryControl& control = {});

  // The newest sequence in the archive (0 when empty).
  absl::StatusOr<int64_t> MaxSequence();

  // The secret that signs page tokens (archive_meta 'page_token_key', written
  // by the write side). FailedPrecondition when the archive has none.
  absl::StatusOr<std::string> PageTokenKey();

  // The EXPLAIN QUERY PLAN detail lines of the statement List would run for
  // `query`; for tests and diagnostics.
  absl::StatusOr<std::vector<std::string>> ExplainList(const ListQuery& query);

 private:
  EventReader(std::unique_ptr<sqlite::ConnectionPool> pool,
              std::unique_ptr<RawDecompressor> decompressor, size_t name_cache_bytes);

  const std::unique_ptr<sqlite::ConnectionPool> pool_;
  const std::unique_ptr<RawDecompressor> decompressor_;
  const std::unique_ptr<sqlite::NameCache> names_;
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SQLITE_EVENT_READER_H_
