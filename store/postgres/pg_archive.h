// The PostgreSQL engine behind store::Archive: an archive that any number of
// `pdk-archive serve` nodes share. Opening it applies the schema
// migrations (under an advisory lock), makes the month partitions around
// now, and starts the commit feed that hears every node's commits.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_ARCHIVE_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_ARCHIVE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/archive.h"

namespace pdkarchive::store {

// Opens the PostgreSQL archive at `uri` (see OpenArchive). `options.serve`
// changes nothing here: any number of nodes may serve one database.
absl::StatusOr<std::unique_ptr<Archive>> OpenPostgresArchive(const std::string& uri,
                                                             const ArchiveOptions& options);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_ARCHIVE_H_
