#include "store/checkpointer.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "store/sqlite_util.h"

namespace pdkarchive::store {
namespace {

// PASSIVE never waits for the writer or readers: it copies what it can. The
// writer empties the WAL itself once it is large (SqliteStore::Maintain),
// which is then quick because this has copied nearly everything.
constexpr char kPassiveCheckpoint[] = "PRAGMA wal_checkpoint(PASSIVE)";

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

void Checkpointer::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, interval_, [this] { return stop_ || (nudged_ && !paused_); });
    const bool stopping = stop_;
    if (paused_ && !stopping) continue;  // the writer is restarting the WAL
    nudged_ = false;
    running_ = true;
    lock.unlock();
    try {
      db_->exec(kPassiveCheckpoint);
    } catch (const SQLite::Exception&) {
      // A failed checkpoint loses nothing: the WAL still holds every page,
      // and the next attempt starts over.
    }
    lock.lock();
    running_ = false;
    if (stopping) return;
  }
}

}  // namespace pdkarchive::store
