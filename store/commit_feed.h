// CommitFeed: tells live readers (WatchEvents) that new events were
// committed. The writer publishes the newest committed sequence after every
// commit; subscribers then read what they need through their own connection.
#ifndef PDKARCHIVE_STORE_COMMIT_FEED_H_
#define PDKARCHIVE_STORE_COMMIT_FEED_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace pdkarchive::store {

// Thread-safe. Listeners run on the publishing thread (the writer), so they
// must only hand work off (signal a condition, schedule a read), never block.
class CommitFeed {
 public:
  using Listener = std::function<void(int64_t last_sequence)>;

  CommitFeed() = default;
  CommitFeed(const CommitFeed&) = delete;
  CommitFeed& operator=(const CommitFeed&) = delete;

  // Registers `listener`; returns an id for Unsubscribe.
  int Subscribe(Listener listener);
  // Removes a listener. After it returns the listener is not running and will
  // not run again.
  void Unsubscribe(int id);
  // Records `last_sequence` as committed and calls every listener.
  void Publish(int64_t last_sequence);
  // The newest sequence published so far (0 before the first).
  int64_t last_sequence() const;

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
