// The PostgreSQL reader's connections: a bounded pool with connections kept
// for lookups, a watcher that cancels statements whose QueryControl says
// stop, and the lease that runs one read's statements. Internal to
// store/postgres/.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_POOL_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/archive_reader.h"
#include "store/postgres/pg_connection.h"

namespace pdkarchive::store::pg {

// Who borrows a connection: lookups may take any, scans (everything else)
// leave the lookup connections free.
enum class Lane { kLookup, kScan };

// Why the watcher stopped a lease's statement.
enum class Interrupt { kNone, kDeadline, kCancelled };

// Up to `max_connections` connections to one database, opened as needed and
// kept open for reuse; a broken one is dropped when it comes back. Scans may
// hold at most max_connections - lookup_connections of them
// (lookup_connections clamped to 0..max_connections - 1), so a lookup never
// waits behind scans. One watcher thread cancels the running statement of a
// bounded lease once its deadline passes or its flag is set. Thread-safe.
class ConnectionPool {
 public:
  ConnectionPool(ConnectOptions connect, int max_connections, int lookup_connections);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Borrows a connection for `lane`: an idle one, a new one while fewer than
  // the maximum are open, else waits for one to come back (until the
  // control's deadline, DeadlineExceeded, or cancellation, Cancelled).
  // Unavailable when a new connection cannot be opened.
  absl::StatusOr<std::unique_ptr<Connection>> Acquire(Lane lane, const QueryControl& control);
  // Takes back a connection Acquire lent for `lane`; closes it when it is
  // broken or `discard`.
  void Release(Lane lane, std::unique_ptr<Connection> conn, bool discard);

  // The watcher's registration of one bounded lease: while registered, the
  // watcher calls conn.Cancel() once the control says stop, and records why
  // in `*interrupt`.
  struct Watch {
    Connection* conn;
    QueryControl control;
    std::atomic<Interrupt>* interrupt;
  };
  std::list<Watch>::iterator WatchLease(const Watch& watch);
  void Unwatch(std::list<Watch>::iterator it);

 private:
  void RunWatcher();

  const ConnectOptions connect_;
  const int max_connections_;
  const int max_scans_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;
  int scans_ = 0;

  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  std::list<Watch> watches_;
  bool stopping_ = false;
  std::thread watcher_;
};

// A borrowed connection, returned to the pool when the lease ends (after a
// ROLLBACK when a transaction is left open). Its statements are bounded by
// the lease's QueryControl: the pool's watcher cancels one that runs past
// the deadline or is cancelled, and the statement then fails with
// DeadlineExceeded or Cancelled. A connection whose statement was cancelled
// is closed rather than reused. Used by one thread; not movable.
class Lease {
 public:
  // Acquires a connection of `lane` from `pool`; check status() first.
  Lease(ConnectionPool& pool, Lane lane, const QueryControl& control);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Whether the connection was acquired (else why not).
  const absl::Status& status() const { return status_; }

  // Runs one statement with `params` and every result column in binary
  // format (see pg_query.h's readers). The errors of Connection::Query, or
  // DeadlineExceeded / Cancelled when the control stopped it; `what` names
  // the read in messages.
  absl::StatusOr<Result> Query(const std::string& sql, const Params& params,
                               std::string_view what);

  // Runs statements without parameters or results (BEGIN, COMMIT).
  absl::Status Exec(std::string_view sql, std::string_view what);

  // DeadlineExceeded or Cancelled when the control says stop by now; OK
  // otherwise. For work done on the client after a statement (decoding,
  // sorting many groups), which the server-side cancel cannot reach.
  absl::Status CheckControl(std::string_view what) const;

 private:
  absl::Status Failed(absl::Status status, std::string_view what);

  ConnectionPool& pool_;
  const Lane lane_;
  const QueryControl control_;
  absl::Status status_;
  std::unique_ptr<Connection> conn_;
  bool bounded_ = false;
  bool watched_ = false;
  std::list<ConnectionPool::Watch>::iterator watch_;
  std::atomic<Interrupt> interrupt_{Interrupt::kNone};
};

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_POOL_H_
