// Opening SQLite connections the same way everywhere: WAL, synchronous=FULL,
// a busy timeout, and (for the writer) the schema brought up to date.
#ifndef PDKARCHIVE_STORE_SQLITE_UTIL_H_
#define PDKARCHIVE_STORE_SQLITE_UTIL_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace SQLite {
class Database;
}

namespace pdkarchive::store {

inline constexpr std::chrono::milliseconds kBusyTimeout{5000};

// How the write connection is opened. Production (serve, import) always uses
// the defaults and the command line never exposes these: they exist so that
// fault-injection tests can put the archive on a simulated disk (a test VFS
// that models power cuts or a full disk) and prove that the harness detects
// loss when durability is weakened on purpose.
struct OpenOptions {
  // Name of a registered SQLite VFS; "" = SQLite's default.
  std::string vfs;
  // kNormal survives a process crash but not a power cut (WAL mode).
  enum class Synchronous { kFull, kNormal };
  Synchronous synchronous = Synchronous::kFull;
};

// Opens `path` read-write (creating it), switches it to WAL with
// synchronous=FULL (unless `options` says otherwise) and applies every
// pending migration. Internal or FailedPrecondition (schema newer than this
// binary) on failure.
absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenWriteConnection(
    const std::string& path, const OpenOptions& options = {});

// The 64-bit hash events.dedupe_key holds for a normalizer dedupe key
// (FNV-1a, then splitmix64's finalizer so every input bit reaches every
// output bit). Equal hashes only make two events candidates: the store then
// compares what the key was made from (store/sqlite_store.cc), so no hash
// collision can ever drop an event. Stable across versions: stored archives
// depend on it.
int64_t DedupeHash(std::string_view key);

// Registers the SQL functions migrations use on `db`: dedupe_hash(BLOB),
// the function above. OpenWriteConnection does this itself.
void RegisterArchiveFunctions(SQLite::Database& db);

// Opens `path` read-only for queries. The file must exist and carry the
// schema; NotFound when it does not exist, Internal on other failures.
absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenReadConnection(
    const std::string& path);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SQLITE_UTIL_H_
