#include "store/postgres/pg_archive.h"

namespace pdkarchive::store {

// Under construction (issue 14): the engine's store, reader and feed land
// next; until then a postgresql:// --db is refused with this message.
absl::StatusOr<std::unique_ptr<Archive>> OpenPostgresArchive(const std::string& uri,
                                                             const ArchiveOptions& options) {
  (void)uri;
  (void)options;
  return absl::UnimplementedError("the PostgreSQL engine is not built yet");
}

}  // namespace pdkarchive::store
