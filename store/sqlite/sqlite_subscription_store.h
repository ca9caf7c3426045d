// The SQLite engine's SubscriptionStore: subscriptions in the archive file,
// on a connection of their own.
#ifndef PDKARCHIVE_STORE_SQLITE_SQLITE_SUBSCRIPTION_STORE_H_
#define PDKARCHIVE_STORE_SQLITE_SQLITE_SUBSCRIPTION_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/subscription_store.h"

namespace pdkarchive::store {

// Opens a SubscriptionStore on the archive at `path`, whose schema must
// already be migrated. Internal when the file cannot be opened.
absl::StatusOr<std::unique_ptr<SubscriptionStore>> OpenSqliteSubscriptionStore(
    const std::string& path);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SQLITE_SQLITE_SUBSCRIPTION_STORE_H_
