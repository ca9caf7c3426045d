// The SQLite engine's AccessStore: tokens and the access log in the archive
// file, on a connection of its own (SQLite serializes it with the event
// writer through its busy timeout, as it does `import`).
#ifndef PDKARCHIVE_STORE_SQLITE_SQLITE_ACCESS_STORE_H_
#define PDKARCHIVE_STORE_SQLITE_SQLITE_ACCESS_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/access_store.h"

namespace pdkarchive::store {

// Opens an AccessStore on the archive at `path`, whose schema must already
// be migrated (the archive's write connection does that). Internal when the
// file cannot be opened.
absl::StatusOr<std::unique_ptr<AccessStore>> OpenSqliteAccessStore(const std::string& path);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SQLITE_SQLITE_ACCESS_STORE_H_
