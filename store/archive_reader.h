// ArchiveReader: the read side of an archive, whatever its engine — the
// keyset-paged lists, lookups by sequence, grouped counts, export scans and
// the live feed's catch-up reads the query API needs — with the plain types
// they take and return. An engine implements it (store/sqlite/event_reader.h
// for SQLite); the query layer sees only this.
#ifndef PDKARCHIVE_STORE_ARCHIVE_READER_H_
#define PDKARCHIVE_STORE_ARCHIVE_READER_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "store/event.h"

namespace pdkarchive::store {

// What CountEvents can group by.
enum class Dimension {
  kTopic,   // the topic text
  kPanel,   // panel_id
  kDoor,    // door_id as decimal text, "" when absent
  kPerson,  // person_id as decimal text, "" when absent
  kHour,    // UTC hour of occur_time, "2026-01-01T13:00:00Z"; "" outside 0000-9999
  kDay,     // UTC day of occur_time, "2026-01-01"; "" outside 0000-9999
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
  // PDK API 2.0's text ids (EventRow's), "" when absent.
  std::string_view device_id;
  std::string_view holder_id;
  std::string_view holder_name;
  std::string_view cloud_node_id;
  std::string_view system_id;
  std::string_view raw;  // empty unless the scan asked for it
};

// How far one ScanEach got.
struct ScanProgress {
  int64_t rows = 0;             // rows visited
  std::optional<Cursor> last;   // the last row visited; unset when none was
  bool exhausted = false;       // true when no matching row follows `last`
};

// How a reader uses its connections and memory (each engine takes what
// applies to it).
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

// Thread-safe: any number of threads may call any method. Errors:
// InvalidArgument for bad arguments, NotFound from Get, Internal or
// Unavailable from the engine, DeadlineExceeded or Cancelled as the
// QueryControl says, ResourceExhausted from Count past its group limit.
class ArchiveReader {
 public:
  virtual ~ArchiveReader() = default;

  // Up to `query.limit` rows matching the filter after `query.after`, in
  // (occur_time, sequence) order (reversed when descending).
  virtual absl::StatusOr<ListPage> List(const ListQuery& query,
                                        const QueryControl& control = {}) = 0;

  // The row with `sequence`; NotFound when there is none. A lookup: it never
  // waits behind scans.
  virtual absl::StatusOr<EventRow> Get(int64_t sequence, const QueryControl& control = {}) = 0;

  // Counts of matching rows grouped by `dimensions` (each at most once),
  // sorted by key (byte-wise, element by element). With no dimensions, one
  // group with an empty key holds the total, even when it is 0. When
  // `max_groups` > 0 and there would be more groups, ResourceExhausted (the
  // count stops as soon as it knows).
  virtual absl::StatusOr<std::vector<CountGroup>> Count(
      const EventFilter& filter, const std::vector<Dimension>& dimensions,
      int64_t max_groups = 0, const QueryControl& control = {}) = 0;

  // Calls `visit` for up to `limit` matching rows after `after` (from the
  // start when unset) in ascending (occur_time, sequence) order, from one
  // snapshot, and stops after a row for which it returns false. An export
  // resumes after ScanProgress::last, holding no rows between calls. The
  // visitor must not call back into the reader. DataLoss when a stored
  // payload cannot be unpacked (only read `with_raw`).
  virtual absl::StatusOr<ScanProgress> ScanEach(
      const EventFilter& filter, const std::optional<Cursor>& after, int limit, bool with_raw,
      absl::FunctionRef<bool(const EventView&)> visit, const QueryControl& control = {}) = 0;

  // Up to `limit` matching rows with sequence > `after_sequence`, in sequence
  // order, read from one snapshot; see SequencePage. When `max_bytes` > 0
  // the page also ends before the row that would take the rows'
  // RowReplyBytes past it (the first row is always kept).
  virtual absl::StatusOr<SequencePage> ListAfterSequence(const EventFilter& filter,
                                                         int64_t after_sequence, int limit,
                                                         size_t max_bytes = 0,
                                                         const QueryControl& control = {}) = 0;

  // The newest sequence in the archive (0 when empty).
  virtual absl::StatusOr<int64_t> MaxSequence() = 0;

  // The secret that signs page tokens, kept in the archive so that every
  // node signs alike. FailedPrecondition when the archive has none.
  virtual absl::StatusOr<std::string> PageTokenKey() = 0;
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_ARCHIVE_READER_H_
