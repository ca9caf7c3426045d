#include "store/postgres/pg_pool.h"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pdkarchive::store::pg {
namespace {

// Cancellation is a flag nobody signals: waiters and the watcher look at it
// this often.
constexpr auto kCancelPoll = std::chrono::milliseconds(20);
constexpr char kRollback[] = "ROLLBACK";
// Counts group tens of thousands of rollup rows (door x day over a month):
// room for their hash table in memory, on the reader's own sessions only.
constexpr char kSessionSettings[] = "SET work_mem = '32MB'";
// PQexecParams' resultFormat for binary columns.
constexpr int kBinaryResults = 1;

bool Bounded(const QueryControl& control) {
  return control.cancelled != nullptr ||
         control.deadline != std::chrono::steady_clock::time_point::max();
}

}  // namespace

ConnectionPool::ConnectionPool(ConnectOptions connect, int max_connections,
                               int lookup_connections)
    : connect_(std::move(connect)),
      max_connections_(max_connections),
      max_scans_(max_connections - std::clamp(lookup_connections, 0, max_connections - 1)),
      watcher_([this] { RunWatcher(); }) {}

ConnectionPool::~ConnectionPool() {
  {
    std::lock_guard lock(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  watcher_.join();
}

absl::StatusOr<std::unique_ptr<Connection>> ConnectionPool::Acquire(
    Lane lane, const QueryControl& control) {
  {
    std::unique_lock lock(mu_);
    auto available = [&] {
      return (lane == Lane::kLookup || scans_ < max_scans_) &&
             (!idle_.empty() || open_ < max_connections_);
    };
    while (!available()) {
      if (control.cancelled != nullptr && control.cancelled->load()) {
        return absl::CancelledError("the query was cancelled while waiting for a connection");
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= control.deadline) {
        return absl::DeadlineExceededError(
            "the query's deadline passed while it waited for a connection");
      }
      cv_.wait_until(lock,
                     control.deadline - now < kCancelPoll ? control.deadline : now + kCancelPoll);
    }
    if (lane == Lane::kScan) ++scans_;
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    ++open_;
  }
  // Opened outside the lock: connecting takes round trips.
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(connect_);
  if (conn.ok()) {
    if (absl::Status set = (*conn)->Exec(kSessionSettings); !set.ok()) conn = set;
  }
  if (!conn.ok()) {
    std::lock_guard lock(mu_);
    --open_;
    if (lane == Lane::kScan) --scans_;
    cv_.notify_all();
  }
  return conn;
}

void ConnectionPool::Release(Lane lane, std::unique_ptr<Connection> conn, bool discard) {
  // Closed outside the lock: closing says goodbye to the server.
  if (discard || !conn->healthy()) conn.reset();
  std::lock_guard lock(mu_);
  if (conn) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  if (lane == Lane::kScan) --scans_;
  // Waiters of both lanes wait on one condition: wake them all.
  cv_.notify_all();
}

std::list<ConnectionPool::Watch>::iterator ConnectionPool::WatchLease(const Watch& watch) {
  std::list<Watch>::iterator it;
  {
    std::lock_guard lock(watch_mu_);
    it = watches_.insert(watches_.end(), watch);
  }
  watch_cv_.notify_all();
  return it;
}

void ConnectionPool::Unwatch(std::list<Watch>::iterator it) {
  // Under the lock: the watcher cancels only connections still registered,
  // so the connection outlives every Cancel() on it.
  std::lock_guard lock(watch_mu_);
  watches_.erase(it);
}

void ConnectionPool::RunWatcher() {
  std::unique_lock lock(watch_mu_);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    auto wake = std::chrono::steady_clock::time_point::max();
    for (Watch& watch : watches_) {
      if (watch.interrupt->load() != Interrupt::kNone) continue;
      Interrupt why = Interrupt::kNone;
      if (watch.control.cancelled != nullptr && watch.control.cancelled->load()) {
        why = Interrupt::kCancelled;
      } else if (now >= watch.control.deadline) {
        why = Interrupt::kDeadline;
      }
      if (why != Interrupt::kNone) {
        watch.interrupt->store(why);
        watch.conn->Cancel();  // a round trip to the server, under the lock (see Unwatch)
        continue;
      }
      wake = std::min(wake, watch.control.deadline);
      if (watch.control.cancelled != nullptr) wake = std::min(wake, now + kCancelPoll);
    }
    if (wake == std::chrono::steady_clock::time_point::max()) {
      watch_cv_.wait(lock);
    } else {
      watch_cv_.wait_until(lock, wake);
    }
  }
}

Lease::Lease(ConnectionPool& pool, Lane lane, const QueryControl& control)
    : pool_(pool), lane_(lane), control_(control) {
  absl::StatusOr<std::unique_ptr<Connection>> conn = pool_.Acquire(lane_, control_);
  if (!conn.ok()) {
    status_ = conn.status();
    return;
  }
  conn_ = *std::move(conn);
  if (Bounded(control_)) {
    watch_ = pool_.WatchLease({conn_.get(), control_, &interrupt_});
    watched_ = true;
  }
}

Lease::~Lease() {
  if (conn_ == nullptr) return;
  if (watched_) pool_.Unwatch(watch_);
  const bool cancelled = interrupt_.load() != Interrupt::kNone;
  // A transaction left open (an error between BEGIN and COMMIT) must not
  // reach the next borrower. A connection that was sent a cancel is closed
  // instead: the cancel might yet hit the next borrower's statement.
  if (!cancelled && conn_->healthy() && PQtransactionStatus(conn_->raw()) != PQTRANS_IDLE) {
    (void)conn_->Exec(kRollback);
  }
  const bool discard = cancelled || PQtransactionStatus(conn_->raw()) != PQTRANS_IDLE;
  pool_.Release(lane_, std::move(conn_), discard);
}

namespace {

absl::Status Stopped(Interrupt why, std::string_view what) {
  switch (why) {
    case Interrupt::kNone:
      return absl::OkStatus();
    case Interrupt::kDeadline:
      return absl::DeadlineExceededError(
          absl::StrCat(std::string(what), ": stopped at the query's deadline"));
    case Interrupt::kCancelled:
      return absl::CancelledError(absl::StrCat(std::string(what), ": the query was cancelled"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Lease::CheckControl(std::string_view what) const {
  Interrupt why = interrupt_.load();
  if (why == Interrupt::kNone) {
    if (control_.cancelled != nullptr && control_.cancelled->load()) {
      why = Interrupt::kCancelled;
    } else if (std::chrono::steady_clock::now() >= control_.deadline) {
      why = Interrupt::kDeadline;
    }
  }
  return Stopped(why, what);
}

absl::Status Lease::Failed(absl::Status status, std::string_view what) {
  // The watcher records why before it cancels, so a statement it stopped
  // finds the reason here.
  if (absl::Status stopped = Stopped(interrupt_.load(), what); !stopped.ok()) return stopped;
  return absl::Status(status.code(), absl::StrCat(std::string(what), ": ", status.message()));
}

absl::StatusOr<Result> Lease::Query(const std::string& sql, const Params& params,
                                    std::string_view what) {
  if (absl::Status stopped = CheckControl(what); !stopped.ok()) return stopped;
  Result result(PQexecParams(conn_->raw(), sql.c_str(), params.size(), nullptr, params.values(),
                             params.lengths(), params.formats(), kBinaryResults));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  if (result.get() == nullptr || !conn_->healthy()) {
    return Failed(absl::UnavailableError(absl::StrCat("PostgreSQL connection lost: ",
                                                      PQerrorMessage(conn_->raw()))),
                  what);
  }
  return Failed(StatusFromResult(result.get(), "PostgreSQL"), what);
}

absl::Status Lease::Exec(std::string_view sql, std::string_view what) {
  if (absl::Status stopped = CheckControl(what); !stopped.ok()) return stopped;
  absl::Status status = conn_->Exec(sql);
  if (status.ok()) return status;
  if (!conn_->healthy()) {
    return Failed(absl::UnavailableError(absl::StrCat("PostgreSQL connection lost: ",
                                                      status.message())),
                  what);
  }
  return Failed(status, what);
}

}  // namespace pdkarchive::store::pg
