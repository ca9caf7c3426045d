// The reader's read-only connections: a bounded pool with connections kept
// for lookups, and the lease that bounds one query in time. Internal to
// store/sqlite/.
#ifndef PDKARCHIVE_STORE_SQLITE_CONNECTION_POOL_H_
#define PDKARCHIVE_STORE_SQLITE_CONNECTION_POOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/sqlite/event_reader.h"

struct sqlite3;

namespace SQLite {
class Database;
}

namespace pdkarchive::store::sqlite {

// Who borrows a connection: lookups may take any, scans (everything else)
// leave the lookup connections free.
enum class Lane { kLookup, kScan };

// Up to `max_connections` read connections to one archive, opened as needed
// (OpenReadConnection) and kept open for reuse. Of those, scans may hold at
// most max_connections - lookup_connections (lookup_connections clamped to
// 0..max_connections - 1), so a lookup never waits behind scans.
// Thread-safe.
class ConnectionPool {
 public:
  // `first` is an already open connection to `path`; max_connections >= 1.
  ConnectionPool(std::string path, int max_connections, int lookup_connections,
                 std::unique_ptr<SQLite::Database> first);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Borrows a connection for `lane`, opening a new one while fewer than the
  // maximum are open, else waiting for one to come back (until the
  // control's deadline, DeadlineExceeded, or cancellation, Cancelled).
  absl::StatusOr<std::unique_ptr<SQLite::Database>> Acquire(Lane lane,
                                                            const QueryControl& control);
  // Takes back a connection Acquire lent for `lane`.
  void Release(Lane lane, std::unique_ptr<SQLite::Database> db);

 private:
  const std::string path_;
  const int max_connections_;
  const int max_scans_;  // connections scans may hold at once
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<SQLite::Database>> idle_;
  int open_ = 0;
  int scans_ = 0;  // connections held by scans
};

// Holds a borrowed connection and returns it to the pool when it goes out of
// scope, with no transaction left open. While lent, the connection checks the
// lease's QueryControl every few thousand SQLite steps and interrupts the
// running statement when it says so. Not movable: SQLite holds its address.
class Lease {
 public:
  Lease(ConnectionPool& pool, Lane lane, std::unique_ptr<SQLite::Database> db,
        const QueryControl& control);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  sqlite3* handle() const { return handle_; }

  // `status` of a failed call on this connection, or, when the control
  // interrupted it, DeadlineExceeded or Cancelled.
  absl::Status Failed(absl::Status status, std::string_view what) const;

 private:
  enum class Interrupt { kNone, kDeadline, kCancelled };

  static int OnProgress(void* self);

  ConnectionPool& pool_;
  const Lane lane_;
  std::unique_ptr<SQLite::Database> db_;
  sqlite3* const handle_;
  const QueryControl control_;
  bool bounded_ = false;
  Interrupt interrupted_ = Interrupt::kNone;
};

}  // namespace pdkarchive::store::sqlite

#endif  // PDKARCHIVE_STORE_SQLITE_CONNECTION_POOL_H_
