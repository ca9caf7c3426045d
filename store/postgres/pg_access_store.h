// The PostgreSQL engine's AccessStore: tokens and the access log in tables
// every node of the archive shares, on a connection of its own.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_ACCESS_STORE_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_ACCESS_STORE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "store/access_store.h"
#include "store/postgres/pg_connection.h"

namespace pdkarchive::store::pg {

// Connects an AccessStore to the (migrated) archive `connect` names. It
// reconnects by itself after losing the connection. Unavailable when the
// server cannot be reached.
absl::StatusOr<std::unique_ptr<AccessStore>> OpenAccessStore(const ConnectOptions& connect);

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_ACCESS_STORE_H_
