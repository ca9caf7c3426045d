#include "store/sqlite/checkpointer.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <pthread.h>
#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "store/sqlite/sqlite_util.h"

namespace pdkarchive::store {
namespace {

// PASSIVE never waits for the writer or readers: it copies what it can. The
// writer empties the WAL itself once it is large (SqliteStore::Maintain),
// which is then quick because this has copied nearly everything.
constexpr char kPassiveCheckpoint[] = "PRAGMA wal_checkpoint(PASSIVE)";
// A catch-up gives up after this many passes: the writer is committing as
// fast as they copy, and its restart will copy the rest.
constexpr int kMaxCatchUpPasses = 8;

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Start(
    const std::string& path, std::chrono::milliseconds interval) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_FULLMUTEX,
        static_cast<int>(kBusyTimeout.count()));
    return std::unique_ptr<Checkpointer>(new Checkpointer(std::move(db), interval));
  } catch (const SQLite::Exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot open ", path, " for checkpoints: ", e.what()));
  }
}

Checkpointer::Checkpointer(std::unique_ptr<SQLite::Database> db,
                           std::chrono::milliseconds interval)
    : db_(std::move(db)), interval_(interval), thread_([this] { Run(); }) {}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Checkpointer::Nudge() {
  {
    std::lock_guard lock(mu_);
    nudged_ = true;
  }
  cv_.notify_one();
}

bool Checkpointer::PauseForRestart() {
  std::lock_guard lock(mu_);
  paused_ = true;
  return !running_;
}

void Checkpointer::ResumeAfterRestart() {
  {
    std::lock_guard lock(mu_);
    paused_ = false;
  }
  cv_.notify_one();
}

void Checkpointer::RequestCatchUp() {
  {
    std::lock_guard lock(mu_);
    ++catch_up_requested_;
  }
  cv_.notify_one();
}

std::optional<int64_t> Checkpointer::caught_up_through() {
  std::lock_guard lock(mu_);
  if (catch_up_requested_ == 0 || caught_up_for_ != catch_up_requested_) return std::nullopt;
  return caught_up_through_;
}

void Checkpointer::Pass() {
  try {
    db_->exec(kPassiveCheckpoint);
  } catch (const SQLite::Exception&) {
    // A failed checkpoint loses nothing: the WAL still holds every page,
    // and the next attempt starts over.
  }
}

int64_t Checkpointer::CatchUp() {
  int previous_log = -1;
  int log = 0;
  int copied_through = 0;
  for (int pass = 0; pass < kMaxCatchUpPasses; ++pass) {
    // log: frames in the WAL when the pass began; copied_through: frames
    // now in the database file. A pass copies what came since the last.
    if (sqlite3_wal_checkpoint_v2(db_->getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                  &log, &copied_through) != SQLITE_OK) {
      return 0;
    }
    const bool little_came = previous_log >= 0 && log >= previous_log &&
                             log - previous_log <= kCatchUpFrames;
    // Readers on old snapshots keep frames from being copied: more passes
    // would not copy them either.
    if (little_came || copied_through < log) break;
    previous_log = log;
  }
  return copied_through;
}

void Checkpointer::Run() {
  pthread_setname_np(pthread_self(), "pdk-checkpoint");
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, interval_, [this] {
      return stop_ || ((nudged_ || caught_up_for_ != catch_up_requested_) && !paused_);
    });
    const bool stopping = stop_;
    if (paused_ && !stopping) continue;  // the writer is restarting the WAL
    nudged_ = false;
    const uint64_t request = catch_up_requested_;
    const bool catch_up = request != caught_up_for_ && !stopping;
    running_ = true;
    lock.unlock();
    int64_t through = 0;
    if (catch_up) {
      through = CatchUp();
    } else {
      Pass();
    }
    lock.lock();
    running_ = false;
    if (catch_up) {
      caught_up_for_ = request;
      caught_up_through_ = through;
    }
    if (stopping) return;
  }
}

}  // namespace pdkarchive::store
