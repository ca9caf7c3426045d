// Checkpointer: moves WAL checkpoints off the commit path. The write
// connection has auto-checkpointing turned off; this class runs PASSIVE
// checkpoints from its own connection and thread, so commits never stall on
// copying pages back into the database, and the WAL stays bounded.
#ifndef PDKARCHIVE_STORE_CHECKPOINTER_H_
#define PDKARCHIVE_STORE_CHECKPOINTER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace SQLite {
class Database;
}

namespace pdkarchive::store {

class Checkpointer {
 public:
  // Starts a thread that checkpoints the archive at `path` every `interval`
  // (and sooner when Nudge is called).
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(
      const std::string& path, std::chrono::milliseconds interval);

  // Stops the thread after a last checkpoint.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Asks for a checkpoint soon. Thread-safe and cheap; the writer calls it
  // after commits.
  void Nudge();

  // For the writer's WAL restarts (SqliteStore::Maintain). SQLite lets one
  // connection checkpoint at a time and refuses a second at once, so while
  // this thread runs its passes back to back a restart would keep colliding
  // with them and the WAL would grow (bench/RESULTS.md). PauseForRestart
  // asks the thread to start no new pass until ResumeAfterRestart; it
  // returns true when no pass is running, so the restart can go ahead now,
  // and false when one is (try again after the next batch: no new pass
  // starts in between). Thread-safe.
  bool PauseForRestart();
  void ResumeAfterRestart();

  // Also for the writer's restarts. A restart holds the write lock while it
  // copies every frame the last pass left, so the writer asks this thread to
  // catch up first: PASSIVE passes back to back, each copying what was
  // committed during the one before, until a pass finds at most
  // kCatchUpFrames new frames. Then the restart copies only the few frames
  // committed since. A new request makes the results of earlier ones stale.
  // Thread-safe.
  void RequestCatchUp();
  // The frame through which the last requested catch-up copied the WAL once
  // it has finished (0 when it could copy nothing), else nullopt.
  std::optional<int64_t> caught_up_through();
  static constexpr int64_t kCatchUpFrames = 256;

 private:
  Checkpointer(std::unique_ptr<SQLite::Database> db,
               std::chrono::milliseconds interval);
  void Run();
  // One PASSIVE pass.
  void Pass();
  // The passes RequestCatchUp asks for; returns the frame copied through.
  int64_t CatchUp();

  std::unique_ptr<SQLite::Database> db_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool nudged_ = false;
  bool stop_ = false;
  bool paused_ = false;   // no new pass until ResumeAfterRestart
  bool running_ = false;  // a pass is in progress
  // RequestCatchUp numbers its requests; the result is for one of them.
  uint64_t catch_up_requested_ = 0;
  uint64_t caught_up_for_ = 0;
  int64_t caught_up_through_ = 0;
  std::thread thread_;
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_CHECKPOINTER_H_
