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
#include "store/archive_reader.h"
#include "store/event.h"

namespace pdkarchive::store {

class RawDecompressor;
namespace sqlite {
class ConnectionPool;
class NameCache;
}  // namespace sqlite

// The SQLite engine's ArchiveReader. Thread-safe: at most `max_connections`
// queries run at once, the rest wait for a connection. Errors as
// ArchiveReader says; Unavailable when SQLite stays busy.
class EventReader final : public ArchiveReader {
 public:
  // Opens the archive at `path` (which the write side has created and
  // migrated) for reading. NotFound when the file does not exist.
  static absl::StatusOr<std::unique_ptr<EventReader>> Open(
      const std::string& path, int max_connections = 4);
  static absl::StatusOr<std::unique_ptr<EventReader>> Open(
      const std::string& path, const EventReaderOptions& options);

  ~EventReader() override;
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // Up to `query.limit` rows matching the filter after `query.after`, in
  // (occur_time, sequence) order (reversed when descending).
  absl::StatusOr<ListPage> List(const ListQuery& query,
                                const QueryControl& control = {}) override;

  // The row with `sequence`; NotFound when there is none. A lookup: it may
  // take the connections kept for lookups.
  absl::StatusOr<EventRow> Get(int64_t sequence,
                               const QueryControl& control = {}) override;

  // Counts of matching rows grouped by `dimensions` (each at most once),
  // sorted by key (byte-wise, element by element). With no dimensions, one
  // group with an empty key holds the total, even when it is 0. When
  // `max_groups` > 0 and there would be more groups, ResourceExhausted (the
  // count stops as soon as it knows).
  absl::StatusOr<std::vector<CountGroup>> Count(
      const EventFilter& filter, const std::vector<Dimension>& dimensions,
      int64_t max_groups = 0, const QueryControl& control = {}) override;

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
                                        const QueryControl& control = {}) override;

  // Up to `limit` matching rows with sequence > `after_sequence`, in sequence
  // order, read from one snapshot; see SequencePage. When `max_bytes` > 0
  // the page also ends before the row that would take the rows'
  // RowReplyBytes past it (the first row is always kept).
  absl::StatusOr<SequencePage> ListAfterSequence(const EventFilter& filter,
                                                 int64_t after_sequence,
                                                 int limit, size_t max_bytes = 0,
                                                 const QueryControl& control = {}) override;

  // The newest sequence in the archive (0 when empty).
  absl::StatusOr<int64_t> MaxSequence() override;

  // The secret that signs page tokens (archive_meta 'page_token_key', written
  // by the write side). FailedPrecondition when the archive has none.
  absl::StatusOr<std::string> PageTokenKey() override;

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
