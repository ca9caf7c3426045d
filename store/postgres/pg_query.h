// Building the PostgreSQL reader's statements: a filter as WHERE conditions
// with bound parameters, the keyset-paged list (split into merged arms when
// one field lists several values), the reads by sequence, and the one
// decoder of a row read in binary format. Internal to store/postgres/. The
// SQL is fixed fragments; every value is bound as a $n parameter, never
// written into the text. Pure functions of their arguments (thread-safe).
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_QUERY_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_QUERY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/archive_reader.h"
#include "store/event.h"
#include "store/postgres/pg_connection.h"

namespace pdkarchive::store::pg {

// One statement and its parameters, $1..$n in the order they were bound.
struct Query {
  std::string sql;
  Params params;
};

// AND-ed conditions of a WHERE clause whose values are bound to the
// parameters of `query` (so several Conditions may share one statement).
class Conditions {
 public:
  explicit Conditions(Query& query) : query_(query) {}

  // Adds a fixed fragment that binds nothing.
  void Add(std::string_view fragment);
  // `column` IN ($a, $b, ...) (or = for one value, or = ANY of one array
  // parameter for hundreds) over the sorted distinct values; nothing when
  // `values` is empty.
  void AddIn(std::string_view column, const std::vector<int64_t>& values);
  void AddIn(std::string_view column, const std::vector<std::string>& values);
  // (`number_column` IN numbers OR `text_column` IN texts): either list may
  // be empty; nothing when both are.
  void AddNumberOrText(std::string_view number_column, const std::vector<int64_t>& numbers,
                       std::string_view text_column, const std::vector<std::string>& texts);
  // The filter's topic patterns on `column`: exact names, and "prefix.*" as
  // the byte range [prefix., prefix/) (the columns are COLLATE "C").
  void AddTopics(std::string_view column, const std::vector<std::string>& topics);

  // Every condition of `filter`. With `by_day`, for the daily rollups: the
  // time bounds (whole UTC days) apply to the `day` column, and persons and
  // org units (which the rollups do not hold) must be absent.
  void AddFilter(const EventFilter& filter, bool by_day = false);

  // Strictly after (descending: before) `after` in (occur_time, sequence).
  void AddCursor(const Cursor& after, bool descending);

  // " WHERE a AND b ...", or "" when there are no conditions.
  std::string Where() const;

 private:
  template <typename T>
  void AddInList(std::string_view column, const std::vector<T>& values);
  std::string Bind(std::string_view text);
  std::string Bind(int64_t value);

  Query& query_;
  std::vector<std::string> parts_;
};

// Whether `topic` is a "prefix.*" pattern.
bool IsPrefixPattern(std::string_view topic);

// The statement that resolves the "prefix.*" patterns among `topics` to the
// stored topics they match (one text column, one topic a row), skipping
// through counts_daily_topic's topic index; nullopt when `topics` holds no
// pattern. The rollups hold every stored topic: the writer adds a topic's
// first row in the transaction of its first event.
std::optional<Query> ResolvePrefixes(const std::vector<std::string>& topics);

// The statement List runs for `query` (and ScanEach, ascending): rows in
// (occur_time, sequence) order (reversed when descending), at most `limit`.
// A field that lists 2 to 64 values is split into one arm per value,
// merged in order, so each arm walks its own index range and the LIMIT stops
// the merge early. Selects the row columns (DecodeRow).
Query BuildList(const ListQuery& query, int64_t limit);

// The row with `sequence` (the row columns).
Query RowBySequence(int64_t sequence);

// The live feed's read, one statement (so one snapshot): column 0 is
// archive_state.last_sequence, the rest the row columns of the rows
// matching `filter` with a sequence in (after, min(last_sequence, through)],
// in sequence order, at most `limit`. One row of NULL row columns when none.
Query RowsAfterSequence(const EventFilter& filter, int64_t after, int64_t through,
                        int64_t limit);

// How many columns the row columns are.
inline constexpr int kRowColumnCount = 14;

// Reads the row columns starting at column `first` of `row` of a binary
// result into `view` (without copies: valid while `result` lives). `raw` is
// left empty unless `with_raw`. The event id's and text fields' bytes as
// stored (UTF-8).
void DecodeRow(const Result& result, int row, int first, bool with_raw, EventView& view);
// The same row copied into an EventRow (its dedupe key left empty).
void DecodeRow(const Result& result, int row, int first, bool with_raw, EventRow& out);

// Binary-format integer columns (int8, int4); 0 / nullopt for NULL.
int64_t BinaryInt(const Result& result, int row, int column);
std::optional<int64_t> BinaryOptionalInt(const Result& result, int row, int column);

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_QUERY_H_
