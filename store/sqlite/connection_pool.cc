#include "store/sqlite/connection_pool.h"

#include <SQLiteCpp/Database.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/sqlite/sqlite_util.h"

namespace pdkarchive::store::sqlite {
namespace {

// How often (in SQLite VM steps) a bounded query checks its deadline.
constexpr int kProgressSteps = 4000;
// Cancellation is a flag nobody signals: a waiter looks at it this often.
constexpr auto kCancelPoll = std::chrono::milliseconds(50);
constexpr char kRollback[] = "ROLLBACK";

}  // namespace

ConnectionPool::ConnectionPool(std::string path, int max_connections, int lookup_connections,
                               std::unique_ptr<SQLite::Database> first)
    : path_(std::move(path)),
      max_connections_(max_connections),
      max_scans_(max_connections - std::clamp(lookup_connections, 0, max_connections - 1)),
      open_(1) {
  idle_.push_back(std::move(first));
}

ConnectionPool::~ConnectionPool() = default;

absl::StatusOr<std::unique_ptr<SQLite::Database>> ConnectionPool::Acquire(
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
      std::unique_ptr<SQLite::Database> db = std::move(idle_.back());
      idle_.pop_back();
      return db;
    }
    ++open_;
  }
  // Opened outside the lock: opening waits on the file system.
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = OpenReadConnection(path_);
  if (!db.ok()) {
    std::lock_guard lock(mu_);
    --open_;
    if (lane == Lane::kScan) --scans_;
    cv_.notify_all();
  }
  return db;
}

void ConnectionPool::Release(Lane lane, std::unique_ptr<SQLite::Database> db) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(db));
  if (lane == Lane::kScan) --scans_;
  // Waiters of both lanes wait on one condition: wake them all.
  cv_.notify_all();
}

Lease::Lease(ConnectionPool& pool, Lane lane, std::unique_ptr<SQLite::Database> db,
             const QueryControl& control)
    : pool_(pool), lane_(lane), db_(std::move(db)), handle_(db_->getHandle()), control_(control) {
  bounded_ = control_.cancelled != nullptr ||
             control_.deadline != std::chrono::steady_clock::time_point::max();
  if (bounded_) sqlite3_progress_handler(handle_, kProgressSteps, &Lease::OnProgress, this);
}

Lease::~Lease() {
  if (bounded_) sqlite3_progress_handler(handle_, 0, nullptr, nullptr);
  // An interrupted statement may have left its read transaction open (its
  // ROLLBACK interrupted too): the next borrower must see a fresh snapshot.
  if (sqlite3_get_autocommit(handle_) == 0) {
    sqlite3_exec(handle_, kRollback, nullptr, nullptr, nullptr);
  }
  pool_.Release(lane_, std::move(db_));
}

absl::Status Lease::Failed(absl::Status status, std::string_view what) const {
  switch (interrupted_) {
    case Interrupt::kNone:
      return status;
    case Interrupt::kDeadline:
      return absl::DeadlineExceededError(
          absl::StrCat(std::string(what), ": stopped at the query's deadline"));
    case Interrupt::kCancelled:
      return absl::CancelledError(absl::StrCat(std::string(what), ": the query was cancelled"));
  }
  return status;
}

int Lease::OnProgress(void* self) {
  Lease& lease = *static_cast<Lease*>(self);
  if (lease.control_.cancelled != nullptr &&
      lease.control_.cancelled->load(std::memory_order_relaxed)) {
    lease.interrupted_ = Interrupt::kCancelled;
    return 1;
  }
  if (std::chrono::steady_clock::now() >= lease.control_.deadline) {
    lease.interrupted_ = Interrupt::kDeadline;
    return 1;
  }
  return 0;
}

}  // namespace pdkarchive::store::sqlite
