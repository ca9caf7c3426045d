// Building the reader's statements: a filter as WHERE fragments with bound
// values, topic patterns resolved to ids, the keyset list with its merged
// arms, and (IndexedPlusTail) the one place that composes every read of an
// index or a rollup with the events not yet in them. Internal to
// store/sqlite/. All SQL is named constants; every value is bound. The
// builders are pure functions of their arguments (thread-safe); only
// ResolveTopicIds and IndexedPlusTail::RunCount read, through the caller's
// connection.
#ifndef PDKARCHIVE_STORE_SQLITE_READ_QUERY_H_
#define PDKARCHIVE_STORE_SQLITE_READ_QUERY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/event.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/read_statement.h"

namespace pdkarchive::store::sqlite {

// AND-ed conditions of a WHERE clause and the values they bind, in order.
class Conditions {
 public:
  // Adds a fixed fragment (a named constant) that binds nothing, or whose
  // values the caller adds next with AddValue.
  void Add(const char* fragment);
  void AddValue(Value value);
  // The same for a number, built in place (GCC 12 at -O3 warns, wrongly,
  // that moving a number's Value reads an uninitialized string).
  void AddValue(int64_t value);

  // `head` ?, ?, ... `tail`: an IN list over the sorted distinct `values`
  // (the tail closes what head opened); nothing when `values` is empty.
  void AddIn(const char* head, const std::vector<int64_t>& values, const char* tail);
  void AddIn(const char* head, const std::vector<std::string>& values, const char* tail);

  // `number_head` ?, ... ) OR `text_head` ?, ... ): a row whose number is
  // one of `numbers` or whose text id one of `texts` (either list may be
  // empty; nothing when both are).
  void AddNumberOrText(const char* number_head, const std::vector<int64_t>& numbers,
                       const char* text_head, const std::vector<std::string>& texts);

  // The topic ids a filter's topics and family were resolved to: none
  // matches nothing.
  void AddTopicIds(const std::vector<int64_t>& ids);

  // Every condition of `filter` but its topics and family, which
  // `topic_ids` stands for (nullopt: no topic condition). With `by_day`,
  // the time bounds (which must be whole UTC days) apply to the rollups' day
  // column and panels to their panel_id text instead.
  void AddFilter(const EventFilter& filter, const std::optional<std::vector<int64_t>>& topic_ids,
                 bool by_day = false);

  // Strictly after (descending: before) `after` in (occur_time, sequence).
  void AddCursor(const Cursor& after, bool descending);

  // " WHERE a AND b ...", or "" when there are no conditions.
  const std::string& sql() const { return sql_; }
  const std::vector<Value>& values() const { return values_; }

 private:
  template <typename T>
  void AddInList(const char* head, const std::vector<T>& values, const char* tail);
  // Appends head ?, ... tail (and the values) without the AND.
  template <typename T>
  void AppendInList(const char* head, const std::vector<T>& values, const char* tail);

  std::string sql_;
  std::vector<Value> values_;
};

// The topic ids the filter's topics and family allow, or nullopt when it
// names neither; an empty list when no stored topic matches. Matched over
// the whole (small) topics table read through `db`: exact names, and
// "prefix.*" as every name that starts with "prefix.". SqliteError's codes.
absl::StatusOr<std::optional<std::vector<int64_t>>> ResolveTopicIds(sqlite3* db,
                                                                    const EventFilter& filter);

// The statement List runs for `query` (and ScanEach, ascending), whose
// topics and family have been resolved to `topic_ids` (nullopt: no topic
// condition). It selects kRowColumns (row_decoder.h) and asks for one row
// more than query.limit, so the caller learns whether more follow.
Query BuildList(const ListQuery& query, const std::optional<std::vector<int64_t>>& topic_ids);

// The deferred-index scheme (migrations/0004_deferred_indexes.sql) as reads
// see it. Every secondary index and both daily rollups hold merged events
// only (merged = 1); the unmerged tail (merged = 0, every one of them after
// archive_meta.merged_through) is in none of them and is read by sequence.
// So every read of an index or a rollup is composed, here and nowhere else,
// of its indexed part and that tail, both read from one snapshot so that a
// merge running meanwhile can neither drop nor double an event. Reads by
// sequence (RowBySequence, RowsInSequenceWindow) walk the table by rowid,
// which holds every event merged or not: they need no tail.
class IndexedPlusTail {
 public:
  // A row read as one statement (one statement reads one snapshot): each of
  // `indexed_arms` over the indexed events, UNION ALL one arm over the tail
  // with `tail` (the read's whole filter), in (occur_time, sequence) order
  // (reversed when `descending`), at most `limit` rows. Selects kRowColumns.
  static Query Rows(std::vector<Conditions> indexed_arms, Conditions tail, bool descending,
                    int64_t limit);

  // The two statements of a count. Each selects its key columns, then the
  // count of the group.
  struct CountQueries {
    Query indexed;
    Query tail;  // keyed by the text keys, grouped, in no particular order
  };
  // A count of the events matching `conditions`, grouped by `text_keys`
  // (comma-separated key expressions over events joined with topics; ""
  // for none). Its indexed part is `rollup` when given (the rollups hold
  // merged events only), else counted from the indexed events, grouped and
  // ordered by the text keys.
  static CountQueries Count(const std::string& text_keys, const Conditions& conditions,
                            std::optional<Query> rollup);

  // Runs both queries of a count inside `snapshot` (which proves the caller
  // holds one read transaction over them): `read_indexed` then `read_tail`
  // are each given their prepared statement to step through. The first
  // error, theirs or SQLite's, is returned.
  static absl::Status RunCount(const ReadTransaction& snapshot, sqlite3* db,
                               const CountQueries& queries,
                               absl::FunctionRef<absl::Status(Statement&)> read_indexed,
                               absl::FunctionRef<absl::Status(Statement&)> read_tail,
                               std::string_view what);
};

// The row with `sequence` (kRowColumns).
Query RowBySequence(int64_t sequence);

// The live feed's read: rows matching `conditions` with a sequence in
// (after, through], in sequence order, at most `limit` (kRowColumns).
Query RowsInSequenceWindow(const Conditions& conditions, int64_t after, int64_t through,
                           int64_t limit);

// The newest sequence in the archive, 0 when empty (one row, one column).
inline constexpr char kSelectMaxSequence[] = "SELECT COALESCE(MAX(sequence), 0) FROM events";

}  // namespace pdkarchive::store::sqlite

#endif  // PDKARCHIVE_STORE_SQLITE_READ_QUERY_H_
