#include "store/postgres/pg_reader.h"

namespace pdkarchive::store::pg {

// Under construction (issue 14): replaced by the reader when it lands.
absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenReader(const ConnectOptions& connect,
                                                          const EventReaderOptions& options) {
  (void)connect;
  (void)options;
  return absl::UnimplementedError("the PostgreSQL reader is not built yet");
}

}  // namespace pdkarchive::store::pg
