// The month partitions of the PostgreSQL archive's events table. events is
// RANGE partitioned on occur_time (milliseconds): one partition per UTC month
// of the years kFirstYear..kLastYear, named events_yYYYYmMM, holding
// [start of the month, start of the next); every other time falls into the
// DEFAULT partition events_outside. Partitions are made before the rows that
// need them are written, never after: a row that landed in events_outside
// for a month would keep that month's partition from being created.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_PARTITIONS_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_PARTITIONS_H_

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>

#include "absl/status/status.h"

namespace pdkarchive::store::pg {

class Connection;

// A UTC month as year * 12 + (month - 1).
using MonthKey = int64_t;

inline constexpr int64_t kFirstPartitionYear = 1970;
inline constexpr int64_t kLastPartitionYear = 2199;

// The month holding `ms` when it gets a partition of its own; nullopt for
// a time that belongs in events_outside.
std::optional<MonthKey> PartitionMonthOf(int64_t ms);

// "events_y2026m03" for March 2026.
std::string PartitionName(MonthKey month);

// The milliseconds at which `month` starts (UTC).
int64_t MonthStartMs(MonthKey month);

// Which month partitions exist, cached in memory, and the making of missing
// ones. Not thread-safe: the store's writer thread owns it. Partitions are
// never dropped by this program; a cache entry stays true for the archive's
// life.
class PgPartitions {
 public:
  // Reads the existing month partitions (pg_inherits) into the cache,
  // replacing what it held. Unavailable when the server is unreachable.
  absl::Status Load(Connection& conn);

  // Makes sure a partition exists for every month in `months` (keys from
  // PartitionMonthOf). Missing ones are created in one short transaction of
  // their own under a transaction advisory lock, with CREATE TABLE IF NOT
  // EXISTS, so nodes racing for the same month agree. Must not be called
  // inside a transaction. Unavailable when the server is unreachable or the
  // parent table stays locked (by a long reader) past a few seconds.
  absl::Status Ensure(Connection& conn, std::span<const MonthKey> months);

  // Ensure for the month of `now_ms`, the one before and the two after.
  absl::Status EnsureAround(Connection& conn, int64_t now_ms);

  bool Has(MonthKey month) const { return known_.contains(month); }
  size_t size() const { return known_.size(); }

 private:
  std::set<MonthKey> known_;
};

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_PARTITIONS_H_
