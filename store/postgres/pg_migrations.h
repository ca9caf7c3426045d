// The PostgreSQL archive's schema: numbered, forward-only migrations from
// migrations/postgres/, embedded at build time, applied under an advisory
// lock so that nodes starting together do not race.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_MIGRATIONS_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_MIGRATIONS_H_

#include <vector>

#include "absl/status/status.h"
#include "store/migration.h"

namespace pdkarchive::store::pg {

class Connection;

// Every PostgreSQL migration, in order. Defined in the generated
// pg_migrations_embedded.cc.
const std::vector<Migration>& EmbeddedPostgresMigrations();

// Brings the database `conn` is connected to up to the newest schema: holds
// a session advisory lock while it reads the applied versions (table
// pdkarchive_schema) and applies each newer migration in a transaction of
// its own. FailedPrecondition when the database holds tables of something
// else, or a schema newer than this binary knows; Unavailable when the
// server is unreachable; Internal on an SQL error.
absl::Status ApplyPostgresMigrations(Connection& conn, const std::vector<Migration>& migrations);

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_MIGRATIONS_H_
