// Schema migrations: numbered, forward-only SQL scripts from migrations/,
// embedded into the binary at build time (cmake/embed_migrations.cmake).
#ifndef PDKARCHIVE_STORE_MIGRATIONS_H_
#define PDKARCHIVE_STORE_MIGRATIONS_H_

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "store/migration.h"

namespace SQLite {
class Database;
}

namespace pdkarchive::store {

// Every SQLite migration, in order; each number becomes PRAGMA user_version
// once applied. Defined in the generated migrations_embedded.cc.
const std::vector<Migration>& EmbeddedMigrations();

// Brings `db` to the newest schema: applies each migration newer than its
// PRAGMA user_version in a transaction of its own. FailedPrecondition when the
// file's schema is newer than this binary knows; Internal on an SQL error.
absl::Status ApplyMigrations(SQLite::Database& db,
                             const std::vector<Migration>& migrations);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_MIGRATIONS_H_
