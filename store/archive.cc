#include "store/archive.h"

#include "store/postgres/pg_archive.h"
#include "store/postgres/pg_connection.h"
#include "store/sqlite/sqlite_archive.h"

namespace pdkarchive::store {

absl::StatusOr<std::unique_ptr<Archive>> OpenArchive(const std::string& db,
                                                     const ArchiveOptions& options) {
  if (db.empty()) return absl::InvalidArgumentError("--db is empty");
  if (pg::IsPostgresUri(db)) return OpenPostgresArchive(db, options);
  return OpenSqliteArchive(db, options);
}

}  // namespace pdkarchive::store
