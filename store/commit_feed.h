// CommitFeed: tells live readers (WatchEvents) that new events were
// committed. The writer publishes the newest committed sequence after every
// commit; subscribers then read what they need through their own reader.
// An interface, because what "committed" reaches depends on the engine:
// LocalCommitFeed carries one process's commits (SQLite, one writer); an
// engine shared by several nodes delivers every node's.
#ifndef PDKARCHIVE_STORE_COMMIT_FEED_H_
#define PDKARCHIVE_STORE_COMMIT_FEED_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace pdkarchive::store {

// Thread-safe. Listeners run on the publishing thread, so they must only
// hand work off (signal a condition, schedule a read), never block.
class CommitFeed {
 public:
  using Listener = std::function<void(int64_t last_sequence)>;

  virtual ~CommitFeed() = default;

  // Registers `listener`; returns an id for Unsubscribe.
  virtual int Subscribe(Listener listener) = 0;
  // Removes a listener. After it returns the listener is not running and will
  // not run again.
  virtual void Unsubscribe(int id) = 0;
  // Records `last_sequence` as committed (by this process's writer) and
  // calls every listener.
  virtual void Publish(int64_t last_sequence) = 0;
  // The newest sequence known committed so far (0 before the first).
  virtual int64_t last_sequence() const = 0;
};

// The commits of this process: what Publish is told, at once.
class LocalCommitFeed final : public CommitFeed {
 public:
  LocalCommitFeed() = default;
  LocalCommitFeed(const LocalCommitFeed&) = delete;
  LocalCommitFeed& operator=(const LocalCommitFeed&) = delete;

  int Subscribe(Listener listener) override;
  void Unsubscribe(int id) override;
  void Publish(int64_t last_sequence) override;
  int64_t last_sequence() const override;

 private:
  mutable std::mutex mu_;
  // Held while listeners run, so Unsubscribe can wait for a running call.
  std::mutex publish_mu_;
  std::map<int, Listener> listeners_;
  int next_id_ = 1;
  int64_t last_sequence_ = 0;
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_COMMIT_FEED_H_
