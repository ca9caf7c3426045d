#include "store/sqlite/name_cache.h"

#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "store/sqlite/read_statement.h"

namespace pdkarchive::store::sqlite {
namespace {

constexpr char kSelectName[] = "SELECT value FROM names WHERE name_id = ?";

// What one entry is counted as: its text and the map's bookkeeping.
size_t Cost(const std::string& value) { return value.size() + 64; }

absl::StatusOr<std::shared_ptr<const std::string>> Load(sqlite3* db, int64_t id) {
  Statement statement(db, kSelectName, {Value(id)}, "reading names");
  if (statement.Next()) return std::make_shared<const std::string>(statement.Bytes(0));
  if (!statement.status().ok()) return statement.status();
  return absl::DataLossError(absl::StrCat("the archive has no name ", id));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const std::string>> NameCache::Get(sqlite3* db, int64_t id) {
  {
    std::shared_lock lock(mu_);
    if (auto it = values_.find(id); it != values_.end()) return it->second;
  }
  absl::StatusOr<std::shared_ptr<const std::string>> loaded = Load(db, id);
  if (!loaded.ok()) return loaded.status();
  const size_t cost = Cost(**loaded);
  if (cost > max_bytes_) return loaded;
  std::unique_lock lock(mu_);
  auto [it, inserted] = values_.try_emplace(id, *loaded);
  if (!inserted) return it->second;
  order_.push_back(id);
  bytes_ += cost;
  while (bytes_ > max_bytes_ && !order_.empty()) {
    auto oldest = values_.find(order_.front());
    order_.pop_front();
    if (oldest == values_.end()) continue;
    bytes_ -= Cost(*oldest->second);
    values_.erase(oldest);
  }
  return loaded;
}

}  // namespace pdkarchive::store::sqlite
