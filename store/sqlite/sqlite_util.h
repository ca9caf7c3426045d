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
  // Whether the store holds the archive's serve lock for its lifetime, so
  // that a second `serve` on the same file refuses to start (`serve` sets
  // it; `import` does not, and may write beside a running serve).
  bool serve_lock = false;
};

// An exclusive flock(2) on an archive file, held until destroyed. SQLite's
// own locks are fcntl(2) locks, which flock does not touch on Linux.
class ArchiveLock {
 public:
  ArchiveLock() = default;
  // Locks `path`, creating it (empty) if missing. FailedPrecondition when
  // another process holds the lock; PermissionDenied or Internal when the
  // file cannot be opened.
  static absl::StatusOr<ArchiveLock> Acquire(const std::string& path);

  ArchiveLock(ArchiveLock&& other) noexcept;
  ArchiveLock& operator=(ArchiveLock&& other) noexcept;
  ArchiveLock(const ArchiveLock&) = delete;
  ArchiveLock& operator=(const ArchiveLock&) = delete;
  ~ArchiveLock();

  bool held() const { return fd_ >= 0; }

 private:
  explicit ArchiveLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Opens `path` read-write (creating it), switches it to WAL with
// synchronous=FULL (unless `options` says otherwise) and applies every
// pending migration. FailedPrecondition, and the file left exactly as it
// was, when it is another application's SQLite database (tables but no
// archive schema) or cannot be written (read-only file or mount);
// FailedPrecondition too when its schema is newer than this binary;
// Internal on other failures.
absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenWriteConnection(
    const std::string& path, const OpenOptions& options = {});

// The 64-bit hash events.dedupe_key holds for a normalizer dedupe key
// (FNV-1a, then splitmix64's finalizer so every input bit reaches every
// output bit). Equal hashes only make two events candidates: the store then
// compares what the key was made from (store/sqlite/sqlite_store.cc), so no hash
// collision can ever drop an event. Stable across versions: stored archives
// depend on it.
int64_t DedupeHash(std::string_view key);

// Registers the archive's SQL functions on `db`: dedupe_hash(BLOB), the
// function above, and utc_day(ms), timeutil::DayOf. OpenWriteConnection does this itself.
void RegisterArchiveFunctions(SQLite::Database& db);

// Opens `path` read-only for queries. The file must exist and carry the
// schema; NotFound when it does not exist, Internal on other failures.
absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenReadConnection(
    const std::string& path);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SQLITE_UTIL_H_
