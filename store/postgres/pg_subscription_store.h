// The PostgreSQL engine's SubscriptionStore: subscriptions in a table every
// node of the archive shares, on a connection of their own.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_SUBSCRIPTION_STORE_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_SUBSCRIPTION_STORE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "store/postgres/pg_connection.h"
#include "store/subscription_store.h"

namespace pdkarchive::store::pg {

// Connects a SubscriptionStore to the (migrated) archive `connect` names. It
// reconnects by itself after losing the connection. Unavailable when the
// server cannot be reached.
absl::StatusOr<std::unique_ptr<SubscriptionStore>> OpenSubscriptionStore(
    const ConnectOptions& connect);

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_SUBSCRIPTION_STORE_H_
