#include "store/archive.h"

#include "store/postgres/pg_archive.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_reader.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/sqlite_archive.h"

namespace pdkarchive::store {

absl::StatusOr<std::unique_ptr<Archive>> OpenArchive(const std::string& db,
                                                     const ArchiveOptions& options) {
  if (db.empty()) return absl::InvalidArgumentError("--db is empty");
  if (pg::IsPostgresUri(db)) return OpenPostgresArchive(db, options);
  return OpenSqliteArchive(db, options);
}

std::string DisplayDb(const std::string& db) { return pg::RedactUri(db); }

absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenArchiveReader(
    const std::string& db, const EventReaderOptions& reader_options,
    const ArchiveOptions& options) {
  if (db.empty()) return absl::InvalidArgumentError("--db is empty");
  if (pg::IsPostgresUri(db)) {
    pg::ConnectOptions connect;
    connect.uri = db;
    connect.password = options.password;
    return pg::OpenReader(connect, reader_options);
  }
  absl::StatusOr<std::unique_ptr<EventReader>> reader = EventReader::Open(db, reader_options);
  if (!reader.ok()) return reader.status();
  return std::unique_ptr<ArchiveReader>(*std::move(reader));
}

}  // namespace pdkarchive::store
