#include "store/archive.h"

#include "store/sqlite/sqlite_archive.h"

namespace pdkarchive::store {

absl::StatusOr<std::unique_ptr<Archive>> OpenArchive(const std::string& db,
                                                     const ArchiveOptions& options) {
  if (db.empty()) return absl::InvalidArgumentError("--db is empty");
  return OpenSqliteArchive(db, options);
}

}  // namespace pdkarchive::store
