// The PostgreSQL engine's ArchiveReader: lists, lookups, counts (from the
// daily rollups where they answer), export scans and the watch's catch-up,
// over a pool of connections of its own.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_READER_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_READER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "store/archive_reader.h"
#include "store/postgres/pg_connection.h"

namespace pdkarchive::store::pg {

// Opens a reader of the archive `connect` names, whose schema is already
// migrated. Connections are opened as queries need them, up to
// `options.max_connections`. Unavailable when the server cannot be reached.
absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenReader(const ConnectOptions& connect,
                                                          const EventReaderOptions& options);

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_READER_H_
