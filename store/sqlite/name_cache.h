// NameCache: the text of the numbers rows hold for their names. Internal to
// store/sqlite/.
#ifndef PDKARCHIVE_STORE_SQLITE_NAME_CACHE_H_
#define PDKARCHIVE_STORE_SQLITE_NAME_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"

struct sqlite3;

namespace pdkarchive::store::sqlite {

// Panel ids, door names and subscriptions are stored once in `names`
// (migrations/0003_compact_rows.sql) and rows refer to them by number.
// Names are never changed or deleted, so a loaded name never goes stale.
// Bounded: past `max_bytes` the oldest loaded names are evicted (and read
// again when asked for); a name larger than the bound is never kept.
// Thread-safe; a returned name stays valid while its holder keeps it.
class NameCache {
 public:
  explicit NameCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // The name numbered `id`, read through `db` when not loaded. DataLoss when
  // the archive has no such name; SqliteError's codes when it cannot be read.
  absl::StatusOr<std::shared_ptr<const std::string>> Get(sqlite3* db, int64_t id);

 private:
  const size_t max_bytes_;
  std::shared_mutex mu_;
  std::unordered_map<int64_t, std::shared_ptr<const std::string>> values_;
  std::deque<int64_t> order_;  // ids in the order they were loaded
  size_t bytes_ = 0;
};

}  // namespace pdkarchive::store::sqlite

#endif  // PDKARCHIVE_STORE_SQLITE_NAME_CACHE_H_
