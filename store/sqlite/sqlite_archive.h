// The SQLite engine behind store::Archive: the write store with its WAL
// checkpointer, started and wired in the one order they need.
#ifndef PDKARCHIVE_STORE_SQLITE_SQLITE_ARCHIVE_H_
#define PDKARCHIVE_STORE_SQLITE_SQLITE_ARCHIVE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/archive.h"

namespace pdkarchive::store {

// Opens the SQLite archive at `path` (see OpenArchive): SqliteStore::Open,
// with the serve lock when `options.serve`, and a Checkpointer on it.
absl::StatusOr<std::unique_ptr<Archive>> OpenSqliteArchive(const std::string& path,
                                                           const ArchiveOptions& options);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SQLITE_SQLITE_ARCHIVE_H_
